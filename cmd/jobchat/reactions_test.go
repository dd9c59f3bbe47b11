package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"
)

// Reactions over real HTTP on every dialect: idempotent adds and removes,
// the per-user cap (also under concurrent adds), group order, reactedByMe
// per viewer, and the refusals. Helpers start with "rx"; edit_test.go and
// reactions_live_test.go share them.

// rxMessageFields is what these tests read of a Message.
const rxMessageFields = `id conversationId seq senderId messageText messageType editedAt deletedAt
  location { latitude longitude label } attachment { url fileName }
  reactions { emoji count reactedByMe }`

type rxGroup struct {
	Emoji       string `json:"emoji"`
	Count       int    `json:"count"`
	ReactedByMe bool   `json:"reactedByMe"`
}

func (g rxGroup) String() string {
	return fmt.Sprintf("%s×%d(me=%v)", g.Emoji, g.Count, g.ReactedByMe)
}

type rxMessage struct {
	ID             string    `json:"id"`
	ConversationID string    `json:"conversationId"`
	Seq            int       `json:"seq"`
	SenderID       *string   `json:"senderId"`
	MessageText    string    `json:"messageText"`
	MessageType    string    `json:"messageType"`
	EditedAt       *string   `json:"editedAt"`
	DeletedAt      *string   `json:"deletedAt"`
	Location       *struct{} `json:"location"`
	Attachment     *struct{} `json:"attachment"`
	Reactions      []rxGroup `json:"reactions"`
}

// rxG builds an expected group.
func rxG(emoji string, count int, mine bool) rxGroup {
	return rxGroup{Emoji: emoji, Count: count, ReactedByMe: mine}
}

// rxSameGroups fails unless got is want, in order.
func rxSameGroups(tb testing.TB, what string, got, want []rxGroup) {
	tb.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		tb.Fatalf("%s: reactions %v, want %v", what, got, want)
	}
}

const (
	rxAdd    = `mutation($m: ID!, $e: String!) { addReaction(messageId: $m, emoji: $e) { ` + rxMessageFields + ` } }`
	rxRemove = `mutation($m: ID!, $e: String!) { removeReaction(messageId: $m, emoji: $e) { ` + rxMessageFields + ` } }`
	rxEdit   = `mutation($m: ID!, $t: String!) { editMessage(messageId: $m, messageText: $t) { ` + rxMessageFields + ` } }`
	rxDelete = `mutation($m: ID!) { deleteMessage(messageId: $m) { ` + rxMessageFields + ` } }`
)

// rxDo runs a mutation on one message and decodes its result; the field is
// the mutation's name.
func (e *env) rxDo(tb testing.TB, token, query, field string, vars map[string]any) rxMessage {
	tb.Helper()
	var out map[string]rxMessage
	e.do(tb, token, query, vars).ok(tb, &out)
	return out[field]
}

func (e *env) rxAdd(tb testing.TB, token, messageID, emoji string) rxMessage {
	tb.Helper()
	return e.rxDo(tb, token, rxAdd, "addReaction", map[string]any{"m": messageID, "e": emoji})
}

func (e *env) rxRemove(tb testing.TB, token, messageID, emoji string) rxMessage {
	tb.Helper()
	return e.rxDo(tb, token, rxRemove, "removeReaction", map[string]any{"m": messageID, "e": emoji})
}

// rxHistory reads a conversation's messages as token's caller, by id.
func (e *env) rxHistory(tb testing.TB, token, conversationID string) map[string]rxMessage {
	tb.Helper()
	var out struct {
		Messages struct {
			Edges []struct {
				Node rxMessage `json:"node"`
			} `json:"edges"`
		} `json:"messages"`
	}
	e.do(tb, token, `query($c: ID!) { messages(conversationId: $c, first: 100) { edges { node { `+rxMessageFields+` } } } }`,
		map[string]any{"c": conversationID}).ok(tb, &out)
	byID := make(map[string]rxMessage, len(out.Messages.Edges))
	for _, edge := range out.Messages.Edges {
		byID[edge.Node.ID] = edge.Node
	}
	return byID
}

// rxMessageAs reads one message as token's caller.
func (e *env) rxMessageAs(tb testing.TB, token, conversationID, messageID string) rxMessage {
	tb.Helper()
	m, ok := e.rxHistory(tb, token, conversationID)[messageID]
	if !ok {
		tb.Fatalf("message %s not in conversation %s", messageID, conversationID)
	}
	return m
}

// rxLastMessage reads the conversation's lastMessage preview.
func (e *env) rxLastMessage(tb testing.TB, token, conversationID string) *rxMessage {
	tb.Helper()
	var out struct {
		Conversation struct {
			LastMessage *rxMessage `json:"lastMessage"`
		} `json:"conversation"`
	}
	e.do(tb, token, `query($c: ID!) { conversation(id: $c) { lastMessage { `+rxMessageFields+` } } }`,
		map[string]any{"c": conversationID}).ok(tb, &out)
	return out.Conversation.LastMessage
}

// rxPost is env.do for goroutines: it never calls t.Fatal.
func rxPost(ctx context.Context, url, token, query string, vars map[string]any) (gqlResponse, error) {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return gqlResponse{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/query", bytes.NewReader(body))
	if err != nil {
		return gqlResponse{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return gqlResponse{}, fmt.Errorf("POST /query: %w", err)
	}
	defer resp.Body.Close()
	var out gqlResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return gqlResponse{}, fmt.Errorf("decode response (status %d): %w", resp.StatusCode, err)
	}
	out.Status = resp.StatusCode
	return out, nil
}

// rxEmoji are distinct fully-qualified emoji for filling the cap.
var rxEmoji = []string{"👍", "❤️", "😂", "😮", "😢", "🙏", "🔥", "🎉", "👀", "💯",
	"✅", "🤝", "👏", "😍", "🤔", "😅", "🙌", "💪", "🚀", "⭐",
	"🌟", "🍕", "🎈", "🐶", "🌈", "⚡", "🍀", "🎵", "🧡", "💙",
	"🥳", "😎"}

func TestReactionsAddRemoveAndOrder(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben, svc := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben"), serviceToken(t)
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		m := e.sendText(t, ana, conv.ID, "hello")

		got := e.rxAdd(t, ben, m.ID, "👍")
		rxSameGroups(t, "ben's first 👍", got.Reactions, []rxGroup{rxG("👍", 1, true)})
		if got.ID != m.ID || got.Seq != m.Seq || got.MessageText != "hello" {
			t.Fatalf("addReaction returned %+v, want message %s", got, m.ID)
		}
		// Adding it again is the same reaction, not a second one.
		rxSameGroups(t, "ben's 👍 again", e.rxAdd(t, ben, m.ID, "👍").Reactions, []rxGroup{rxG("👍", 1, true)})
		// The result is as the caller sees it.
		rxSameGroups(t, "ana's 👍", e.rxAdd(t, ana, m.ID, "👍").Reactions, []rxGroup{rxG("👍", 2, true)})
		rxSameGroups(t, "ana's 🎉", e.rxAdd(t, ana, m.ID, "🎉").Reactions, []rxGroup{rxG("👍", 2, true), rxG("🎉", 1, true)})
		// A skin tone is an emoji of its own.
		rxSameGroups(t, "ben's 👍🏽", e.rxAdd(t, ben, m.ID, "👍🏽").Reactions,
			[]rxGroup{rxG("👍", 2, true), rxG("🎉", 1, false), rxG("👍🏽", 1, true)})

		// Two viewers of the same message see their own reactedByMe.
		rxSameGroups(t, "as ana", e.rxMessageAs(t, ana, conv.ID, m.ID).Reactions,
			[]rxGroup{rxG("👍", 2, true), rxG("🎉", 1, true), rxG("👍🏽", 1, false)})
		rxSameGroups(t, "as ben", e.rxMessageAs(t, ben, conv.ID, m.ID).Reactions,
			[]rxGroup{rxG("👍", 2, true), rxG("🎉", 1, false), rxG("👍🏽", 1, true)})
		rxSameGroups(t, "as the job-service", e.rxMessageAs(t, svc, conv.ID, m.ID).Reactions,
			[]rxGroup{rxG("👍", 2, false), rxG("🎉", 1, false), rxG("👍🏽", 1, false)})

		// Removing one that is there, then again, then one never added.
		after := []rxGroup{rxG("👍", 1, false), rxG("🎉", 1, false), rxG("👍🏽", 1, true)}
		rxSameGroups(t, "ben removes 👍", e.rxRemove(t, ben, m.ID, "👍").Reactions, after)
		rxSameGroups(t, "ben removes 👍 again", e.rxRemove(t, ben, m.ID, "👍").Reactions, after)
		rxSameGroups(t, "ben removes 😮, never added", e.rxRemove(t, ben, m.ID, "😮").Reactions, after)

		// Groups follow their earliest reaction still present: with ana's
		// 👍 gone, a new 👍 comes after 🎉 and 👍🏽.
		e.rxRemove(t, ana, m.ID, "👍")
		rxSameGroups(t, "ben's new 👍", e.rxAdd(t, ben, m.ID, "👍").Reactions,
			[]rxGroup{rxG("🎉", 1, false), rxG("👍🏽", 1, true), rxG("👍", 1, true)})
		rxSameGroups(t, "as ana after the shuffle", e.rxMessageAs(t, ana, conv.ID, m.ID).Reactions,
			[]rxGroup{rxG("🎉", 1, true), rxG("👍🏽", 1, false), rxG("👍", 1, false)})

		// Reactions change no seq and no unread count.
		if c := e.apiConversationAs(t, ben, conv.ID); c.LastSeq != 2 || c.UnreadCount != 2 {
			t.Fatalf("after reactions ben sees lastSeq %d unread %d, want 2 and 2", c.LastSeq, c.UnreadCount)
		}
	})
}

func TestReactionsLimit(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-1", "ana", "ben", "")
		m := e.sendText(t, ben, conv.ID, "react to this")

		for _, em := range rxEmoji[:20] {
			e.rxAdd(t, ana, m.ID, em)
		}
		apiFailsOn(t, e.do(t, ana, rxAdd, map[string]any{"m": m.ID, "e": rxEmoji[20]}), "BAD_USER_INPUT", "emoji")
		// Re-adding one already there is no new reaction and succeeds.
		if got := e.rxAdd(t, ana, m.ID, rxEmoji[0]); len(got.Reactions) != 20 {
			t.Fatalf("re-adding at the cap: %d groups, want 20", len(got.Reactions))
		}
		// The cap is per user: ben still has all of his.
		if got := e.rxAdd(t, ben, m.ID, rxEmoji[20]); len(got.Reactions) != 21 {
			t.Fatalf("ben's reaction: %d groups, want 21", len(got.Reactions))
		}
		// After removing one, ana has room for one more.
		e.rxRemove(t, ana, m.ID, rxEmoji[0])
		e.rxAdd(t, ana, m.ID, rxEmoji[21])
		apiFailsOn(t, e.do(t, ana, rxAdd, map[string]any{"m": m.ID, "e": rxEmoji[22]}), "BAD_USER_INPUT", "emoji")

		// Concurrent adds cannot pass the cap together: from 15, twelve
		// racing adds leave exactly 20.
		m2 := e.sendText(t, ben, conv.ID, "race on this")
		for _, em := range rxEmoji[:15] {
			e.rxAdd(t, ana, m2.ID, em)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			ok      int
			refused int
			errs    []error
		)
		for _, em := range rxEmoji[15:27] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := rxPost(ctx, e.url, ana, rxAdd, map[string]any{"m": m2.ID, "e": em})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					errs = append(errs, err)
				case len(resp.Errors) == 0:
					ok++
				case resp.code() == "BAD_USER_INPUT" && resp.Errors[0].Extensions["field"] == "emoji":
					refused++
				default:
					errs = append(errs, fmt.Errorf("add %s: %+v", em, resp.Errors))
				}
			}()
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("concurrent adds failed: %v", errs)
		}
		if ok != 5 || refused != 7 {
			t.Fatalf("concurrent adds: %d accepted, %d refused; want 5 and 7", ok, refused)
		}
		mine := 0
		for _, g := range e.rxMessageAs(t, ana, conv.ID, m2.ID).Reactions {
			if g.ReactedByMe {
				mine++
			}
		}
		if mine != 20 {
			t.Fatalf("ana has %d reactions after the race, want 20", mine)
		}
	})
}

func TestReactionsRefused(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben, carl := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben"), userToken(t, "carl", "Carl")
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		m := e.sendText(t, ana, conv.ID, "hello")
		e.rxAdd(t, ben, m.ID, "👍")

		for _, tc := range []struct {
			name, emoji string
		}{
			{"empty", ""},
			{"a letter", "a"},
			{"text", "nice"},
			{"two emoji", "👍👍"},
			{"a lone skin tone", "🏽"},
			{"an unlisted flag pair", "🇦🇦"},
			{"text around an emoji", "hi 👍"},
			{"a heart without its variation selector", "❤"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, q := range []string{rxAdd, rxRemove} {
					apiFailsOn(t, e.do(t, ben, q, map[string]any{"m": m.ID, "e": tc.emoji}), "BAD_USER_INPUT", "emoji")
				}
			})
		}
		rxSameGroups(t, "after the refusals", e.rxMessageAs(t, ana, conv.ID, m.ID).Reactions, []rxGroup{rxG("👍", 1, false)})

		// The SYSTEM message that opened the conversation takes none.
		system := e.rxHistory(t, ana, conv.ID)
		var systemID string
		for id, sm := range system {
			if sm.MessageType == "SYSTEM" {
				systemID = id
			}
		}
		if systemID == "" {
			t.Fatal("no SYSTEM message in the conversation")
		}
		e.do(t, ana, rxAdd, map[string]any{"m": systemID, "e": "👍"}).fails(t, "FAILED_PRECONDITION", "SYSTEM")

		// Nor does a deleted message.
		gone := e.sendText(t, ben, conv.ID, "oops")
		e.rxDo(t, ben, rxDelete, "deleteMessage", map[string]any{"m": gone.ID})
		e.do(t, ana, rxAdd, map[string]any{"m": gone.ID, "e": "👍"}).fails(t, "FAILED_PRECONDITION", "deleted")

		// A stranger and an unknown id get the same NOT_FOUND.
		stranger := e.do(t, carl, rxAdd, map[string]any{"m": m.ID, "e": "👍"})
		stranger.fails(t, "NOT_FOUND", fmt.Sprintf("message %q not found", m.ID))
		e.do(t, carl, rxRemove, map[string]any{"m": m.ID, "e": "👍"}).fails(t, "NOT_FOUND", "not found")
		e.do(t, ana, rxAdd, map[string]any{"m": "no-such-message", "e": "👍"}).fails(t, "NOT_FOUND", `message "no-such-message" not found`)
		apiFailsOn(t, e.do(t, ana, rxAdd, map[string]any{"m": "", "e": "👍"}), "BAD_USER_INPUT", "messageId")

		// Reactions are a user's: the job-service has none to give.
		e.do(t, serviceToken(t), rxAdd, map[string]any{"m": m.ID, "e": "👍"}).fails(t, "FORBIDDEN", "addReaction")

		// A closed conversation still takes reactions.
		e.do(t, serviceToken(t), `mutation($c: ID!) { closeConversation(conversationId: $c) { id } }`,
			map[string]any{"c": conv.ID}).ok(t, nil)
		rxSameGroups(t, "in a closed conversation", e.rxAdd(t, ana, m.ID, "🎉").Reactions,
			[]rxGroup{rxG("👍", 1, false), rxG("🎉", 1, true)})
		rxSameGroups(t, "removing in a closed conversation", e.rxRemove(t, ben, m.ID, "👍").Reactions,
			[]rxGroup{rxG("🎉", 1, false)})
	})
}
