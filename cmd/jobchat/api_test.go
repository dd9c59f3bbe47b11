package main

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/db/dbtest"
	"github.com/jobchat/jobchat/internal/auth"
)

// The API contract's error cases, over real HTTP and WebSocket on every
// dialect: idempotent retries, what non-participants see, authentication
// and authorization, each validation rule, pagination and read state.

const apiPostSystem = `mutation($c: ID!, $text: String!, $key: String) {
  postSystemMessage(conversationId: $c, messageText: $text, idempotencyKey: $key) { ` + messageFields + ` }
}`

func TestAPIIdempotentSendMessage(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		other := e.openJob(t, "job-2", "ana", "carl", "")

		send := func(token, conversationID, text, cmid string) gqlResponse {
			t.Helper()
			return e.do(t, token, sendMessage, map[string]any{"input": map[string]any{
				"conversationId": conversationID, "messageText": text, "clientMessageId": cmid,
			}})
		}
		var first, retry, bens struct {
			Msg message `json:"sendMessage"`
		}
		send(ana, conv.ID, "hello", "cm-1").ok(t, &first)
		if first.Msg.Seq != 2 || first.Msg.ClientMessageID == nil || *first.Msg.ClientMessageID != "cm-1" {
			t.Fatalf("first send: %+v", first.Msg)
		}
		before := e.apiSnapshot(t, conv.ID, ana, ben)

		// The retry carries a different text, as a buggy client might; the
		// stored message wins and nothing new is written.
		send(ana, conv.ID, "hello again", "cm-1").ok(t, &retry)
		if retry.Msg.ID != first.Msg.ID || retry.Msg.Seq != first.Msg.Seq || retry.Msg.MessageText != "hello" {
			t.Fatalf("retry returned %+v, want the first message %+v", retry.Msg, first.Msg)
		}
		e.apiUnchanged(t, conv.ID, before, ana, ben)

		// The same clientMessageId from the other participant is theirs.
		send(ben, conv.ID, "hi", "cm-1").ok(t, &bens)
		if bens.Msg.ID == first.Msg.ID || bens.Msg.Seq != 3 || *bens.Msg.SenderID != "ben" {
			t.Fatalf("ben's message with ana's clientMessageId: %+v", bens.Msg)
		}
		var bensRetry struct {
			Msg message `json:"sendMessage"`
		}
		send(ben, conv.ID, "hi", "cm-1").ok(t, &bensRetry)
		if bensRetry.Msg.ID != bens.Msg.ID {
			t.Fatalf("ben's retry returned %+v, want %+v", bensRetry.Msg, bens.Msg)
		}
		if got := e.apiConversationAs(t, ana, conv.ID).LastSeq; got != 3 {
			t.Fatalf("lastSeq after both senders and their retries: %d, want 3", got)
		}

		// Reusing it in another conversation is a client bug, not a retry.
		otherBefore := e.apiSnapshot(t, other.ID, ana)
		apiFailsOn(t, send(ana, other.ID, "hello", "cm-1"), "BAD_USER_INPUT", "input.clientMessageId")
		e.apiUnchanged(t, other.ID, otherBefore, ana)
	})
}

func TestAPIIdempotentCreateConversation(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		avatar := "https://cdn.example.com/ana.png"
		input := map[string]any{
			"jobId": "job-1", "jobTitle": "Fix sink",
			"client":        map[string]any{"id": "ana", "displayName": "Ana", "avatarUrl": avatar},
			"worker":        map[string]any{"id": "ben", "displayName": "Ben"},
			"systemMessage": "Job 'Fix sink' has been accepted. Chat is now active.",
		}
		first := e.apiOpen(t, input)
		if first.LastSeq != 1 || first.Job.Title != "Fix sink" || first.Client.DisplayName != "Ana" || first.Client.AvatarURL == nil || *first.Client.AvatarURL != avatar {
			t.Fatalf("first open: %+v", first)
		}

		// The retry brings new profile data and a new title; its system
		// message must not be posted a second time.
		newAvatar := "https://cdn.example.com/ben.png"
		input["jobTitle"] = "Fix kitchen sink"
		input["client"] = map[string]any{"id": "ana", "displayName": "Ana M."}
		input["worker"] = map[string]any{"id": "ben", "displayName": "Ben K.", "avatarUrl": newAvatar}
		input["systemMessage"] = "Job 'Fix kitchen sink' has been accepted. Chat is now active."
		retry := e.apiOpen(t, input)
		if retry.ID != first.ID {
			t.Fatalf("retry opened %s, want %s", retry.ID, first.ID)
		}
		if retry.LastSeq != 1 {
			t.Fatalf("retry posted its system message again: lastSeq %d", retry.LastSeq)
		}
		if retry.Job.Title != "Fix kitchen sink" || retry.Client.DisplayName != "Ana M." || retry.Client.AvatarURL != nil ||
			retry.Worker.DisplayName != "Ben K." || retry.Worker.AvatarURL == nil || *retry.Worker.AvatarURL != newAvatar {
			t.Fatalf("retry did not refresh the job and profiles: %+v", retry)
		}
		// The refresh is stored, not just echoed: a participant sees it.
		seen := e.apiConversationAs(t, userToken(t, "ana", "Ana"), first.ID)
		if seen.Job.Title != "Fix kitchen sink" || seen.OtherParticipant == nil || seen.OtherParticipant.ID != "ben" || seen.Worker.DisplayName != "Ben K." {
			t.Fatalf("ana sees %+v", seen)
		}
		var hist struct {
			Messages apiMessagePage `json:"messages"`
		}
		e.do(t, serviceToken(t), `query($c: ID!) { messages(conversationId: $c) { edges { node { `+messageFields+` } } }}`,
			map[string]any{"c": first.ID}).ok(t, &hist)
		if len(hist.Messages.Edges) != 1 || hist.Messages.Edges[0].Node.MessageType != "SYSTEM" ||
			!strings.Contains(hist.Messages.Edges[0].Node.MessageText, "'Fix sink'") {
			t.Fatalf("history after retry: %+v", hist.Messages.Edges)
		}

		// Another worker for the same job is another conversation.
		input["worker"] = map[string]any{"id": "carl", "displayName": "Carl"}
		carl := e.apiOpen(t, input)
		if carl.ID == first.ID || carl.LastSeq != 1 || carl.Worker.ID != "carl" {
			t.Fatalf("conversation with another worker: %+v (first %s)", carl, first.ID)
		}
	})
}

func TestAPIIdempotentSystemMessage(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		svc := serviceToken(t)
		conv := e.openJob(t, "job-1", "ana", "ben", "")
		other := e.openJob(t, "job-2", "ana", "carl", "")
		post := func(conversationID, text string, key any) message {
			t.Helper()
			var out struct {
				Msg message `json:"postSystemMessage"`
			}
			e.do(t, svc, apiPostSystem, map[string]any{"c": conversationID, "text": text, "key": key}).ok(t, &out)
			return out.Msg
		}

		first := post(conv.ID, "Job rescheduled to Monday.", "resched-1")
		if first.Seq != 1 || first.MessageType != "SYSTEM" || first.SenderID != nil {
			t.Fatalf("first system message: %+v", first)
		}
		before := e.apiSnapshot(t, conv.ID)
		again := post(conv.ID, "Job rescheduled to Tuesday.", "resched-1")
		if again.ID != first.ID || again.Seq != 1 || again.MessageText != "Job rescheduled to Monday." {
			t.Fatalf("repeated key returned %+v, want %+v", again, first)
		}
		e.apiUnchanged(t, conv.ID, before)

		// Keys are per conversation.
		if m := post(other.ID, "Job rescheduled to Monday.", "resched-1"); m.ID == first.ID || m.ConversationID != other.ID || m.Seq != 1 {
			t.Fatalf("same key in another conversation: %+v", m)
		}

		// Without a key every call posts.
		a, b := post(conv.ID, "Reminder", nil), post(conv.ID, "Reminder", nil)
		if a.ID == b.ID || a.Seq != 2 || b.Seq != 3 {
			t.Fatalf("keyless posts: %+v and %+v", a, b)
		}
	})
}

// TestAPINonParticipant has mallory, a valid user outside the conversation,
// try every operation on it: each must fail exactly as for an id that does
// not exist, and write nothing.
func TestAPINonParticipant(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		mallory := userToken(t, "mallory", "Mallory")
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		e.sendText(t, ana, conv.ID, "the address is 1 Main St")
		own := e.openJob(t, "job-2", "mallory", "dan", "") // mallory's inbox is not empty
		missing := db.NewID()
		before := e.apiSnapshot(t, conv.ID, ana, ben)

		ops := []struct {
			name  string
			query string
			vars  func(id string) map[string]any
		}{
			{"conversation", `query($id: ID!) { conversation(id: $id) { id lastSeq } }`,
				func(id string) map[string]any { return map[string]any{"id": id} }},
			{"messages", `query($id: ID!) { messages(conversationId: $id) { edges { node { id messageText } } } }`,
				func(id string) map[string]any { return map[string]any{"id": id} }},
			{"sendMessage", sendMessage,
				func(id string) map[string]any {
					return map[string]any{"input": map[string]any{"conversationId": id, "messageText": "hi"}}
				}},
			{"sendMessage with clientMessageId", sendMessage,
				func(id string) map[string]any {
					return map[string]any{"input": map[string]any{"conversationId": id, "messageText": "hi", "clientMessageId": "m-1"}}
				}},
			{"markRead", `mutation($id: ID!) { markRead(conversationId: $id) { id unreadCount } }`,
				func(id string) map[string]any { return map[string]any{"id": id} }},
			{"markRead upToSeq", `mutation($id: ID!) { markRead(conversationId: $id, upToSeq: 1) { id unreadCount } }`,
				func(id string) map[string]any { return map[string]any{"id": id} }},
		}
		for _, op := range ops {
			t.Run(op.name, func(t *testing.T) {
				real := e.do(t, mallory, op.query, op.vars(conv.ID))
				absent := e.do(t, mallory, op.query, op.vars(missing))
				real.fails(t, "NOT_FOUND", conv.ID)
				absent.fails(t, "NOT_FOUND", missing)
				apiSameError(t, real.Errors[0], conv.ID, absent.Errors[0], missing)
				if strings.Contains(string(real.Data), "Main St") || strings.Contains(string(real.Data), conv.ID) {
					t.Fatalf("data leaked: %s", real.Data)
				}
				e.apiUnchanged(t, conv.ID, before, ana, ben)
			})
		}

		for _, proto := range []string{"graphql-transport-ws", "graphql-ws"} {
			t.Run("messageAdded/"+proto, func(t *testing.T) {
				ws := e.dial(t, proto, map[string]any{"authorization": "Bearer " + mallory})
				var errs [2][]gqlError
				for i, id := range []string{conv.ID, missing} {
					errs[i] = apiOperationError(t, ws, ws.subscribe(apiSubscription, map[string]any{"c": id, "after": 0}))
					if apiCode(errs[i][0]) != "NOT_FOUND" || !strings.Contains(errs[i][0].Message, id) {
						t.Fatalf("subscription to %s: %+v", id, errs[i])
					}
				}
				apiSameError(t, errs[0][0], conv.ID, errs[1][0], missing)
				// The socket stays usable, and the refusal started nothing:
				// a message sent now reaches mallory's own subscription only.
				sub := ws.subscribe(apiSubscription, map[string]any{"c": own.ID, "after": 0})
				e.sendText(t, ana, conv.ID, "secret")
				e.sendText(t, mallory, own.ID, "mine")
				if got := ws.nextMessage(sub); got.ConversationID != own.ID || got.MessageText != "mine" {
					t.Fatalf("mallory received %+v", got)
				}
			})
		}
		before = e.apiSnapshot(t, conv.ID, ana, ben)

		t.Run("inbox", func(t *testing.T) {
			var inbox struct {
				Conversations apiConversationPage `json:"conversations"`
				UnreadTotal   int                 `json:"unreadTotal"`
				ByJob         apiConversationPage `json:"byJob"`
			}
			e.do(t, mallory, `{
  conversations { edges { node { id } } `+apiPageInfoFields+` }
  byJob: conversations(jobId: "job-1") { edges { node { id } } `+apiPageInfoFields+` }
  unreadTotal
}`, nil).ok(t, &inbox)
			if got := inbox.Conversations.ids(); len(got) != 1 || got[0] != own.ID {
				t.Fatalf("mallory's inbox: %v, want only %s", got, own.ID)
			}
			if got := inbox.ByJob.ids(); len(got) != 0 {
				t.Fatalf("mallory's inbox for job-1: %v", got)
			}
			if inbox.UnreadTotal != 0 {
				t.Fatalf("mallory's unreadTotal: %d", inbox.UnreadTotal)
			}
		})
		e.apiUnchanged(t, conv.ID, before, ana, ben)
	})
}

// apiSameError checks that two errors are the same but for the ids they name.
func apiSameError(tb testing.TB, a gqlError, aID string, b gqlError, bID string) {
	tb.Helper()
	am, bm := strings.ReplaceAll(a.Message, aID, "<id>"), strings.ReplaceAll(b.Message, bID, "<id>")
	ae, be := fmt.Sprint(a.Extensions), fmt.Sprint(b.Extensions)
	if am != bm || ae != be || fmt.Sprint(a.Path) != fmt.Sprint(b.Path) {
		tb.Fatalf("errors differ for a real and a missing conversation:\n%q %s %v\n%q %s %v", a.Message, ae, a.Path, b.Message, be, b.Path)
	}
}

// apiToken signs claims with secret, for the tokens auth.Issue will not make.
func apiToken(tb testing.TB, secret string, claims jwt.MapClaims) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestAPIAuthentication(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana := userToken(t, "ana", "Ana")
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		before := e.apiSnapshot(t, conv.ID, ana)

		expired, err := auth.Issue([]byte(testSecret), auth.Caller{ID: "ana", Name: "Ana"}, -time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		foreign, err := auth.Issue([]byte("another-secret-0123456789-0123456789"), auth.Caller{ID: "ana", Name: "Ana"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		body := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"sub":"ana","exp":%d}`, time.Now().Add(time.Hour).Unix())))
		unsigned := header + "." + body + "."
		noExp := apiToken(t, testSecret, jwt.MapClaims{"sub": "ana", "name": "Ana"})
		noSub := apiToken(t, testSecret, jwt.MapClaims{"name": "Ana", "exp": time.Now().Add(time.Hour).Unix()})

		credentials := []struct {
			name          string
			authorization string // the whole header value; "" sends none
			want          string // in the message
		}{
			{"no token", "", "Authorization"},
			{"expired", "Bearer " + expired, "expired"},
			{"other secret", "Bearer " + foreign, "signature"},
			{"alg none", "Bearer " + unsigned, "unauthenticated"},
			{"no exp", "Bearer " + noExp, "exp"},
			{"no sub", "Bearer " + noSub, "sub"},
			{"not a JWT", "Bearer not-a-jwt", "malformed"},
			{"empty bearer", "Bearer ", "unauthenticated"},
			{"basic scheme", "Basic YW5hOnNlY3JldA==", "Bearer"},
			{"token without scheme", ana, "Bearer"},
		}
		operations := []struct {
			name  string
			query string
			vars  map[string]any
		}{
			{"me", `{ me { id } }`, nil},
			{"conversations", `{ conversations { edges { node { id } } } }`, nil},
			{"conversation", `query($id: ID!) { conversation(id: $id) { id } }`, map[string]any{"id": conv.ID}},
			{"messages", `query($id: ID!) { messages(conversationId: $id) { edges { node { id } } } }`, map[string]any{"id": conv.ID}},
			{"unreadTotal", `{ unreadTotal }`, nil},
			{"sendMessage", sendMessage, map[string]any{"input": map[string]any{"conversationId": conv.ID, "messageText": "hi"}}},
			{"markRead", `mutation($id: ID!) { markRead(conversationId: $id) { id } }`, map[string]any{"id": conv.ID}},
			{"createConversationForJob", createConversation, map[string]any{"input": map[string]any{
				"jobId": "job-9", "jobTitle": "T", "client": map[string]any{"id": "x", "displayName": "X"},
				"worker": map[string]any{"id": "y", "displayName": "Y"}, "systemMessage": "hi"}}},
			{"postSystemMessage", apiPostSystem, map[string]any{"c": conv.ID, "text": "hi"}},
		}
		for _, cred := range credentials {
			t.Run(cred.name, func(t *testing.T) {
				for _, op := range operations {
					r := e.doHeader(t, cred.authorization, op.query, op.vars)
					if r.code() != "UNAUTHENTICATED" || !strings.HasPrefix(r.Errors[0].Message, "unauthenticated: ") || !strings.Contains(r.Errors[0].Message, cred.want) {
						t.Fatalf("%s: want UNAUTHENTICATED naming %q, got %+v (data %s)", op.name, cred.want, r.Errors, r.Data)
					}
				}
				e.apiUnchanged(t, conv.ID, before, ana)
			})
		}
		var all struct {
			Conversations apiConversationPage `json:"conversations"`
		}
		e.do(t, serviceToken(t), `{ conversations { edges { node { id } } } }`, nil).ok(t, &all)
		if got := all.Conversations.ids(); len(got) != 1 {
			t.Fatalf("unauthenticated createConversationForJob wrote: %v", got)
		}
	})
}

func TestAPIForbidden(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, svc := userToken(t, "ana", "Ana"), serviceToken(t)
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		before := e.apiSnapshot(t, conv.ID, ana)

		cases := []struct {
			name  string
			token string
			query string
			vars  map[string]any
			want  string
		}{
			{"user createConversationForJob", ana, createConversation, map[string]any{"input": map[string]any{
				"jobId": "job-2", "jobTitle": "T", "client": map[string]any{"id": "ana", "displayName": "Ana"},
				"worker": map[string]any{"id": "eve", "displayName": "Eve"}, "systemMessage": "hi"}}, "createConversationForJob"},
			{"user postSystemMessage", ana, apiPostSystem, map[string]any{"c": conv.ID, "text": "I am the system now"}, "postSystemMessage"},
			{"user postSystemMessage with key", ana, apiPostSystem, map[string]any{"c": conv.ID, "text": "hi", "key": "k"}, "postSystemMessage"},
			{"user sends SYSTEM", ana, sendMessage, map[string]any{"input": map[string]any{
				"conversationId": conv.ID, "messageText": "Payment received.", "messageType": "SYSTEM"}}, "input.messageType"},
			{"service sendMessage", svc, sendMessage, map[string]any{"input": map[string]any{"conversationId": conv.ID, "messageText": "hi"}}, "sendMessage"},
			{"service markRead", svc, `mutation($id: ID!) { markRead(conversationId: $id) { id } }`, map[string]any{"id": conv.ID}, "markRead"},
			{"service me", svc, `{ me { id } }`, nil, "me"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e.do(t, tc.token, tc.query, tc.vars).fails(t, "FORBIDDEN", tc.want)
				e.apiUnchanged(t, conv.ID, before, ana)
			})
		}
		t.Run("service messageAdded", func(t *testing.T) {
			ws := e.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + svc})
			id := ws.subscribe(apiSubscription, map[string]any{"c": conv.ID, "after": 0})
			errs := apiOperationError(t, ws, id)
			if apiCode(errs[0]) != "FORBIDDEN" || !strings.Contains(errs[0].Message, "messageAdded") {
				t.Fatalf("service subscription: want FORBIDDEN naming messageAdded, got %+v", errs)
			}
		})
		var all struct {
			Conversations apiConversationPage `json:"conversations"`
		}
		e.do(t, svc, `{ conversations { edges { node { id } } } }`, nil).ok(t, &all)
		if got := all.Conversations.ids(); len(got) != 1 || got[0] != conv.ID {
			t.Fatalf("a refused createConversationForJob wrote: %v", got)
		}
	})
}

func TestAPIServiceReadsAnyConversation(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana := userToken(t, "ana", "Ana")
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		e.sendText(t, ana, conv.ID, "hello")
		var out struct {
			Conversation struct {
				conversation
				Messages apiMessagePage `json:"messages"`
			} `json:"conversation"`
			Messages    apiMessagePage `json:"messages"`
			UnreadTotal int            `json:"unreadTotal"`
		}
		e.do(t, serviceToken(t), `query($c: ID!) {
  conversation(id: $c) { `+apiConversationFields+` messages { edges { node { `+messageFields+` } } } }
  messages(conversationId: $c) { edges { node { `+messageFields+` } } }
  unreadTotal
}`, map[string]any{"c": conv.ID}).ok(t, &out)
		c := out.Conversation
		if c.ID != conv.ID || c.LastSeq != 2 || c.MyRole != nil || c.OtherParticipant != nil || c.MyLastReadSeq != nil || c.UnreadCount != 0 {
			t.Fatalf("service view of the conversation: %+v", c.conversation)
		}
		if got := fmt.Sprint(c.Messages.seqs(), out.Messages.seqs()); got != "[1 2] [1 2]" {
			t.Fatalf("service view of the history: %s", got)
		}
		if out.UnreadTotal != 0 {
			t.Fatalf("service unreadTotal: %d", out.UnreadTotal)
		}
	})
}

func TestAPIWebsocketAuthentication(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana := userToken(t, "ana", "Ana")
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		expired, err := auth.Issue([]byte(testSecret), auth.Caller{ID: "ana"}, -time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		foreign, err := auth.Issue([]byte("another-secret-0123456789-0123456789"), auth.Caller{ID: "ana"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}

		for _, proto := range []string{"graphql-transport-ws", "graphql-ws"} {
			t.Run(proto, func(t *testing.T) {
				refused := []struct {
					name   string
					header string // on the upgrade request
					init   map[string]any
				}{
					{"expired in payload", "", map[string]any{"authorization": "Bearer " + expired}},
					{"other secret in payload", "", map[string]any{"Authorization": "Bearer " + foreign}},
					{"malformed in payload", "", map[string]any{"authorization": "Bearer not-a-jwt"}},
					{"no scheme in payload", "", map[string]any{"authorization": ana}},
					{"expired in header", "Bearer " + expired, nil},
					{"malformed header", "Token " + ana, map[string]any{}},
					// A bad token in the payload is refused even with a good header.
					{"bad payload over good header", "Bearer " + ana, map[string]any{"authorization": "Bearer " + foreign}},
				}
				for _, tc := range refused {
					t.Run(tc.name, func(t *testing.T) {
						var h http.Header
						if tc.header != "" {
							h = http.Header{"Authorization": {tc.header}}
						}
						if ce := e.apiInitRefused(t, proto, h, tc.init); ce.Code != 4403 {
							t.Fatalf("close code %d (%q), want 4403", ce.Code, ce.Text)
						}
					})
				}

				t.Run("no token", func(t *testing.T) {
					ws := e.apiDial(t, proto, nil, map[string]any{})
					errs := apiOperationError(t, ws, ws.subscribe(apiSubscription, map[string]any{"c": conv.ID}))
					if apiCode(errs[0]) != "UNAUTHENTICATED" || errs[0].Message != "unauthenticated: send Authorization: Bearer <token>" {
						t.Fatalf("messageAdded without a token: %+v", errs)
					}
				})

				accepted := []struct {
					name   string
					header http.Header
					init   map[string]any
				}{
					{"token in upgrade header", http.Header{"Authorization": {"Bearer " + ana}}, nil},
					{"Authorization key in payload", nil, map[string]any{"Authorization": "Bearer " + ana}},
					{"good payload over bad header", http.Header{"Authorization": {"Bearer " + expired}}, map[string]any{"authorization": "Bearer " + ana}},
				}
				for _, tc := range accepted {
					t.Run(tc.name, func(t *testing.T) {
						ws := e.apiDial(t, proto, tc.header, tc.init)
						var last struct {
							Conversation conversation `json:"conversation"`
						}
						e.do(t, ana, `query($id: ID!) { conversation(id: $id) { lastSeq } }`, map[string]any{"id": conv.ID}).ok(t, &last)
						sub := ws.subscribe(apiSubscription, map[string]any{"c": conv.ID, "after": last.Conversation.LastSeq})
						sent := e.sendText(t, ana, conv.ID, "over "+tc.name)
						if got := ws.nextMessage(sub); got.ID != sent.ID {
							t.Fatalf("received %+v, want %+v", got, sent)
						}
					})
				}
			})
		}
	})
}

// TestAPIValidation checks each validation rule: BAD_USER_INPUT naming the
// field, in the message and in extensions.field, and nothing written.
func TestAPIValidation(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben, svc := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben"), serviceToken(t)
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		e.sendText(t, ana, conv.ID, "hello")
		e.sendText(t, ben, conv.ID, "hi")
		before := e.apiSnapshot(t, conv.ID, ana, ben)

		msg := func(fields map[string]any) map[string]any {
			in := map[string]any{"conversationId": conv.ID}
			for k, v := range fields {
				in[k] = v
			}
			return map[string]any{"input": in}
		}
		loc := func(lat, lng float64) map[string]any { return map[string]any{"latitude": lat, "longitude": lng} }
		att := func(url string) map[string]any { return map[string]any{"url": url} }
		profileIn := func(id, name string) map[string]any { return map[string]any{"id": id, "displayName": name} }
		open := func(fields map[string]any) map[string]any {
			in := map[string]any{"jobId": "job-new", "jobTitle": "New job", "client": profileIn("ana", "Ana"),
				"worker": profileIn("zoe", "Zoe"), "systemMessage": "Chat is now active."}
			for k, v := range fields {
				in[k] = v
			}
			return map[string]any{"input": in}
		}
		const (
			msgsQuery  = `query($c: ID!, $first: Int, $last: Int, $after: String, $before: String) { messages(conversationId: $c, first: $first, last: $last, after: $after, before: $before) { edges { node { id } } } }`
			nestedPage = `query($c: ID!, $first: Int, $last: Int) { conversation(id: $c) { id messages(first: $first, last: $last) { edges { node { id } } } } }`
			convsQuery = `query($first: Int, $after: String) { conversations(first: $first, after: $after) { edges { node { id } } } }`
			markRead   = `mutation($c: ID!, $up: Int) { markRead(conversationId: $c, upToSeq: $up) { id unreadCount } }`
		)
		cursor := func(raw string) string { return base64.RawURLEncoding.EncodeToString([]byte(raw)) }

		cases := []struct {
			name  string
			token string
			query string
			vars  map[string]any
			field string
		}{
			{"TEXT without messageText", ana, sendMessage, msg(nil), "input.messageText"},
			{"TEXT with blank messageText", ana, sendMessage, msg(map[string]any{"messageText": "   \n"}), "input.messageText"},
			{"TEXT of 4001 characters", ana, sendMessage, msg(map[string]any{"messageText": strings.Repeat("é", 4001)}), "input.messageText"},
			{"TEXT with NUL", ana, sendMessage, msg(map[string]any{"messageText": "a\u0000b"}), "input.messageText"},
			{"TEXT with location", ana, sendMessage, msg(map[string]any{"messageText": "here", "location": loc(1, 2)}), "input.location"},
			{"TEXT with attachment", ana, sendMessage, msg(map[string]any{"messageText": "here", "attachment": att("https://cdn.example.com/a.png")}), "input.attachment"},
			{"blank clientMessageId", ana, sendMessage, msg(map[string]any{"messageText": "hi", "clientMessageId": " "}), "input.clientMessageId"},
			{"LOCATION without location", ana, sendMessage, msg(map[string]any{"messageType": "LOCATION"}), "input.location"},
			{"LOCATION latitude 90.5", ana, sendMessage, msg(map[string]any{"messageType": "LOCATION", "location": loc(90.5, 0)}), "input.location.latitude"},
			{"LOCATION latitude -91", ana, sendMessage, msg(map[string]any{"messageType": "LOCATION", "location": loc(-91, 0)}), "input.location.latitude"},
			{"LOCATION longitude 181", ana, sendMessage, msg(map[string]any{"messageType": "LOCATION", "location": loc(0, 181)}), "input.location.longitude"},
			{"LOCATION longitude -180.5", ana, sendMessage, msg(map[string]any{"messageType": "LOCATION", "location": loc(0, -180.5)}), "input.location.longitude"},
			{"IMAGE without attachment", ana, sendMessage, msg(map[string]any{"messageType": "IMAGE"}), "input.attachment"},
			{"FILE without attachment", ana, sendMessage, msg(map[string]any{"messageType": "FILE", "messageText": "see file"}), "input.attachment"},
			{"IMAGE with ftp url", ana, sendMessage, msg(map[string]any{"messageType": "IMAGE", "attachment": att("ftp://x/y")}), "input.attachment.url"},
			{"FILE with ftp url", ana, sendMessage, msg(map[string]any{"messageType": "FILE", "attachment": att("ftp://x/y")}), "input.attachment.url"},
			{"IMAGE with javascript url", ana, sendMessage, msg(map[string]any{"messageType": "IMAGE", "attachment": att("javascript:alert(1)")}), "input.attachment.url"},
			{"FILE with javascript url", ana, sendMessage, msg(map[string]any{"messageType": "FILE", "attachment": att("javascript:alert(1)")}), "input.attachment.url"},
			{"IMAGE with not a url", ana, sendMessage, msg(map[string]any{"messageType": "IMAGE", "attachment": att("not a url")}), "input.attachment.url"},
			{"FILE with not a url", ana, sendMessage, msg(map[string]any{"messageType": "FILE", "attachment": att("not a url")}), "input.attachment.url"},
			{"IMAGE with a url without host", ana, sendMessage, msg(map[string]any{"messageType": "IMAGE", "attachment": att("https:///a.png")}), "input.attachment.url"},
			{"IMAGE with location", ana, sendMessage, msg(map[string]any{"messageType": "IMAGE", "attachment": att("https://cdn.example.com/a.png"), "location": loc(1, 2)}), "input.location"},
			{"messages first 101", ana, msgsQuery, map[string]any{"c": conv.ID, "first": 101}, "first"},
			{"messages last 101", ana, msgsQuery, map[string]any{"c": conv.ID, "last": 101}, "last"},
			{"messages first -1", ana, msgsQuery, map[string]any{"c": conv.ID, "first": -1}, "first"},
			{"messages last -1", ana, msgsQuery, map[string]any{"c": conv.ID, "last": -1}, "last"},
			{"messages after garbage", ana, msgsQuery, map[string]any{"c": conv.ID, "after": "garbage!"}, "after"},
			{"messages after a conversation cursor", ana, msgsQuery, map[string]any{"c": conv.ID, "after": cursor("c:2026-01-01T00:00:00Z|x")}, "after"},
			{"messages after seq 0", ana, msgsQuery, map[string]any{"c": conv.ID, "after": cursor("m:0")}, "after"},
			{"messages before garbage", ana, msgsQuery, map[string]any{"c": conv.ID, "before": "garbage!"}, "before"},
			{"Conversation.messages first 101", ana, nestedPage, map[string]any{"c": conv.ID, "first": 101}, "first"},
			{"Conversation.messages last 101", ana, nestedPage, map[string]any{"c": conv.ID, "last": 101}, "last"},
			{"conversations first 101", ana, convsQuery, map[string]any{"first": 101}, "first"},
			{"conversations first -1", ana, convsQuery, map[string]any{"first": -1}, "first"},
			{"conversations after garbage", ana, convsQuery, map[string]any{"after": "garbage!"}, "after"},
			{"conversations after a message cursor", ana, convsQuery, map[string]any{"after": cursor("m:1")}, "after"},
			{"markRead upToSeq -1", ana, markRead, map[string]any{"c": conv.ID, "up": -1}, "upToSeq"},
			{"postSystemMessage blank", svc, apiPostSystem, map[string]any{"c": conv.ID, "text": " \t"}, "messageText"},
			{"postSystemMessage over the limit", svc, apiPostSystem, map[string]any{"c": conv.ID, "text": strings.Repeat("x", 4001)}, "messageText"},
			{"postSystemMessage blank key", svc, apiPostSystem, map[string]any{"c": conv.ID, "text": "hi", "key": ""}, "idempotencyKey"},
			{"create blank jobTitle", svc, createConversation, open(map[string]any{"jobTitle": "  "}), "input.jobTitle"},
			{"create blank jobId", svc, createConversation, open(map[string]any{"jobId": ""}), "input.jobId"},
			{"create same client and worker", svc, createConversation, open(map[string]any{"worker": profileIn("ana", "Ana")}), "input.worker.id"},
			{"create blank client displayName", svc, createConversation, open(map[string]any{"client": profileIn("ana", " ")}), "input.client.displayName"},
			{"create blank worker displayName", svc, createConversation, open(map[string]any{"worker": profileIn("zoe", "")}), "input.worker.displayName"},
			{"create bad avatarUrl", svc, createConversation, open(map[string]any{"worker": map[string]any{"id": "zoe", "displayName": "Zoe", "avatarUrl": "javascript:alert(1)"}}), "input.worker.avatarUrl"},
			{"create blank systemMessage", svc, createConversation, open(map[string]any{"systemMessage": ""}), "input.systemMessage"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				apiFailsOn(t, e.do(t, tc.token, tc.query, tc.vars), "BAD_USER_INPUT", tc.field)
				e.apiUnchanged(t, conv.ID, before, ana, ben)
			})
		}

		t.Run("messageAdded afterSeq -1", func(t *testing.T) {
			ws := e.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + ben})
			errs := apiOperationError(t, ws, ws.subscribe(apiSubscription, map[string]any{"c": conv.ID, "after": -1}))
			if apiCode(errs[0]) != "BAD_USER_INPUT" || errs[0].Extensions["field"] != "afterSeq" || !strings.HasPrefix(errs[0].Message, "afterSeq: ") {
				t.Fatalf("messageAdded afterSeq -1: %+v", errs)
			}
		})

		t.Run("unknown messageType", func(t *testing.T) {
			r := e.do(t, ana, sendMessage, msg(map[string]any{"messageText": "hi", "messageType": "SHOUT"}))
			r.fails(t, "BAD_USER_INPUT", "variable $input.messageType: ")
			if !strings.Contains(r.Errors[0].Message, "SHOUT") || r.Errors[0].Extensions["field"] != "$input.messageType" {
				t.Fatalf("unknown messageType: %+v", r.Errors)
			}
			e.apiUnchanged(t, conv.ID, before, ana, ben)
		})

		t.Run("missing required variable field", func(t *testing.T) {
			r := e.do(t, ana, sendMessage, map[string]any{"input": map[string]any{"messageText": "hi"}})
			r.fails(t, "BAD_USER_INPUT", "variable $input.conversationId: ")
			e.apiUnchanged(t, conv.ID, before, ana, ben)
		})

		t.Run("refused creates wrote nothing", func(t *testing.T) {
			var out struct {
				Conversations apiConversationPage `json:"conversations"`
			}
			e.do(t, svc, `{ conversations { edges { node { id } } } }`, nil).ok(t, &out)
			if got := out.Conversations.ids(); len(got) != 1 || got[0] != conv.ID {
				t.Fatalf("conversations after refused creates: %v", got)
			}
			// The profiles were not upserted either: zoe is unknown, and a
			// user unknown to jobchat is described by their token.
			var me struct {
				Me profile `json:"me"`
			}
			e.do(t, userToken(t, "zoe", "Token Zoe"), `{ me { id displayName } }`, nil).ok(t, &me)
			if me.Me.DisplayName != "Token Zoe" {
				t.Fatalf("a refused create stored zoe's profile: %+v", me.Me)
			}
		})

		// The edges of each rule are accepted; these write, so they run last.
		t.Run("accepted", func(t *testing.T) {
			accepted := []struct {
				name string
				in   map[string]any
			}{
				{"TEXT of 4000 characters", map[string]any{"messageText": strings.Repeat("é", 4000)}},
				{"TEXT with surrounding blanks", map[string]any{"messageText": "  hi \n"}},
				{"LOCATION at 90, -180", map[string]any{"messageType": "LOCATION", "location": loc(90, -180)}},
				{"LOCATION at -90, 180", map[string]any{"messageType": "LOCATION", "location": loc(-90, 180)}},
				{"IMAGE with https url", map[string]any{"messageType": "IMAGE", "attachment": att("https://cdn.example.com/a.png")}},
				{"FILE with http url", map[string]any{"messageType": "FILE", "messageText": "invoice", "attachment": map[string]any{
					"url": "http://cdn.example.com/invoice.pdf", "fileName": "invoice.pdf", "mimeType": "application/pdf", "sizeBytes": 1234}}},
			}
			seq := e.apiConversationAs(t, ana, conv.ID).LastSeq
			for _, tc := range accepted {
				var out struct {
					Msg struct {
						message
						Location   *struct{ Latitude, Longitude float64 } `json:"location"`
						Attachment *struct{ URL string }                  `json:"attachment"`
					} `json:"sendMessage"`
				}
				e.do(t, ana, `mutation($input: SendMessageInput!) { sendMessage(input: $input) { `+messageFields+` location { latitude longitude } attachment { url } } }`,
					msg(tc.in)).ok(t, &out)
				seq++
				m := out.Msg
				if m.Seq != seq {
					t.Fatalf("%s: seq %d, want %d", tc.name, m.Seq, seq)
				}
				if text, ok := tc.in["messageText"].(string); ok && m.MessageText != text {
					t.Fatalf("%s: stored text of %d runes, want %d", tc.name, len([]rune(m.MessageText)), len([]rune(text)))
				}
				if l, ok := tc.in["location"].(map[string]any); ok && (m.Location == nil || m.Location.Latitude != l["latitude"] || m.Location.Longitude != l["longitude"]) {
					t.Fatalf("%s: location %+v, want %v", tc.name, m.Location, l)
				}
				if a, ok := tc.in["attachment"].(map[string]any); ok && (m.Attachment == nil || m.Attachment.URL != a["url"]) {
					t.Fatalf("%s: attachment %+v, want %v", tc.name, m.Attachment, a)
				}
			}
		})
	})
}

// TestAPIMessageLimitConfigurable runs the text limit rule with
// JOBCHAT_MAX_MESSAGE_CHARS=10.
func TestAPIMessageLimitConfigurable(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			e := newEnv(t, dialect, map[string]string{"JOBCHAT_MAX_MESSAGE_CHARS": "10"})
			ana, svc := userToken(t, "ana", "Ana"), serviceToken(t)
			conv := e.openJob(t, "job-1", "ana", "ben", "")
			before := e.apiSnapshot(t, conv.ID, ana)
			r := e.do(t, ana, sendMessage, map[string]any{"input": map[string]any{"conversationId": conv.ID, "messageText": strings.Repeat("a", 11)}})
			apiFailsOn(t, r, "BAD_USER_INPUT", "input.messageText")
			if !strings.Contains(r.Errors[0].Message, "10") {
				t.Fatalf("message does not state the limit: %q", r.Errors[0].Message)
			}
			apiFailsOn(t, e.do(t, svc, apiPostSystem, map[string]any{"c": conv.ID, "text": strings.Repeat("a", 11)}), "BAD_USER_INPUT", "messageText")
			e.apiUnchanged(t, conv.ID, before, ana)
			if m := e.sendText(t, ana, conv.ID, strings.Repeat("ü", 10)); m.Seq != 1 {
				t.Fatalf("10 characters: %+v", m)
			}
		})
	}
}

func TestAPIMessagePagination(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-1", "ana", "ben", "")
		ids := map[int]string{}
		for i := 1; i <= 7; i++ {
			tok := ana
			if i%2 == 0 {
				tok = ben
			}
			m := e.sendText(t, tok, conv.ID, fmt.Sprintf("message %d", i))
			ids[m.Seq] = m.ID
		}
		page := func(t *testing.T, args map[string]any) apiMessagePage {
			t.Helper()
			vars := map[string]any{"c": conv.ID}
			for k, v := range args {
				vars[k] = v
			}
			var out struct {
				Messages apiMessagePage `json:"messages"`
				Conv     struct {
					Messages apiMessagePage `json:"messages"`
				} `json:"conversation"`
			}
			e.do(t, ben, `query($c: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  messages(conversationId: $c, first: $first, after: $after, last: $last, before: $before) { edges { cursor node { `+messageFields+` } } `+apiPageInfoFields+` }
  conversation(id: $c) { messages(first: $first, after: $after, last: $last, before: $before) { edges { cursor node { `+messageFields+` } } `+apiPageInfoFields+` } }
}`, vars).ok(t, &out)
			// The top-level query and the nested field page alike.
			if a, b := string(mustJSON(t, out.Messages)), string(mustJSON(t, out.Conv.Messages)); a != b {
				t.Fatalf("messages and conversation.messages differ for %v:\n%s\n%s", args, a, b)
			}
			p := out.Messages
			for _, edge := range p.Edges {
				if edge.Node.ID != ids[edge.Node.Seq] || edge.Node.MessageText != fmt.Sprintf("message %d", edge.Node.Seq) {
					t.Fatalf("edge %+v does not match sent message %d", edge.Node, edge.Node.Seq)
				}
			}
			if n := len(p.Edges); n > 0 && (p.PageInfo.StartCursor == nil || *p.PageInfo.StartCursor != p.Edges[0].Cursor ||
				p.PageInfo.EndCursor == nil || *p.PageInfo.EndCursor != p.Edges[n-1].Cursor) {
				t.Fatalf("page cursors %+v do not match its edges", p.PageInfo)
			}
			return p
		}
		expect := func(t *testing.T, p apiMessagePage, seqs string, hasPrev, hasNext bool) {
			t.Helper()
			if got := fmt.Sprint(p.seqs()); got != seqs || p.PageInfo.HasPreviousPage != hasPrev || p.PageInfo.HasNextPage != hasNext {
				t.Fatalf("page %s prev=%v next=%v, want %s prev=%v next=%v", got, p.PageInfo.HasPreviousPage, p.PageInfo.HasNextPage, seqs, hasPrev, hasNext)
			}
		}

		t.Run("default is the newest 50", func(t *testing.T) {
			expect(t, page(t, nil), "[1 2 3 4 5 6 7]", false, false)
		})
		t.Run("forward", func(t *testing.T) {
			p := page(t, map[string]any{"first": 3})
			expect(t, p, "[1 2 3]", false, true)
			p = page(t, map[string]any{"first": 3, "after": *p.PageInfo.EndCursor})
			expect(t, p, "[4 5 6]", true, true)
			p = page(t, map[string]any{"first": 3, "after": *p.PageInfo.EndCursor})
			expect(t, p, "[7]", true, false)
			p = page(t, map[string]any{"first": 3, "after": *p.PageInfo.EndCursor})
			expect(t, p, "[]", true, false)
			if p.PageInfo.StartCursor != nil || p.PageInfo.EndCursor != nil {
				t.Fatalf("empty page has cursors %+v", p.PageInfo)
			}
		})
		t.Run("after alone pages forward", func(t *testing.T) {
			first := page(t, map[string]any{"first": 2})
			expect(t, page(t, map[string]any{"after": *first.PageInfo.EndCursor}), "[3 4 5 6 7]", true, false)
		})
		t.Run("backward", func(t *testing.T) {
			p := page(t, map[string]any{"last": 3})
			expect(t, p, "[5 6 7]", true, false)
			p = page(t, map[string]any{"last": 3, "before": *p.PageInfo.StartCursor})
			expect(t, p, "[2 3 4]", true, true)
			p = page(t, map[string]any{"last": 3, "before": *p.PageInfo.StartCursor})
			expect(t, p, "[1]", false, true)
		})
		t.Run("first 0", func(t *testing.T) {
			expect(t, page(t, map[string]any{"first": 0}), "[]", false, false)
		})
	})
}

func TestAPIConversationPagination(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		c1 := e.openJob(t, "job-1", "ana", "ben", "")
		c2 := e.openJob(t, "job-2", "ana", "carl", "")
		c3 := e.openJob(t, "job-3", "ana", "ben", "")
		e.openJob(t, "job-4", "ben", "carl", "") // not ana's
		// Opened 1, 2, 3; then ben writes in 1 and ana in 2, so by activity
		// the order is 2, 1, 3 and only 1 has something unread for ana.
		e.sendText(t, ben, c1.ID, "hello ana")
		e.sendText(t, ana, c2.ID, "hello carl")

		list := func(t *testing.T, token string, args map[string]any) apiConversationPage {
			t.Helper()
			var out struct {
				Conversations apiConversationPage `json:"conversations"`
			}
			e.do(t, token, `query($first: Int, $after: String, $unreadOnly: Boolean, $jobId: ID) {
  conversations(first: $first, after: $after, unreadOnly: $unreadOnly, jobId: $jobId) { edges { cursor node { `+apiConversationFields+` } } `+apiPageInfoFields+` }
}`, args).ok(t, &out)
			return out.Conversations
		}
		name := map[string]string{c1.ID: "c1", c2.ID: "c2", c3.ID: "c3"}
		names := func(p apiConversationPage) string {
			var out []string
			for _, id := range p.ids() {
				if n, ok := name[id]; ok {
					out = append(out, n)
				} else {
					out = append(out, id)
				}
			}
			return fmt.Sprint(out)
		}

		t.Run("all", func(t *testing.T) {
			if got := names(list(t, ana, nil)); got != "[c2 c1 c3]" {
				t.Fatalf("ana's inbox: %s, want [c2 c1 c3]", got)
			}
		})
		t.Run("first 1", func(t *testing.T) {
			var walked []string
			var after any
			for i := 0; i < 5; i++ {
				p := list(t, ana, map[string]any{"first": 1, "after": after})
				if len(p.Edges) != 1 || p.PageInfo.HasPreviousPage != (i > 0) || p.PageInfo.HasNextPage != (i < 2) {
					t.Fatalf("page %d: %s %+v", i, names(p), p.PageInfo)
				}
				walked = append(walked, names(p))
				if !p.PageInfo.HasNextPage {
					break
				}
				after = *p.PageInfo.EndCursor
			}
			if got := fmt.Sprint(walked); got != "[[c2] [c1] [c3]]" {
				t.Fatalf("walked %s", got)
			}
		})
		t.Run("unreadOnly", func(t *testing.T) {
			p := list(t, ana, map[string]any{"unreadOnly": true})
			if got := names(p); got != "[c1]" || p.Edges[0].Node.UnreadCount != 1 {
				t.Fatalf("ana's unread: %s %+v", got, p.Edges)
			}
		})
		t.Run("jobId", func(t *testing.T) {
			if got := names(list(t, ana, map[string]any{"jobId": "job-3"})); got != "[c3]" {
				t.Fatalf("ana's job-3: %s", got)
			}
			if got := names(list(t, ana, map[string]any{"jobId": "job-4"})); got != "[]" {
				t.Fatalf("ana's job-4 (not hers): %s", got)
			}
			if got := names(list(t, serviceToken(t), map[string]any{"jobId": "job-2"})); got != "[c2]" {
				t.Fatalf("service's job-2: %s", got)
			}
		})
		t.Run("service sees all", func(t *testing.T) {
			if got := list(t, serviceToken(t), nil); len(got.Edges) != 4 {
				t.Fatalf("service sees %s", names(got))
			}
		})
	})
}

func TestAPIMarkRead(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		e.sendText(t, ana, conv.ID, "two")
		e.sendText(t, ana, conv.ID, "three")

		markRead := func(t *testing.T, token string, upTo any) conversation {
			t.Helper()
			var out struct {
				MarkRead conversation `json:"markRead"`
			}
			e.do(t, token, `mutation($c: ID!, $up: Int) { markRead(conversationId: $c, upToSeq: $up) { `+apiConversationFields+` } }`,
				map[string]any{"c": conv.ID, "up": upTo}).ok(t, &out)
			return out.MarkRead
		}
		// readState is "seq:isRead" over the history, as token sees it.
		readState := func(t *testing.T, token string) string {
			t.Helper()
			var out struct {
				Messages apiMessagePage `json:"messages"`
			}
			e.do(t, token, `query($c: ID!) { messages(conversationId: $c) { edges { node { `+messageFields+` } } } }`,
				map[string]any{"c": conv.ID}).ok(t, &out)
			var parts []string
			for _, edge := range out.Messages.Edges {
				parts = append(parts, fmt.Sprintf("%d:%v", edge.Node.Seq, edge.Node.IsRead))
			}
			return strings.Join(parts, " ")
		}
		pointer := func(t *testing.T, c conversation, readSeq, unread int) {
			t.Helper()
			if c.MyLastReadSeq == nil || *c.MyLastReadSeq != readSeq || c.UnreadCount != unread {
				t.Fatalf("read pointer %v unread %d, want %d and %d", apiDeref(c.MyLastReadSeq), c.UnreadCount, readSeq, unread)
			}
		}

		// Sending moved ana's pointer to her own message; ben has read
		// nothing, so neither ana's messages nor the SYSTEM one are read.
		pointer(t, e.apiConversationAs(t, ana, conv.ID), 3, 0)
		pointer(t, e.apiConversationAs(t, ben, conv.ID), 0, 3)
		for _, tok := range []string{ana, ben} {
			if got := readState(t, tok); got != "1:false 2:false 3:false" {
				t.Fatalf("isRead before ben reads: %s", got)
			}
		}

		pointer(t, markRead(t, ben, 2), 2, 1)
		if got := readState(t, ana); got != "1:true 2:true 3:false" {
			t.Fatalf("isRead after ben read up to 2: %s", got)
		}
		// Never backwards.
		pointer(t, markRead(t, ben, 1), 2, 1)
		pointer(t, markRead(t, ben, 0), 2, 1)
		if got := readState(t, ben); got != "1:true 2:true 3:false" {
			t.Fatalf("isRead after a lower markRead: %s", got)
		}
		// Beyond the end clamps to lastSeq, so later messages stay unread.
		pointer(t, markRead(t, ben, 99), 3, 0)
		e.sendText(t, ana, conv.ID, "four")
		pointer(t, e.apiConversationAs(t, ben, conv.ID), 3, 1)
		var total struct {
			UnreadTotal int `json:"unreadTotal"`
		}
		e.do(t, ben, `{ unreadTotal }`, nil).ok(t, &total)
		if total.UnreadTotal != 1 {
			t.Fatalf("ben's unreadTotal: %d", total.UnreadTotal)
		}
		// Without upToSeq: everything.
		pointer(t, markRead(t, ben, nil), 4, 0)
		if got := readState(t, ana); got != "1:true 2:true 3:true 4:true" {
			t.Fatalf("isRead after ben read all: %s", got)
		}
		// Ana's pointer was untouched by ben's reads.
		pointer(t, e.apiConversationAs(t, ana, conv.ID), 4, 0)

		t.Run("SYSTEM needs both", func(t *testing.T) {
			sys := e.openJob(t, "job-2", "ana", "ben", "Chat is now active.")
			state := func(token string) string {
				var out struct {
					Messages apiMessagePage `json:"messages"`
				}
				e.do(t, token, `query($c: ID!) { messages(conversationId: $c) { edges { node { `+messageFields+` } } } }`,
					map[string]any{"c": sys.ID}).ok(t, &out)
				return fmt.Sprint(out.Messages.Edges[0].Node.MessageType, " ", out.Messages.Edges[0].Node.IsRead)
			}
			mark := func(token string) {
				e.do(t, token, `mutation($c: ID!) { markRead(conversationId: $c) { id } }`, map[string]any{"c": sys.ID}).ok(t, nil)
			}
			mark(ana)
			if got := state(ben); got != "SYSTEM false" {
				t.Fatalf("after only ana read: %s", got)
			}
			mark(ben)
			if got := state(ana); got != "SYSTEM true" {
				t.Fatalf("after both read: %s", got)
			}
		})
	})
}
