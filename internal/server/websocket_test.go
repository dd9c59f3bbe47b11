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

// The tests below cover the websocket transport (package wsgql) through the
// full handler, one test per protocol rule, over real sockets. Names say the
// protocol and the rule; the closing note of issue 3 lists them.

// initTransportWS opens a graphql-transport-ws socket and completes init.
func (s *testServer) initTransportWS(tb testing.TB) *websocket.Conn {
	tb.Helper()
	c := s.mustDial(tb, "graphql-transport-ws")
	send(tb, c, wsMsg{Type: "connection_init"})
	expect(tb, c, "connection_ack")
	return c
}

// sendRaw writes a text frame as is, for messages wsMsg cannot express.
func sendRaw(tb testing.TB, c *websocket.Conn, frame string) {
	tb.Helper()
	if err := c.SetWriteDeadline(time.Now().Add(wsWait)); err != nil {
		tb.Fatal(err)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		tb.Fatalf("send %s: %v", frame, err)
	}
}

// closeWith reads until the server closes and checks the close code.
func closeWith(tb testing.TB, c *websocket.Conn, want int) {
	tb.Helper()
	if got := closeCode(tb, c); got != want {
		tb.Fatalf("close code = %d, want %d", got, want)
	}
}

// quiet proves no frame for an operation is pending: the server answers
// messages in order, so a pong that arrives first means nothing else came.
func quiet(tb testing.TB, c *websocket.Conn) {
	tb.Helper()
	send(tb, c, wsMsg{Type: "ping"})
	if m := recv(tb, c); m.Type != "pong" {
		tb.Fatalf("got %q (%s) where nothing more was due", m.Type, m.Payload)
	}
}

func TestTransportWSQueryGivesNextThenComplete(t *testing.T) {
	srv := newTestServer(t, Config{})
	c := srv.initTransportWS(t)
	send(t, c, wsMsg{Type: "subscribe", ID: "q", Payload: json.RawMessage(`{"query":"{ hello }"}`)})
	if m := expect(t, c, "next"); m.ID != "q" || string(m.Payload) != `{"data":{"hello":"world"}}` {
		t.Fatalf("next = %+v", m)
	}
	if m := expect(t, c, "complete"); m.ID != "q" {
		t.Fatalf("complete for %q", m.ID)
	}
	send(t, c, wsMsg{Type: "subscribe", ID: "m", Payload: json.RawMessage(`{"query":"mutation { bump }"}`)})
	if m := expect(t, c, "next"); m.ID != "m" || !strings.Contains(string(m.Payload), `"bump":1`) {
		t.Fatalf("next = %+v", m)
	}
	expect(t, c, "complete")
	quiet(t, c)
}

func TestTransportWSSubscriptionStreamsNext(t *testing.T) {
	srv := newTestServer(t, Config{})
	c, resp, err := srv.dial(t, http.Header{"X-Request-Id": {"ws-1"}}, "graphql-transport-ws")
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("X-Request-Id"); got != "ws-1" {
		t.Errorf("101 response X-Request-Id = %q, want ws-1", got)
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
	if err := c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(wsWait)); err != nil {
		t.Fatal(err)
	}
	closeWith(t, c, websocket.CloseNormalClosure)

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

func TestTransportWSInitTimeoutCloses4408(t *testing.T) {
	srv := newTestServer(t, Config{InitTimeout: 50 * time.Millisecond})
	c := srv.mustDial(t, "graphql-transport-ws")
	closeWith(t, c, 4408)
}

func TestTransportWSSecondInitCloses4429(t *testing.T) {
	srv := newTestServer(t, Config{})
	c := srv.initTransportWS(t)
	send(t, c, wsMsg{Type: "connection_init"})
	closeWith(t, c, 4429)
}

func TestTransportWSSubscribeBeforeAckCloses4401(t *testing.T) {
	srv := newTestServer(t, Config{})
	c := srv.mustDial(t, "graphql-transport-ws")
	send(t, c, wsMsg{Type: "subscribe", ID: "1", Payload: subscribePayload()})
	closeWith(t, c, 4401)
}

func TestTransportWSAuthFailureCloses4403(t *testing.T) {
	refuse := func(ctx context.Context, p map[string]any) (context.Context, time.Time, error) {
		if p["authorization"] != "Bearer good" {
			return ctx, time.Time{}, errors.New("bad token")
		}
		return ctx, time.Time{}, nil
	}
	srv := newTestServer(t, Config{WebsocketInit: refuse})
	c := srv.mustDial(t, "graphql-transport-ws")
	send(t, c, wsMsg{Type: "connection_init", Payload: json.RawMessage(`{"authorization":"Bearer bad"}`)})
	if err := c.SetReadDeadline(time.Now().Add(wsWait)); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4403 || ce.Text != "Forbidden: bad token" {
		t.Fatalf("read after refused init: %v, want close 4403 \"Forbidden: bad token\"", err)
	}

	ok := srv.mustDial(t, "graphql-transport-ws")
	send(t, ok, wsMsg{Type: "connection_init", Payload: json.RawMessage(`{"authorization":"Bearer good"}`)})
	expect(t, ok, "connection_ack")
}

func TestTransportWSTokenExpiryCloses4403(t *testing.T) {
	expiring := func(ctx context.Context, _ map[string]any) (context.Context, time.Time, error) {
		return ctx, time.Now().Add(100 * time.Millisecond), nil
	}
	srv := newTestServer(t, Config{WebsocketInit: expiring})
	c := srv.initTransportWS(t)
	send(t, c, wsMsg{Type: "subscribe", ID: "1", Payload: subscribePayload()})
	// The subscription's ticks end with the socket: no complete, which would
	// tell the client its subscription finished normally.
	closeAfterNexts(t, c, 4403)
}

// closeAfterNexts reads until the server closes with want, allowing only
// "next" messages before it: an operation ended by its socket's end gets
// no complete.
func closeAfterNexts(t *testing.T, c *websocket.Conn, want int) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(wsWait)); err != nil {
		t.Fatal(err)
	}
	for {
		var m wsMsg
		err := c.ReadJSON(&m)
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			if ce.Code != want {
				t.Fatalf("close code = %d (%s), want %d", ce.Code, ce.Text, want)
			}
			return
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if m.Type != "next" {
			t.Fatalf("got %q before the close", m.Type)
		}
	}
}

func TestTransportWSInvalidJSONCloses4400(t *testing.T) {
	srv := newTestServer(t, Config{})
	c := srv.initTransportWS(t)
	sendRaw(t, c, `{"type":`)
	closeWith(t, c, 4400)
}

// framesClose4400 sends each frame on a fresh socket (after init when
// acked) and expects close 4400.
func framesClose4400(t *testing.T, acked bool, frames ...string) {
	t.Helper()
	for _, frame := range frames {
		t.Run(frame, func(t *testing.T) {
			srv := newTestServer(t, Config{})
			var c *websocket.Conn
			if acked {
				c = srv.initTransportWS(t)
			} else {
				c = srv.mustDial(t, "graphql-transport-ws")
			}
			sendRaw(t, c, frame)
			closeWith(t, c, 4400)
		})
	}
}

func TestTransportWSUnknownTypeCloses4400(t *testing.T) {
	framesClose4400(t, true, `{"type":"subscribe-all"}`, `{"type":"next","id":"1","payload":{}}`, `{"id":"1"}`, `[]`)
}

func TestTransportWSMissingIDCloses4400(t *testing.T) {
	framesClose4400(t, true,
		`{"type":"subscribe","payload":{"query":"{ hello }"}}`,
		`{"type":"subscribe","id":"","payload":{"query":"{ hello }"}}`,
		`{"type":"subscribe","id":7,"payload":{"query":"{ hello }"}}`,
		`{"type":"complete"}`,
	)
}

func TestTransportWSMissingPayloadCloses4400(t *testing.T) {
	framesClose4400(t, true,
		`{"type":"subscribe","id":"1"}`,
		`{"type":"subscribe","id":"1","payload":"{ hello }"}`,
		`{"type":"subscribe","id":"1","payload":{"variables":{}}}`,
		`{"type":"subscribe","id":"1","payload":{"query":"{ hello }","variables":[1]}}`,
	)
}

func TestTransportWSInitPayloadNotObjectCloses4400(t *testing.T) {
	framesClose4400(t, false,
		`{"type":"connection_init","payload":"token"}`,
		`{"type":"connection_init","payload":[1]}`,
		`{"type":"connection_init","payload":42}`,
		`{"type":"connection_init","payload":true}`,
	)
}

func TestTransportWSDuplicateIDCloses4409(t *testing.T) {
	srv := newTestServer(t, Config{})
	c := srv.initTransportWS(t)
	send(t, c, wsMsg{Type: "subscribe", ID: "1", Payload: subscribePayload()})
	expect(t, c, "next")
	send(t, c, wsMsg{Type: "subscribe", ID: "1", Payload: subscribePayload()})
	closeWith(t, c, 4409)
}

func TestTransportWSIDReusableAfterComplete(t *testing.T) {
	srv := newTestServer(t, Config{})
	c := srv.initTransportWS(t)
	for range 2 {
		send(t, c, wsMsg{Type: "subscribe", ID: "q", Payload: json.RawMessage(`{"query":"{ hello }"}`)})
		expect(t, c, "next")
		expect(t, c, "complete")
	}
}

func TestTransportWSPingBeforeInitGetsPong(t *testing.T) {
	srv := newTestServer(t, Config{})
	c := srv.mustDial(t, "graphql-transport-ws")
	send(t, c, wsMsg{Type: "ping"})
	expect(t, c, "pong")
	send(t, c, wsMsg{Type: "connection_init"})
	expect(t, c, "connection_ack")
	send(t, c, wsMsg{Type: "ping", Payload: json.RawMessage(`{"t":1}`)})
	expect(t, c, "pong")
}

func TestTransportWSPongAccepted(t *testing.T) {
	srv := newTestServer(t, Config{})
	c := srv.initTransportWS(t)
	send(t, c, wsMsg{Type: "pong"})
	send(t, c, wsMsg{Type: "pong", Payload: json.RawMessage(`{"x":1}`)})
	quiet(t, c)
}

func TestTransportWSErrorEndsOperationWithoutComplete(t *testing.T) {
	srv := newTestServer(t, Config{})
	c := srv.initTransportWS(t)
	send(t, c, wsMsg{Type: "subscribe", ID: "bad", Payload: json.RawMessage(`{"query":"{ nope }"}`)})
	m := expect(t, c, "error")
	var errs []struct{ Message string }
	if err := json.Unmarshal(m.Payload, &errs); err != nil || m.ID != "bad" || len(errs) != 1 || !strings.Contains(errs[0].Message, "nope") {
		t.Fatalf("error = %+v", m)
	}
	quiet(t, c)
	// The id is free again: the error ended the operation.
	send(t, c, wsMsg{Type: "subscribe", ID: "bad", Payload: json.RawMessage(`{"query":"{ hello }"}`)})
	expect(t, c, "next")
	expect(t, c, "complete")
}

func TestTransportWSNoCompleteAfterClientComplete(t *testing.T) {
	srv := newTestServer(t, Config{})
	c := srv.initTransportWS(t)
	send(t, c, wsMsg{Type: "subscribe", ID: "1", Payload: subscribePayload()})
	expect(t, c, "next")
	send(t, c, wsMsg{Type: "complete", ID: "1"})
	// Ticks in flight may still arrive before the server sees the complete;
	// after the pong that answers a later ping, nothing may come for id 1.
	send(t, c, wsMsg{Type: "ping"})
	for m := recv(t, c); m.Type != "pong"; m = recv(t, c) {
		if m.Type != "next" {
			t.Fatalf("got %q after the client's complete", m.Type)
		}
	}
	time.Sleep(50 * time.Millisecond) // several ticks' worth
	quiet(t, c)
}

func TestWebsocketSubprotocolNegotiation(t *testing.T) {
	tests := []struct {
		name      string
		offered   []string
		want      string
		wantClose int
	}{
		{"transport-ws wins when offered", []string{"graphql-ws", "graphql-transport-ws"}, "graphql-transport-ws", 0},
		{"legacy when only it is offered", []string{"graphql-ws"}, "graphql-ws", 0},
		{"unsupported refused with 4406", []string{"mqtt"}, "", 4406},
		{"none refused with 4406", nil, "", 4406},
	}
	srv := newTestServer(t, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := srv.mustDial(t, tt.offered...)
			if c.Subprotocol() != tt.want {
				t.Fatalf("subprotocol = %q, want %q", c.Subprotocol(), tt.want)
			}
			if tt.wantClose != 0 {
				closeWith(t, c, tt.wantClose)
				return
			}
			send(t, c, wsMsg{Type: "connection_init"})
			expect(t, c, "connection_ack")
		})
	}
}

func TestLegacyInitGetsAckAndKeepAlive(t *testing.T) {
	srv := newTestServer(t, Config{KeepAlive: 20 * time.Millisecond})
	c := srv.mustDial(t, "graphql-ws")
	send(t, c, wsMsg{Type: "connection_init"})
	expect(t, c, "connection_ack")
	expect(t, c, "ka") // right after the ack
	expect(t, c, "ka") // and then every KeepAlive
}

func TestLegacyStartDataStopComplete(t *testing.T) {
	srv := newTestServer(t, Config{})
	c := srv.mustDial(t, "graphql-ws")
	send(t, c, wsMsg{Type: "connection_init"})
	expect(t, c, "connection_ack")
	expect(t, c, "ka")

	send(t, c, wsMsg{Type: "start", ID: "s", Payload: subscribePayload()})
	if m := expect(t, c, "data"); m.ID != "s" || !strings.Contains(string(m.Payload), `"ticks":1`) {
		t.Fatalf("data = %+v", m)
	}
	// PROTOCOL.md: the server answers stop with complete, and then sends
	// nothing more for the operation.
	send(t, c, wsMsg{Type: "stop", ID: "s"})
	for m := recv(t, c); !(m.Type == "complete" && m.ID == "s"); m = recv(t, c) {
		if m.Type != "data" || m.ID != "s" { // data in flight before the stop
			t.Fatalf("unexpected %+v while waiting for complete", m)
		}
	}
	time.Sleep(50 * time.Millisecond) // several ticks' worth
	send(t, c, wsMsg{Type: "start", ID: "q", Payload: json.RawMessage(`{"query":"{ hello }"}`)})
	if m := expect(t, c, "data"); m.ID != "q" || string(m.Payload) != `{"data":{"hello":"world"}}` {
		t.Fatalf("query data = %+v", m)
	}
	if m := expect(t, c, "complete"); m.ID != "q" {
		t.Fatalf("complete for %q", m.ID)
	}
}

func TestLegacyValidationErrorFrame(t *testing.T) {
	srv := newTestServer(t, Config{})
	c := srv.mustDial(t, "graphql-ws")
	send(t, c, wsMsg{Type: "connection_init"})
	expect(t, c, "connection_ack")
	expect(t, c, "ka")
	send(t, c, wsMsg{Type: "start", ID: "e", Payload: json.RawMessage(`{"query":"{ nope }"}`)})
	if m := expect(t, c, "error"); m.ID != "e" || !strings.Contains(string(m.Payload), "nope") {
		t.Fatalf("error = %+v", m)
	}
}

func TestLegacyConnectionTerminateCloses(t *testing.T) {
	srv := newTestServer(t, Config{})
	c := srv.mustDial(t, "graphql-ws")
	send(t, c, wsMsg{Type: "connection_init"})
	expect(t, c, "connection_ack")
	send(t, c, wsMsg{Type: "connection_terminate"})
	closeWith(t, c, websocket.CloseNormalClosure)
}

func TestLegacyMalformedMessageKeepsSocket(t *testing.T) {
	srv := newTestServer(t, Config{})
	c := srv.mustDial(t, "graphql-ws")
	for _, tc := range []struct{ frame, want string }{
		{`not json`, "connection_error"}, // as PROTOCOL.md says for a message that does not parse
		{`{"type":"bogus","id":"1"}`, "error"},
		{`{"type":"start","payload":{"query":"{ hello }"}}`, "error"},
		{`{"type":"start","id":"1","payload":{"query":"{ hello }"}}`, "error"}, // before init
	} {
		sendRaw(t, c, tc.frame)
		if m := expect(t, c, tc.want); !strings.Contains(string(m.Payload), "message") {
			t.Fatalf("%s: %s payload %s", tc.frame, tc.want, m.Payload)
		}
	}
	send(t, c, wsMsg{Type: "connection_init"})
	expect(t, c, "connection_ack")
}

func TestLegacyAuthFailureSendsConnectionError(t *testing.T) {
	refuse := func(ctx context.Context, _ map[string]any) (context.Context, time.Time, error) {
		return ctx, time.Time{}, errors.New("bad token")
	}
	srv := newTestServer(t, Config{WebsocketInit: refuse})
	c := srv.mustDial(t, "graphql-ws")
	send(t, c, wsMsg{Type: "connection_init"})
	if m := expect(t, c, "connection_error"); !strings.Contains(string(m.Payload), "bad token") {
		t.Fatalf("connection_error payload = %s", m.Payload)
	}
	closeWith(t, c, 4403)
}

func TestWebsocketFrameTooLargeCloses1009(t *testing.T) {
	srv := newTestServer(t, Config{MaxFrameBytes: 1024})
	c := srv.initTransportWS(t)
	big := `{"query":"subscription { ticks }","variables":{"pad":"` + strings.Repeat("x", 4096) + `"}}`
	// The write itself may fail: the server stops reading after the frame
	// header and closes while the rest of the frame is still arriving.
	_ = c.SetWriteDeadline(time.Now().Add(wsWait))
	_ = c.WriteJSON(wsMsg{Type: "subscribe", ID: "1", Payload: json.RawMessage(big)})
	closeWith(t, c, websocket.CloseMessageTooBig)
}

func TestWebsocketMaxOperations(t *testing.T) {
	srv := newTestServer(t, Config{MaxOperations: 2})
	c := srv.initTransportWS(t)
	send(t, c, wsMsg{Type: "subscribe", ID: "1", Payload: subscribePayload()})
	send(t, c, wsMsg{Type: "subscribe", ID: "2", Payload: subscribePayload()})
	send(t, c, wsMsg{Type: "subscribe", ID: "3", Payload: subscribePayload()})
	for {
		m := recv(t, c)
		if m.Type == "next" {
			continue
		}
		if m.Type != "error" || m.ID != "3" || !strings.Contains(string(m.Payload), "RATE_LIMITED") || !strings.Contains(string(m.Payload), "at most 2") {
			t.Fatalf("third operation got %+v, want a RATE_LIMITED error", m)
		}
		break
	}
	// Completing one makes room again.
	send(t, c, wsMsg{Type: "complete", ID: "1"})
	send(t, c, wsMsg{Type: "subscribe", ID: "4", Payload: subscribePayload()})
	for m := recv(t, c); m.ID != "4"; m = recv(t, c) {
		if m.Type != "next" {
			t.Fatalf("got %+v while waiting for id 4", m)
		}
	}
}

func TestWebsocketSlowConsumerCutOff(t *testing.T) {
	srv := newTestServer(t, Config{SendQueue: 8, WriteTimeout: 200 * time.Millisecond})
	slow := srv.initTransportWS(t)
	send(t, slow, wsMsg{Type: "subscribe", ID: "b", Payload: json.RawMessage(`{"query":"subscription { blobs }"}`)})

	// While the slow client reads nothing, a neighbour is served normally.
	fast := srv.initTransportWS(t)
	send(t, fast, wsMsg{Type: "subscribe", ID: "1", Payload: subscribePayload()})
	for range 5 {
		expect(t, fast, "next")
	}

	srv.logs.waitLines(t, "websocket closed", 1)
	// The slow client finds its socket gone once it reads what was buffered.
	if err := slow.SetReadDeadline(time.Now().Add(wsWait)); err != nil {
		t.Fatal(err)
	}
	for {
		if _, _, err := slow.ReadMessage(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("slow client was not cut off")
			}
			break
		}
	}
	if n := len(srv.logs.lines(t, "websocket client not reading; cutting it off")) + len(srv.logs.lines(t, "websocket error")); n == 0 {
		t.Errorf("cut-off not logged:\n%s", srv.logs.String())
	}
	expect(t, fast, "next")
}

func TestWebsocketDeadPeerDropped(t *testing.T) {
	const interval = 30 * time.Millisecond
	srv := newTestServer(t, Config{KeepAlive: interval, WriteTimeout: 50 * time.Millisecond})

	t.Run("answering client stays", func(t *testing.T) {
		c := srv.initTransportWS(t)
		pings := make(chan struct{}, 100)
		c.SetPingHandler(func(data string) error {
			pings <- struct{}{}
			return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(wsWait))
		})
		// Reading runs the ping handler; well past the deadline a silent
		// client would hit, the socket is still open.
		go func() {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
		for range 8 {
			select {
			case <-pings:
			case <-time.After(wsWait):
				t.Fatal("no ping from the server")
			}
		}
	})
	t.Run("silent client dropped", func(t *testing.T) {
		c := srv.initTransportWS(t)
		c.SetPingHandler(func(string) error { return nil })
		if code := closeCode(t, c); code != -1 && code != 1006 {
			t.Fatalf("close code %d; want the connection dropped", code)
		}
	})
}

func TestWebsocketShutdownClosesGoingAway(t *testing.T) {
	srv := newTestServer(t, Config{})
	c := srv.initTransportWS(t)
	send(t, c, wsMsg{Type: "subscribe", ID: "1", Payload: subscribePayload()})
	expect(t, c, "next")
	// Sockets are hijacked: Shutdown neither waits for them nor closes
	// them by itself; the transport's shutdown hook does.
	go func() { _ = srv.Config.Shutdown(context.Background()) }()
	closeAfterNexts(t, c, websocket.CloseGoingAway)
}

func TestWebsocketGoroutinesReleased(t *testing.T) {
	srv := newTestServer(t, Config{})
	// Let the server's first goroutines settle.
	c0 := srv.initTransportWS(t)
	c0.Close()
	time.Sleep(50 * time.Millisecond)
	baseline := runtime.NumGoroutine()

	for _, graceful := range []bool{true, false} {
		for range 3 {
			c := srv.initTransportWS(t)
			send(t, c, wsMsg{Type: "subscribe", ID: "1", Payload: subscribePayload()})
			send(t, c, wsMsg{Type: "subscribe", ID: "2", Payload: json.RawMessage(`{"query":"subscription { blobs }"}`)})
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
	if n := len(srv.logs.waitLines(t, "websocket closed", 7)); n != 7 {
		t.Errorf("%d websocket closed lines, want 7", n)
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
