package legacy

import (
	"context"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jobchat/jobchat/internal/auth"
	"github.com/jobchat/jobchat/internal/wsconn"
)

// TestSocketFrameRules: RFC 6455's rules hold on the old socket as on the
// GraphQL one (package wsconn): a binary message closes it with 1003, a
// text message that is not UTF-8 with 1007, and neither is sent.
func TestSocketFrameRules(t *testing.T) {
	tests := []struct {
		name string
		typ  int
		data string
		code int
	}{
		{"binary", websocket.BinaryMessage, `{"message": "binary"}`, websocket.CloseUnsupportedData},
		{"invalid UTF-8", websocket.TextMessage, "{\"message\": \"\xff\xfe\"}", websocket.CloseInvalidFramePayloadData},
		{"a lone surrogate encoded in UTF-8", websocket.TextMessage, "{\"message\": \"\xed\xa0\x80\"}", websocket.CloseInvalidFramePayloadData},
		{"cut in the middle of a rune", websocket.TextMessage, "{\"message\": \"\xc3", websocket.CloseInvalidFramePayloadData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newFakeBackend()
			srv := server(t, New(b, Config{}))
			ws := dial(t, wsURL(srv, "c1"), bearer("ann-token"))
			if err := ws.WriteMessage(tt.typ, []byte(tt.data)); err != nil {
				t.Fatal(err)
			}
			if ce := readClose(t, ws); ce.Code != tt.code {
				t.Fatalf("close %d %q, want %d", ce.Code, ce.Text, tt.code)
			}
			b.waitStopped(t)
			if got := b.sends(); len(got) != 0 {
				t.Fatalf("sends %+v, want none", got)
			}
		})
	}
}

// TestSocketQuota: the sockets of one address and of one user are
// bounded; one over a bound is upgraded and closed at once with the code
// that says which (a browser never sees a refused handshake's status), and
// a socket that ends gives its place back.
func TestSocketQuota(t *testing.T) {
	b := newFakeBackend()
	quota := wsconn.NewQuota(wsconn.QuotaConfig{PerUser: 1, PerAddr: 2, User: func(ctx context.Context) string {
		c, _ := auth.CallerFrom(ctx)
		return c.ID
	}})
	srv := server(t, New(b, Config{Quota: quota}))
	ann := dial(t, wsURL(srv, "c1"), bearer("ann-token"))
	bob := dial(t, wsURL(srv, "c1"), bearer("bob-token"))

	refused := func(token string, code int) {
		t.Helper()
		ws := dial(t, wsURL(srv, "c1"), bearer(token))
		if ce := readClose(t, ws); ce.Code != code {
			t.Fatalf("close %d %q, want %d", ce.Code, ce.Text, code)
		}
		_ = ws.Close()
	}
	refused("ann-token", wsconn.CloseTooManyFromAddr)
	waitCounts(t, quota, "bob", 1, 2)
	_ = bob.Close()
	waitCounts(t, quota, "bob", 0, 1)
	refused("ann-token", wsconn.CloseTooManyForUser)
	waitCounts(t, quota, "ann", 1, 1)

	// Ann's own socket still works; once it ends she may open another.
	write(t, ann, `{"message": "still here"}`)
	if _, msg := decodeFrame(t, read(t, ann)); msg["message_text"] != "still here" {
		t.Fatalf("got %v", msg)
	}
	_ = ann.Close()
	waitCounts(t, quota, "ann", 0, 0)
	again := dial(t, wsURL(srv, "c1"), bearer("ann-token"))
	write(t, again, `{"message": "back"}`)
	if _, msg := decodeFrame(t, read(t, again)); msg["message_text"] != "back" {
		t.Fatalf("got %v", msg)
	}
}

// waitCounts waits until quota counts user's sockets and the loopback
// address's as given.
func waitCounts(tb testing.TB, quota *wsconn.Quota, user string, byUser, byAddr int) {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		u, a := quota.Counts(user, "127.0.0.1")
		if u == byUser && a == byAddr {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s holds %d sockets and the address %d; want %d and %d", user, u, a, byUser, byAddr)
		}
	}
}
