package main

import (
	"strings"
	"testing"
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
