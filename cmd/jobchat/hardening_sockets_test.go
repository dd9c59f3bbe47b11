package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jobchat/jobchat/internal/wsconn"
)

// hardeningClose reads until the server closes ws, failing if it
// acknowledges a connection_init first, and returns the close frame.
func hardeningClose(tb testing.TB, ws *websocket.Conn) *websocket.CloseError {
	tb.Helper()
	for range 20 {
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, data, err := ws.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce
		}
		if err != nil {
			tb.Fatalf("want a close frame, got %v", err)
		}
		var m wsMessage
		if json.Unmarshal(data, &m) == nil && m.Type == "connection_ack" {
			tb.Fatal("the socket was acknowledged")
		}
	}
	tb.Fatal("no close frame")
	return nil
}

// TestHardeningInitPayload: on both GraphQL socket protocols, a
// connection_init whose token is present but not a string, or whose
// payload has the wrong shape, closes the socket at once (4403 or 4400),
// even with a good token on the upgrade request; it is never acknowledged
// as anonymous.
func TestHardeningInitPayload(t *testing.T) {
	e := newEnv(t, "sqlite", nil)
	good := http.Header{"Authorization": {"Bearer " + userToken(t, "ana", "Ana")}}
	tests := []struct {
		name    string
		payload string
		code    int
	}{
		{"authorization a number", `{"authorization": 42}`, 4403},
		{"Authorization an object", `{"Authorization": {"token": "x"}}`, 4403},
		{"authorization an array", `{"authorization": ["Bearer x"]}`, 4403},
		{"authorization true", `{"authorization": true}`, 4403},
		{"nested authorization a number", `{"headers": {"authorization": 1}}`, 4403},
		{"headers a string", `{"headers": "Authorization: Bearer x"}`, 4403},
		{"two different tokens", `{"authorization": "Bearer a", "Authorization": "Bearer b"}`, 4403},
		{"payload a string", `"Bearer x"`, 4400},
		{"payload an array", `[{"authorization": "Bearer x"}]`, 4400},
		{"payload a number", `42`, 4400},
		{"payload true", `true`, 4400},
	}
	for _, proto := range []string{"graphql-transport-ws", "graphql-ws"} {
		for _, tt := range tests {
			t.Run(proto+"/"+tt.name, func(t *testing.T) {
				ws := e.dialRaw(t, proto, good)
				frame := `{"type":"connection_init","payload":` + tt.payload + `}`
				if err := ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
					t.Fatal(err)
				}
				if ce := hardeningClose(t, ws); ce.Code != tt.code {
					t.Fatalf("close %d %q, want %d", ce.Code, ce.Text, tt.code)
				}
			})
		}
	}
}

// TestHardeningFrames: RFC 6455's rules above the subprotocol, on every
// socket: a binary message closes with 1003, a text message that is not
// UTF-8 with 1007, on graphql-transport-ws, the legacy graphql-ws and the
// old /ws/chat/{id}/ socket; and nothing of it is stored.
func TestHardeningFrames(t *testing.T) {
	e := newEnv(t, "sqlite", nil)
	ana := userToken(t, "ana", "Ana")
	conv := e.openJob(t, "job-frames", "ana", "ben", "")
	frames := []struct {
		name string
		typ  int
		data string
		code int
	}{
		{"binary", websocket.BinaryMessage, `{"type":"connection_init"}`, websocket.CloseUnsupportedData},
		{"invalid UTF-8", websocket.TextMessage, "{\"type\":\"connection_init\",\"payload\":{\"x\":\"\xff\"}}", websocket.CloseInvalidFramePayloadData},
		{"an encoded surrogate", websocket.TextMessage, "{\"message\": \"\xed\xa0\x80\"}", websocket.CloseInvalidFramePayloadData},
	}
	sockets := map[string]func(t *testing.T) *websocket.Conn{
		"graphql-transport-ws": func(t *testing.T) *websocket.Conn { return e.dialRaw(t, "graphql-transport-ws", nil) },
		"graphql-ws":           func(t *testing.T) *websocket.Conn { return e.dialRaw(t, "graphql-ws", nil) },
		"graphql-transport-ws after init": func(t *testing.T) *websocket.Conn {
			return e.apiDial(t, "graphql-transport-ws", nil, map[string]any{"authorization": "Bearer " + ana}).conn
		},
		"old chat socket": func(t *testing.T) *websocket.Conn { return e.lsDial(t, conv.ID, "", lsBearer(ana)) },
	}
	for name, dial := range sockets {
		for _, f := range frames {
			t.Run(name+"/"+f.name, func(t *testing.T) {
				ws := dial(t)
				if err := ws.WriteMessage(f.typ, []byte(f.data)); err != nil {
					t.Fatal(err)
				}
				if ce := hardeningClose(t, ws); ce.Code != f.code {
					t.Fatalf("close %d %q, want %d", ce.Code, ce.Text, f.code)
				}
			})
		}
	}
	var out struct {
		Conversation struct {
			LastSeq int `json:"lastSeq"`
		} `json:"conversation"`
	}
	e.do(t, ana, `query($c: ID!) { conversation(id: $c) { lastSeq } }`, map[string]any{"c": conv.ID}).ok(t, &out)
	if out.Conversation.LastSeq != 0 {
		t.Fatalf("lastSeq %d: a refused frame was stored", out.Conversation.LastSeq)
	}
}

// TestHardeningSocketQuota: the sockets of one user, on the GraphQL
// endpoint and the old chat socket together, and of one address are
// bounded; the one over a bound is closed with 4430 (user) or 4431
// (address), and a closed socket gives its place back. Services are not
// counted against a user bound.
func TestHardeningSocketQuota(t *testing.T) {
	init := func(token string) map[string]any { return map[string]any{"authorization": "Bearer " + token} }
	// again waits until a socket for token is acknowledged again, after
	// one was closed: its place comes back once the server has seen it go.
	again := func(t *testing.T, e *env, token string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			ws := e.dialRaw(t, "graphql-transport-ws", nil)
			if err := ws.WriteJSON(wsMessage{Type: "connection_init", Payload: mustJSON(t, init(token))}); err != nil {
				t.Fatal(err)
			}
			_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			var m wsMessage
			err := ws.ReadJSON(&m)
			if err == nil && m.Type == "connection_ack" {
				return
			}
			_ = ws.Close()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || (ce.Code != wsconn.CloseTooManyForUser && ce.Code != wsconn.CloseTooManyFromAddr) {
				t.Fatalf("got %+v, %v", m, err)
			}
			if time.Now().After(deadline) {
				t.Fatal("the closed socket's place never came back")
			}
		}
	}

	t.Run("per user", func(t *testing.T) {
		e := newEnv(t, "sqlite", map[string]string{"JOBCHAT_WS_MAX_PER_USER": "2", "JOBCHAT_WS_MAX_PER_IP": "0"})
		ana, ben, svc := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben"), serviceToken(t)
		conv := e.openJob(t, "job-quota", "ana", "ben", "")
		first := e.apiDial(t, "graphql-transport-ws", nil, init(ana))
		old := e.lsDial(t, conv.ID, "", lsBearer(ana))
		lsReady(t, old, "one of ana's two")
		// Ana's third, on either protocol or the old socket, is over her
		// bound.
		for _, proto := range []string{"graphql-transport-ws", "graphql-ws"} {
			if ce := e.apiInitRefused(t, proto, nil, init(ana)); ce.Code != wsconn.CloseTooManyForUser {
				t.Fatalf("%s: close %d %q, want %d", proto, ce.Code, ce.Text, wsconn.CloseTooManyForUser)
			}
		}
		if ce := lsClose(t, e.lsDial(t, conv.ID, "", lsBearer(ana))); ce.Code != wsconn.CloseTooManyForUser {
			t.Fatalf("old socket: close %d %q, want %d", ce.Code, ce.Text, wsconn.CloseTooManyForUser)
		}
		// Others have bounds of their own; a service has none.
		e.apiDial(t, "graphql-transport-ws", nil, init(ben))
		for range 3 {
			e.apiDial(t, "graphql-ws", nil, init(svc))
		}
		// Ana closes one: her place comes back; her other socket works on.
		_ = first.conn.Close()
		again(t, e, ana)
		if got := lsReady(t, old, "still here")["message_text"]; got != "still here" {
			t.Fatalf("ana's old socket: %v", got)
		}
	})

	t.Run("per address", func(t *testing.T) {
		e := newEnv(t, "sqlite", map[string]string{"JOBCHAT_WS_MAX_PER_USER": "0", "JOBCHAT_WS_MAX_PER_IP": "3"})
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-quota", "ana", "ben", "")
		first := e.apiDial(t, "graphql-transport-ws", nil, init(ana))
		e.apiDial(t, "graphql-ws", nil, init(ben))
		lsReady(t, e.lsDial(t, conv.ID, "", lsBearer(ana)), "third from this address")
		// The fourth is refused before any init, whoever it is.
		if ce := hardeningClose(t, e.dialRaw(t, "graphql-transport-ws", nil)); ce.Code != wsconn.CloseTooManyFromAddr {
			t.Fatalf("close %d %q, want %d", ce.Code, ce.Text, wsconn.CloseTooManyFromAddr)
		}
		if ce := lsClose(t, e.lsDial(t, conv.ID, "", lsBearer(ben))); ce.Code != wsconn.CloseTooManyFromAddr {
			t.Fatalf("old socket: close %d %q, want %d", ce.Code, ce.Text, wsconn.CloseTooManyFromAddr)
		}
		_ = first.conn.Close()
		again(t, e, ben)
	})
}
