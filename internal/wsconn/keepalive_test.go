package wsconn

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func deadline() time.Time { return time.Now().Add(wait) }

// TestKeepAlive: pings go out, after the keep-alive frame once a socket
// asks for it; a peer that answers nothing is dropped.
func TestKeepAlive(t *testing.T) {
	t.Run("pings, then frames with them", func(t *testing.T) {
		e := NewEndpoint(Config{KeepAlive: 10 * time.Millisecond, KeepAliveFrame: []byte(`{"type":"ka"}`)})
		srv, protos := serve(t, e, nil)
		ws := dial(t, srv)
		p := next(t, protos)
		pings := make(chan struct{}, 100)
		ws.SetPingHandler(func(data string) error {
			select {
			case pings <- struct{}{}:
			default:
			}
			return ws.WriteControl(websocket.PongMessage, []byte(data), deadline())
		})
		frames := make(chan string, 100)
		go func() {
			for {
				_, data, err := ws.ReadMessage()
				if err != nil {
					close(frames)
					return
				}
				frames <- string(data)
			}
		}()
		for range 2 {
			select {
			case <-pings:
			case <-time.After(wait):
				t.Fatal("no ping")
			}
		}
		if len(frames) != 0 {
			t.Fatal("a keep-alive frame before the socket asked for them")
		}
		p.sock.SendKeepAliveFrames()
		select {
		case f := <-frames:
			if f != `{"type":"ka"}` {
				t.Fatalf("got %s", f)
			}
		case <-time.After(wait):
			t.Fatal("no keep-alive frame")
		}
	})

	t.Run("a silent peer is dropped", func(t *testing.T) {
		e := NewEndpoint(Config{KeepAlive: 10 * time.Millisecond, WriteTimeout: 10 * time.Millisecond})
		srv, protos := serve(t, e, nil)
		dial(t, srv) // and never read: pongs go unanswered
		p := next(t, protos)
		waitEnded(t, p)
		var ne net.Error
		if err := <-p.ending; !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("ending %v, want a read timeout", err)
		}
	})
}

// TestEndStopsKeepAlive: a timer left running would keep the closed socket
// in memory until it fired.
func TestEndStopsKeepAlive(t *testing.T) {
	e := NewEndpoint(Config{})
	srv, protos := serve(t, e, nil)
	ws := dial(t, srv)
	p := next(t, protos)
	_ = ws.Close()
	waitEnded(t, p)
	if p.sock.Offer(Frame{Head: []byte("x")}) {
		t.Error("a frame was queued on an ended socket")
	}
	p.sock.mu.Lock()
	defer p.sock.mu.Unlock()
	if p.sock.keepAlive.Stop() {
		t.Error("the keep-alive timer was still running after the socket closed")
	}
}
