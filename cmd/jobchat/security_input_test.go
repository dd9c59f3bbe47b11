package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// Security tests of input coercion and the text rules (README: Security),
// over real HTTP on both databases. Helpers start with "sec".

// secPost posts a raw JSON body to /query as token's caller, for bodies
// encoding/json would not write (a lone surrogate escape).
func (e *env) secPost(tb testing.TB, token, body string) gqlResponse {
	tb.Helper()
	authorization := ""
	if token != "" {
		authorization = "Bearer " + token
	}
	return e.postBody(tb, authorization, []byte(body))
}

// TestSecurityVariablesCoerced: variables that do not fit their type are
// BAD_USER_INPUT naming the variable path, never INTERNAL_SERVER_ERROR,
// and nothing is stored.
func TestSecurityVariablesCoerced(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		before := e.apiSnapshot(t, conv.ID, ana, ben)
		send := `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }`
		in := func(kv ...any) map[string]any {
			m := map[string]any{"conversationId": conv.ID}
			for i := 0; i < len(kv); i += 2 {
				m[kv[i].(string)] = kv[i+1]
			}
			return map[string]any{"input": m}
		}
		tests := []struct {
			name, query string
			vars        map[string]any
			field, want string
		}{
			{"enum of the wrong case", send, in("messageText", "hi", "messageType", "text"), "$input.messageType", "text is not a valid MessageType"},
			{"enum unknown", send, in("messageText", "hi", "messageType", "SHOUT"), "$input.messageType", "SHOUT is not a valid MessageType"},
			{"string for a Float", send, in("messageType", "LOCATION", "location", map[string]any{"latitude": "12.5", "longitude": 3}), "$input.location.latitude", "must be a Float, not a string"},
			{"number for a String", send, in("messageText", 12), "$input.messageText", "must be a String, not a number"},
			{"object for an ID", send, map[string]any{"input": map[string]any{"conversationId": map[string]any{"id": conv.ID}, "messageText": "hi"}}, "$input.conversationId", "must be an ID"},
			{"object for a String", send, in("messageText", map[string]any{"text": "hi"}), "$input.messageText", "must be a String, not an object"},
			{"string for an Int", `query($c: ID!, $n: Int) { messages(conversationId: $c, last: $n) { edges { cursor } } }`, map[string]any{"c": conv.ID, "n": "3"}, "$n", "must be an Int, not a string"},
			{"out-of-range Int", `query($c: ID!, $n: Int) { messages(conversationId: $c, last: $n) { edges { cursor } } }`, map[string]any{"c": conv.ID, "n": 3000000000}, "$n", "non 32-bit signed integer"},
			{"out-of-range Int in a mutation", `mutation($c: ID!, $n: Int) { markRead(conversationId: $c, upToSeq: $n) { id } }`, map[string]any{"c": conv.ID, "n": -2147483649}, "$n", "non 32-bit"},
			{"id over 64 characters", `query($c: ID!) { conversation(id: $c) { id } }`, map[string]any{"c": strings.Repeat("c", 65)}, "$c", "must be at most 64 characters (got 65)"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := e.do(t, ben, tt.query, tt.vars)
				r.fails(t, "BAD_USER_INPUT", tt.want)
				if got := r.Errors[0].Extensions["field"]; got != tt.field {
					t.Errorf("extensions.field %v, want %s", got, tt.field)
				}
				if !strings.HasPrefix(r.Errors[0].Message, "variable "+tt.field+": ") {
					t.Errorf("message %q does not name %s first", r.Errors[0].Message, tt.field)
				}
			})
		}
		e.apiUnchanged(t, conv.ID, before, ana, ben)

		// Written into the document, a long id is refused the same way,
		// naming the argument.
		r := e.do(t, ben, `{ conversation(id: "`+strings.Repeat("c", 65)+`") { id } }`, nil)
		apiFailsOn(t, r, "BAD_USER_INPUT", "id")
		r = e.do(t, serviceToken(t), `mutation { postSystemMessage(conversationId: "`+strings.Repeat("c", 65)+`", messageText: "x") { id } }`, nil)
		apiFailsOn(t, r, "BAD_USER_INPUT", "conversationId")
		// So is an Int out of range, which gqlparser lets through.
		r = e.do(t, ben, `mutation { markRead(conversationId: "`+conv.ID+`", upToSeq: 3000000000) { id } }`, nil)
		apiFailsOn(t, r, "BAD_USER_INPUT", "upToSeq")
		if !strings.Contains(r.Errors[0].Message, "non 32-bit") {
			t.Errorf("message %q", r.Errors[0].Message)
		}
	})
}

// TestSecurityTextRules: messageText and the other texts refuse NUL, lone
// surrogates and bidi controls with BAD_USER_INPUT naming the field; keys
// are printable ASCII; nothing refused is stored.
func TestSecurityTextRules(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		svc := serviceToken(t)
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		before := e.apiSnapshot(t, conv.ID, ana, ben)

		sendText := func(text, clientID string) gqlResponse {
			input := map[string]any{"conversationId": conv.ID, "messageText": text}
			if clientID != "" {
				input["clientMessageId"] = clientID
			}
			return e.do(t, ben, sendMessage, map[string]any{"input": input})
		}
		for _, tt := range []struct{ name, text, want string }{
			{"NUL", "hi\x00there", "NUL"},
			{"right-to-left override", "invoice \u202efdp.exe", "U+202E"},
			{"left-to-right embedding", "a\u202ab", "U+202A"},
			{"pop directional formatting", "a\u202cb", "U+202C"},
			{"right-to-left isolate", "a\u2067b", "U+2067"},
			{"pop directional isolate", "a\u2069b", "U+2069"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				apiFailsOn(t, sendText(tt.text, ""), "BAD_USER_INPUT", "input.messageText")
			})
		}
		t.Run("lone surrogate", func(t *testing.T) {
			body := `{"query":` + string(mustJSON(t, sendMessage)) + `,"variables":{"input":{"conversationId":"` + conv.ID + `","messageText":"a\ud800b"}}}`
			r := e.secPost(t, ben, body)
			r.fails(t, "BAD_USER_INPUT", `lone surrogate escape \ud800`)
			if r.Errors[0].Extensions["field"] != "$input.messageText" {
				t.Errorf("extensions.field %v", r.Errors[0].Extensions["field"])
			}
		})
		t.Run("lone surrogate written into the document", func(t *testing.T) {
			q := `mutation { sendMessage(input: {conversationId: "` + conv.ID + `", messageText: "a\ud800b"}) { id } }`
			e.secPost(t, ben, `{"query":`+string(mustJSON(t, q))+`}`).fails(t, "GRAPHQL_PARSE_FAILED", "lone surrogate")
		})
		t.Run("invalid UTF-8", func(t *testing.T) {
			body := `{"query":` + string(mustJSON(t, sendMessage)) + `,"variables":{"input":{"conversationId":"` + conv.ID + "\",\"messageText\":\"a\xffb\"}}}"
			e.secPost(t, ben, body).fails(t, "BAD_USER_INPUT", "not valid UTF-8")
		})
		for _, tt := range []struct{ name, key string }{
			{"control character in clientMessageId", "m-1\x07"},
			{"newline in clientMessageId", "m-1\nm-2"},
			{"non-ASCII clientMessageId", "mé-1"},
			{"clientMessageId over 128", strings.Repeat("m", 129)},
			{"empty clientMessageId", ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				input := map[string]any{"conversationId": conv.ID, "messageText": "hi", "clientMessageId": tt.key}
				apiFailsOn(t, e.do(t, ben, sendMessage, map[string]any{"input": input}), "BAD_USER_INPUT", "input.clientMessageId")
			})
		}
		t.Run("idempotencyKey", func(t *testing.T) {
			for _, key := range []string{"k\x00", "k\tk", strings.Repeat("k", 129), "ключ"} {
				r := e.do(t, svc, apiPostSystem, map[string]any{"c": conv.ID, "text": "x", "key": key})
				apiFailsOn(t, r, "BAD_USER_INPUT", "idempotencyKey")
			}
		})
		t.Run("bidi in the job-service's texts", func(t *testing.T) {
			r := e.do(t, svc, apiPostSystem, map[string]any{"c": conv.ID, "text": "paid \u202e", "key": "k1"})
			apiFailsOn(t, r, "BAD_USER_INPUT", "messageText")
			r = e.do(t, svc, createConversation, map[string]any{"input": map[string]any{
				"jobId": "job-2", "jobTitle": "Fix \u2066sink",
				"client": map[string]any{"id": "ana", "displayName": "Ana"},
				"worker": map[string]any{"id": "ben", "displayName": "Ben"},
			}})
			apiFailsOn(t, r, "BAD_USER_INPUT", "input.jobTitle")
		})
		e.apiUnchanged(t, conv.ID, before, ana, ben)

		// What is allowed still goes through: right-to-left text with its
		// marks, and a 128-character key of every printable kind.
		key := strings.Repeat("K-~ !", 25) + "abc"
		var out struct {
			Msg message `json:"sendMessage"`
		}
		sendText("שלום \u200fעולם", key).ok(t, &out)
		if out.Msg.MessageText != "שלום \u200fעולם" || out.Msg.ClientMessageID == nil || *out.Msg.ClientMessageID != key {
			t.Fatalf("stored %+v", out.Msg)
		}
	})
}

// TestSecurityVariablesOverWebSocket: the same coercion holds on a socket,
// where the guard runs too.
func TestSecurityVariablesOverWebSocket(t *testing.T) {
	e := newEnv(t, "sqlite", nil)
	conv := e.openJob(t, "job-1", "ana", "ben", "")
	c := e.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + userToken(t, "ben", "Ben")})
	id := c.subscribe(sendMessage, map[string]any{"input": map[string]any{"conversationId": conv.ID, "messageText": "hi", "messageType": "Text"}})
	m := c.nextFor(id)
	var errs []gqlError
	if m.Type != "error" || json.Unmarshal(m.Payload, &errs) != nil || len(errs) == 0 {
		t.Fatalf("want an error message, got %+v (%s)", m, m.Payload)
	}
	if errs[0].Extensions["code"] != "BAD_USER_INPUT" || !strings.Contains(errs[0].Message, "$input.messageType") {
		t.Fatalf("got %+v", errs)
	}
}

// TestSecuritySocketTextRules: a lone surrogate escape in variables is
// refused over both WebSocket subprotocols as over HTTP, naming the
// variable, and nothing is stored; the old chat socket refuses it in a
// frame. The frames are written by hand: encoding/json would not write one.
func TestSecuritySocketTextRules(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		for _, proto := range []string{"graphql-transport-ws", "graphql-ws"} {
			t.Run(proto, func(t *testing.T) {
				c := e.dial(t, proto, map[string]any{"authorization": "Bearer " + ben})
				typ := "subscribe"
				if proto == "graphql-ws" {
					typ = "start"
				}
				frame := `{"id":"bad-1","type":"` + typ + `","payload":{"query":` + string(mustJSON(t, sendMessage)) +
					`,"variables":{"input":{"conversationId":"` + conv.ID + `","messageText":"a\ud800b"}}}}`
				if err := c.conn.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
					t.Fatal(err)
				}
				errs := apiOperationError(t, c, "bad-1")
				if apiCode(errs[0]) != "BAD_USER_INPUT" || !strings.Contains(errs[0].Message, `lone surrogate escape \ud800`) ||
					errs[0].Extensions["field"] != "$input.messageText" {
					t.Fatalf("errors %+v", errs)
				}
				// The socket stays usable: a pair of escapes is text.
				ok := `{"id":"ok-1","type":"` + typ + `","payload":{"query":` + string(mustJSON(t, sendMessage)) +
					`,"variables":{"input":{"conversationId":"` + conv.ID + `","messageText":"\ud83d\ude00 ` + proto + `"}}}}`
				if err := c.conn.WriteMessage(websocket.TextMessage, []byte(ok)); err != nil {
					t.Fatal(err)
				}
				if m := c.nextFor("ok-1"); m.Type != "next" && m.Type != "data" || strings.Contains(string(m.Payload), "errors") {
					t.Fatalf("a valid send over %s: %+v %s", proto, m, m.Payload)
				}
			})
		}
		var out struct {
			Messages apiMessagePage `json:"messages"`
		}
		e.do(t, ana, `query($c: ID!) { messages(conversationId: $c, first: 50) { edges { cursor node { `+messageFields+` } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`,
			map[string]any{"c": conv.ID}).ok(t, &out)
		for _, m := range out.Messages.Edges {
			if strings.ContainsRune(m.Node.MessageText, '\uFFFD') {
				t.Fatalf("U+FFFD stored: %q", m.Node.MessageText)
			}
		}
		if n := len(out.Messages.Edges); n != 3 {
			t.Fatalf("%d messages stored, want the system message and the two valid sends", n)
		}

		t.Run("old chat socket", func(t *testing.T) {
			after := e.apiSnapshot(t, conv.ID, ana, ben)
			ws := e.lsDial(t, conv.ID, "", lsBearer(ben))
			lsSend(t, ws, `{"message": "half \ud800 a pair"}`)
			lsNextError(t, ws, "BAD_USER_INPUT", `message is not Unicode text: it holds a lone surrogate escape \ud800`)
			e.apiUnchanged(t, conv.ID, after, ana, ben)
			lsReady(t, ws, "after the refusal")
		})
	})
}
