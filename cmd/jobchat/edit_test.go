package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobchat/jobchat/db/dbtest"
)

// Edits and deletions over real HTTP on every dialect: who may, which
// messages, the edit window, what a deletion clears, idempotent repeats,
// moderation by the job-service, and the lastMessage preview. The helpers
// are reactions_test.go's.

func (e *env) rxEditAs(tb testing.TB, token, messageID, text string) gqlResponse {
	tb.Helper()
	return e.do(tb, token, rxEdit, map[string]any{"m": messageID, "t": text})
}

func (e *env) rxDeleteAs(tb testing.TB, token, messageID string) gqlResponse {
	tb.Helper()
	return e.do(tb, token, rxDelete, map[string]any{"m": messageID})
}

// rxSystemID is the id of the conversation's SYSTEM message.
func (e *env) rxSystemID(tb testing.TB, token, conversationID string) string {
	tb.Helper()
	for id, m := range e.rxHistory(tb, token, conversationID) {
		if m.MessageType == "SYSTEM" {
			return id
		}
	}
	tb.Fatalf("no SYSTEM message in conversation %s", conversationID)
	return ""
}

func TestEditMessage(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben, carl := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben"), userToken(t, "carl", "Carl")
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		systemID := e.rxSystemID(t, ana, conv.ID)
		m := e.sendText(t, ana, conv.ID, "see you at 10")
		e.rxAdd(t, ben, m.ID, "👍")

		var out struct {
			Msg rxMessage `json:"editMessage"`
		}
		e.rxEditAs(t, ana, m.ID, "see you at 11").ok(t, &out)
		edited := out.Msg
		if edited.MessageText != "see you at 11" || edited.EditedAt == nil || edited.Seq != m.Seq || edited.DeletedAt != nil {
			t.Fatalf("edited message: %+v", edited)
		}
		rxSameGroups(t, "reactions survive an edit", edited.Reactions, []rxGroup{rxG("👍", 1, false)})
		if got := e.rxMessageAs(t, ben, conv.ID, m.ID); got.MessageText != "see you at 11" || got.EditedAt == nil || *got.EditedAt != *edited.EditedAt {
			t.Fatalf("ben reads %+v after the edit", got)
		}
		// The preview is the row: it shows the edit.
		if last := e.rxLastMessage(t, ben, conv.ID); last == nil || last.ID != m.ID || last.MessageText != "see you at 11" || last.EditedAt == nil {
			t.Fatalf("lastMessage after the edit: %+v", last)
		}
		// The same text again changes nothing, not even editedAt.
		time.Sleep(2 * time.Millisecond)
		e.rxEditAs(t, ana, m.ID, "see you at 11").ok(t, &out)
		if out.Msg.EditedAt == nil || *out.Msg.EditedAt != *edited.EditedAt {
			t.Fatalf("repeating the edit moved editedAt from %v to %v", *edited.EditedAt, out.Msg.EditedAt)
		}

		// Validated like a send.
		apiFailsOn(t, e.rxEditAs(t, ana, m.ID, "   "), "BAD_USER_INPUT", "messageText")
		apiFailsOn(t, e.rxEditAs(t, ana, m.ID, strings.Repeat("x", 4001)), "BAD_USER_INPUT", "messageText")
		apiFailsOn(t, e.rxEditAs(t, ana, m.ID, "nul\x00"), "BAD_USER_INPUT", "messageText")
		apiFailsOn(t, e.rxEditAs(t, ana, "", "x"), "BAD_USER_INPUT", "messageId")

		// Only the sender, only TEXT.
		e.rxEditAs(t, ben, m.ID, "hijacked").fails(t, "FORBIDDEN", "only its sender")
		e.rxEditAs(t, ana, systemID, "rewritten").fails(t, "FORBIDDEN", "only its sender")
		e.rxEditAs(t, ben, systemID, "rewritten").fails(t, "FORBIDDEN", "only its sender")
		var loc struct {
			Msg message `json:"sendMessage"`
		}
		e.do(t, ana, sendMessage, map[string]any{"input": map[string]any{"conversationId": conv.ID, "messageType": "LOCATION",
			"location": map[string]any{"latitude": 38.7, "longitude": -9.1, "label": "Lisbon"}}}).ok(t, &loc)
		e.rxEditAs(t, ana, loc.Msg.ID, "moved").fails(t, "FAILED_PRECONDITION", "only TEXT")
		e.do(t, serviceToken(t), rxEdit, map[string]any{"m": m.ID, "t": "moderated"}).fails(t, "FORBIDDEN", "editMessage")

		// A stranger and an unknown id get the same NOT_FOUND.
		e.rxEditAs(t, carl, m.ID, "x").fails(t, "NOT_FOUND", fmt.Sprintf("message %q not found", m.ID))
		e.rxEditAs(t, ana, "no-such-message", "x").fails(t, "NOT_FOUND", `message "no-such-message" not found`)

		// A deleted message cannot be edited.
		gone := e.sendText(t, ana, conv.ID, "typo")
		e.rxDeleteAs(t, ana, gone.ID).ok(t, nil)
		e.rxEditAs(t, ana, gone.ID, "fixed").fails(t, "FAILED_PRECONDITION", "deleted")

		// Nothing refused above changed the text.
		if got := e.rxMessageAs(t, ana, conv.ID, m.ID); got.MessageText != "see you at 11" {
			t.Fatalf("text after refused edits: %q", got.MessageText)
		}

		// A closed conversation is read-only: no edits, but deletions.
		e.do(t, serviceToken(t), `mutation($c: ID!) { closeConversation(conversationId: $c) { id } }`,
			map[string]any{"c": conv.ID}).ok(t, nil)
		e.rxEditAs(t, ana, m.ID, "after the close").fails(t, "FAILED_PRECONDITION", "closed")
		e.rxDeleteAs(t, ana, m.ID).ok(t, nil)
	})
}

func TestEditWindow(t *testing.T) {
	const window = time.Second
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			e := newEnv(t, dialect, map[string]string{"JOBCHAT_EDIT_WINDOW": window.String()})
			ana := userToken(t, "ana", "Ana")
			conv := e.openJob(t, "job-1", "ana", "ben", "")
			m := e.sendText(t, ana, conv.ID, "first")
			e.rxEditAs(t, ana, m.ID, "second").ok(t, nil)
			time.Sleep(window + 200*time.Millisecond)
			e.rxEditAs(t, ana, m.ID, "third").fails(t, "FORBIDDEN", "edit window")
			if got := e.rxMessageAs(t, ana, conv.ID, m.ID); got.MessageText != "second" {
				t.Fatalf("text after the window: %q", got.MessageText)
			}
			// Deleting has no window.
			e.rxDeleteAs(t, ana, m.ID).ok(t, nil)
		})
	}
}

func TestDeleteMessage(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben, carl, svc := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben"), userToken(t, "carl", "Carl"), serviceToken(t)
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		systemID := e.rxSystemID(t, ana, conv.ID)
		text := e.sendText(t, ana, conv.ID, "my phone is 555-0100")
		e.rxAdd(t, ben, text.ID, "👍")
		e.rxAdd(t, ana, text.ID, "🎉")
		var loc, img struct {
			Msg message `json:"sendMessage"`
		}
		e.do(t, ana, sendMessage, map[string]any{"input": map[string]any{"conversationId": conv.ID, "messageType": "LOCATION",
			"location": map[string]any{"latitude": 38.7, "longitude": -9.1, "label": "my home"}}}).ok(t, &loc)
		e.do(t, ana, sendMessage, map[string]any{"input": map[string]any{"conversationId": conv.ID, "messageType": "IMAGE",
			"messageText": "my house", "attachment": map[string]any{"url": "https://cdn.example.com/house.jpg", "fileName": "house.jpg"}}}).ok(t, &img)
		last := e.sendText(t, ana, conv.ID, "bye")

		// Wrong user, stranger, unknown id: nothing is deleted.
		e.rxDeleteAs(t, ben, text.ID).fails(t, "FORBIDDEN", "only its sender")
		e.rxDeleteAs(t, ben, systemID).fails(t, "FORBIDDEN", "only its sender")
		e.rxDeleteAs(t, carl, text.ID).fails(t, "NOT_FOUND", fmt.Sprintf("message %q not found", text.ID))
		e.rxDeleteAs(t, ana, "no-such-message").fails(t, "NOT_FOUND", `message "no-such-message" not found`)
		apiFailsOn(t, e.rxDeleteAs(t, ana, ""), "BAD_USER_INPUT", "messageId")

		var out struct {
			Msg rxMessage `json:"deleteMessage"`
		}
		e.rxDeleteAs(t, ana, text.ID).ok(t, &out)
		del := out.Msg
		if del.MessageText != "" || del.DeletedAt == nil || del.Seq != text.Seq || len(del.Reactions) != 0 {
			t.Fatalf("deleted message: %+v", del)
		}
		// Everyone reads it cleared, at its seq.
		for _, tok := range []string{ana, ben, svc} {
			got := e.rxMessageAs(t, tok, conv.ID, text.ID)
			if got.MessageText != "" || got.DeletedAt == nil || got.Seq != text.Seq || len(got.Reactions) != 0 {
				t.Fatalf("deleted message as read: %+v", got)
			}
		}
		// Deleting twice changes nothing.
		e.rxDeleteAs(t, ana, text.ID).ok(t, &out)
		if out.Msg.DeletedAt == nil || *out.Msg.DeletedAt != *del.DeletedAt {
			t.Fatalf("second delete moved deletedAt from %s to %v", *del.DeletedAt, out.Msg.DeletedAt)
		}

		// Location and attachment go with the text.
		e.rxDeleteAs(t, ana, loc.Msg.ID).ok(t, &out)
		if out.Msg.Location != nil || out.Msg.MessageText != "" || out.Msg.DeletedAt == nil {
			t.Fatalf("deleted location message: %+v", out.Msg)
		}
		e.rxDeleteAs(t, ana, img.Msg.ID).ok(t, &out)
		if out.Msg.Attachment != nil || out.Msg.MessageText != "" || out.Msg.DeletedAt == nil {
			t.Fatalf("deleted image message: %+v", out.Msg)
		}

		// The preview shows the deletion of the last message.
		e.rxDeleteAs(t, ana, last.ID).ok(t, nil)
		if p := e.rxLastMessage(t, ben, conv.ID); p == nil || p.ID != last.ID || p.MessageText != "" || p.DeletedAt == nil {
			t.Fatalf("lastMessage after deleting it: %+v", p)
		}

		// The job-service moderates: any message, SYSTEM ones included.
		bens := e.sendText(t, ben, conv.ID, "call me on 555-0199")
		e.do(t, svc, rxDelete, map[string]any{"m": bens.ID}).ok(t, &out)
		if out.Msg.MessageText != "" || out.Msg.DeletedAt == nil {
			t.Fatalf("moderated message: %+v", out.Msg)
		}
		e.do(t, svc, rxDelete, map[string]any{"m": systemID}).ok(t, &out)
		if out.Msg.DeletedAt == nil || out.Msg.MessageType != "SYSTEM" {
			t.Fatalf("deleted SYSTEM message: %+v", out.Msg)
		}

		// Seqs and history stay whole: nothing was removed.
		c := e.apiConversationAs(t, ben, conv.ID)
		if c.LastSeq != 6 {
			t.Fatalf("lastSeq after deletions: %d, want 6", c.LastSeq)
		}
		if n := len(e.rxHistory(t, ben, conv.ID)); n != 6 {
			t.Fatalf("history after deletions has %d messages, want 6", n)
		}
	})
}
