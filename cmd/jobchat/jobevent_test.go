package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jobchat/jobchat/db"
)

// The job's life (issue 8, Semantics 6) over real HTTP and WebSocket on
// every dialect: postJobEvent and its shared key space with
// postSystemMessage, closeConversation and reopenConversation, and what a
// closed conversation still allows. Helpers start with "je".

const (
	jeMessageFields = messageFields + ` jobEvent`
	jePostJobEvent  = `mutation($c: ID!, $ev: JobEvent!, $text: String!, $key: String!) {
  postJobEvent(conversationId: $c, event: $ev, messageText: $text, idempotencyKey: $key) { ` + jeMessageFields + ` }
}`
	jePostSystem = `mutation($c: ID!, $text: String!, $key: String) {
  postSystemMessage(conversationId: $c, messageText: $text, idempotencyKey: $key) { ` + jeMessageFields + ` }
}`
	jeStatusFields = `id status closedAt lastSeq unreadCount job { title }`
	jeClose        = `mutation($c: ID!, $reason: String) { closeConversation(conversationId: $c, reason: $reason) { ` + jeStatusFields + ` } }`
	jeReopen       = `mutation($c: ID!) { reopenConversation(conversationId: $c) { ` + jeStatusFields + ` } }`
)

// jeMessage is a message with its job event.
type jeMessage struct {
	message
	JobEvent *string `json:"jobEvent"`
}

// jeStatus is what these tests read of a conversation's state.
type jeStatus struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	// ClosedAt is "" when null, so that states compare with ==.
	ClosedAt    string `json:"closedAt"`
	LastSeq     int    `json:"lastSeq"`
	UnreadCount int    `json:"unreadCount"`
	Job         struct {
		Title string `json:"title"`
	} `json:"job"`
}

func (e *env) jePostJobEvent(tb testing.TB, conversationID, event, text, key string) jeMessage {
	tb.Helper()
	var out struct {
		M jeMessage `json:"postJobEvent"`
	}
	e.do(tb, serviceToken(tb), jePostJobEvent, map[string]any{"c": conversationID, "ev": event, "text": text, "key": key}).ok(tb, &out)
	return out.M
}

func (e *env) jePostSystem(tb testing.TB, conversationID, text, key string) jeMessage {
	tb.Helper()
	var out struct {
		M jeMessage `json:"postSystemMessage"`
	}
	e.do(tb, serviceToken(tb), jePostSystem, map[string]any{"c": conversationID, "text": text, "key": key}).ok(tb, &out)
	return out.M
}

// jeSetStatus closes (with reason) or reopens a conversation as the job-service.
func (e *env) jeSetStatus(tb testing.TB, conversationID string, closed bool, reason any) jeStatus {
	tb.Helper()
	var out struct {
		Close  *jeStatus `json:"closeConversation"`
		Reopen *jeStatus `json:"reopenConversation"`
	}
	if closed {
		e.do(tb, serviceToken(tb), jeClose, map[string]any{"c": conversationID, "reason": reason}).ok(tb, &out)
		return *out.Close
	}
	e.do(tb, serviceToken(tb), jeReopen, map[string]any{"c": conversationID}).ok(tb, &out)
	return *out.Reopen
}

// jeStatusAs reads the conversation's state as token's caller.
func (e *env) jeStatusAs(tb testing.TB, token, conversationID string) jeStatus {
	tb.Helper()
	var out struct {
		C *jeStatus `json:"conversation"`
	}
	e.do(tb, token, `query($c: ID!) { conversation(id: $c) { `+jeStatusFields+` } }`, map[string]any{"c": conversationID}).ok(tb, &out)
	if out.C == nil {
		tb.Fatalf("conversation %s is null", conversationID)
	}
	return *out.C
}

// jeHistory reads the whole history as token's caller.
func (e *env) jeHistory(tb testing.TB, token, conversationID string) []jeMessage {
	tb.Helper()
	var out struct {
		Messages struct {
			Edges []struct {
				Node jeMessage `json:"node"`
			} `json:"edges"`
		} `json:"messages"`
	}
	e.do(tb, token, `query($c: ID!) { messages(conversationId: $c, first: 100) { edges { node { `+jeMessageFields+` } } } }`,
		map[string]any{"c": conversationID}).ok(tb, &out)
	ms := make([]jeMessage, len(out.Messages.Edges))
	for i, edge := range out.Messages.Edges {
		ms[i] = edge.Node
	}
	return ms
}

func jeSend(cmid string, conversationID, text string) map[string]any {
	in := map[string]any{"conversationId": conversationID, "messageText": text}
	if cmid != "" {
		in["clientMessageId"] = cmid
	}
	return map[string]any{"input": in}
}

func TestJobEventPost(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		other := e.openJob(t, "job-2", "ana", "carl", "")

		started := e.jePostJobEvent(t, conv.ID, "JOB_STARTED", "Ben started the job.", "job-started")
		if started.Seq != 2 || started.MessageType != "SYSTEM" || started.SenderID != nil || started.JobEvent == nil ||
			*started.JobEvent != "JOB_STARTED" || started.MessageText != "Ben started the job." {
			t.Fatalf("postJobEvent: %+v", started)
		}
		before := e.apiSnapshot(t, conv.ID, ana, ben)

		// A retry with another event and text, as a confused caller might
		// send: the stored message wins and nothing is written.
		retry := e.jePostJobEvent(t, conv.ID, "JOB_COMPLETED", "Done.", "job-started")
		if retry.ID != started.ID || *retry.JobEvent != "JOB_STARTED" || retry.MessageText != started.MessageText {
			t.Fatalf("retry returned %+v, want %+v", retry, started)
		}
		e.apiUnchanged(t, conv.ID, before, ana, ben)

		// One key space: postSystemMessage with the key gets the event's
		// message, and postJobEvent with a postSystemMessage key gets that.
		if got := e.jePostSystem(t, conv.ID, "Job started.", "job-started"); got.ID != started.ID || got.JobEvent == nil {
			t.Fatalf("postSystemMessage with a postJobEvent key returned %+v, want %+v", got, started)
		}
		e.apiUnchanged(t, conv.ID, before, ana, ben)
		plain := e.jePostSystem(t, conv.ID, "Payment is held in escrow.", "escrow")
		if plain.Seq != 3 || plain.JobEvent != nil {
			t.Fatalf("postSystemMessage: %+v", plain)
		}
		if got := e.jePostJobEvent(t, conv.ID, "PAYMENT_RELEASED", "Paid.", "escrow"); got.ID != plain.ID || got.JobEvent != nil {
			t.Fatalf("postJobEvent with a postSystemMessage key returned %+v, want %+v", got, plain)
		}

		// Keys are per conversation.
		elsewhere := e.jePostJobEvent(t, other.ID, "JOB_STARTED", "Carl started.", "job-started")
		if elsewhere.ID == started.ID || elsewhere.ConversationID != other.ID || elsewhere.Seq != 1 {
			t.Fatalf("the same key in another conversation: %+v", elsewhere)
		}

		// Every event is stored and read back as posted.
		for i, ev := range []string{"APPLICATION_ACCEPTED", "JOB_COMPLETED", "JOB_CANCELLED", "PAYMENT_RELEASED", "DISPUTE_OPENED", "DISPUTE_RESOLVED"} {
			m := e.jePostJobEvent(t, conv.ID, ev, "event "+ev, "key-"+ev)
			if m.Seq != 4+i || m.JobEvent == nil || *m.JobEvent != ev {
				t.Fatalf("postJobEvent %s: %+v", ev, m)
			}
		}

		// Participants see the event on the message, in the history and as
		// the last message, and it counts as unread like any message.
		hist := e.jeHistory(t, ben, conv.ID)
		if len(hist) != 9 || hist[0].JobEvent != nil || hist[1].JobEvent == nil || *hist[1].JobEvent != "JOB_STARTED" || hist[2].JobEvent != nil {
			t.Fatalf("ben's history: %+v", hist)
		}
		var seen struct {
			C struct {
				UnreadCount int `json:"unreadCount"`
				LastMessage struct {
					JobEvent *string `json:"jobEvent"`
				} `json:"lastMessage"`
			} `json:"conversation"`
		}
		e.do(t, ana, `query($c: ID!) { conversation(id: $c) { unreadCount lastMessage { jobEvent } } }`, map[string]any{"c": conv.ID}).ok(t, &seen)
		if seen.C.UnreadCount != 9 || seen.C.LastMessage.JobEvent == nil || *seen.C.LastMessage.JobEvent != "DISPUTE_RESOLVED" {
			t.Fatalf("ana's view: %+v", seen.C)
		}

		before = e.apiSnapshot(t, conv.ID, ana, ben)
		t.Run("refused", func(t *testing.T) {
			vars := func(c, ev, text, key string) map[string]any {
				return map[string]any{"c": c, "ev": ev, "text": text, "key": key}
			}
			missing := db.NewID()
			cases := []struct {
				name, token string
				vars        map[string]any
				code, want  string
			}{
				{"user", ana, vars(conv.ID, "JOB_COMPLETED", "I am done", "mine"), "FORBIDDEN", "postJobEvent"},
				{"other user", userToken(t, "mallory", "M"), vars(conv.ID, "JOB_COMPLETED", "x", "k"), "FORBIDDEN", "postJobEvent"},
				{"unknown conversation", serviceToken(t), vars(missing, "JOB_COMPLETED", "x", "k"), "NOT_FOUND", missing},
				{"blank text", serviceToken(t), vars(conv.ID, "JOB_COMPLETED", "  ", "k"), "BAD_USER_INPUT", "messageText"},
				{"text over the limit", serviceToken(t), vars(conv.ID, "JOB_COMPLETED", strings.Repeat("x", 4001), "k"), "BAD_USER_INPUT", "messageText"},
				{"blank key", serviceToken(t), vars(conv.ID, "JOB_COMPLETED", "x", ""), "BAD_USER_INPUT", "idempotencyKey"},
				{"unknown event", serviceToken(t), vars(conv.ID, "JOB_EXPLODED", "x", "k"), "BAD_USER_INPUT", "JOB_EXPLODED"},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					e.do(t, tc.token, jePostJobEvent, tc.vars).fails(t, tc.code, tc.want)
					e.apiUnchanged(t, conv.ID, before, ana, ben)
				})
			}
		})
	})
}

func TestCloseReopenConversation(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		if s := e.jeStatusAs(t, ana, conv.ID); s.Status != "OPEN" || s.ClosedAt != "" {
			t.Fatalf("a new conversation: %+v", s)
		}

		start := time.Now().Add(-time.Second)
		closed := e.jeSetStatus(t, conv.ID, true, "Job completed")
		if closed.Status != "CLOSED" || closed.ClosedAt == "" {
			t.Fatalf("closeConversation: %+v", closed)
		}
		at, err := time.Parse(time.RFC3339Nano, closed.ClosedAt)
		if err != nil || at.Before(start) || at.After(time.Now().Add(time.Second)) {
			t.Fatalf("closedAt %q (err %v) is not now", closed.ClosedAt, err)
		}
		if s := e.jeStatusAs(t, ben, conv.ID); s.Status != "CLOSED" || s.ClosedAt != closed.ClosedAt {
			t.Fatalf("ben sees %+v, want %+v", s, closed)
		}
		stored, err := db.SelectConversation(context.Background(), e.app.db, conv.ID)
		if err != nil || stored.CloseReason == nil || *stored.CloseReason != "Job completed" {
			t.Fatalf("stored close reason: %v (err %v)", stored.CloseReason, err)
		}

		// Closing again changes nothing: the first close's time and reason
		// stay.
		time.Sleep(10 * time.Millisecond)
		if again := e.jeSetStatus(t, conv.ID, true, nil); again != closed {
			t.Fatalf("second close: %+v, want %+v", again, closed)
		}
		if stored, err := db.SelectConversation(context.Background(), e.app.db, conv.ID); err != nil || *stored.CloseReason != "Job completed" {
			t.Fatalf("second close changed the reason: %v (err %v)", stored.CloseReason, err)
		}

		reopened := e.jeSetStatus(t, conv.ID, false, nil)
		if reopened.Status != "OPEN" || reopened.ClosedAt != "" {
			t.Fatalf("reopenConversation: %+v", reopened)
		}
		if again := e.jeSetStatus(t, conv.ID, false, nil); again != reopened {
			t.Fatalf("second reopen: %+v, want %+v", again, reopened)
		}
		if s := e.jeStatusAs(t, ana, conv.ID); s.Status != "OPEN" || s.ClosedAt != "" {
			t.Fatalf("ana sees %+v after the reopen", s)
		}
		if stored, err := db.SelectConversation(context.Background(), e.app.db, conv.ID); err != nil || stored.CloseReason != nil {
			t.Fatalf("reopen kept the reason: %v (err %v)", stored.CloseReason, err)
		}
		// A close without a reason, after a reopen, is a new close.
		if c := e.jeSetStatus(t, conv.ID, true, nil); c.Status != "CLOSED" || c.ClosedAt == "" || c.ClosedAt == closed.ClosedAt {
			t.Fatalf("close after reopen: %+v", c)
		}

		before := e.apiSnapshot(t, conv.ID, ana, ben)
		statusBefore := e.jeStatusAs(t, ana, conv.ID)
		missing := db.NewID()
		cases := []struct {
			name, token, query string
			vars               map[string]any
			code, want         string
		}{
			{"user close", ana, jeClose, map[string]any{"c": conv.ID}, "FORBIDDEN", "closeConversation"},
			{"user reopen", ben, jeReopen, map[string]any{"c": conv.ID}, "FORBIDDEN", "reopenConversation"},
			{"close unknown", serviceToken(t), jeClose, map[string]any{"c": missing}, "NOT_FOUND", missing},
			{"reopen unknown", serviceToken(t), jeReopen, map[string]any{"c": missing}, "NOT_FOUND", missing},
			{"reason over the limit", serviceToken(t), jeClose, map[string]any{"c": conv.ID, "reason": strings.Repeat("r", 501)}, "BAD_USER_INPUT", "reason"},
			{"blank id", serviceToken(t), jeReopen, map[string]any{"c": " "}, "BAD_USER_INPUT", "conversationId"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e.do(t, tc.token, tc.query, tc.vars).fails(t, tc.code, tc.want)
				e.apiUnchanged(t, conv.ID, before, ana, ben)
				if s := e.jeStatusAs(t, ana, conv.ID); s != statusBefore {
					t.Fatalf("status changed by a refused call: %+v, was %+v", s, statusBefore)
				}
			})
		}
	})
}

func TestClosedConversationIsReadOnly(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		mallory := userToken(t, "mallory", "Mallory")
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		var first struct {
			M message `json:"sendMessage"`
		}
		e.do(t, ana, sendMessage, jeSend("cm-1", conv.ID, "see you at 9")).ok(t, &first)
		e.jeSetStatus(t, conv.ID, true, "Job completed")
		before := e.apiSnapshot(t, conv.ID, ana, ben)

		refusedHTTP := []struct {
			name, token string
			vars        map[string]any
		}{
			{"text", ana, jeSend("", conv.ID, "one more thing")},
			{"new clientMessageId", ben, jeSend("cm-2", conv.ID, "thanks")},
			{"location", ben, map[string]any{"input": map[string]any{"conversationId": conv.ID, "messageType": "LOCATION",
				"location": map[string]any{"latitude": 1.5, "longitude": 2.5}}}},
		}
		for _, tc := range refusedHTTP {
			t.Run("http/"+tc.name, func(t *testing.T) {
				e.do(t, tc.token, sendMessage, tc.vars).fails(t, "FAILED_PRECONDITION", "conversation \""+conv.ID+"\" is closed: it is read-only now")
				e.apiUnchanged(t, conv.ID, before, ana, ben)
			})
		}
		for _, proto := range []string{"graphql-transport-ws", "graphql-ws"} {
			t.Run("websocket/"+proto, func(t *testing.T) {
				ws := e.dial(t, proto, map[string]any{"authorization": "Bearer " + ana})
				errs := apiOperationError(t, ws, ws.subscribe(sendMessage, jeSend("cm-ws", conv.ID, "over the socket")))
				if apiCode(errs[0]) != "FAILED_PRECONDITION" || !strings.Contains(errs[0].Message, "is closed") {
					t.Fatalf("sendMessage over %s: %+v", proto, errs)
				}
				e.apiUnchanged(t, conv.ID, before, ana, ben)
				// The socket stays usable: a retry of a stored message is
				// still answered on it.
				id := ws.subscribe(sendMessage, jeSend("cm-1", conv.ID, "see you at 9"))
				m := ws.next()
				var p struct {
					Data struct {
						M message `json:"sendMessage"`
					} `json:"data"`
					Errors []gqlError `json:"errors"`
				}
				if err := json.Unmarshal(m.Payload, &p); err != nil || m.ID != id || len(p.Errors) > 0 || p.Data.M.ID != first.M.ID {
					t.Fatalf("retry over %s: %+v (%s)", proto, m, m.Payload)
				}
			})
		}

		t.Run("retry of a stored message", func(t *testing.T) {
			var retry struct {
				M message `json:"sendMessage"`
			}
			e.do(t, ana, sendMessage, jeSend("cm-1", conv.ID, "see you at 9")).ok(t, &retry)
			if retry.M.ID != first.M.ID || retry.M.Seq != first.M.Seq {
				t.Fatalf("retry returned %+v, want %+v", retry.M, first.M)
			}
			e.apiUnchanged(t, conv.ID, before, ana, ben)
		})

		t.Run("strangers learn nothing", func(t *testing.T) {
			missing := db.NewID()
			real := e.do(t, mallory, sendMessage, jeSend("", conv.ID, "hi"))
			absent := e.do(t, mallory, sendMessage, jeSend("", missing, "hi"))
			real.fails(t, "NOT_FOUND", conv.ID)
			absent.fails(t, "NOT_FOUND", missing)
			apiSameError(t, real.Errors[0], conv.ID, absent.Errors[0], missing)
			e.do(t, mallory, sendMessage, jeSend("cm-m", conv.ID, "hi")).fails(t, "NOT_FOUND", conv.ID)
		})

		t.Run("reading and markRead", func(t *testing.T) {
			if hist := e.jeHistory(t, ben, conv.ID); len(hist) != 2 || hist[1].ID != first.M.ID {
				t.Fatalf("ben's history: %+v", hist)
			}
			var read struct {
				M jeStatus `json:"markRead"`
			}
			e.do(t, ben, `mutation($c: ID!) { markRead(conversationId: $c) { `+jeStatusFields+` } }`, map[string]any{"c": conv.ID}).ok(t, &read)
			if read.M.UnreadCount != 0 || read.M.Status != "CLOSED" {
				t.Fatalf("markRead on a closed conversation: %+v", read.M)
			}
			var inbox struct {
				Conversations apiConversationPage `json:"conversations"`
			}
			e.do(t, ben, `{ conversations { edges { node { id } } } }`, nil).ok(t, &inbox)
			if got := inbox.Conversations.ids(); len(got) != 1 || got[0] != conv.ID {
				t.Fatalf("ben's inbox: %v", got)
			}
		})

		t.Run("the job-service still posts", func(t *testing.T) {
			done := e.jePostJobEvent(t, conv.ID, "PAYMENT_RELEASED", "Payment released.", "paid")
			note := e.jePostSystem(t, conv.ID, "Please rate each other.", "rate")
			if done.Seq != 3 || note.Seq != 4 {
				t.Fatalf("posts to a closed conversation: %+v %+v", done, note)
			}
			if s := e.jeStatusAs(t, ana, conv.ID); s.Status != "CLOSED" || s.LastSeq != 4 || s.UnreadCount != 2 {
				t.Fatalf("ana after the posts: %+v", s)
			}
		})

		t.Run("createConversationForJob does not reopen", func(t *testing.T) {
			again := e.apiOpen(t, map[string]any{
				"jobId": "job-1", "jobTitle": "A new title",
				"client":        map[string]any{"id": "ana", "displayName": "Ana Maria"},
				"worker":        map[string]any{"id": "ben", "displayName": "Name ben"},
				"systemMessage": "Chat is now active.",
			})
			if again.ID != conv.ID || again.Job.Title != "A new title" || again.Client.DisplayName != "Ana Maria" {
				t.Fatalf("refresh of a closed conversation: %+v", again)
			}
			s := e.jeStatusAs(t, ben, conv.ID)
			if s.Status != "CLOSED" || s.ClosedAt == "" || s.Job.Title != "A new title" {
				t.Fatalf("after createConversationForJob: %+v", s)
			}
			e.do(t, ben, sendMessage, jeSend("", conv.ID, "still closed?")).fails(t, "FAILED_PRECONDITION", "is closed")
		})

		t.Run("reopened", func(t *testing.T) {
			e.jeSetStatus(t, conv.ID, false, nil)
			// cm-2 was refused while closed, so it is new now.
			var sent struct {
				M message `json:"sendMessage"`
			}
			e.do(t, ben, sendMessage, jeSend("cm-2", conv.ID, "thanks")).ok(t, &sent)
			if sent.M.Seq != 5 || sent.M.MessageText != "thanks" {
				t.Fatalf("send after the reopen: %+v", sent.M)
			}
		})
	})
}
