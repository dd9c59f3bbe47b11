package legacy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jobchat/jobchat/internal/auth"
)

// fakeBackend is a small jobchat: tokens map to callers, conversations to
// their members, and a send is stored and delivered to every follower of
// its conversation, the sender's own socket included, as the real
// broadcast does.
type fakeBackend struct {
	mu        sync.Mutex
	callers   map[string]auth.Caller // by token
	members   map[string][]string    // conversation → user ids
	followers map[string][]*fakeFollower
	sent      []fakeSend
	seq       int

	// sendErr, if set, decides a send's fate instead of storing it.
	sendErr func(text, msgType string) error
	// authorizeErr, if set, replaces the membership check.
	authorizeErr error
	followErr    error
	// onFollow runs inside Follow, once the follower is registered, as a
	// message committed while the handshake is still being answered.
	onFollow func(conv string)
	// stopped receives the conversation of every follower stopped.
	stopped chan string
}

type fakeSend struct {
	Caller, Conv, Text, Type string
}

type fakeFollower struct {
	fn   func(Event) bool
	end  func()
	done bool
}

var _ Backend = (*fakeBackend)(nil)

func newFakeBackend() *fakeBackend {
	return &fakeBackend{
		callers: map[string]auth.Caller{
			"ann-token": {ID: "ann", Name: "Ann Client", ExpiresAt: time.Now().Add(time.Hour)},
			"bob-token": {ID: "bob", Name: "Bob Worker", ExpiresAt: time.Now().Add(time.Hour)},
			"eve-token": {ID: "eve", Name: "Eve Stranger", ExpiresAt: time.Now().Add(time.Hour)},
			"svc-token": {ID: "job-service", Service: true, ExpiresAt: time.Now().Add(time.Hour)},
		},
		members:   map[string][]string{"c1": {"ann", "bob"}},
		followers: map[string][]*fakeFollower{},
		stopped:   make(chan string, 100),
	}
}

// codedErr is a refusal with a GraphQL code.
type codedErr struct{ code, msg string }

func (e *codedErr) Error() string { return e.msg }
func (e *codedErr) Code() string  { return e.code }

func (b *fakeBackend) Authenticate(_ context.Context, token string) (auth.Caller, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.callers[token]
	if !ok {
		return auth.Caller{}, fmt.Errorf("%w: token is malformed", auth.ErrUnauthenticated)
	}
	return c, nil
}

func (b *fakeBackend) Authorize(ctx context.Context, c auth.Caller, conv string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.authorizeErr != nil {
		return b.authorizeErr
	}
	for _, id := range b.members[conv] {
		if id == c.ID {
			return nil
		}
	}
	return &codedErr{"NOT_FOUND", fmt.Sprintf("conversation %q not found", conv)}
}

func (b *fakeBackend) Send(ctx context.Context, c auth.Caller, conv, text, msgType string) error {
	b.mu.Lock()
	decide := b.sendErr
	b.mu.Unlock()
	if decide != nil {
		if err := decide(text, msgType); err != nil {
			return err
		}
	}
	b.mu.Lock()
	b.sent = append(b.sent, fakeSend{Caller: c.ID, Conv: conv, Text: text, Type: msgType})
	b.seq++
	id := fmt.Sprintf("m%d", b.seq)
	b.mu.Unlock()
	name := c.Name
	b.publish(conv, Event{Message: Message{ID: id, ConversationID: conv, SenderID: &c.ID, SenderName: &name,
		Text: text, Type: msgType, Timestamp: time.Now()}})
	return nil
}

func (b *fakeBackend) Follow(ctx context.Context, c auth.Caller, conv string, fn func(Event) bool, end func()) (func(), error) {
	b.mu.Lock()
	if b.followErr != nil {
		b.mu.Unlock()
		return nil, b.followErr
	}
	f := &fakeFollower{fn: fn, end: end}
	b.followers[conv] = append(b.followers[conv], f)
	onFollow := b.onFollow
	b.mu.Unlock()
	if onFollow != nil {
		onFollow(conv)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			f.done = true
			b.mu.Unlock()
			b.stopped <- conv
		})
	}, nil
}

// publish delivers ev to the conversation's followers, in order, as the
// feed does: under its lock, never waiting, dropping a follower that
// cannot take more. It reports whether every follower took it.
func (b *fakeBackend) publish(conv string, ev Event) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	all := true
	live := b.followers[conv][:0]
	for _, f := range b.followers[conv] {
		if f.done {
			continue
		}
		if !f.fn(ev) {
			f.done = true
			all = false
			continue
		}
		live = append(live, f)
	}
	b.followers[conv] = live
	return all
}

// fail ends the conversation's followers as a failed catch-up does.
func (b *fakeBackend) fail(conv string) {
	b.mu.Lock()
	fs := b.followers[conv]
	b.followers[conv] = nil
	b.mu.Unlock()
	for _, f := range fs {
		f.end()
	}
}

func (b *fakeBackend) sends() []fakeSend {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]fakeSend(nil), b.sent...)
}

// waitStopped waits for one follower to stop.
func (b *fakeBackend) waitStopped(tb testing.TB) {
	tb.Helper()
	select {
	case <-b.stopped:
	case <-time.After(10 * time.Second):
		tb.Fatal("the follower was not stopped")
	}
}

// server serves h the way jobchat mounts it.
func server(tb testing.TB, h *Handler) *httptest.Server {
	tb.Helper()
	mux := http.NewServeMux()
	mux.Handle(Pattern, h)
	return newServer(tb, mux)
}

func newServer(tb testing.TB, h http.Handler) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(h)
	tb.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}

func wsURL(srv *httptest.Server, conv string) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws/chat/" + conv + "/"
}

// dial opens the socket as the old frontend does; header carries the
// credentials. It fails the test unless the handshake succeeds.
func dial(tb testing.TB, url string, header http.Header) *websocket.Conn {
	tb.Helper()
	ws, status, err := tryDial(url, header)
	if err != nil {
		tb.Fatalf("dial %s: status %d: %v", url, status, err)
	}
	tb.Cleanup(func() { _ = ws.Close() })
	return ws
}

func tryDial(url string, header http.Header) (*websocket.Conn, int, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.Dial(url, header)
	status := 0
	if resp != nil {
		status = resp.StatusCode
		_ = resp.Body.Close()
	}
	return ws, status, err
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// read returns the next data frame, failing the test after 10s.
func read(tb testing.TB, ws *websocket.Conn) []byte {
	tb.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := ws.ReadMessage()
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	return data
}

// readClose reads until the server closes the socket and returns the
// close frame, skipping the data frames before it.
func readClose(tb testing.TB, ws *websocket.Conn) *websocket.CloseError {
	tb.Helper()
	for {
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce
		}
		tb.Fatalf("want a close frame, got %v", err)
	}
}

func write(tb testing.TB, ws *websocket.Conn, frame string) {
	tb.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		tb.Fatalf("write: %v", err)
	}
}
