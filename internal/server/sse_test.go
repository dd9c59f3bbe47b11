package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/internal/ssetest"
)

// sseEvent is one event of a text/event-stream; comment lines are events of
// type ":".
type sseEvent = ssetest.Event

// sseStream reads an event stream on its own goroutine, so that tests can
// wait for events with a timeout.
type sseStream struct {
	resp   *http.Response
	events chan sseEvent
	ended  chan error // receives the read error (io.EOF for a clean end)
	cancel context.CancelFunc
}

// openSSE sends a request asking for an event stream and, when it is
// accepted, starts reading it. Closing the stream (or the test's end)
// cancels the request.
func openSSE(tb testing.TB, method, rawURL, query string, header http.Header) (*sseStream, *http.Response, string) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var body io.Reader
	if method == http.MethodPost {
		b, _ := json.Marshal(map[string]any{"query": query})
		body = strings.NewReader(string(b))
	} else {
		rawURL += "?" + url.Values{"query": {query}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "text/event-stream")
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	// A transport of its own: closing it must close the connection, so the
	// server sees the client leave.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		tb.Fatalf("%s %s: %v", method, rawURL, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		defer cancel()
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return nil, resp, string(b)
	}
	s := &sseStream{resp: resp, events: make(chan sseEvent, 100), ended: make(chan error, 1), cancel: cancel}
	tb.Cleanup(s.close)
	go s.read()
	return s, resp, ""
}

func (s *sseStream) read() {
	s.ended <- ssetest.Read(s.resp.Body, s.events)
}

func (s *sseStream) close() {
	s.cancel()
	_ = s.resp.Body.Close()
}

// next returns the next event, comments included, failing after 5s.
func (s *sseStream) next(tb testing.TB) sseEvent {
	tb.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			tb.Fatalf("stream ended: %v", <-s.ended)
		}
		return ev
	case <-time.After(5 * time.Second):
		tb.Fatal("no event within 5s")
	}
	return sseEvent{}
}

// nextEvent skips keep-alive comments.
func (s *sseStream) nextEvent(tb testing.TB) sseEvent {
	tb.Helper()
	for {
		if ev := s.next(tb); ev.Type != ":" {
			return ev
		}
	}
}

// waitEnd waits for the server to end the stream and returns the events
// that came before the end.
func (s *sseStream) waitEnd(tb testing.TB) []sseEvent {
	tb.Helper()
	var evs []sseEvent
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				if err := <-s.ended; !errors.Is(err, io.EOF) {
					tb.Fatalf("stream ended with %v, want a clean end", err)
				}
				return evs
			}
			if ev.Type != ":" {
				evs = append(evs, ev)
			}
		case <-timeout:
			tb.Fatalf("stream still open after 5s; events so far %+v", evs)
		}
	}
}

func decodeEvent(tb testing.TB, ev sseEvent) gqlResponse {
	tb.Helper()
	if ev.Type != "next" {
		tb.Fatalf("want a next event, got %+v", ev)
	}
	return decodeGQL(tb, ev.Data)
}

// sseCallerConfig reads the test caller from the X-Test-Caller header, through the
// Authenticate hook, as jobchat's auth middleware does from the token.
func sseCallerConfig(expiresIn time.Duration) (func(http.Handler) http.Handler, func(context.Context) (string, time.Time)) {
	auth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := context.WithValue(r.Context(), callerKey{}, r.Header.Get("X-Test-Caller"))
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
	caller := func(ctx context.Context) (string, time.Time) {
		id, _ := ctx.Value(callerKey{}).(string)
		if expiresIn == 0 {
			return id, time.Time{}
		}
		return id, time.Now().Add(expiresIn)
	}
	return auth, caller
}

func callerHeader(id string) http.Header { return http.Header{"X-Test-Caller": {id}} }

// TestSSESubscription: a POST or GET asking for text/event-stream gets a
// stream of next events, flushed as they happen.
func TestSSESubscription(t *testing.T) {
	srv := newTestServer(t, Config{})
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		t.Run(method, func(t *testing.T) {
			s, resp, body := openSSE(t, method, srv.URL+"/query", `subscription { ticks }`, nil)
			if s == nil {
				t.Fatalf("not a stream: %d %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			for want := 1; want <= 3; want++ {
				got := decodeEvent(t, s.nextEvent(t))
				if got.Data["ticks"] != float64(want) {
					t.Fatalf("event %d = %+v", want, got)
				}
			}
		})
	}
}

// TestSSEQueryCompletes: a query or mutation over SSE gets one next event
// and a complete event, and the stream ends.
func TestSSEQueryCompletes(t *testing.T) {
	srv := newTestServer(t, Config{})
	s, resp, body := openSSE(t, http.MethodPost, srv.URL+"/query", `mutation { bump }`, nil)
	if s == nil {
		t.Fatalf("not a stream: %d %s", resp.StatusCode, body)
	}
	evs := s.waitEnd(t)
	if len(evs) != 2 || decodeEvent(t, evs[0]).Data["bump"] != float64(1) || evs[1].Type != "complete" {
		t.Fatalf("events %+v, want next {bump: 1} and complete", evs)
	}
}

// TestSSEValidationErrors: what GraphQL validation finds is reported in an
// accepted stream, a next event with the errors and no data, then complete,
// as the protocol asks; nothing runs.
func TestSSEValidationErrors(t *testing.T) {
	srv := newTestServer(t, Config{ComplexityLimit: 2})
	tests := []struct{ name, query, wantCode string }{
		{"parse", `subscription {`, "GRAPHQL_PARSE_FAILED"},
		{"validation", `subscription { nope }`, "GRAPHQL_VALIDATION_FAILED"},
		{"complexity", `{ a: hello b: hello c: hello }`, "COMPLEXITY_LIMIT_EXCEEDED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, resp, body := openSSE(t, http.MethodPost, srv.URL+"/query", tt.query, nil)
			if s == nil {
				t.Fatalf("not a stream: %d %s", resp.StatusCode, body)
			}
			evs := s.waitEnd(t)
			if len(evs) != 2 || evs[1].Type != "complete" {
				t.Fatalf("events %+v, want next and complete", evs)
			}
			if strings.Contains(evs[0].Data, `"data"`) {
				t.Errorf("validation error with a data entry: %s", evs[0].Data)
			}
			if got := decodeEvent(t, evs[0]); len(got.Errors) == 0 || got.Errors[0].Extensions["code"] != tt.wantCode {
				t.Errorf("event %s, want code %s", evs[0].Data, tt.wantCode)
			}
		})
	}
}

// TestSSERequestErrors: a request that is not a GraphQL request at all, or a
// mutation over GET, is refused with an HTTP status and a JSON body.
func TestSSERequestErrors(t *testing.T) {
	srv := newTestServer(t, Config{})
	tests := []struct {
		name, method, body, contentType string
		wantStatus                      int
		wantErr                         string
	}{
		{"not JSON", http.MethodPost, `{"query`, "application/json", http.StatusBadRequest, "request body is malformed JSON: it ends early, at byte offset 7"},
		{"truncated", http.MethodPost, `{"query": "subscription { tick }"`, "application/json", http.StatusBadRequest, "request body is malformed JSON: it ends early, at byte offset 33"},
		{"missing query", http.MethodPost, `{}`, "application/json", http.StatusBadRequest, "query is required"},
		{"wrong content type", http.MethodPost, `{"query":"{ hello }"}`, "text/plain", http.StatusUnsupportedMediaType, "application/json"},
		{"GET mutation", http.MethodGet, ``, "", http.StatusMethodNotAllowed, "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := srv.URL + "/query"
			if tt.method == http.MethodGet {
				target += "?" + url.Values{"query": {"mutation { bump }"}}.Encode()
			}
			req, err := http.NewRequest(tt.method, target, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept", "text/event-stream")
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, body := srv.do(t, req)
			if resp.StatusCode != tt.wantStatus || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("got %d %q %s, want %d with a JSON body", resp.StatusCode, resp.Header.Get("Content-Type"), body, tt.wantStatus)
			}
			if errs := decodeGQL(t, body).Errors; len(errs) == 0 || !strings.Contains(errs[0].Message, tt.wantErr) {
				t.Errorf("errors %+v, want one containing %q", errs, tt.wantErr)
			}
		})
	}
	if n := srv.schema.mutations.Load(); n != 0 {
		t.Errorf("ran %d mutations", n)
	}
}

// TestSSEKeepAlive: a silent stream gets a comment line every KeepAlive.
func TestSSEKeepAlive(t *testing.T) {
	schema := newTestSchema()
	schema.tick = time.Hour
	srv := newTestServer(t, Config{Schema: schema, SSE: SSEConfig{KeepAlive: 50 * time.Millisecond}})
	s, resp, body := openSSE(t, http.MethodPost, srv.URL+"/query", `subscription { ticks }`, nil)
	if s == nil {
		t.Fatalf("not a stream: %d %s", resp.StatusCode, body)
	}
	start := time.Now()
	for range 3 {
		if ev := s.next(t); ev.Type != ":" {
			t.Fatalf("want a keep-alive comment, got %+v", ev)
		}
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("3 keep-alives in %v: sent more often than every 50ms", d)
	}
}

// TestSSEExpiry: a stream ends when its caller's credentials expire, with a
// last next event carrying the Expired error, then complete.
func TestSSEExpiry(t *testing.T) {
	auth, caller := sseCallerConfig(300 * time.Millisecond)
	srv := newTestServer(t, Config{
		Authenticate: auth,
		SSE:          SSEConfig{Caller: caller, Expired: errors.New("token expired")},
	})
	s, resp, body := openSSE(t, http.MethodPost, srv.URL+"/query", `subscription { ticks }`, callerHeader("alice"))
	if s == nil {
		t.Fatalf("not a stream: %d %s", resp.StatusCode, body)
	}
	start := time.Now()
	evs := s.waitEnd(t)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stream ended %v after opening, want about 300ms", d)
	}
	if len(evs) < 3 {
		t.Fatalf("events %+v, want ticks, an error and complete", evs)
	}
	last, errEv := evs[len(evs)-1], decodeEvent(t, evs[len(evs)-2])
	if last.Type != "complete" || len(errEv.Errors) != 1 || errEv.Errors[0].Message != "token expired" {
		t.Fatalf("stream ended with %+v, want next {errors: token expired} and complete", evs[len(evs)-2:])
	}
	if decodeEvent(t, evs[0]).Data["ticks"] != float64(1) {
		t.Errorf("first event %+v, want a tick", evs[0])
	}
}

// TestSSEStreamCaps: a caller may hold MaxPerCaller streams and the process
// MaxStreams; more are refused with 429 until one closes.
func TestSSEStreamCaps(t *testing.T) {
	auth, caller := sseCallerConfig(0)
	srv := newTestServer(t, Config{Authenticate: auth, SSE: SSEConfig{Caller: caller, MaxPerCaller: 1, MaxStreams: 2}})
	open := func(who string) (*sseStream, int) {
		s, resp, _ := openSSE(t, http.MethodPost, srv.URL+"/query", `subscription { ticks }`, callerHeader(who))
		return s, resp.StatusCode
	}
	alice, _ := open("alice")
	if alice == nil {
		t.Fatal("first stream refused")
	}
	if _, status := open("alice"); status != http.StatusTooManyRequests {
		t.Errorf("second stream of alice: %d, want 429", status)
	}
	bob, _ := open("bob")
	if bob == nil {
		t.Fatal("bob's stream refused: the cap is per caller")
	}
	if _, status := open("carol"); status != http.StatusTooManyRequests {
		t.Errorf("third stream of the process: %d, want 429", status)
	}
	alice.close()
	waitFor(t, "alice's slot to be released", func() bool {
		s, _ := open("alice")
		if s != nil {
			s.close()
		}
		return s != nil
	})
}

// TestSSEDisconnect: a client that goes away ends its stream: the
// subscription's goroutine stops and its slot is released.
func TestSSEDisconnect(t *testing.T) {
	auth, caller := sseCallerConfig(0)
	srv := newTestServer(t, Config{Authenticate: auth, SSE: SSEConfig{Caller: caller, MaxPerCaller: 1}})
	for i := range 3 {
		// With MaxPerCaller 1, each round opens only if the previous
		// stream was released.
		var s *sseStream
		waitFor(t, "a stream slot", func() bool {
			s, _, _ = openSSE(t, http.MethodPost, srv.URL+"/query", `subscription { ticks }`, callerHeader("alice"))
			return s != nil
		})
		if got := decodeEvent(t, s.nextEvent(t)); got.Data["ticks"] != float64(1) {
			t.Fatalf("round %d: %+v", i, got)
		}
		s.close()
	}
	waitFor(t, "stream goroutines to exit", func() bool {
		return !goroutinesIn("server.(*sseTransport)", "server.(*testSchema).ticks")
	})
}

// TestSSEShutdown: cancelling the server's base context, as jobchat serve
// does on shutdown, ends open streams without "complete" (so clients
// reconnect), and Shutdown returns.
func TestSSEShutdown(t *testing.T) {
	srv, base := newSSEServer(t, Config{}, 0)
	s, resp, body := openSSE(t, http.MethodPost, base+"/query", `subscription { ticks }`, nil)
	if s == nil {
		t.Fatalf("not a stream: %d %s", resp.StatusCode, body)
	}
	s.nextEvent(t)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for _, ev := range s.waitEnd(t) {
		if ev.Type == "complete" {
			t.Fatal("stream completed on shutdown; clients would not reconnect")
		}
	}
	waitFor(t, "stream goroutines to exit", func() bool {
		return !goroutinesIn("server.(*sseTransport)", "server.(*testSchema).ticks")
	})
}

// TestSSEOutlivesServerTimeouts: the http.Server's ReadTimeout and
// WriteTimeout, meant for whole requests, do not cut a stream.
func TestSSEOutlivesServerTimeouts(t *testing.T) {
	_, base := newSSEServer(t, Config{}, 200*time.Millisecond)
	s, resp, body := openSSE(t, http.MethodPost, base+"/query", `subscription { ticks }`, nil)
	if s == nil {
		t.Fatalf("not a stream: %d %s", resp.StatusCode, body)
	}
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		s.nextEvent(t)
	}
}

// TestSSESlowClient: a client that stops reading is cut off after
// WriteTimeout, which releases its slot.
func TestSSESlowClient(t *testing.T) {
	auth, caller := sseCallerConfig(0)
	srv := newTestServer(t, Config{Authenticate: auth, WriteTimeout: 200 * time.Millisecond, SSE: SSEConfig{Caller: caller, MaxPerCaller: 1}})

	// A raw connection that sends the request and never reads.
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := `{"query":"subscription { blobs }"}`
	if _, err := io.WriteString(conn, "POST /query HTTP/1.1\r\nHost: x\r\nX-Test-Caller: alice\r\nAccept: text/event-stream\r\n"+
		"Content-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(req))+"\r\n\r\n"+req); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stalled stream to be cut off", func() bool {
		s, _, _ := openSSE(t, http.MethodPost, srv.URL+"/query", `subscription { ticks }`, callerHeader("alice"))
		if s != nil {
			s.close()
		}
		return s != nil
	})
}

// newSSEServer serves New(cfg) from an http.Server set up as jobchat serve
// sets up its own: a base context cancelled on shutdown, and, when timeout
// is not zero, read and write timeouts.
func newSSEServer(tb testing.TB, cfg Config, timeout time.Duration) (*http.Server, string) {
	tb.Helper()
	cfg.Schema = newTestSchema()
	cfg.Log = zerolog.Nop()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	baseCtx, cancelBase := context.WithCancel(context.Background())
	srv := &http.Server{
		Handler:      New(cfg),
		ReadTimeout:  timeout,
		WriteTimeout: timeout,
		BaseContext:  func(net.Listener) context.Context { return baseCtx },
	}
	srv.RegisterOnShutdown(cancelBase)
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() {
		cancelBase()
		_ = srv.Close()
	})
	return srv, "http://" + ln.Addr().String()
}

// goroutinesIn reports whether any goroutine's stack has a frame naming one
// of funcs.
func goroutinesIn(funcs ...string) bool {
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, f := range funcs {
		if strings.Contains(stacks, f) {
			return true
		}
	}
	return false
}

// waitFor polls cond for up to 5s.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
