package server

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"
	"weak"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// TestDetachedSocketFreesItsRequest pins what keeps an idle socket at a
// few KiB: once a websocket is handed to its own goroutine, nothing may
// reach the HTTP request it came in on. net/http's response for that
// request holds the connection's 8 KiB of bufio buffers, and the request
// is reachable exactly when the response is; a method value on the
// access log's recorder once kept both alive for the socket's lifetime
// and nearly doubled the memory per socket, with every other test green.
func TestDetachedSocketFreesItsRequest(t *testing.T) {
	schema := newTestSchema()
	h := New(Config{Schema: schema, Log: zerolog.Nop()})

	var (
		mu   sync.Mutex
		reqs []weak.Pointer[http.Request]
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reqs = append(reqs, weak.Make(r))
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ts := &testServer{Server: srv, schema: schema}

	const sockets = 3
	var conns []*websocket.Conn
	for range sockets {
		c := ts.initTransportWS(t)
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
	}
	// Subscribed and acknowledged: the sockets live on their own goroutines.
	for _, c := range conns {
		send(t, c, wsMsg{ID: "s", Type: "subscribe", Payload: subscribePayload()})
	}

	// The handlers have returned once the ack was read; collect until the
	// requests are gone, for a bounded number of cycles (a weak pointer is
	// cleared by the first GC that finds its target unreachable).
	var alive int
	for range 20 {
		runtime.GC()
		alive = 0
		mu.Lock()
		for _, p := range reqs {
			if p.Value() != nil {
				alive++
			}
		}
		mu.Unlock()
		if alive == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if alive != 0 {
		t.Fatalf("%d of %d detached sockets still reach their HTTP request (and net/http's buffers)", alive, len(reqs))
	}
	// The sockets themselves still work.
	for _, c := range conns {
		send(t, c, wsMsg{Type: "ping"})
		if m := recv(t, c); m.Type != "pong" && m.Type != "next" {
			t.Fatalf("socket after GC: got %q", m.Type)
		}
	}
}
