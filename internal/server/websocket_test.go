package server

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
)

// wsMsg covers both graphql-transport-ws and legacy graphql-ws messages.
type wsMsg struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

const wsWait = 5 * time.Second

// dial opens a websocket to /query offering protocols; the connection is
// closed when the test ends.
func (s *testServer) dial(tb testing.TB, header http.Header, protocols ...string) (*websocket.Conn, *http.Response, error) {
	tb.Helper()
	d := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: wsWait}
	c, resp, err := d.Dial("ws"+strings.TrimPrefix(s.URL, "http")+"/query", header)
	if c != nil {
		tb.Cleanup(func() { c.Close() })
	}
	return c, resp, err
}

// mustDial is dial for tests that expect the handshake to succeed.
func (s *testServer) mustDial(tb testing.TB, protocols ...string) *websocket.Conn {
	tb.Helper()
	c, resp, err := s.dial(tb, nil, protocols...)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		tb.Fatalf("dial %v: %v (status %d)", protocols, err, status)
	}
	return c
}

func send(tb testing.TB, c *websocket.Conn, m wsMsg) {
	tb.Helper()
	if err := c.SetWriteDeadline(time.Now().Add(wsWait)); err != nil {
		tb.Fatal(err)
	}
	if err := c.WriteJSON(m); err != nil {
		tb.Fatalf("send %s: %v", m.Type, err)
	}
}

func recv(tb testing.TB, c *websocket.Conn) wsMsg {
	tb.Helper()
	if err := c.SetReadDeadline(time.Now().Add(wsWait)); err != nil {
		tb.Fatal(err)
	}
	var m wsMsg
	if err := c.ReadJSON(&m); err != nil {
		tb.Fatalf("recv: %v", err)
	}
	return m
}

// expect reads one message and checks its type.
func expect(tb testing.TB, c *websocket.Conn, typ string) wsMsg {
	tb.Helper()
	m := recv(tb, c)
	if m.Type != typ {
		tb.Fatalf("got %q message %s, want %q", m.Type, m.Payload, typ)
	}
	return m
}

// closeCode reads until the server closes the connection and returns the
// close code, or -1 if the connection ended without a close frame.
func closeCode(tb testing.TB, c *websocket.Conn) int {
	tb.Helper()
	if err := c.SetReadDeadline(time.Now().Add(wsWait)); err != nil {
		tb.Fatal(err)
	}
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			tb.Fatalf("server did not close the connection within %s", wsWait)
		}
		return -1
	}
}

func subscribePayload() json.RawMessage {
	return json.RawMessage(`{"query":"subscription { ticks }"}`)
}

func TestWebsocketGraphQLTransportWS(t *testing.T) {
	srv := newTestServer(t, Config{})
	c, resp, err := srv.dial(t, http.Header{"X-Request-Id": {"ws-1"}}, "graphql-transport-ws")
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("X-Request-Id"); got != "ws-1" {
		t.Errorf("101 response X-Request-Id = %q, want ws-1", got)
	}
	if c.Subprotocol() != "graphql-transport-ws" {
		t.Fatalf("subprotocol = %q", c.Subprotocol())
	}

	send(t, c, wsMsg{Type: "connection_init"})
	expect(t, c, "connection_ack")
	send(t, c, wsMsg{Type: "subscribe", ID: "1", Payload: subscribePayload()})
	for want := 1; want <= 3; want++ {
		m := expect(t, c, "next")
		var p struct {
			Data struct{ Ticks int } `json:"data"`
		}
		if err := json.Unmarshal(m.Payload, &p); err != nil || m.ID != "1" || p.Data.Ticks != want {
			t.Fatalf("next = %s id %q, want ticks %d for id 1", m.Payload, m.ID, want)
		}
	}

	// Client-side complete stops the subscription; the server confirms with
	// its own complete, possibly after ticks already in flight.
	send(t, c, wsMsg{Type: "complete", ID: "1"})
	for m := recv(t, c); m.Type != "complete"; m = recv(t, c) {
		if m.Type != "next" {
			t.Fatalf("got %q while waiting for complete", m.Type)
		}
	}

	send(t, c, wsMsg{Type: "ping"})
	expect(t, c, "pong")

	if err := c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(wsWait)); err != nil {
		t.Fatal(err)
	}
	if code := closeCode(t, c); code != websocket.CloseNormalClosure {
		t.Errorf("close code = %d, want %d", code, websocket.CloseNormalClosure)
	}

	opened := srv.logs.waitLines(t, "websocket opened", 1)
	closed := srv.logs.waitLines(t, "websocket closed", 1)
	if opened[0]["req_id"] != "ws-1" || closed[0]["req_id"] != "ws-1" || closed[0]["level"] != "info" {
		t.Errorf("websocket log lines = %v, %v", opened[0], closed[0])
	}
	if _, ok := closed[0]["duration_ms"].(float64); !ok {
		t.Errorf("websocket closed line lacks duration_ms: %v", closed[0])
	}
	if n := len(srv.logs.lines(t, "request")); n != 0 {
		t.Errorf("upgraded request also logged as a plain request (%d lines)", n)
	}
}

func TestWebsocketLegacyGraphQLWS(t *testing.T) {
	srv := newTestServer(t, Config{KeepAlive: 20 * time.Millisecond})
	c := srv.mustDial(t, "graphql-ws")
	if c.Subprotocol() != "graphql-ws" {
		t.Fatalf("subprotocol = %q", c.Subprotocol())
	}

	send(t, c, wsMsg{Type: "connection_init"})
	expect(t, c, "connection_ack")
	expect(t, c, "ka") // sent right after the ack
	expect(t, c, "ka") // and then every KeepAlive

	send(t, c, wsMsg{Type: "start", ID: "s", Payload: subscribePayload()})
	for m := recv(t, c); m.Type != "data"; m = recv(t, c) {
		if m.Type != "ka" {
			t.Fatalf("got %q while waiting for data", m.Type)
		}
	}
}

func TestWebsocketSubprotocol(t *testing.T) {
	tests := []struct {
		name       string
		offered    []string
		wantStatus int
		want       string
	}{
		{"transport-ws preferred", []string{"graphql-ws", "graphql-transport-ws"}, http.StatusSwitchingProtocols, "graphql-transport-ws"},
		{"legacy only", []string{"graphql-ws"}, http.StatusSwitchingProtocols, "graphql-ws"},
		{"unsupported", []string{"mqtt"}, http.StatusBadRequest, ""},
		{"none", nil, http.StatusBadRequest, ""},
	}
	srv := newTestServer(t, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, resp, err := srv.dial(t, nil, tt.offered...)
			if resp == nil {
				t.Fatalf("dial: %v", err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d (err %v)", resp.StatusCode, tt.wantStatus, err)
			}
			if c != nil && c.Subprotocol() != tt.want {
				t.Errorf("subprotocol = %q, want %q", c.Subprotocol(), tt.want)
			}
		})
	}
}

func TestWebsocketOrigin(t *testing.T) {
	var authCalls atomic.Int32
	auth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			authCalls.Add(1)
			next.ServeHTTP(w, r)
		})
	}
	allowList := newTestServer(t, Config{AllowedOrigins: []string{"https://app.example.com/"}, Authenticate: auth})
	anyOrigin := newTestServer(t, Config{AllowedOrigins: []string{"*"}})

	tests := []struct {
		name       string
		srv        *testServer
		origin     string
		wantStatus int
	}{
		{"absent", allowList, "", http.StatusSwitchingProtocols},
		{"listed", allowList, "https://app.example.com", http.StatusSwitchingProtocols},
		{"listed, other case", allowList, "https://APP.example.com", http.StatusSwitchingProtocols},
		{"same origin", allowList, allowList.URL, http.StatusSwitchingProtocols},
		{"foreign", allowList, "https://evil.example", http.StatusForbidden},
		{"listed host, other scheme", allowList, "http://app.example.com", http.StatusForbidden},
		{"garbage", allowList, "::not a url", http.StatusForbidden},
		{"wildcard", anyOrigin, "https://evil.example", http.StatusSwitchingProtocols},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			before := authCalls.Load()
			_, resp, err := tt.srv.dial(t, h, "graphql-transport-ws")
			if resp == nil {
				t.Fatalf("dial: %v", err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d (err %v)", resp.StatusCode, tt.wantStatus, err)
			}
			if tt.wantStatus == http.StatusForbidden && authCalls.Load() != before {
				t.Error("Authenticate ran for a refused origin")
			}
		})
	}
}

func TestWebsocketFrameTooLarge(t *testing.T) {
	srv := newTestServer(t, Config{MaxFrameBytes: 1024})
	c := srv.mustDial(t, "graphql-transport-ws")
	send(t, c, wsMsg{Type: "connection_init"})
	expect(t, c, "connection_ack")

	big := `{"query":"subscription { ticks }","variables":{"pad":"` + strings.Repeat("x", 4096) + `"}}`
	// The write itself may fail: the server stops reading after the frame
	// header and closes while the rest of the frame is still arriving.
	_ = c.SetWriteDeadline(time.Now().Add(wsWait))
	_ = c.WriteJSON(wsMsg{Type: "subscribe", ID: "1", Payload: json.RawMessage(big)})
	if code := closeCode(t, c); code != websocket.CloseMessageTooBig {
		t.Errorf("close code = %d, want %d", code, websocket.CloseMessageTooBig)
	}
}

func TestWebsocketInit(t *testing.T) {
	refuse := func(ctx context.Context, _ transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		return transport.WithWebsocketCloseCode(ctx, 4403), nil, errors.New("bad token")
	}
	refuseNilCtx := func(context.Context, transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		return nil, nil, errors.New("bad token")
	}
	accept := func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		if p.Authorization() != "Bearer good" {
			return transport.WithWebsocketCloseCode(ctx, 4401), nil, errors.New("unauthorized")
		}
		return ctx, &transport.InitPayload{"user": "alice"}, nil
	}

	tests := []struct {
		name        string
		init        transport.WebsocketInitFunc
		protocol    string
		payload     json.RawMessage
		wantAck     string // ack payload, if acked
		wantConnErr bool   // legacy graphql-ws reports the refusal in a message first
		wantCode    int
	}{
		{"accepted with ack payload", accept, "graphql-transport-ws", json.RawMessage(`{"Authorization":"Bearer good"}`), `{"user":"alice"}`, false, 0},
		{"refused with code", accept, "graphql-transport-ws", json.RawMessage(`{"Authorization":"Bearer bad"}`), "", false, 4401},
		{"refused", refuse, "graphql-transport-ws", nil, "", false, 4403},
		{"refused, legacy", refuse, "graphql-ws", nil, "", true, 4403},
		{"refused with nil context", refuseNilCtx, "graphql-transport-ws", nil, "", false, websocket.CloseNormalClosure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t, Config{WebsocketInit: tt.init})
			c := srv.mustDial(t, tt.protocol)
			send(t, c, wsMsg{Type: "connection_init", Payload: tt.payload})
			if tt.wantAck != "" {
				m := expect(t, c, "connection_ack")
				if string(m.Payload) != tt.wantAck {
					t.Errorf("ack payload = %s, want %s", m.Payload, tt.wantAck)
				}
				return
			}
			if tt.wantConnErr {
				m := expect(t, c, "connection_error")
				if !strings.Contains(string(m.Payload), "bad token") {
					t.Errorf("connection_error payload = %s", m.Payload)
				}
			}
			if code := closeCode(t, c); code != tt.wantCode {
				t.Errorf("close code = %d, want %d", code, tt.wantCode)
			}
		})
	}
}

func TestWebsocketInitTimeout(t *testing.T) {
	srv := newTestServer(t, Config{InitTimeout: 50 * time.Millisecond})
	c := srv.mustDial(t, "graphql-transport-ws")
	if code := closeCode(t, c); code != websocket.CloseProtocolError {
		t.Errorf("close code = %d, want %d", code, websocket.CloseProtocolError)
	}
}

func TestWebsocketPingPong(t *testing.T) {
	const interval = 30 * time.Millisecond
	srv := newTestServer(t, Config{KeepAlive: interval})

	t.Run("answering client stays", func(t *testing.T) {
		c := srv.mustDial(t, "graphql-transport-ws")
		send(t, c, wsMsg{Type: "connection_init"})
		expect(t, c, "connection_ack")
		// Well past the 2×interval deadline a silent client would hit.
		for range 8 {
			expect(t, c, "ping")
			send(t, c, wsMsg{Type: "pong"})
		}
	})
	t.Run("silent client dropped", func(t *testing.T) {
		c := srv.mustDial(t, "graphql-transport-ws")
		send(t, c, wsMsg{Type: "connection_init"})
		expect(t, c, "connection_ack")
		closeCode(t, c) // fails the test if the server keeps the connection
	})
}

func TestWebsocketGoroutinesReleased(t *testing.T) {
	srv := newTestServer(t, Config{})
	baseline := runtime.NumGoroutine()

	for _, graceful := range []bool{true, false} {
		for range 3 {
			c := srv.mustDial(t, "graphql-transport-ws")
			send(t, c, wsMsg{Type: "connection_init"})
			expect(t, c, "connection_ack")
			send(t, c, wsMsg{Type: "subscribe", ID: "1", Payload: subscribePayload()})
			expect(t, c, "next")
			if graceful {
				_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(wsWait))
			}
			c.Close()
		}
	}

	deadline := time.Now().Add(wsWait)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, baseline %d:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(srv.logs.lines(t, "websocket closed")); n != 6 {
		t.Errorf("%d websocket closed lines, want 6", n)
	}
}

func TestWebsocketBadHandshake(t *testing.T) {
	srv := newTestServer(t, Config{})
	tests := []struct {
		name       string
		method     string
		header     http.Header
		wantStatus int
	}{
		{"other upgrade", http.MethodGet, http.Header{"Upgrade": {"h2c"}, "Connection": {"Upgrade"}}, http.StatusBadRequest},
		{"old version", http.MethodGet, http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}, "Sec-Websocket-Version": {"8"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Sec-Websocket-Protocol": {"graphql-ws"}}, http.StatusBadRequest},
		{"not GET", http.MethodPost, http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}, "Sec-Websocket-Protocol": {"graphql-ws"}}, http.StatusMethodNotAllowed},
		{"no key", http.MethodGet, http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}, "Sec-Websocket-Version": {"13"}, "Sec-Websocket-Protocol": {"graphql-ws"}}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+"/query", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = tt.header
			resp, body := srv.do(t, req)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
			}
			if got := decodeGQL(t, body); len(got.Errors) != 1 {
				t.Errorf("body = %s, want one GraphQL-shaped error", body)
			}
		})
	}
}
