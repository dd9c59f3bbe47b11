package wsconn

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// TestCloseOrder: what was queued goes out first, then the close frame
// (its reason cut to fit), and nothing queued after the close; whether the
// close came before the socket started or after.
func TestCloseOrder(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	tests := []struct {
		name       string
		before     func(c *Conn) // before Start
		after      func(c *Conn) // once the client is connected
		wantFrames []string
		wantCode   int
		wantReason string
	}{
		{
			name: "queued, then closed, before start",
			before: func(c *Conn) {
				c.Push(Frame{Head: []byte("one")})
				c.Send(Frame{Head: []byte("two")})
				c.Close(4403, "token expired")
				c.Push(Frame{Head: []byte("late")})
			},
			wantFrames: []string{"one", "two"},
			wantCode:   4403, wantReason: "token expired",
		},
		{
			name: "queued, then closed, after start",
			after: func(c *Conn) {
				c.Push(Frame{Head: []byte("one")})
				c.Offer(Frame{Head: []byte(`{"payload":`), Body: []byte(`2`)})
				c.Close(websocket.CloseNormalClosure, "")
				c.Send(Frame{Head: []byte("late")})
			},
			wantFrames: []string{"one", `{"payload":2}`},
			wantCode:   websocket.CloseNormalClosure,
		},
		{
			name:     "closed twice: the first close counts",
			after:    func(c *Conn) { c.Close(4400, "first"); c.Close(4500, "second") },
			wantCode: 4400, wantReason: "first",
		},
		{
			name:     "a long reason is cut on a rune boundary",
			after:    func(c *Conn) { c.Close(4400, long) },
			wantCode: 4400, wantReason: long[:122],
		},
		{
			name: "cut off before start: the queue is dropped",
			before: func(c *Conn) {
				for c.Send(Frame{Head: []byte("x")}) {
				}
			},
			wantCode: websocket.ClosePolicyViolation, wantReason: "slow consumer: too many frames waiting",
		},
		{
			name:     "going away",
			after:    (*Conn).GoAway,
			wantCode: websocket.CloseGoingAway, wantReason: "server shutting down",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEndpoint(Config{SendQueue: 4})
			var prepare func(p *proto)
			if tt.before != nil {
				prepare = func(p *proto) { tt.before(&p.sock) }
			}
			srv, protos := serve(t, e, prepare)
			ws := dial(t, srv)
			p := next(t, protos)
			if tt.after != nil {
				tt.after(&p.sock)
			}
			for _, want := range tt.wantFrames {
				if got := read(t, ws); got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			}
			ce := readClose(t, ws)
			if ce.Code != tt.wantCode || ce.Text != tt.wantReason {
				t.Fatalf("close %d %q, want %d %q", ce.Code, ce.Text, tt.wantCode, tt.wantReason)
			}
			if err := <-p.ending; err != nil {
				t.Fatalf("ending %v, want an orderly close", err)
			}
			// The peer answers; the socket ends.
			_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(ce.Code, ""), deadline())
			waitEnded(t, p)
			if len(p.ending) != 0 {
				t.Fatal("Ending called more than once")
			}
		})
	}
}

func TestTruncateReason(t *testing.T) {
	tests := []struct {
		name, reason string
		want         int // bytes kept
	}{
		{"empty", "", 0},
		{"short", "Forbidden", 9},
		{"exactly the limit", strings.Repeat("a", 123), 123},
		{"one over", strings.Repeat("a", 124), 123},
		{"two-byte runes across the limit", strings.Repeat("é", 70), 122},
		{"four-byte runes across the limit", strings.Repeat("😀", 40), 120},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := truncateReason(tt.reason)
			if len(got) != tt.want || !strings.HasPrefix(tt.reason, got) || !utf8.ValidString(got) {
				t.Fatalf("kept %d bytes (%q), want %d", len(got), got, tt.want)
			}
			// gorilla takes it.
			if len(websocket.FormatCloseMessage(4400, got)) > 125 {
				t.Fatal("close frame too long")
			}
		})
	}
}
