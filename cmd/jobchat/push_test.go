package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jobchat/jobchat/internal/auth"
)

// Pushed subscriptions (messageAdded over a websocket, encoded by
// resolvers' own encoder, once per selection set) must be indistinguishable
// from the executor's: the same bytes for the same selection. SSE runs
// subscriptions through gqlgen's executor, so the test holds the two side by
// side for selections that use every Message field, aliases, fragments and
// directives, on replayed and live messages of every type.

// pushSelections are messageAdded selections; each runs with $c, $after
// and $inc.
var pushSelections = []struct {
	name, selection, fragments string
}{
	{"plain fields", `messageAdded(conversationId: $c, afterSeq: $after) { __typename ` + messageFields + ` }`, ""},
	{"aliases and objects", `m: messageAdded(conversationId: $c, afterSeq: $after) {
		a: id t: __typename seq
		sender { __typename id displayName avatarUrl }
		location { latitude longitude label __typename }
		attachment { url fileName mimeType sizeBytes __typename }
		text: messageText }`, ""},
	{"fragments", `messageAdded(conversationId: $c, afterSeq: $after) { ...M ... on Message { isRead } }`,
		`fragment M on Message { seq messageType sender { ...P } location { ...on Location { label } } }
		 fragment P on Profile { displayName id }`},
	{"directives", `messageAdded(conversationId: $c, afterSeq: $after) { seq messageText @include(if: $inc) senderName @skip(if: $inc) sender @include(if: $inc) { id } }`, ""},
}

func TestPushedMatchesExecutor(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		var opened struct {
			Conv conversation `json:"createConversationForJob"`
		}
		e.do(t, serviceToken(t), createConversation, map[string]any{"input": map[string]any{
			"jobId": "job-push", "jobTitle": "Paint the fence",
			"client":        map[string]any{"id": "ana", "displayName": "Ana \"the client\" <Ø>", "avatarUrl": "https://img.example/ana.png"},
			"worker":        map[string]any{"id": "ben", "displayName": "Ben"},
			"systemMessage": "Job accepted.\nSay hi!",
		}}).ok(t, &opened)
		conv := opened.Conv.ID

		type pair struct {
			ws  *wsClient
			id  string
			sse *sseStream
		}
		var subs []pair
		for _, sel := range pushSelections {
			query, vars := pushQuery(sel.selection, sel.fragments, conv)
			ws := e.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + ben})
			id := ws.subscribe(query, vars)
			sse, status, body := sseOpen(t, e.url, http.MethodPost, "Bearer "+ben, query, vars)
			if sse == nil {
				t.Fatalf("%s: SSE refused: %d %s", sel.name, status, body)
			}
			subs = append(subs, pair{ws, id, sse})
		}

		// The replayed system message first, then live ones of every kind.
		compare := func(n int) {
			t.Helper()
			for i, s := range subs {
				for range n {
					m := s.ws.next()
					if m.Type != "next" || m.ID != s.id {
						t.Fatalf("%s: websocket got %+v", pushSelections[i].name, m)
					}
					var ev sseEvent
					for ev = s.sse.next(); ev.Type == ":"; ev = s.sse.next() {
					}
					if ev.Type != "next" {
						t.Fatalf("%s: SSE got %+v", pushSelections[i].name, ev)
					}
					if !sameJSON(t, m.Payload, []byte(ev.Data)) {
						t.Fatalf("%s: pushed and executed results differ:\npushed:   %s\nexecuted: %s", pushSelections[i].name, m.Payload, ev.Data)
					}
					if strings.Contains(ev.Data, `"errors"`) {
						t.Fatalf("%s: result has errors: %s", pushSelections[i].name, ev.Data)
					}
				}
			}
		}
		compare(1)
		if st := e.app.resolver.FeedStats(); st.Feeds != 1 {
			t.Fatalf("feeds = %d: the websocket subscriptions were not pushed", st.Feeds)
		}

		label := "Gate \"B\"\t→"
		inputs := []map[string]any{
			{"conversationId": conv, "messageText": "hello <b>&amp; \u2028 ünïcode 🎉", "clientMessageId": "c-1"},
			{"conversationId": conv, "messageType": "LOCATION", "location": map[string]any{"latitude": 52.520008, "longitude": -0.000001, "label": label}},
			{"conversationId": conv, "messageType": "LOCATION", "location": map[string]any{"latitude": 1e-7, "longitude": 180}},
			{"conversationId": conv, "messageType": "IMAGE", "messageText": "look", "attachment": map[string]any{"url": "https://img.example/a.jpg", "fileName": "a.jpg", "mimeType": "image/jpeg", "sizeBytes": 123456}},
			{"conversationId": conv, "messageType": "FILE", "attachment": map[string]any{"url": "https://files.example/x"}},
		}
		// The executor reads isRead when it delivers, the pushed path at
		// commit: a send moves its sender's read pointer, so each sender's
		// messages are compared before the other one sends.
		e.do(t, ben, sendMessage, map[string]any{"input": inputs[0]}).ok(t, nil)
		compare(1)
		for _, in := range inputs[1:] {
			e.do(t, ana, sendMessage, map[string]any{"input": in}).ok(t, nil)
		}
		e.do(t, serviceToken(t), apiPostSystem, map[string]any{"c": conv, "text": "Job finished."}).ok(t, nil)
		compare(len(inputs))

		// Replays read isRead from the database on both paths: after Ben
		// reads, a fresh replay shows the change on both.
		e.do(t, ben, `mutation($c: ID!) { markRead(conversationId: $c) { id } }`, map[string]any{"c": conv}).ok(t, nil)
		subs = subs[:0]
		for _, sel := range pushSelections[:1] {
			query, vars := pushQuery(sel.selection, sel.fragments, conv)
			ws := e.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + ana})
			id := ws.subscribe(query, vars)
			sse, _, _ := sseOpen(t, e.url, http.MethodPost, "Bearer "+ana, query, vars)
			subs = append(subs, pair{ws, id, sse})
		}
		compare(len(inputs) + 2)
	})
}

// pushQuery makes a subscription document of a selection, declaring $inc
// only where it is used, as validation requires.
func pushQuery(selection, fragments, conv string) (string, map[string]any) {
	vars := map[string]any{"c": conv, "after": 0}
	decl := "$c: ID!, $after: Int"
	if strings.Contains(selection, "$inc") {
		decl += ", $inc: Boolean!"
		vars["inc"] = true
	}
	return fmt.Sprintf("subscription(%s) { %s } %s", decl, selection, fragments), vars
}

// sameJSON compares two JSON texts token by token: the same keys in the same
// order with the same values. encoding/json escapes <, > and & where
// gqlgen's marshalers do not; both are the same JSON.
func sameJSON(tb testing.TB, a, b []byte) bool {
	tb.Helper()
	ta, tb2 := jsonTokens(tb, a), jsonTokens(tb, b)
	if len(ta) != len(tb2) {
		return false
	}
	for i := range ta {
		if ta[i] != tb2[i] {
			return false
		}
	}
	return true
}

func jsonTokens(tb testing.TB, b []byte) []any {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out []any
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			tb.Fatalf("decode %s: %v", b, err)
		}
		out = append(out, tok)
	}
}

// TestWebsocketTokenExpiry: a socket authenticated with a token closes with
// 4403 when the token expires, and its pushed subscription is released.
func TestWebsocketTokenExpiry(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		conv := e.openJob(t, "job-exp", "ana", "ben", "hi")
		short, err := auth.Issue([]byte(testSecret), auth.Caller{ID: "ben", Name: "Ben"}, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ws := e.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + short})
		id := ws.subscribe(concSubscription, map[string]any{"c": conv.ID, "after": 0})
		if m := ws.nextMessage(id); m.Seq != 1 {
			t.Fatalf("first seq %d", m.Seq)
		}
		if n := e.app.resolver.FeedStats().Feeds; n != 1 {
			t.Fatalf("%d feeds while subscribed, want 1", n)
		}
		_ = ws.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		_, _, err = ws.conn.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4403 {
			t.Fatalf("read after expiry: %v, want close 4403", err)
		}
		for deadline := time.Now().Add(10 * time.Second); e.app.resolver.FeedStats().Feeds != 0; {
			if time.Now().After(deadline) {
				t.Fatal("the expired socket's subscription still holds its feed")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// TestPushedSubscriptionsReleased: sockets with pushed subscriptions, closed
// by the client politely or not, leave no goroutine and no feed behind.
func TestPushedSubscriptionsReleased(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ben := userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-rel", "ana", "ben", "hi")
		settle := func() int {
			runtime.GC()
			time.Sleep(20 * time.Millisecond)
			return runtime.NumGoroutine()
		}
		baseline := settle()
		for i := range 10 {
			ws := e.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + ben})
			id := ws.subscribe(concSubscription, map[string]any{"c": conv.ID, "after": 0})
			ws.nextMessage(id)
			if i%2 == 0 {
				_ = ws.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			}
			_ = ws.conn.Close()
		}
		deadline := time.Now().Add(10 * time.Second)
		for settle() > baseline || e.app.resolver.FeedStats().Feeds != 0 {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Fatalf("%d goroutines (baseline %d), %d feeds:\n%s", runtime.NumGoroutine(), baseline,
					e.app.resolver.FeedStats().Feeds, buf[:runtime.Stack(buf, true)])
			}
		}
	})
}
