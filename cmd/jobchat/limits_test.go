package main

import (
	"strings"
	"testing"

	"github.com/jobchat/jobchat/db/dbtest"
)

func TestComplexityLimit(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana := userToken(t, "ana", "Ana")
		e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")

		// What an inbox screen asks for, message previews included, passes.
		inbox := `{ conversations(first: 20) { edges { cursor node {
  id job { id title } client { id displayName avatarUrl } worker { id displayName avatarUrl }
  myRole otherParticipant { id displayName avatarUrl } lastMessageAt unreadCount lastSeq createdAt updatedAt
  lastMessage { ` + messageFields + ` sender { id displayName } }
  messages(last: 3) { edges { node { ` + messageFields + ` } } }
} } pageInfo { hasNextPage endCursor } } unreadTotal }`
		e.do(t, ana, inbox, nil).ok(t, nil)
		// So does a full page of history.
		e.do(t, ana, `{ conversations(first: 1) { edges { node { messages(last: 100) { edges { cursor node { `+messageFields+` sender { id displayName avatarUrl } location { latitude longitude label } attachment { url fileName mimeType sizeBytes } } } } } } } }`, nil).ok(t, nil)

		// Pages inside pages are refused before they run.
		r := e.do(t, ana, `{ conversations(first: 100) { edges { node { messages(last: 100) { edges { node { id messageText } } } } } } }`, nil)
		if r.code() != "COMPLEXITY_LIMIT_EXCEEDED" || !strings.Contains(r.Errors[0].Message, "exceeds the limit of 5000") {
			t.Fatalf("nested pages: want COMPLEXITY_LIMIT_EXCEEDED, got %+v", r.Errors)
		}
	})
}

func TestSendRateLimit(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			// One message a minute after a burst of 3: the fourth send in a
			// row is refused however slow the machine running the test.
			e := newEnv(t, dialect, map[string]string{"JOBCHAT_SEND_RATE": "0.0167", "JOBCHAT_SEND_BURST": "3"})
			ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
			conv := e.openJob(t, "job-1", "ana", "ben", "")
			send := func(token, clientID string) gqlResponse {
				return e.do(t, token, sendMessage, map[string]any{"input": map[string]any{
					"conversationId": conv.ID, "messageText": "hi", "clientMessageId": clientID}})
			}
			for i := range 3 {
				send(ana, "a"+string(rune('0'+i))).ok(t, nil)
			}
			r := send(ana, "a3")
			r.fails(t, "RATE_LIMITED", "sending too fast")
			if ms, _ := r.Errors[0].Extensions["retryAfterMs"].(float64); ms <= 0 {
				t.Fatalf("retryAfterMs = %v, want > 0", r.Errors[0].Extensions["retryAfterMs"])
			}
			// A retry of a stored message is not a new send.
			send(ana, "a0").ok(t, nil)
			// Others have their own budget.
			send(ben, "b0").ok(t, nil)

			var out struct {
				Conversation struct {
					LastSeq int `json:"lastSeq"`
				} `json:"conversation"`
			}
			e.do(t, ben, `query($c: ID!) { conversation(id: $c) { lastSeq } }`, map[string]any{"c": conv.ID}).ok(t, &out)
			if out.Conversation.LastSeq != 4 {
				t.Fatalf("lastSeq %d, want 4 (3 from ana, 1 from ben; the refused send wrote nothing)", out.Conversation.LastSeq)
			}
		})
	}
}
