package server

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// socketsServer serves New(cfg) with a logger the test reads, keeping the
// Handler for its socket methods.
func socketsServer(tb testing.TB) (*Handler, *httptest.Server, *logBuffer) {
	tb.Helper()
	logs := &logBuffer{}
	h := New(Config{Schema: newTestSchema(), Log: zerolog.New(logs).Level(zerolog.DebugLevel)})
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return h, srv, logs
}

func socketsDial(tb testing.TB, srv *httptest.Server) *websocket.Conn {
	tb.Helper()
	c, _, err := (&websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}).Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/query", nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// TestWaitSocketsAfterShutdown: after http.Server.Shutdown, which waits
// for no socket, WaitSockets returns once every socket has closed (1001)
// and written its "websocket closed" line: the lines are there when it
// returns, with no waiting on the log.
func TestWaitSocketsAfterShutdown(t *testing.T) {
	h, srv, logs := socketsServer(t)
	if open := h.WaitSockets(context.Background()); open != 0 {
		t.Fatalf("%d sockets open before any was", open)
	}
	ended := make(chan error, 3)
	for range 3 {
		c := socketsDial(t, srv)
		go func() {
			for {
				// Reading answers the server's close frame.
				if _, _, err := c.ReadMessage(); err != nil {
					ended <- err
					return
				}
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Config.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if open := h.WaitSockets(ctx); open != 0 {
		t.Fatalf("%d sockets still open", open)
	}
	if n := len(logs.lines(t, "websocket closed")); n != 3 {
		t.Fatalf("%d close lines when WaitSockets returned, want 3:\n%s", n, logs.String())
	}
	for range 3 {
		var ce *websocket.CloseError
		if err := <-ended; !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Errorf("client ended with %v, want 1001", err)
		}
	}
}

// TestCloseSockets: a client that never answers is dropped by
// CloseSockets, and its close line is still written once.
func TestCloseSockets(t *testing.T) {
	h, srv, logs := socketsServer(t)
	c := socketsDial(t, srv)
	short, cancel := context.WithCancel(context.Background())
	cancel()
	if open := h.WaitSockets(short); open != 1 {
		t.Fatalf("WaitSockets with an ended context: %d open, want 1", open)
	}
	h.CloseSockets()
	if open := h.WaitSockets(context.Background()); open != 0 {
		t.Fatalf("%d sockets open after CloseSockets", open)
	}
	if n := len(logs.lines(t, "websocket closed")); n != 1 {
		t.Fatalf("%d close lines, want 1:\n%s", n, logs.String())
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil {
		t.Fatal("the client can still read")
	}
}
