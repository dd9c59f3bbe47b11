package legacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jobchat/jobchat/internal/auth"
)

func ptr[T any](v T) *T { return &v }

// referenceKeys are the keys of the server's frame in the reference
// document's "Server → Client (Receive Message)".
var referenceKeys = []string{"conversation_id", "id", "is_read", "message_text", "message_type", "sender_id", "sender_name", "timestamp"}

// decodeFrame decodes a message frame, checking that it has exactly the
// reference document's keys.
func decodeFrame(tb testing.TB, data []byte) (typ string, msg map[string]any) {
	tb.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		tb.Fatalf("frame %s: %v", data, err)
	}
	if keys := sortedKeys(top); !slices.Equal(keys, []string{"message", "type"}) {
		tb.Fatalf("frame keys %v, want [message type]: %s", keys, data)
	}
	if err := json.Unmarshal(top["type"], &typ); err != nil {
		tb.Fatalf("frame type: %v", err)
	}
	if err := json.Unmarshal(top["message"], &msg); err != nil {
		tb.Fatalf("frame message: %v", err)
	}
	if keys := sortedKeys(msg); !slices.Equal(keys, referenceKeys) {
		tb.Fatalf("message keys %v, want %v", keys, referenceKeys)
	}
	return typ, msg
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestEncodeEvent(t *testing.T) {
	// The reference document's example, with jobchat's string ids, sent
	// from a server whose clock is not in UTC.
	manila := time.FixedZone("PHT", 8*3600)
	at := time.Date(2024, 1, 15, 18, 30, 0, 0, manila)
	user := Message{ID: "123", ConversationID: "45", SenderID: ptr("789"), SenderName: ptr("John Doe"),
		Text: "Hello, when can we start?", Type: "TEXT", Timestamp: at}

	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{"reference example", Event{Message: user},
			`{"type":"message","message":{"id":"123","conversation_id":"45","sender_id":"789","sender_name":"John Doe",` +
				`"message_text":"Hello, when can we start?","message_type":"TEXT","timestamp":"2024-01-15T10:30:00Z","is_read":false}}`},
		{"read, with fractional seconds", Event{Message: func() Message {
			m := user
			m.IsRead, m.Timestamp = true, at.Add(123456789*time.Nanosecond)
			return m
		}()},
			`{"type":"message","message":{"id":"123","conversation_id":"45","sender_id":"789","sender_name":"John Doe",` +
				`"message_text":"Hello, when can we start?","message_type":"TEXT","timestamp":"2024-01-15T10:30:00.123456789Z","is_read":true}}`},
		{"system message has no sender", Event{Message: Message{ID: "9", ConversationID: "45", SenderID: ptr("leaked"),
			Text: "Job accepted.", Type: "SYSTEM", Timestamp: at}},
			`{"type":"message","message":{"id":"9","conversation_id":"45","sender_id":null,"sender_name":null,` +
				`"message_text":"Job accepted.","message_type":"SYSTEM","timestamp":"2024-01-15T10:30:00Z","is_read":false}}`},
		{"edit", Event{Updated: true, Message: func() Message { m := user; m.Text = "Tomorrow?"; return m }()},
			`{"type":"message_updated","message":{"id":"123","conversation_id":"45","sender_id":"789","sender_name":"John Doe",` +
				`"message_text":"Tomorrow?","message_type":"TEXT","timestamp":"2024-01-15T10:30:00Z","is_read":false}}`},
		{"deletion", Event{Updated: true, Message: func() Message { m := user; m.Text = ""; return m }()},
			`{"type":"message_updated","message":{"id":"123","conversation_id":"45","sender_id":"789","sender_name":"John Doe",` +
				`"message_text":"","message_type":"TEXT","timestamp":"2024-01-15T10:30:00Z","is_read":false}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := encodeEvent(tt.ev)
			if string(got) != tt.want {
				t.Fatalf("frame\n got %s\nwant %s", got, tt.want)
			}
			decodeFrame(t, got)
		})
	}
}

func TestDecodeSend(t *testing.T) {
	tests := []struct {
		frame    string
		text     string
		typ      string
		accepted bool
	}{
		{`{"message": "Hello, when can we start?", "type": "TEXT"}`, "Hello, when can we start?", "TEXT", true},
		{`{"message": "no type"}`, "no type", "TEXT", true},
		{`{"message": "null type", "type": null}`, "null type", "TEXT", true},
		{`{"message": "lower", "type": "text"}`, "lower", "TEXT", true},
		{`{"message": "sys", "type": "SYSTEM"}`, "sys", "SYSTEM", true},
		{`{"message": "odd", "type": "STICKER"}`, "odd", "STICKER", true},
		{`{"message": "  padded  "}`, "  padded  ", "TEXT", true},
		{`not json`, "", "", false},
		{`{"message": "unterminated"`, "", "", false},
		{`["message"]`, "", "", false},
		{`"message"`, "", "", false},
		{`null`, "", "", false},
		{`{}`, "", "", false},
		{`{"type": "TEXT"}`, "", "", false},
		{`{"message": ""}`, "", "", false},
		{`{"message": " \n\t\u00a0 "}`, "", "", false},
		{`{"message": null}`, "", "", false},
		{`{"message": 5}`, "", "", false},
		{`{"message": {"text": "nested"}}`, "", "", false},
		{`{"message": "typed", "type": 1}`, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.frame, func(t *testing.T) {
			text, typ, notText, ok := decodeSend([]byte(tt.frame))
			if ok != tt.accepted || text != tt.text || typ != tt.typ || notText != "" {
				t.Fatalf("decodeSend = (%q, %q, %q, %v), want (%q, %q, \"\", %v)", text, typ, notText, ok, tt.text, tt.typ, tt.accepted)
			}
		})
	}
}

// A message that is not Unicode text is not quietly repaired: decodeSend
// says why, so that the socket refuses it instead of storing U+FFFD.
func TestDecodeSendNotText(t *testing.T) {
	tests := []struct{ frame, notText string }{
		{`{"message": "x\ud800"}`, `holds a lone surrogate escape \ud800`},
		{`{"message": "\udfff", "type": "TEXT"}`, `holds a lone surrogate escape \udfff`},
		{`{"MESSAGE": "\ud800 case"}`, `holds a lone surrogate escape \ud800`},
		{`{"message": "ok", "message": "\ud800"}`, `holds a lone surrogate escape \ud800`},
		{"{\"message\": \"\xc3\x28\"}", "is not valid UTF-8"},
		{`{"message": "\ud83d\ude00"}`, ""},
		{`{"message": "\ud800", "message": "fine"}`, ""},
		{`{"message": "\\ud800"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.frame, func(t *testing.T) {
			_, _, notText, ok := decodeSend([]byte(tt.frame))
			if !ok || notText != tt.notText {
				t.Fatalf("decodeSend: notText %q, ok %v; want %q, true", notText, ok, tt.notText)
			}
		})
	}
}

func TestHandshake(t *testing.T) {
	tests := []struct {
		name   string
		conv   string
		header http.Header
		query  string
		cfg    Config
		setup  func(b *fakeBackend)
		status int
	}{
		{name: "bearer header", conv: "c1", header: bearer("ann-token"), status: http.StatusSwitchingProtocols},
		{name: "lower-case scheme", conv: "c1", header: http.Header{"Authorization": {"bearer bob-token"}}, status: http.StatusSwitchingProtocols},
		{name: "query parameter", conv: "c1", query: "?token=ann-token", status: http.StatusSwitchingProtocols},
		{name: "cookie", conv: "c1", header: http.Header{"Cookie": {"jobchat_token=bob-token"}}, status: http.StatusSwitchingProtocols},
		{name: "configured cookie", conv: "c1", cfg: Config{Cookie: "sessiontoken"},
			header: http.Header{"Cookie": {"other=x; sessiontoken=ann-token"}}, status: http.StatusSwitchingProtocols},
		{name: "no token", conv: "c1", status: http.StatusForbidden},
		{name: "bad token", conv: "c1", header: bearer("forged"), status: http.StatusForbidden},
		{name: "bad token in the query", conv: "c1", query: "?token=forged", status: http.StatusForbidden},
		{name: "bad token in the cookie", conv: "c1", header: http.Header{"Cookie": {"jobchat_token=forged"}}, status: http.StatusForbidden},
		{name: "cookie of another name", conv: "c1", header: http.Header{"Cookie": {"token=ann-token"}}, status: http.StatusForbidden},
		{name: "not a bearer header", conv: "c1", header: http.Header{"Authorization": {"Basic YW5uOnB3"}}, status: http.StatusForbidden},
		{name: "bad header wins over a good query", conv: "c1", header: bearer("forged"), query: "?token=ann-token", status: http.StatusForbidden},
		{name: "service token", conv: "c1", header: bearer("svc-token"), status: http.StatusForbidden},
		{name: "stranger", conv: "c1", header: bearer("eve-token"), status: http.StatusForbidden},
		{name: "unknown conversation", conv: "c404", header: bearer("ann-token"), status: http.StatusForbidden},
		{name: "cross-site origin", conv: "c1", header: http.Header{"Authorization": {"Bearer ann-token"}, "Origin": {"https://evil.example"}},
			status: http.StatusForbidden},
		{name: "allowed origin", conv: "c1", cfg: Config{CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == "https://app.example" }},
			header: http.Header{"Authorization": {"Bearer ann-token"}, "Origin": {"https://app.example"}}, status: http.StatusSwitchingProtocols},
		{name: "access check fails", conv: "c1", header: bearer("ann-token"),
			setup: func(b *fakeBackend) { b.authorizeErr = errors.New("database is down") }, status: http.StatusInternalServerError},
		{name: "access check fails, logged by the backend", conv: "c1", header: bearer("ann-token"),
			setup: func(b *fakeBackend) { b.authorizeErr = &codedErr{"INTERNAL_SERVER_ERROR", "internal error"} }, status: http.StatusInternalServerError},
		{name: "access forbidden", conv: "c1", header: bearer("ann-token"),
			setup: func(b *fakeBackend) { b.authorizeErr = &codedErr{"FORBIDDEN", "users only"} }, status: http.StatusForbidden},
		{name: "follow fails", conv: "c1", header: bearer("ann-token"),
			setup: func(b *fakeBackend) { b.followErr = errors.New("redis is down") }, status: http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newFakeBackend()
			if tt.setup != nil {
				tt.setup(b)
			}
			srv := server(t, New(b, tt.cfg))
			ws, status, err := tryDial(wsURL(srv, tt.conv)+tt.query, tt.header)
			if status != tt.status {
				t.Fatalf("status %d (%v), want %d", status, err, tt.status)
			}
			if ws != nil {
				_ = ws.Close()
			}
		})
	}

	t.Run("not an upgrade", func(t *testing.T) {
		srv := server(t, New(newFakeBackend(), Config{}))
		resp, err := http.Get(srv.URL + "/ws/chat/c1/")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusUpgradeRequired {
			t.Fatalf("status %d, want %d", resp.StatusCode, http.StatusUpgradeRequired)
		}
	})
}

func TestSocketDeliversEvents(t *testing.T) {
	b := newFakeBackend()
	srv := server(t, New(b, Config{}))
	ann := dial(t, wsURL(srv, "c1"), bearer("ann-token"))
	bob := dial(t, wsURL(srv, "c1")+"?token=bob-token", nil)

	// A message from elsewhere (GraphQL, another instance) reaches both.
	at := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	b.publish("c1", Event{Message: Message{ID: "7", ConversationID: "c1", SenderID: ptr("bob"), SenderName: ptr("Bob Worker"),
		Text: "on my way", Type: "TEXT", Timestamp: at, IsRead: false}})
	for _, ws := range []*websocket.Conn{ann, bob} {
		typ, msg := decodeFrame(t, read(t, ws))
		want := map[string]any{"id": "7", "conversation_id": "c1", "sender_id": "bob", "sender_name": "Bob Worker",
			"message_text": "on my way", "message_type": "TEXT", "timestamp": "2024-01-15T10:30:00Z", "is_read": false}
		if typ != "message" || !reflect.DeepEqual(msg, want) {
			t.Fatalf("got %s %v, want message %v", typ, msg, want)
		}
	}

	// Ann's send is stored as hers and reaches both sockets, hers too.
	write(t, ann, `{"message": "Hello, when can we start?", "type": "TEXT"}`)
	for _, ws := range []*websocket.Conn{ann, bob} {
		typ, msg := decodeFrame(t, read(t, ws))
		if typ != "message" || msg["message_text"] != "Hello, when can we start?" || msg["sender_id"] != "ann" || msg["sender_name"] != "Ann Client" {
			t.Fatalf("got %s %v", typ, msg)
		}
	}
	if got, want := b.sends(), []fakeSend{{"ann", "c1", "Hello, when can we start?", "TEXT"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("sends %+v, want %+v", got, want)
	}

	// An edit goes out as message_updated.
	b.publish("c1", Event{Updated: true, Message: Message{ID: "7", ConversationID: "c1", SenderID: ptr("bob"), SenderName: ptr("Bob Worker"),
		Text: "", Type: "TEXT", Timestamp: at}})
	if typ, msg := decodeFrame(t, read(t, ann)); typ != "message_updated" || msg["id"] != "7" || msg["message_text"] != "" {
		t.Fatalf("got %s %v", typ, msg)
	}
}

// A message committed while the handshake is being answered, after the
// follower started, reaches the socket: the frontend misses nothing sent
// after it saw the socket open.
func TestSocketEventDuringHandshake(t *testing.T) {
	b := newFakeBackend()
	b.onFollow = func(conv string) {
		b.publish(conv, Event{Message: Message{ID: "early", ConversationID: conv, Text: "Chat is now active.", Type: "SYSTEM", Timestamp: time.Now()}})
	}
	srv := server(t, New(b, Config{}))
	ws := dial(t, wsURL(srv, "c1"), bearer("ann-token"))
	if _, msg := decodeFrame(t, read(t, ws)); msg["id"] != "early" || msg["sender_id"] != nil {
		t.Fatalf("got %v", msg)
	}
}

func TestSocketIgnoresWhatTheConsumerIgnored(t *testing.T) {
	b := newFakeBackend()
	srv := server(t, New(b, Config{}))
	ws := dial(t, wsURL(srv, "c1"), bearer("ann-token"))
	for _, frame := range []string{`not json`, `{"message": ""}`, `{"message": "   \n\t"}`, `{"type": "TEXT"}`,
		`{"message": 5}`, `[1, 2]`, `null`} {
		write(t, ws, frame)
	}
	// Frames are handled in order: once this one is echoed, the others
	// have been handled, and nothing came of them.
	write(t, ws, `{"message": "after"}`)
	if _, msg := decodeFrame(t, read(t, ws)); msg["message_text"] != "after" || msg["message_type"] != "TEXT" {
		t.Fatalf("got %v", msg)
	}
	if got := b.sends(); len(got) != 1 {
		t.Fatalf("sends %+v, want only the last frame", got)
	}
}

func TestSocketErrorFrames(t *testing.T) {
	b := newFakeBackend()
	b.sendErr = func(text, msgType string) error {
		switch {
		case msgType == "SYSTEM":
			return &codedErr{"FORBIDDEN", "input.messageType: users cannot send SYSTEM messages"}
		case strings.HasPrefix(text, "refuse "):
			code := strings.TrimPrefix(text, "refuse ")
			return fmt.Errorf("send message: %w", &codedErr{code, "refused with " + code})
		case text == "crash":
			return errors.New("send message: connection reset by peer")
		}
		return nil
	}
	srv := server(t, New(b, Config{}))
	ws := dial(t, wsURL(srv, "c1"), bearer("ann-token"))

	tests := []struct{ frame, code, message string }{
		{`{"message": "refuse RATE_LIMITED"}`, "RATE_LIMITED", "refused with RATE_LIMITED"},
		{`{"message": "refuse FAILED_PRECONDITION"}`, "FAILED_PRECONDITION", "refused with FAILED_PRECONDITION"},
		{`{"message": "refuse BAD_USER_INPUT"}`, "BAD_USER_INPUT", "refused with BAD_USER_INPUT"},
		{`{"message": "from the system", "type": "SYSTEM"}`, "FORBIDDEN", "input.messageType: users cannot send SYSTEM messages"},
		// Causes stay in the server's log.
		{`{"message": "crash"}`, "INTERNAL_SERVER_ERROR", "internal error"},
	}
	for _, tt := range tests {
		write(t, ws, tt.frame)
		var got map[string]any
		if err := json.Unmarshal(read(t, ws), &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"type": "error", "code": tt.code, "message": tt.message}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: got %v, want %v", tt.frame, got, want)
		}
	}
	// The socket is still open and sends.
	write(t, ws, `{"message": "still here"}`)
	if _, msg := decodeFrame(t, read(t, ws)); msg["message_text"] != "still here" {
		t.Fatalf("got %v", msg)
	}
}

func TestSocketFrameTooBig(t *testing.T) {
	b := newFakeBackend()
	srv := server(t, New(b, Config{MaxFrameBytes: 1024}))
	ws := dial(t, wsURL(srv, "c1"), bearer("ann-token"))
	write(t, ws, `{"message": "`+strings.Repeat("x", 900)+`"}`)
	decodeFrame(t, read(t, ws))
	write(t, ws, `{"message": "`+strings.Repeat("x", 1100)+`"}`)
	if ce := readClose(t, ws); ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("close %d %q, want 1009", ce.Code, ce.Text)
	}
	b.waitStopped(t)
	if got := b.sends(); len(got) != 1 {
		t.Fatalf("%d sends, want 1", len(got))
	}
}

// A client that reads nothing is cut off with 1008 once its queue is full,
// and its follower stops, so it holds neither memory nor the feed.
func TestSocketSlowClient(t *testing.T) {
	b := newFakeBackend()
	srv := server(t, New(b, Config{SendQueue: 8, WriteTimeout: time.Minute}))
	ws := dial(t, wsURL(srv, "c1"), bearer("ann-token"))
	big := strings.Repeat("x", 60<<10)
	full := false
	for i := 0; i < 100000 && !full; i++ {
		full = !b.publish("c1", Event{Message: Message{ID: fmt.Sprint(i), ConversationID: "c1", Text: big, Type: "TEXT", Timestamp: time.Now()}})
	}
	if !full {
		t.Fatal("the socket took every frame of a client that reads nothing")
	}
	// The follower is done: later events no longer reach the socket.
	if !b.publish("c1", Event{Message: Message{ID: "late", ConversationID: "c1", Type: "TEXT", Timestamp: time.Now()}}) {
		t.Fatal("the cut-off follower was offered another event")
	}
	if ce := readClose(t, ws); ce.Code != websocket.ClosePolicyViolation {
		t.Fatalf("close %d %q, want 1008", ce.Code, ce.Text)
	}
	b.waitStopped(t)
}

func TestSocketKeepAlive(t *testing.T) {
	t.Run("pings", func(t *testing.T) {
		b := newFakeBackend()
		srv := server(t, New(b, Config{KeepAlive: 20 * time.Millisecond}))
		ws := dial(t, wsURL(srv, "c1"), bearer("ann-token"))
		pings := make(chan struct{}, 100)
		ws.SetPingHandler(func(data string) error {
			select {
			case pings <- struct{}{}:
			default:
			}
			return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
		go func() {
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
		for range 3 {
			select {
			case <-pings:
			case <-time.After(10 * time.Second):
				t.Fatal("no keep-alive ping")
			}
		}
	})

	t.Run("a silent peer is dropped", func(t *testing.T) {
		b := newFakeBackend()
		srv := server(t, New(b, Config{KeepAlive: 20 * time.Millisecond, WriteTimeout: 50 * time.Millisecond}))
		ws := dial(t, wsURL(srv, "c1"), bearer("ann-token"))
		// Reading would answer the pings; a peer that has vanished does not.
		b.waitStopped(t)
		_ = ws.Close()
	})
}

func TestSocketTokenExpiry(t *testing.T) {
	b := newFakeBackend()
	b.callers["short-token"] = auth.Caller{ID: "ann", Name: "Ann Client", ExpiresAt: time.Now().Add(200 * time.Millisecond)}
	srv := server(t, New(b, Config{}))
	ws := dial(t, wsURL(srv, "c1"), bearer("short-token"))
	if ce := readClose(t, ws); ce.Code != closeExpired || ce.Text != "token expired" {
		t.Fatalf("close %d %q, want %d token expired", ce.Code, ce.Text, closeExpired)
	}
	b.waitStopped(t)
}

func TestSocketFollowerEnds(t *testing.T) {
	b := newFakeBackend()
	srv := server(t, New(b, Config{}))
	ws := dial(t, wsURL(srv, "c1"), bearer("ann-token"))
	b.fail("c1")
	if ce := readClose(t, ws); ce.Code != websocket.CloseInternalServerErr {
		t.Fatalf("close %d %q, want 1011", ce.Code, ce.Text)
	}
	b.waitStopped(t)
}

func TestSocketClientClose(t *testing.T) {
	b := newFakeBackend()
	srv := server(t, New(b, Config{}))
	ws := dial(t, wsURL(srv, "c1"), bearer("ann-token"))
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	b.waitStopped(t)
}

func TestShutdown(t *testing.T) {
	b := newFakeBackend()
	h := New(b, Config{})
	srv := server(t, h)
	ann := dial(t, wsURL(srv, "c1"), bearer("ann-token"))
	bob := dial(t, wsURL(srv, "c1"), bearer("bob-token"))

	// What was queued before the shutdown still goes out, then 1001.
	b.publish("c1", Event{Message: Message{ID: "last", ConversationID: "c1", Text: "bye", Type: "TEXT", Timestamp: time.Now()}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Config.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for _, ws := range []*websocket.Conn{ann, bob} {
		if _, msg := decodeFrame(t, read(t, ws)); msg["id"] != "last" {
			t.Fatalf("got %v", msg)
		}
		if ce := readClose(t, ws); ce.Code != websocket.CloseGoingAway {
			t.Fatalf("close %d %q, want 1001", ce.Code, ce.Text)
		}
	}
	b.waitStopped(t)
	b.waitStopped(t)

	// A handler that has shut down takes no new sockets.
	mux := http.NewServeMux()
	mux.Handle(Pattern, h)
	again := newServer(t, mux)
	if _, status, _ := tryDial(wsURL(again, "c1"), bearer("ann-token")); status != http.StatusServiceUnavailable {
		t.Fatalf("status %d after shutdown, want 503", status)
	}
	b.waitStopped(t)
}
