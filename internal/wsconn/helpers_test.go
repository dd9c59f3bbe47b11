package wsconn

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// wait bounds every wait of these tests; reaching it fails the test.
const wait = 10 * time.Second

// proto is a Protocol that records what its Conn tells it.
type proto struct {
	sock     Conn
	received chan []byte
	ending   chan error
	ended    chan struct{}
	log      zerolog.Logger
}

func newProto(e *Endpoint) *proto {
	p := &proto{
		received: make(chan []byte, 100),
		ending:   make(chan error, 10),
		ended:    make(chan struct{}),
		log:      zerolog.Nop(),
	}
	p.sock.Init(e, p)
	return p
}

func (p *proto) Receive(data []byte)  { p.received <- data }
func (p *proto) Ending(err error)     { p.ending <- err }
func (p *proto) Ended()               { close(p.ended) }
func (p *proto) Log() *zerolog.Logger { return &p.log }

var _ Protocol = (*proto)(nil)

// serve starts a server whose every socket is a proto of e. Before Start,
// prepare (if set) may queue frames and close; the test receives each
// socket's proto from the channel.
func serve(tb testing.TB, e *Endpoint, prepare func(p *proto)) (*httptest.Server, <-chan *proto) {
	tb.Helper()
	protos := make(chan *proto, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.Watch(r)
		p := newProto(e)
		if prepare != nil {
			prepare(p)
		}
		if !e.Add(&p.sock) {
			p.sock.GoAway()
		}
		ws, err := e.Upgrade(w, r)
		if err != nil {
			e.Remove(&p.sock)
			return
		}
		p.sock.Start(ws)
		protos <- p
		e.Serve(w, &p.sock)
	}))
	tb.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv, protos
}

func dial(tb testing.TB, srv *httptest.Server) *websocket.Conn {
	tb.Helper()
	d := websocket.Dialer{HandshakeTimeout: wait}
	ws, resp, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	_ = resp.Body.Close()
	tb.Cleanup(func() { _ = ws.Close() })
	return ws
}

func next(tb testing.TB, protos <-chan *proto) *proto {
	tb.Helper()
	select {
	case p := <-protos:
		return p
	case <-time.After(wait):
		tb.Fatal("no socket served")
		return nil
	}
}

// read returns the next data message.
func read(tb testing.TB, ws *websocket.Conn) string {
	tb.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	_, data, err := ws.ReadMessage()
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	return string(data)
}

// readClose reads the close frame that must come next.
func readClose(tb testing.TB, ws *websocket.Conn) *websocket.CloseError {
	tb.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	_, data, err := ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		tb.Fatalf("want a close frame, got %q, %v", data, err)
	}
	return ce
}

func waitEnded(tb testing.TB, p *proto) {
	tb.Helper()
	select {
	case <-p.ended:
	case <-time.After(wait):
		tb.Fatal("the socket did not end")
	}
}

// unstarted is a Conn that has not started: nothing is written, so what
// the queue holds stays there.
func unstarted(cfg Config) *proto {
	return newProto(NewEndpoint(cfg))
}

// closeCode is the code of the close frame waiting in c, 0 if none.
func closeCode(c *Conn) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(c.closeCode)
}

func queued(c *Conn) (frames, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue), c.queueBytes
}
