package wsconn

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestShutdown: the first request a server serves hooks the endpoint to
// its shutdown, once per server; the shutdown closes every socket with
// 1001, and a socket upgraded after it goes the same way.
func TestShutdown(t *testing.T) {
	e := NewEndpoint(Config{})
	srv, protos := serve(t, e, nil)
	other, otherProtos := serve(t, e, nil)
	a, b := dial(t, srv), dial(t, srv)
	pa, pb := next(t, protos), next(t, protos)
	c := dial(t, other)
	next(t, otherProtos)

	e.mu.Lock()
	servers, conns := len(e.servers), len(e.conns)
	e.mu.Unlock()
	if servers != 2 || conns != 3 {
		t.Fatalf("%d servers, %d sockets registered; want 2, 3", servers, conns)
	}

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := srv.Config.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// One server's shutdown is the endpoint's: every socket goes.
	for _, ws := range []*websocket.Conn{a, b, c} {
		if ce := readClose(t, ws); ce.Code != websocket.CloseGoingAway || ce.Text != "server shutting down" {
			t.Fatalf("close %d %q, want 1001", ce.Code, ce.Text)
		}
		_ = ws.Close()
	}
	waitEnded(t, pa)
	waitEnded(t, pb)
	for deadline := time.Now().Add(wait); len(e.Conns()) != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d sockets still registered after they ended", len(e.Conns()))
		}
	}

	// The other server still accepts, but its sockets go away at once.
	late := dial(t, other)
	if ce := readClose(t, late); ce.Code != websocket.CloseGoingAway {
		t.Fatalf("late socket: close %d, want 1001", ce.Code)
	}
	if e.Add(&newProto(e).sock) {
		t.Fatal("Add took a socket after the shutdown")
	}
}

// detachingWriter lets the handler return while the socket lives on, as
// jobchat's access log does.
type detachingWriter struct {
	http.ResponseWriter
	closed chan struct{}
}

func (w *detachingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (w *detachingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *detachingWriter) Detach() func() { return func() { close(w.closed) } }

func TestServeDetached(t *testing.T) {
	e := NewEndpoint(Config{})
	returned := make(chan struct{})
	dw := &detachingWriter{closed: make(chan struct{})}
	protos := make(chan *proto, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(returned)
		dw.ResponseWriter = w
		p := newProto(e)
		ws, err := e.Upgrade(dw, r)
		if err != nil {
			t.Error(err)
			return
		}
		p.sock.Start(ws)
		e.Add(&p.sock)
		protos <- p
		e.Serve(dw, &p.sock)
	}))
	defer srv.Close()
	ws := dial(t, srv)
	p := next(t, protos)
	select {
	case <-returned:
	case <-time.After(wait):
		t.Fatal("the handler did not return while the socket lives")
	}
	select {
	case <-dw.closed:
		t.Fatal("closed called while the socket lives")
	default:
	}
	p.sock.Push(Frame{Head: []byte("still here")})
	if got := read(t, ws); got != "still here" {
		t.Fatalf("got %q", got)
	}
	_ = ws.Close()
	select {
	case <-dw.closed:
	case <-time.After(wait):
		t.Fatal("closed not called once the socket ended")
	}
	if len(e.Conns()) != 0 {
		t.Fatal("the socket is still registered")
	}
}

func TestResponseHeader(t *testing.T) {
	w := httptest.NewRecorder()
	w.Header().Set("X-Request-Id", "r1")
	w.Header().Add("Set-Cookie", "a=1")
	w.Header().Add("Set-Cookie", "b=2")
	for _, k := range []string{"Upgrade", "Connection", "Content-Type", "Content-Length",
		"Sec-WebSocket-Protocol", "Sec-WebSocket-Accept", "Sec-WebSocket-Extensions"} {
		w.Header().Set(k, "from middleware")
	}
	got := responseHeader(w)
	want := http.Header{"X-Request-Id": {"r1"}, "Set-Cookie": {"a=1", "b=2"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	got["Set-Cookie"][0] = "changed"
	if w.Header().Get("Set-Cookie") != "a=1" {
		t.Fatal("the header shares its values with w")
	}
}

func TestSameOrigin(t *testing.T) {
	tests := []struct {
		origin string
		want   bool
	}{
		{"", true},
		{"http://chat.example", true},
		{"https://chat.example", true},
		{"https://chat.example:8443", false},
		{"https://evil.example", false},
		{"null", false},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://chat.example/query", nil)
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if got := SameOrigin(r); got != tt.want {
				t.Fatalf("SameOrigin = %v, want %v", got, tt.want)
			}
		})
	}
}
