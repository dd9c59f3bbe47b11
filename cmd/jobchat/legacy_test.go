package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jobchat/jobchat/db/dbtest"
	"github.com/jobchat/jobchat/internal/auth"
	"github.com/jobchat/jobchat/internal/testsvc"
)

// The old chat socket (issue 8, Semantics 7) against the real app on every
// dialect, with a plain WebSocket client sending and reading the Django
// consumer's JSON, as the old frontend does. Helpers start with "ls".

// lsFrame is a frame of the old socket: a message, or an error.
type lsFrame struct {
	Type string
	// Message is a message frame's message.
	Message map[string]any
	// Code and Text are an error frame's code and message.
	Code, Text string
	Raw        []byte
}

// lsReferenceKeys are the keys of the reference document's server frame.
var lsReferenceKeys = []string{"conversation_id", "id", "is_read", "message_text", "message_type", "sender_id", "sender_name", "timestamp"}

// lsURL is the old socket's address for conversationID, with query (such
// as "?token=...") appended.
func (e *env) lsURL(conversationID, query string) string {
	return "ws" + strings.TrimPrefix(e.url, "http") + "/ws/chat/" + conversationID + "/" + query
}

// lsDial opens the old socket, failing the test unless the handshake
// succeeds.
func (e *env) lsDial(tb testing.TB, conversationID, query string, header http.Header) *websocket.Conn {
	tb.Helper()
	ws, status, err := e.lsTryDial(conversationID, query, header)
	if err != nil {
		tb.Fatalf("dial the old socket: status %d: %v", status, err)
	}
	tb.Cleanup(func() { _ = ws.Close() })
	return ws
}

func (e *env) lsTryDial(conversationID, query string, header http.Header) (*websocket.Conn, int, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.Dial(e.lsURL(conversationID, query), header)
	status := 0
	if resp != nil {
		status = resp.StatusCode
		_ = resp.Body.Close()
	}
	return ws, status, err
}

func lsBearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

func lsSend(tb testing.TB, ws *websocket.Conn, frame string) {
	tb.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		tb.Fatalf("write to the old socket: %v", err)
	}
}

func lsSendText(tb testing.TB, ws *websocket.Conn, text string) {
	tb.Helper()
	b, _ := json.Marshal(map[string]string{"message": text, "type": "TEXT"})
	lsSend(tb, ws, string(b))
}

// lsNext reads the next frame, waiting at most 10s; a message frame must
// have exactly the reference document's keys.
func lsNext(tb testing.TB, ws *websocket.Conn) lsFrame {
	tb.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := ws.ReadMessage()
	if err != nil {
		tb.Fatalf("read the old socket: %v", err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		tb.Fatalf("frame %s: %v", data, err)
	}
	f := lsFrame{Raw: data}
	_ = json.Unmarshal(keys["type"], &f.Type)
	switch f.Type {
	case "message", "message_updated":
		if got := lsKeys(keys); !slices.Equal(got, []string{"message", "type"}) {
			tb.Fatalf("frame keys %v: %s", got, data)
		}
		if err := json.Unmarshal(keys["message"], &f.Message); err != nil {
			tb.Fatalf("frame %s: %v", data, err)
		}
		if got := lsKeys(f.Message); !slices.Equal(got, lsReferenceKeys) {
			tb.Fatalf("message keys %v, want %v: %s", got, lsReferenceKeys, data)
		}
	case "error":
		if got := lsKeys(keys); !slices.Equal(got, []string{"code", "message", "type"}) {
			tb.Fatalf("error frame keys %v: %s", got, data)
		}
		_ = json.Unmarshal(keys["code"], &f.Code)
		_ = json.Unmarshal(keys["message"], &f.Text)
	default:
		tb.Fatalf("unknown frame type: %s", data)
	}
	return f
}

func lsKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// lsNextMessage reads the next frame and checks it is of type typ.
func lsNextMessage(tb testing.TB, ws *websocket.Conn, typ string) map[string]any {
	tb.Helper()
	f := lsNext(tb, ws)
	if f.Type != typ {
		tb.Fatalf("want a %s frame, got %s", typ, f.Raw)
	}
	return f.Message
}

// lsNextError reads the next frame and checks it is an error with code.
func lsNextError(tb testing.TB, ws *websocket.Conn, code, want string) {
	tb.Helper()
	f := lsNext(tb, ws)
	if f.Type != "error" || f.Code != code || !strings.Contains(f.Text, want) {
		tb.Fatalf("want an error frame %s containing %q, got %s", code, want, f.Raw)
	}
}

// lsClose reads until the server closes the socket and returns its close
// frame.
func lsClose(tb testing.TB, ws *websocket.Conn) *websocket.CloseError {
	tb.Helper()
	for {
		_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			tb.Fatalf("want a close frame, got %v", err)
		}
		return ce
	}
}

// lsReady makes sure the socket is live: a message it sends comes back to
// it, so everything committed later reaches it too.
func lsReady(tb testing.TB, ws *websocket.Conn, text string) map[string]any {
	tb.Helper()
	lsSendText(tb, ws, text)
	m := lsNextMessage(tb, ws, "message")
	if m["message_text"] != text {
		tb.Fatalf("want the echo of %q, got %v", text, m)
	}
	return m
}

// lsStored reads a message as token's caller sees it over GraphQL.
func (e *env) lsStored(tb testing.TB, token, conversationID, id string) message {
	tb.Helper()
	var out struct {
		Messages struct {
			Edges []struct {
				Node message `json:"node"`
			} `json:"edges"`
		} `json:"messages"`
	}
	e.do(tb, token, `query($c: ID!) { messages(conversationId: $c, last: 100) { edges { node { `+messageFields+` } } } }`,
		map[string]any{"c": conversationID}).ok(tb, &out)
	for _, edge := range out.Messages.Edges {
		if edge.Node.ID == id {
			return edge.Node
		}
	}
	tb.Fatalf("message %s not in conversation %s", id, conversationID)
	return message{}
}

// lsSame checks a frame's message field by field against the message as
// GraphQL shows it, and against the reference document's types.
func lsSame(tb testing.TB, frame map[string]any, m message) {
	tb.Helper()
	var senderID, senderName any
	if m.SenderID != nil {
		senderID = *m.SenderID
	}
	if m.SenderName != nil {
		senderName = *m.SenderName
	}
	if m.MessageType == "SYSTEM" && (senderID != nil || senderName != nil) {
		tb.Fatalf("GraphQL gives the SYSTEM message %s a sender: %+v", m.ID, m)
	}
	want := map[string]any{
		"id": m.ID, "conversation_id": m.ConversationID, "sender_id": senderID, "sender_name": senderName,
		"message_text": m.MessageText, "message_type": m.MessageType, "timestamp": m.Timestamp, "is_read": m.IsRead,
	}
	for _, k := range lsReferenceKeys {
		if frame[k] != want[k] {
			tb.Errorf("%s: frame has %#v, GraphQL %#v", k, frame[k], want[k])
		}
	}
	ts, _ := frame["timestamp"].(string)
	if at, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.HasSuffix(ts, "Z") || at.Location() != time.UTC {
		tb.Errorf("timestamp %q is not RFC 3339 in UTC", ts)
	}
	if tb.Failed() {
		tb.FailNow()
	}
}

func TestLegacySocketBridge(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-legacy", "ana", "ben", "Job accepted. Chat is now active.")

		// Ana's old frontend with the header, Ben's with the query
		// parameter, and Ben's GraphQL app.
		oldAna := e.lsDial(t, conv.ID, "", lsBearer(ana))
		oldBen := e.lsDial(t, conv.ID, "?token="+ben, nil)
		gql := e.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + ben})
		sub := gql.subscribe(apiSubscription, map[string]any{"c": conv.ID, "after": conv.LastSeq})

		// Ana sends from the old socket: both old sockets and the GraphQL
		// subscriber get it, the frames as the reference document has them.
		first := lsReady(t, oldAna, "Hello, when can we start?")
		stored := e.lsStored(t, ana, conv.ID, first["id"].(string))
		if stored.SenderID == nil || *stored.SenderID != "ana" || stored.MessageType != "TEXT" || stored.Seq != 2 {
			t.Fatalf("stored %+v", stored)
		}
		lsSame(t, first, stored)
		lsSame(t, lsNextMessage(t, oldBen, "message"), stored)
		if got := gql.nextMessage(sub); got.ID != stored.ID || got.MessageText != "Hello, when can we start?" || got.Timestamp != first["timestamp"] {
			t.Fatalf("GraphQL subscriber got %+v, want %+v", got, stored)
		}

		// Ben answers over GraphQL: both old sockets get it.
		reply := e.sendText(t, ben, conv.ID, "Tomorrow at 9?")
		for _, ws := range []*websocket.Conn{oldAna, oldBen} {
			lsSame(t, lsNextMessage(t, ws, "message"), e.lsStored(t, ana, conv.ID, reply.ID))
		}
		gql.nextMessage(sub)

		// The job-service's SYSTEM message has no sender.
		system := e.jePostSystem(t, conv.ID, "The job has started.", "job-legacy-started")
		m := lsNextMessage(t, oldAna, "message")
		if m["sender_id"] != nil || m["sender_name"] != nil || m["message_type"] != "SYSTEM" {
			t.Fatalf("SYSTEM frame %v", m)
		}
		lsSame(t, m, e.lsStored(t, ana, conv.ID, system.ID))
		lsNextMessage(t, oldBen, "message")
		gql.nextMessage(sub)

		// Ben reads Ana's message, then she corrects it and deletes it:
		// message_updated frames, the message as it reads now.
		e.do(t, ben, `mutation($c: ID!) { markRead(conversationId: $c) { id } }`, map[string]any{"c": conv.ID}).ok(t, nil)
		e.do(t, ana, `mutation($id: ID!) { editMessage(messageId: $id, messageText: "Hello, can we start today?") { id } }`,
			map[string]any{"id": stored.ID}).ok(t, nil)
		edited := e.lsStored(t, ana, conv.ID, stored.ID)
		if !edited.IsRead || edited.MessageText != "Hello, can we start today?" {
			t.Fatalf("edited %+v", edited)
		}
		for _, ws := range []*websocket.Conn{oldAna, oldBen} {
			lsSame(t, lsNextMessage(t, ws, "message_updated"), edited)
		}
		e.do(t, ana, `mutation($id: ID!) { deleteMessage(messageId: $id) { id } }`, map[string]any{"id": stored.ID}).ok(t, nil)
		deleted := e.lsStored(t, ana, conv.ID, stored.ID)
		if deleted.MessageText != "" {
			t.Fatalf("deleted %+v", deleted)
		}
		for _, ws := range []*websocket.Conn{oldAna, oldBen} {
			lsSame(t, lsNextMessage(t, ws, "message_updated"), deleted)
		}

		// What the old consumer ignored is ignored; the next message is the
		// next frame, and nothing else was stored.
		before := e.apiSnapshot(t, conv.ID)
		for _, frame := range []string{`not json`, `{"message": ""}`, `{"message": "  \n\t "}`, `{"type": "TEXT"}`, `{"message": 42}`, `[]`} {
			lsSend(t, oldBen, frame)
		}
		e.apiUnchanged(t, conv.ID, before)
		last := lsReady(t, oldBen, "see you")
		if last["sender_id"] != "ben" || last["message_type"] != "TEXT" {
			t.Fatalf("frame %v", last)
		}
		if got := lsNextMessage(t, oldAna, "message"); got["id"] != last["id"] {
			t.Fatalf("Ana got %v, want %v", got, last)
		}
	})
}

// A refused send gets the code GraphQL gives it, and the socket stays
// open.
func TestLegacySocketRefusedSends(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-legacy-refused", "ana", "ben", "")
		ws := e.lsDial(t, conv.ID, "", lsBearer(ana))
		before := e.apiSnapshot(t, conv.ID)

		tests := []struct{ frame, code, message string }{
			{`{"message": "from the system", "type": "SYSTEM"}`, "FORBIDDEN", "users cannot send SYSTEM messages"},
			{`{"message": "somewhere", "type": "LOCATION"}`, "BAD_USER_INPUT", "is required for LOCATION messages"},
			{`{"message": "a sticker", "type": "STICKER"}`, "BAD_USER_INPUT", "must be one of TEXT"},
			{`{"message": "` + strings.Repeat("x", 4001) + `"}`, "BAD_USER_INPUT", "at most 4000 characters"},
			{`{"message": "bad \u0000 byte"}`, "BAD_USER_INPUT", "NUL"},
		}
		for _, tt := range tests {
			lsSend(t, ws, tt.frame)
			lsNextError(t, ws, tt.code, tt.message)
		}
		e.apiUnchanged(t, conv.ID, before)

		// A closed conversation refuses the old socket's sends as it does
		// GraphQL's, and takes them again once reopened.
		e.jeSetStatus(t, conv.ID, true, "job done")
		lsSendText(t, ws, "one more thing")
		lsNextError(t, ws, "FAILED_PRECONDITION", "closed")
		r := e.do(t, ben, sendMessage, map[string]any{"input": map[string]any{"conversationId": conv.ID, "messageText": "me too"}})
		r.fails(t, "FAILED_PRECONDITION", "closed")
		e.apiUnchanged(t, conv.ID, before)
		e.jeSetStatus(t, conv.ID, false, nil)
		lsReady(t, ws, "one more thing")
	})
}

func TestLegacySocketRateLimit(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			// One message a minute after a burst of 3, as in the GraphQL
			// test: the fourth send in a row is refused.
			e := newEnv(t, dialect, map[string]string{"JOBCHAT_SEND_RATE": "0.0167", "JOBCHAT_SEND_BURST": "3"})
			ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
			conv := e.openJob(t, "job-legacy-rate", "ana", "ben", "")
			ws := e.lsDial(t, conv.ID, "", lsBearer(ana))
			for i := range 3 {
				lsReady(t, ws, fmt.Sprint("burst ", i))
			}
			lsSendText(t, ws, "too fast")
			lsNextError(t, ws, "RATE_LIMITED", "sending too fast")
			// The budget is the user's, whatever the transport.
			r := e.do(t, ana, sendMessage, map[string]any{"input": map[string]any{"conversationId": conv.ID, "messageText": "also too fast"}})
			r.fails(t, "RATE_LIMITED", "sending too fast")
			// The socket is still open: Ben's message reaches it.
			sent := e.sendText(t, ben, conv.ID, "slow down")
			if m := lsNextMessage(t, ws, "message"); m["id"] != sent.ID {
				t.Fatalf("got %v, want %s", m, sent.ID)
			}
		})
	}
}

func TestLegacySocketHandshake(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			e := newEnv(t, dialect, map[string]string{
				"JOBCHAT_LEGACY_COOKIE":   "sessiontoken",
				"JOBCHAT_ALLOWED_ORIGINS": "https://app.example",
			})
			ana := userToken(t, "ana", "Ana")
			conv := e.openJob(t, "job-legacy-auth", "ana", "ben", "")
			expired, err := auth.Issue([]byte(testSecret), auth.Caller{ID: "ana", Name: "Ana"}, -time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			forged, err := auth.Issue([]byte("another-secret-0123456789-0123456789"), auth.Caller{ID: "ana", Name: "Ana"}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			other := e.openJob(t, "job-legacy-other", "cat", "dan", "")

			tests := []struct {
				name   string
				conv   string
				query  string
				header http.Header
				status int
			}{
				{"header", conv.ID, "", lsBearer(ana), http.StatusSwitchingProtocols},
				{"query parameter", conv.ID, "?token=" + ana, nil, http.StatusSwitchingProtocols},
				{"configured cookie", conv.ID, "", http.Header{"Cookie": {"theme=dark; sessiontoken=" + ana}}, http.StatusSwitchingProtocols},
				{"allowed origin", conv.ID, "", http.Header{"Authorization": {"Bearer " + ana}, "Origin": {"https://app.example"}}, http.StatusSwitchingProtocols},
				{"same origin", conv.ID, "", http.Header{"Authorization": {"Bearer " + ana}, "Origin": {e.url}}, http.StatusSwitchingProtocols},
				{"no token", conv.ID, "", nil, http.StatusForbidden},
				{"cookie of the default name", conv.ID, "", http.Header{"Cookie": {"jobchat_token=" + ana}}, http.StatusForbidden},
				{"malformed token", conv.ID, "?token=not-a-jwt", nil, http.StatusForbidden},
				{"forged token", conv.ID, "", lsBearer(forged), http.StatusForbidden},
				{"expired token", conv.ID, "", lsBearer(expired), http.StatusForbidden},
				{"service token", conv.ID, "", lsBearer(serviceToken(t)), http.StatusForbidden},
				{"stranger", other.ID, "", lsBearer(ana), http.StatusForbidden},
				{"unknown conversation", "no-such-conversation", "", lsBearer(ana), http.StatusForbidden},
				{"cross-site origin", conv.ID, "", http.Header{"Authorization": {"Bearer " + ana}, "Origin": {"https://evil.example"}}, http.StatusForbidden},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					ws, status, err := e.lsTryDial(tt.conv, tt.query, tt.header)
					if status != tt.status {
						t.Fatalf("status %d (%v), want %d", status, err, tt.status)
					}
					if ws != nil {
						lsReady(t, ws, "via "+tt.name)
						_ = ws.Close()
					}
				})
			}
		})
	}
}

func TestLegacySocketLimits(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			e := newEnv(t, dialect, map[string]string{"JOBCHAT_MAX_FRAME_BYTES": "1024"})
			conv := e.openJob(t, "job-legacy-limits", "ana", "ben", "")

			t.Run("frame too big", func(t *testing.T) {
				ws := e.lsDial(t, conv.ID, "", lsBearer(userToken(t, "ana", "Ana")))
				lsReady(t, ws, strings.Repeat("x", 900))
				lsSendText(t, ws, strings.Repeat("x", 1100))
				if ce := lsClose(t, ws); ce.Code != websocket.CloseMessageTooBig {
					t.Fatalf("close %d %q, want 1009", ce.Code, ce.Text)
				}
			})

			t.Run("token expiry", func(t *testing.T) {
				short, err := auth.Issue([]byte(testSecret), auth.Caller{ID: "ben", Name: "Ben"}, 2*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				ws := e.lsDial(t, conv.ID, "?token="+short, nil)
				if ce := lsClose(t, ws); ce.Code != 4403 {
					t.Fatalf("close %d %q, want 4403", ce.Code, ce.Text)
				}
			})

			// Closed sockets leave no feed behind.
			for deadline := time.Now().Add(10 * time.Second); e.app.resolver.FeedStats().Feeds != 0; {
				if time.Now().After(deadline) {
					t.Fatalf("%d feeds left after the sockets closed", e.app.resolver.FeedStats().Feeds)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// TestLegacySocketShutdown runs `jobchat serve` and stops it with an old
// socket open: it closes with 1001, so that the frontend reconnects.
func TestLegacySocketShutdown(t *testing.T) {
	srv := mainServe(t, []string{"serve", "--addr", "127.0.0.1:0"}, map[string]string{
		"JOBCHAT_DATA_DIR":         t.TempDir(),
		"JOBCHAT_JWT_SECRET":       testSecret,
		"JOBCHAT_SHUTDOWN_TIMEOUT": "10s",
		"JOBCHAT_LOG_FORMAT":       "json",
	})
	e := &env{url: srv.base}
	conv := e.openJob(t, "job-legacy-stop", "ana", "ben", "")
	ws := e.lsDial(t, conv.ID, "", lsBearer(userToken(t, "ana", "Ana")))
	lsReady(t, ws, "before the deploy")
	srv.stop(t)
	if ce := lsClose(t, ws); ce.Code != websocket.CloseGoingAway {
		t.Fatalf("close %d %q, want 1001", ce.Code, ce.Text)
	}
}

// TestLegacySocketAcrossInstances runs two instances on one database and
// one Redis: what an old socket on one sends reaches the old sockets and
// GraphQL subscribers on the other.
func TestLegacySocketAcrossInstances(t *testing.T) {
	redisURL := testsvc.RedisURL(t)
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			var b [6]byte
			for i := range b {
				b[i] = byte('a' + rand.IntN(26))
			}
			vars := map[string]string{
				"JOBCHAT_REDIS_URL":    redisURL,
				"JOBCHAT_REDIS_PREFIX": "jobchat-test-" + string(b[:]) + ":",
			}
			dbc := dbtest.Config(t, dialect)
			instA := newEnvOnDB(t, dbc, vars)
			instB := newEnvOnDB(t, dbc, vars)
			ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
			conv := instA.openJob(t, "job-legacy-redis", "ana", "ben", "")

			onA := instA.lsDial(t, conv.ID, "", lsBearer(ana))
			onB := instB.lsDial(t, conv.ID, "", lsBearer(ben))
			gqlB := instB.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + ben})
			sub := gqlB.subscribe(apiSubscription, map[string]any{"c": conv.ID, "after": 0})
			// Once each socket has its own message back it is live; what
			// follows reaches the other instance only through Redis.
			lsReady(t, onB, "B is here")
			if m := lsNextMessage(t, onA, "message"); m["message_text"] != "B is here" {
				t.Fatalf("A got %v", m)
			}
			gqlB.nextMessage(sub)

			for i := range 3 {
				text := fmt.Sprint("from A ", i)
				sent := lsReady(t, onA, text)
				got := lsNextMessage(t, onB, "message")
				if got["id"] != sent["id"] || got["message_text"] != text {
					t.Fatalf("B got %v, A sent %v", got, sent)
				}
				if m := gqlB.nextMessage(sub); m.ID != sent["id"] {
					t.Fatalf("GraphQL on B got %+v, A sent %v", m, sent)
				}
			}

			// An edit on A reaches B's old socket as message_updated.
			id := lsReady(t, onA, "typo")["id"].(string)
			lsNextMessage(t, onB, "message")
			gqlB.nextMessage(sub)
			instA.do(t, ana, `mutation($id: ID!) { editMessage(messageId: $id, messageText: "fixed") { id } }`, map[string]any{"id": id}).ok(t, nil)
			if m := lsNextMessage(t, onB, "message_updated"); m["id"] != id || m["message_text"] != "fixed" {
				t.Fatalf("B got %v", m)
			}
		})
	}
}
