package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jobchat/jobchat/internal/auth"
	"github.com/jobchat/jobchat/internal/ssetest"
)

// Subscriptions over Server-Sent Events (distinct connections mode of the
// GraphQL over SSE protocol) against the real app. Helpers start with "sse".

const sseSubscription = `subscription($c: ID!, $after: Int) { messageAdded(conversationId: $c, afterSeq: $after) { seq messageText messageType } }`

// sseEvent is one event of a stream; keep-alive comments have Type ":".
type sseEvent = ssetest.Event

// sseStream reads an event stream on a goroutine of its own.
type sseStream struct {
	tb     testing.TB
	body   io.ReadCloser
	events chan sseEvent
	ended  chan error // the read error that ended the stream; io.EOF when clean
	cancel context.CancelFunc
}

// sseOpen asks for an event stream over method (POST or GET) as the caller
// with authorization ("" for none). It returns the stream, or nil with the
// status and body of a refusal.
func sseOpen(tb testing.TB, base, method, authorization, query string, vars map[string]any) (*sseStream, int, string) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	target := base + "/query"
	var body io.Reader
	if method == http.MethodPost {
		body = bytes.NewReader(mustJSON(tb, map[string]any{"query": query, "variables": vars}))
	} else {
		target += "?" + url.Values{"query": {query}, "variables": {string(mustJSON(tb, vars))}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	// Without keep-alives, closing the stream closes its connection, and
	// the server sees the client leave.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		tb.Fatalf("%s /query: %v", method, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		defer cancel()
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return nil, resp.StatusCode, string(b)
	}
	s := &sseStream{tb: tb, body: resp.Body, events: make(chan sseEvent, 256), ended: make(chan error, 1), cancel: cancel}
	tb.Cleanup(s.close)
	go s.read()
	return s, resp.StatusCode, ""
}

func (s *sseStream) read() {
	s.ended <- ssetest.Read(s.body, s.events)
}

// close hangs up, as a client that goes away does.
func (s *sseStream) close() {
	s.cancel()
	_ = s.body.Close()
}

// next returns the next event, keep-alive comments included.
func (s *sseStream) next() sseEvent {
	s.tb.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			s.tb.Fatalf("stream ended: %v", <-s.ended)
		}
		return ev
	case <-time.After(10 * time.Second):
		s.tb.Fatal("no event within 10s")
	}
	return sseEvent{}
}

// nextResult returns the next "next" event's payload, skipping comments.
func (s *sseStream) nextResult() gqlResponse {
	s.tb.Helper()
	for {
		ev := s.next()
		if ev.Type == ":" {
			continue
		}
		if ev.Type != "next" {
			s.tb.Fatalf("want a next event, got %+v", ev)
		}
		var r gqlResponse
		if err := json.Unmarshal([]byte(ev.Data), &r); err != nil {
			s.tb.Fatalf("decode event %q: %v", ev.Data, err)
		}
		return r
	}
}

// nextMessage returns the next messageAdded.
func (s *sseStream) nextMessage() message {
	s.tb.Helper()
	var out struct {
		Msg message `json:"messageAdded"`
	}
	s.nextResult().ok(s.tb, &out)
	return out.Msg
}

// end waits for the server to end the stream cleanly and reports whether
// it sent "complete" first.
func (s *sseStream) end() (completed bool) {
	s.tb.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				if err := <-s.ended; !errors.Is(err, io.EOF) {
					s.tb.Fatalf("stream ended with %v, want a clean end", err)
				}
				return completed
			}
			switch ev.Type {
			case ":":
			case "complete":
				completed = true
			default:
				s.tb.Fatalf("unexpected event before the end: %+v", ev)
			}
		case <-timeout:
			s.tb.Fatal("stream still open after 10s")
		}
	}
}

// TestSSEMessageAdded: messageAdded over SSE, by POST and by GET, replays
// the history after afterSeq and then delivers live messages.
func TestSSEMessageAdded(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-sse", "ana", "ben", "Chat is now active.")
		for i, method := range []string{http.MethodPost, http.MethodGet} {
			t.Run(method, func(t *testing.T) {
				s, status, body := sseOpen(t, e.url, method, "Bearer "+ana, sseSubscription, map[string]any{"c": conv.ID, "after": i})
				if s == nil {
					t.Fatalf("refused: %d %s", status, body)
				}
				// History first: the one stored message after seq i (the
				// system message, then the POST round's live one).
				if m := s.nextMessage(); m.Seq != i+1 {
					t.Fatalf("first message %+v, want seq %d", m, i+1)
				}
				sent := e.sendText(t, ben, conv.ID, "live over SSE "+method)
				if m := s.nextMessage(); m.Seq != sent.Seq || m.MessageText != "live over SSE "+method {
					t.Fatalf("live message %+v, want %+v", m, sent)
				}
			})
		}
	})
}

// TestSSEErrors: errors of the operation come as a next event with the
// error's code, then complete; the HTTP status stays 200, as the protocol
// asks.
func TestSSEErrors(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		conv := e.openJob(t, "job-sse-err", "ana", "ben", "")
		carol := userToken(t, "carol", "Carol")
		tests := []struct {
			name, authorization, query, wantCode string
			vars                                 map[string]any
		}{
			{"not a participant", "Bearer " + carol, sseSubscription, "NOT_FOUND", map[string]any{"c": conv.ID}},
			{"no such conversation", "Bearer " + carol, sseSubscription, "NOT_FOUND", map[string]any{"c": "nope"}},
			{"no token", "", sseSubscription, "UNAUTHENTICATED", map[string]any{"c": conv.ID}},
			{"bad token", "Bearer x" + carol, sseSubscription, "UNAUTHENTICATED", map[string]any{"c": conv.ID}},
			{"unknown field", "Bearer " + carol, `subscription { nope }`, "GRAPHQL_VALIDATION_FAILED", nil},
			{"bad variable", "Bearer " + carol, sseSubscription, "BAD_USER_INPUT", map[string]any{"c": conv.ID, "after": "x"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s, status, body := sseOpen(t, e.url, http.MethodPost, tt.authorization, tt.query, tt.vars)
				if s == nil {
					t.Fatalf("refused: %d %s", status, body)
				}
				r := s.nextResult()
				if r.code() != tt.wantCode {
					t.Fatalf("errors %+v, want code %s", r.Errors, tt.wantCode)
				}
				if !s.end() {
					t.Error("stream ended without complete")
				}
			})
		}
	})
}

// TestSSETokenExpiry: a stream ends when the token that opened it expires,
// with an UNAUTHENTICATED error and complete, as a websocket closes then.
func TestSSETokenExpiry(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		conv := e.openJob(t, "job-sse-exp", "ana", "ben", "Chat is now active.")
		// JWT expiry has whole seconds: this one ends within 1-2s.
		tok, err := auth.Issue([]byte(testSecret), auth.Caller{ID: "ana", Name: "Ana"}, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		s, status, body := sseOpen(t, e.url, http.MethodPost, "Bearer "+tok, sseSubscription, map[string]any{"c": conv.ID, "after": 0})
		if s == nil {
			t.Fatalf("refused: %d %s", status, body)
		}
		if m := s.nextMessage(); m.Seq != 1 {
			t.Fatalf("first message %+v", m)
		}
		r := s.nextResult()
		if r.code() != "UNAUTHENTICATED" || !strings.Contains(r.Errors[0].Message, "token expired") {
			t.Fatalf("last event %+v, want UNAUTHENTICATED token expired", r.Errors)
		}
		if !s.end() {
			t.Error("expired stream ended without complete")
		}
	})
}

// TestSSELimitsAndDisconnect: keep-alive comments on an idle stream, the
// per-caller cap (JOBCHAT_SSE_MAX_PER_CALLER), and a client that hangs up
// releasing its hub subscription and its slot.
func TestSSELimitsAndDisconnect(t *testing.T) {
	e := newEnv(t, "sqlite", map[string]string{
		"JOBCHAT_SSE_KEEPALIVE":      "50ms",
		"JOBCHAT_SSE_MAX_PER_CALLER": "1",
	})
	ana := "Bearer " + userToken(t, "ana", "Ana")
	conv := e.openJob(t, "job-sse-lim", "ana", "ben", "")

	s, status, body := sseOpen(t, e.url, http.MethodPost, ana, sseSubscription, map[string]any{"c": conv.ID})
	if s == nil {
		t.Fatalf("refused: %d %s", status, body)
	}
	for range 2 {
		if ev := s.next(); ev.Type != ":" {
			t.Fatalf("want a keep-alive comment on an idle stream, got %+v", ev)
		}
	}
	if subs := e.app.hub.Stats().Subscribers; subs != 1 {
		t.Fatalf("hub subscribers = %d, want 1", subs)
	}
	if again, status, _ := sseOpen(t, e.url, http.MethodPost, ana, sseSubscription, map[string]any{"c": conv.ID}); again != nil || status != http.StatusTooManyRequests {
		t.Fatalf("second stream of one caller: %d, want 429", status)
	}
	// Another caller has slots of its own.
	ben, status, _ := sseOpen(t, e.url, http.MethodPost, "Bearer "+userToken(t, "ben", "Ben"), sseSubscription, map[string]any{"c": conv.ID})
	if ben == nil {
		t.Fatalf("ben's stream: %d", status)
	}
	ben.close()

	s.close()
	for deadline := time.Now().Add(10 * time.Second); e.app.hub.Stats().Subscribers != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("hub still has %d subscribers 10s after the clients left", e.app.hub.Stats().Subscribers)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if again, status, body := sseOpen(t, e.url, http.MethodPost, ana, sseSubscription, map[string]any{"c": conv.ID}); again == nil {
		t.Fatalf("stream after the first closed: %d %s, want its slot back", status, body)
	}
}

// TestSSEShutdown runs `jobchat serve` and stops it with a stream open: the
// stream ends cleanly, without complete so that the client reconnects, and
// the server stops well within its shutdown timeout.
func TestSSEShutdown(t *testing.T) {
	srv := mainServe(t, []string{"serve", "--addr", "127.0.0.1:0"}, map[string]string{
		"JOBCHAT_DATA_DIR":         t.TempDir(),
		"JOBCHAT_JWT_SECRET":       testSecret,
		"JOBCHAT_SHUTDOWN_TIMEOUT": "10s",
		"JOBCHAT_LOG_FORMAT":       "json",
	})
	e := &env{url: srv.base}
	conv := e.openJob(t, "job-sse-stop", "ana", "ben", "Chat is now active.")
	s, status, body := sseOpen(t, e.url, http.MethodPost, "Bearer "+userToken(t, "ana", "Ana"), sseSubscription, map[string]any{"c": conv.ID, "after": 0})
	if s == nil {
		t.Fatalf("refused: %d %s", status, body)
	}
	if m := s.nextMessage(); m.Seq != 1 {
		t.Fatalf("first message %+v", m)
	}

	start := time.Now()
	srv.stop(t)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %v with a stream open; it should not wait for the timeout", d)
	}
	if s.end() {
		t.Error("stream completed on shutdown; the client would not reconnect")
	}
}
