package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Helpers of api_test.go. Every name starts with "api" so that it cannot
// clash with the helpers of the other test files of this package.

// apiConversationFields is what api tests read of a Conversation.
const apiConversationFields = `id job { id title } client { id displayName avatarUrl } worker { id displayName avatarUrl }
  myRole otherParticipant { id } lastSeq unreadCount myLastReadSeq`

type apiPageInfo struct {
	HasNextPage     bool    `json:"hasNextPage"`
	HasPreviousPage bool    `json:"hasPreviousPage"`
	StartCursor     *string `json:"startCursor"`
	EndCursor       *string `json:"endCursor"`
}

type apiMessagePage struct {
	Edges []struct {
		Cursor string  `json:"cursor"`
		Node   message `json:"node"`
	} `json:"edges"`
	PageInfo apiPageInfo `json:"pageInfo"`
}

// seqs lists the page's seqs in order.
func (p apiMessagePage) seqs() []int {
	out := []int{}
	for _, e := range p.Edges {
		out = append(out, e.Node.Seq)
	}
	return out
}

type apiConversationPage struct {
	Edges []struct {
		Cursor string       `json:"cursor"`
		Node   conversation `json:"node"`
	} `json:"edges"`
	PageInfo apiPageInfo `json:"pageInfo"`
}

// ids lists the page's conversation ids in order.
func (p apiConversationPage) ids() []string {
	out := []string{}
	for _, e := range p.Edges {
		out = append(out, e.Node.ID)
	}
	return out
}

const apiPageInfoFields = `pageInfo { hasNextPage hasPreviousPage startCursor endCursor }`

// apiConversationAs reads conversation id as token's caller.
func (e *env) apiConversationAs(tb testing.TB, token, id string) conversation {
	tb.Helper()
	var out struct {
		Conversation *conversation `json:"conversation"`
	}
	e.do(tb, token, `query($id: ID!) { conversation(id: $id) { `+apiConversationFields+` } }`, map[string]any{"id": id}).ok(tb, &out)
	if out.Conversation == nil {
		tb.Fatalf("conversation %s is null", id)
	}
	return *out.Conversation
}

// apiOpen has the job-service open (or reopen) a conversation with input.
func (e *env) apiOpen(tb testing.TB, input map[string]any) conversation {
	tb.Helper()
	var out struct {
		Conv conversation `json:"createConversationForJob"`
	}
	e.do(tb, serviceToken(tb), `mutation($input: CreateConversationInput!) { createConversationForJob(input: $input) { `+apiConversationFields+` } }`,
		map[string]any{"input": input}).ok(tb, &out)
	return out.Conv
}

// apiSnapshot describes everything a rejected operation must leave alone in
// a conversation: its lastSeq and full history as the job-service sees it,
// and, for each user token given, that user's read pointer and unread count.
func (e *env) apiSnapshot(tb testing.TB, conversationID string, tokens ...string) string {
	tb.Helper()
	var out struct {
		Conversation struct {
			LastSeq int `json:"lastSeq"`
		} `json:"conversation"`
		Messages apiMessagePage `json:"messages"`
	}
	e.do(tb, serviceToken(tb), `query($c: ID!) {
  conversation(id: $c) { lastSeq }
  messages(conversationId: $c, first: 100) { edges { cursor node { `+messageFields+` } } `+apiPageInfoFields+` }
}`, map[string]any{"c": conversationID}).ok(tb, &out)
	if out.Messages.PageInfo.HasNextPage {
		tb.Fatalf("apiSnapshot: conversation %s has more than 100 messages", conversationID)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "lastSeq=%d\n", out.Conversation.LastSeq)
	for _, edge := range out.Messages.Edges {
		m := edge.Node
		fmt.Fprintf(&b, "%d %s %s %q read=%v\n", m.Seq, m.ID, m.MessageType, m.MessageText, m.IsRead)
	}
	for _, tok := range tokens {
		c := e.apiConversationAs(tb, tok, conversationID)
		fmt.Fprintf(&b, "role=%v readSeq=%v unread=%d\n", apiDeref(c.MyRole), apiDeref(c.MyLastReadSeq), c.UnreadCount)
	}
	return b.String()
}

func apiDeref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// apiUnchanged fails unless conversationID still looks like before.
func (e *env) apiUnchanged(tb testing.TB, conversationID, before string, tokens ...string) {
	tb.Helper()
	if after := e.apiSnapshot(tb, conversationID, tokens...); after != before {
		tb.Fatalf("conversation changed by a rejected operation:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// apiFailsOn checks that r failed with code on the field path: the message
// starts with "field: " and extensions.field names it.
func apiFailsOn(tb testing.TB, r gqlResponse, code, field string) {
	tb.Helper()
	r.fails(tb, code, field)
	if !strings.HasPrefix(r.Errors[0].Message, field+": ") {
		tb.Fatalf("message %q does not start with %q", r.Errors[0].Message, field+": ")
	}
	if got := r.Errors[0].Extensions["field"]; got != field {
		tb.Fatalf("extensions.field = %v, want %q (%+v)", got, field, r.Errors[0])
	}
}

// apiDial is env.dial with headers on the upgrade request; initPayload nil
// sends a connection_init without payload.
func (e *env) apiDial(tb testing.TB, proto string, header http.Header, initPayload map[string]any) *wsClient {
	tb.Helper()
	c := &wsClient{tb: tb, conn: e.dialRaw(tb, proto, header), proto: proto}
	init := wsMessage{Type: "connection_init"}
	if initPayload != nil {
		init.Payload = mustJSON(tb, initPayload)
	}
	c.send(init)
	if m := c.next(); m.Type != "connection_ack" {
		tb.Fatalf("want connection_ack, got %+v (%s)", m, m.Payload)
	}
	return c
}

// apiInitRefused sends connection_init and returns the close frame the
// server ends the socket with; it fails if the server acknowledges instead.
func (e *env) apiInitRefused(tb testing.TB, proto string, header http.Header, initPayload map[string]any) *websocket.CloseError {
	tb.Helper()
	conn := e.dialRaw(tb, proto, header)
	init := wsMessage{Type: "connection_init"}
	if initPayload != nil {
		init.Payload = mustJSON(tb, initPayload)
	}
	if err := conn.WriteJSON(init); err != nil {
		tb.Fatalf("write connection_init: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for range 20 {
		_ = conn.SetReadDeadline(deadline)
		var m wsMessage
		err := conn.ReadJSON(&m)
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce
		}
		if err != nil {
			tb.Fatalf("want a close frame, got read error %v", err)
		}
		if m.Type == "connection_ack" {
			tb.Fatalf("connection_init was acknowledged; want it refused")
		}
		// The legacy protocol says why in a connection_error first.
	}
	tb.Fatalf("no close frame after 20 messages")
	return nil
}

// apiOperationError reads the next message of operation id and returns its
// GraphQL errors, whether gqlgen sent them as an "error" message (payload: a
// list of errors) or as a result ("next", or legacy "data") with errors and
// null data, which is what gqlgen does for an error from the subscription
// resolver, followed by "complete". Call it before subscribing again.
func apiOperationError(tb testing.TB, c *wsClient, id string) []gqlError {
	tb.Helper()
	m := c.next()
	if m.ID != id {
		tb.Fatalf("want a message for operation %s, got %+v (%s)", id, m, m.Payload)
	}
	var errs []gqlError
	switch m.Type {
	case "error":
		if err := json.Unmarshal(m.Payload, &errs); err != nil {
			var one gqlError
			if err := json.Unmarshal(m.Payload, &one); err != nil {
				tb.Fatalf("decode error payload %s: %v", m.Payload, err)
			}
			errs = []gqlError{one}
		}
	case "next", "data":
		var p struct {
			Data   json.RawMessage `json:"data"`
			Errors []gqlError      `json:"errors"`
		}
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			tb.Fatalf("decode %s payload %s: %v", m.Type, m.Payload, err)
		}
		if len(p.Data) > 0 && string(p.Data) != "null" {
			tb.Fatalf("operation %s delivered data %s; want only errors", id, p.Data)
		}
		errs = p.Errors
	default:
		tb.Fatalf("want an error for operation %s, got %+v (%s)", id, m, m.Payload)
	}
	if len(errs) == 0 {
		tb.Fatalf("operation %s: %s message without errors: %s", id, m.Type, m.Payload)
	}
	// A failed result ends the operation, so the client must be told it is
	// complete; an "error" message is final by itself.
	if m.Type != "error" {
		if end := c.next(); end.Type != "complete" || end.ID != id {
			tb.Fatalf("want complete for failed operation %s, got %+v (%s)", id, end, end.Payload)
		}
	}
	return errs
}

// apiCode is an error's extensions.code.
func apiCode(e gqlError) string {
	s, _ := e.Extensions["code"].(string)
	return s
}

const apiSubscription = `subscription($c: ID!, $after: Int) { messageAdded(conversationId: $c, afterSeq: $after) { ` + messageFields + ` } }`
