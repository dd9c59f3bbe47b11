package wsconn

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestQueueCaps holds each door of the queue against its caps: how many
// frames of a size it takes, and whether the one that finds no room cuts
// the client off (1008, queue dropped) or is merely refused.
func TestQueueCaps(t *testing.T) {
	small := Frame{Head: []byte(`{"type":"ka"}`)}
	big := Frame{Head: []byte(`{"id":"1","payload":`), Body: make([]byte, 300<<10)}
	huge := Frame{Head: make([]byte, 3<<20)}
	tests := []struct {
		name      string
		sendQueue int
		door      func(c *Conn, f Frame) bool
		frame     Frame
		taken     int  // frames queued before one is refused
		cut       bool // the refused one cuts the client off
	}{
		{"push: twice the queue in frames", 4, (*Conn).Push, small, 8, true},
		{"push: no byte cap", 4, (*Conn).Push, big, 8, true},
		{"offer: the queue in frames", 4, (*Conn).Offer, small, 4, false},
		{"offer: 1 MiB, the frame crossing it let in", 100, (*Conn).Offer, big, 4, false},
		{"offer: a frame over 1 MiB alone", 100, (*Conn).Offer, huge, 1, false},
		{"send: the queue in frames", 4, (*Conn).Send, small, 4, true},
		{"send: 1 MiB, the frame crossing it let in", 100, (*Conn).Send, big, 4, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := unstarted(Config{SendQueue: tt.sendQueue})
			c := &p.sock
			for i := range tt.taken {
				if !tt.door(c, tt.frame) {
					t.Fatalf("frame %d refused, want %d taken", i+1, tt.taken)
				}
			}
			if frames, bytes := queued(c); frames != tt.taken || bytes != tt.taken*tt.frame.size() {
				t.Fatalf("queue holds %d frames, %d bytes; want %d, %d", frames, bytes, tt.taken, tt.taken*tt.frame.size())
			}
			if tt.door(c, tt.frame) {
				t.Fatalf("frame %d taken", tt.taken+1)
			}
			frames, _ := queued(c)
			switch {
			case tt.cut && (!c.Closing() || closeCode(c) != websocket.ClosePolicyViolation || frames != 0):
				t.Fatalf("closing %v, close %d, %d frames left; want cut off with 1008, nothing left", c.Closing(), closeCode(c), frames)
			case !tt.cut && (c.Closing() || frames != tt.taken):
				t.Fatalf("closing %v, %d frames left; want open, %d left", c.Closing(), frames, tt.taken)
			}
			if tt.cut {
				if err := <-p.ending; err != nil {
					t.Fatalf("ending %v, want an orderly close", err)
				}
				if c.Push(small) || c.Offer(small) || c.Send(small) {
					t.Fatal("a frame was queued after the cut-off")
				}
			}
		})
	}
}

func TestWaitRoom(t *testing.T) {
	full := func(p *proto) {
		for p.sock.Offer(Frame{Head: []byte("x")}) {
		}
	}
	tests := []struct {
		name    string
		timeout time.Duration
		setup   func(p *proto)
		during  func(p *proto, cancel context.CancelFunc)
		want    error
		cut     bool
	}{
		{name: "room at once", timeout: time.Hour, want: nil},
		{name: "closing", timeout: time.Hour, setup: func(p *proto) { p.sock.Close(websocket.CloseNormalClosure, "") }, want: ErrClosed},
		{name: "context ends", timeout: time.Hour, setup: full, during: func(_ *proto, cancel context.CancelFunc) { cancel() }, want: context.Canceled},
		{name: "socket ends", timeout: time.Hour, setup: full, during: func(p *proto, _ context.CancelFunc) { p.sock.End() }, want: ErrClosed},
		// Nothing drains an unstarted socket: the wait runs out.
		{name: "client takes nothing", timeout: time.Millisecond, setup: full, want: ErrCutOff, cut: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := unstarted(Config{SendQueue: 2, WriteTimeout: tt.timeout})
			if tt.setup != nil {
				tt.setup(p)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- p.sock.WaitRoom(ctx) }()
			if tt.during != nil {
				waitWaiting(t, &p.sock)
				tt.during(p, cancel)
			}
			select {
			case err := <-done:
				if !errors.Is(err, tt.want) {
					t.Fatalf("WaitRoom: %v, want %v", err, tt.want)
				}
			case <-time.After(wait):
				t.Fatal("WaitRoom did not return")
			}
			if tt.cut && closeCode(&p.sock) != websocket.ClosePolicyViolation {
				t.Fatalf("close %d, want 1008", closeCode(&p.sock))
			}
		})
	}
}

// waitWaiting waits until someone waits for room on c.
func waitWaiting(tb testing.TB, c *Conn) {
	tb.Helper()
	for deadline := time.Now().Add(wait); ; time.Sleep(time.Millisecond) {
		c.mu.Lock()
		waiting := c.drained != nil
		c.mu.Unlock()
		if waiting {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal("nobody waits for room")
		}
	}
}

// TestWriter: frames go out in order, a result's body between its head and
// a closing brace; room comes back as the writer drains the queue, and the
// writer goroutine is gone once there is nothing to write.
func TestWriter(t *testing.T) {
	e := NewEndpoint(Config{SendQueue: 4})
	srv, protos := serve(t, e, nil)
	ws := dial(t, srv)
	p := next(t, protos)

	var want []string
	for i := range 20 {
		f := Frame{Head: fmt.Appendf(nil, `{"n":%d}`, i)}
		if i%2 == 1 {
			f = Frame{Head: fmt.Appendf(nil, `{"n":%d,"payload":`, i), Body: []byte(`{"data":1}`)}
		}
		for !p.sock.Offer(f) {
			if err := p.sock.WaitRoom(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if f.Body != nil {
			want = append(want, string(f.Head)+string(f.Body)+"}")
		} else {
			want = append(want, string(f.Head))
		}
		if i%4 == 3 {
			for _, w := range want {
				if got := read(t, ws); got != w {
					t.Fatalf("got %s, want %s", got, w)
				}
			}
			want = want[:0]
		}
	}
	for deadline := time.Now().Add(wait); ; time.Sleep(time.Millisecond) {
		p.sock.mu.Lock()
		writing := p.sock.writing
		p.sock.mu.Unlock()
		if !writing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer is still running with nothing to write")
		}
	}
}
