package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/db/dbtest"
	"github.com/jobchat/jobchat/internal/config"
	"github.com/jobchat/jobchat/internal/testsvc"
)

// Contact details stay on the platform (issue 9, section 3), against the
// real app on every dialect: each policy over HTTP, pushed WebSocket
// subscriptions (the hand encoder and gqlgen's generated code), the
// inbox, history, edits, the old chat socket, and across instances.
// Helpers start with "ct".

const (
	// ctDetails carries a phone number and a written-out e-mail address.
	ctDetails = "call me on 415 555 2671 or ana at gmail dot com"
	ctMasked  = "call me on [hidden] or [hidden]"
	ctClean   = "I can come at 9, the new tap is $120 (job #48213)"

	ctFields = `id seq senderId messageText flags`
	// ctHandSub is served by the hand encoder: it mirrors every field.
	ctHandSub = `subscription($c: ID!, $a: Int) { messageAdded(conversationId: $c, afterSeq: $a) { ` + ctFields + ` } }`
	// ctGenSub is served by gqlgen's generated code (reactions are per
	// viewer).
	ctGenSub   = `subscription($c: ID!, $a: Int) { messageAdded(conversationId: $c, afterSeq: $a) { ` + ctFields + ` reactions { emoji } } }`
	ctInboxSub = `subscription { inboxUpdated { kind conversation { id contactPolicy lastMessage { ` + ctFields + ` } } } }`
	ctActSub   = `subscription($c: ID!) { conversationActivity(conversationId: $c) { kind message { ` + ctFields + ` } } }`
)

type ctMessage struct {
	ID          string   `json:"id"`
	Seq         int      `json:"seq"`
	MessageText string   `json:"messageText"`
	Flags       []string `json:"flags"`
}

func (m ctMessage) flagged() bool { return slices.Equal(m.Flags, []string{"CONTACT_DETAILS"}) }

// ctWant fails unless m reads text, flagged or not.
func ctWant(tb testing.TB, who string, m ctMessage, text string, flagged bool) {
	tb.Helper()
	if m.MessageText != text || m.flagged() != flagged || m.Flags == nil {
		tb.Fatalf("%s reads %+v; want text %q, flagged %v", who, m, text, flagged)
	}
}

func (e *env) ctSend(tb testing.TB, token, conversationID, text string) gqlResponse {
	tb.Helper()
	return e.do(tb, token, `mutation($in: SendMessageInput!) { sendMessage(input: $in) { `+ctFields+` } }`,
		map[string]any{"in": map[string]any{"conversationId": conversationID, "messageText": text}})
}

func (e *env) ctSent(tb testing.TB, token, conversationID, text string) ctMessage {
	tb.Helper()
	var out struct {
		M ctMessage `json:"sendMessage"`
	}
	e.ctSend(tb, token, conversationID, text).ok(tb, &out)
	return out.M
}

func (e *env) ctEdit(tb testing.TB, token, messageID, text string) gqlResponse {
	tb.Helper()
	return e.do(tb, token, `mutation($m: ID!, $t: String!) { editMessage(messageId: $m, messageText: $t) { `+ctFields+` } }`,
		map[string]any{"m": messageID, "t": text})
}

// ctRead reads message id as token's caller finds it in the history.
func (e *env) ctRead(tb testing.TB, token, conversationID, id string) ctMessage {
	tb.Helper()
	var out struct {
		Messages struct {
			Edges []struct {
				Node ctMessage `json:"node"`
			} `json:"edges"`
		} `json:"messages"`
	}
	e.do(tb, token, `query($c: ID!) { messages(conversationId: $c, last: 100) { edges { node { `+ctFields+` } } } }`,
		map[string]any{"c": conversationID}).ok(tb, &out)
	for _, edge := range out.Messages.Edges {
		if edge.Node.ID == id {
			return edge.Node
		}
	}
	tb.Fatalf("message %s not in conversation %s", id, conversationID)
	return ctMessage{}
}

type ctConversation struct {
	ID            string     `json:"id"`
	ContactPolicy string     `json:"contactPolicy"`
	LastSeq       int        `json:"lastSeq"`
	LastMessage   *ctMessage `json:"lastMessage"`
}

const ctConversationFields = `id contactPolicy lastSeq lastMessage { ` + ctFields + ` }`

// ctConversation reads the conversation as token's caller sees it, from
// conversation(id) and from the conversations list, which must agree.
func (e *env) ctConversation(tb testing.TB, token, conversationID string) ctConversation {
	tb.Helper()
	var out struct {
		One  ctConversation `json:"conversation"`
		List struct {
			Edges []struct {
				Node ctConversation `json:"node"`
			} `json:"edges"`
		} `json:"conversations"`
	}
	e.do(tb, token, `query($c: ID!) { conversation(id: $c) { `+ctConversationFields+` }
  conversations(first: 100) { edges { node { `+ctConversationFields+` } } } }`,
		map[string]any{"c": conversationID}).ok(tb, &out)
	for _, edge := range out.List.Edges {
		if edge.Node.ID == conversationID {
			a, _ := json.Marshal(edge.Node)
			b, _ := json.Marshal(out.One)
			if string(a) != string(b) {
				tb.Fatalf("conversations has %s, conversation %s", a, b)
			}
			return out.One
		}
	}
	tb.Fatalf("conversation %s not in the list", conversationID)
	return ctConversation{}
}

func (e *env) ctSetPolicy(tb testing.TB, token, conversationID, policy string) gqlResponse {
	tb.Helper()
	return e.do(tb, token, `mutation($c: ID!, $p: ContactPolicy!) { setContactPolicy(conversationId: $c, policy: $p) { `+ctConversationFields+` } }`,
		map[string]any{"c": conversationID, "p": policy})
}

// ctPolicy has the job-service set the policy and checks the answer.
func (e *env) ctPolicy(tb testing.TB, conversationID, policy string) {
	tb.Helper()
	var out struct {
		C ctConversation `json:"setContactPolicy"`
	}
	e.ctSetPolicy(tb, serviceToken(tb), conversationID, policy).ok(tb, &out)
	if out.C.ID != conversationID || out.C.ContactPolicy != policy {
		tb.Fatalf("setContactPolicy(%s) answered %+v", policy, out.C)
	}
}

// ctNext reads the next event of operation id and decodes its data's one
// root field into v.
func ctNext(tb testing.TB, c *wsClient, id string, v any) {
	tb.Helper()
	m := c.nextFor(id)
	if m.Type != "next" {
		tb.Fatalf("want next for %s, got %+v (%s)", id, m, m.Payload)
	}
	var p struct {
		Data   map[string]json.RawMessage `json:"data"`
		Errors []gqlError                 `json:"errors"`
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil || len(p.Errors) > 0 || len(p.Data) != 1 {
		tb.Fatalf("event %s (%v)", m.Payload, err)
	}
	for _, raw := range p.Data {
		if err := json.Unmarshal(raw, v); err != nil {
			tb.Fatalf("decode %s: %v", raw, err)
		}
	}
}

func ctNextMessage(tb testing.TB, c *wsClient, id string) ctMessage {
	tb.Helper()
	var m ctMessage
	ctNext(tb, c, id, &m)
	return m
}

type ctInboxEvent struct {
	Kind         string         `json:"kind"`
	Conversation ctConversation `json:"conversation"`
}

func ctNextInbox(tb testing.TB, c *wsClient, id string) ctInboxEvent {
	tb.Helper()
	var ev ctInboxEvent
	ctNext(tb, c, id, &ev)
	return ev
}

// ctFrameText reads the next frame of the old socket, of type typ, and
// returns its message id and text.
func ctFrameText(tb testing.TB, ws *websocket.Conn, typ string) (id, text string) {
	tb.Helper()
	m := lsNextMessage(tb, ws, typ)
	id, _ = m["id"].(string)
	text, _ = m["message_text"].(string)
	return id, text
}

func ctDial(tb testing.TB, e *env, token string) *wsClient {
	tb.Helper()
	return e.dial(tb, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + token})
}

// TestContactMask: under MASK the recipient reads "[hidden]" where the
// details were, everywhere a message shows: the send's answer aside
// (the sender's), pushed subscriptions of both encoders, the inbox, the
// history and lastMessage, edits, and the old chat socket; the sender
// and the job-service read the text as written.
func TestContactMask(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben, svc := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben"), serviceToken(t)
		conv := e.openJob(t, "job-mask", "ana", "ben", "")
		e.ctPolicy(t, conv.ID, "MASK")

		benWS := ctDial(t, e, ben)
		benHand := benWS.subscribe(ctHandSub, map[string]any{"c": conv.ID, "a": 0})
		benGen := benWS.subscribe(ctGenSub, map[string]any{"c": conv.ID, "a": 0})
		benInbox := benWS.subscribe(ctInboxSub, nil)
		anaWS := ctDial(t, e, ana)
		anaHand := anaWS.subscribe(ctHandSub, map[string]any{"c": conv.ID, "a": 0})
		anaGen := anaWS.subscribe(ctGenSub, map[string]any{"c": conv.ID, "a": 0})
		oldBen := e.lsDial(t, conv.ID, "", lsBearer(ben))
		oldAna := e.lsDial(t, conv.ID, "", lsBearer(ana))
		// 5 subscriptions, and 2 followers (messages, activity) for each
		// old socket.
		liveWaitFollowers(t, e, 9)

		// Ana sends over HTTP: her answer is as written.
		sent := e.ctSent(t, ana, conv.ID, ctDetails)
		ctWant(t, "ana's answer", sent, ctDetails, true)
		ctWant(t, "ben's pushed subscription (hand encoder)", ctNextMessage(t, benWS, benHand), ctMasked, true)
		ctWant(t, "ben's pushed subscription (generated)", ctNextMessage(t, benWS, benGen), ctMasked, true)
		ctWant(t, "ana's pushed subscription (hand encoder)", ctNextMessage(t, anaWS, anaHand), ctDetails, true)
		ctWant(t, "ana's pushed subscription (generated)", ctNextMessage(t, anaWS, anaGen), ctDetails, true)
		ev := ctNextInbox(t, benWS, benInbox)
		if ev.Kind != "MESSAGE_ADDED" || ev.Conversation.ContactPolicy != "MASK" || ev.Conversation.LastMessage == nil {
			t.Fatalf("ben's inbox: %+v", ev)
		}
		ctWant(t, "ben's inbox", *ev.Conversation.LastMessage, ctMasked, true)
		if id, text := ctFrameText(t, oldBen, "message"); id != sent.ID || text != ctMasked {
			t.Fatalf("ben's old socket: %s %q", id, text)
		}
		if id, text := ctFrameText(t, oldAna, "message"); id != sent.ID || text != ctDetails {
			t.Fatalf("ana's old socket: %s %q", id, text)
		}

		// History and previews, for each viewer.
		ctWant(t, "ben's history", e.ctRead(t, ben, conv.ID, sent.ID), ctMasked, true)
		ctWant(t, "ana's history", e.ctRead(t, ana, conv.ID, sent.ID), ctDetails, true)
		ctWant(t, "the job-service's history", e.ctRead(t, svc, conv.ID, sent.ID), ctDetails, true)
		for who, want := range map[string]string{ben: ctMasked, ana: ctDetails, svc: ctDetails} {
			c := e.ctConversation(t, who, conv.ID)
			if c.ContactPolicy != "MASK" || c.LastMessage == nil {
				t.Fatalf("conversation %+v", c)
			}
			ctWant(t, "lastMessage", *c.LastMessage, want, true)
		}

		// A replay (afterSeq) reads the stored message the same way.
		replay := ctDial(t, e, ben)
		ctWant(t, "ben's replay", ctNextMessage(t, replay, replay.subscribe(ctHandSub, map[string]any{"c": conv.ID, "a": 0})), ctMasked, true)

		// Edits are screened too; the old sockets get message_updated.
		const edited, editedMasked = "or email me: ana.fixes@gmail.com", "or email me: [hidden]"
		var out struct {
			M ctMessage `json:"editMessage"`
		}
		e.ctEdit(t, ana, sent.ID, edited).ok(t, &out)
		ctWant(t, "ana's edit answer", out.M, edited, true)
		ctWant(t, "ben's history after the edit", e.ctRead(t, ben, conv.ID, sent.ID), editedMasked, true)
		if _, text := ctFrameText(t, oldBen, "message_updated"); text != editedMasked {
			t.Fatalf("ben's old socket after the edit: %q", text)
		}
		if _, text := ctFrameText(t, oldAna, "message_updated"); text != edited {
			t.Fatalf("ana's old socket after the edit: %q", text)
		}
		ev = ctNextInbox(t, benWS, benInbox)
		if ev.Kind != "CONVERSATION_UPDATED" || ev.Conversation.LastMessage == nil {
			t.Fatalf("ben's inbox after the edit: %+v", ev)
		}
		ctWant(t, "ben's inbox after the edit", *ev.Conversation.LastMessage, editedMasked, true)
		// An edit without details clears the mask and the flag.
		e.ctEdit(t, ana, sent.ID, "see you at 9").ok(t, nil)
		ctWant(t, "ben's history after a clean edit", e.ctRead(t, ben, conv.ID, sent.ID), "see you at 9", false)
		ctFrameText(t, oldBen, "message_updated")
		ctFrameText(t, oldAna, "message_updated")
		ctNextInbox(t, benWS, benInbox)

		// A send from the old socket goes through the same rule.
		lsSendText(t, oldAna, ctDetails)
		id, text := ctFrameText(t, oldAna, "message")
		if text != ctDetails {
			t.Fatalf("ana's old socket echo: %q", text)
		}
		if gotID, text := ctFrameText(t, oldBen, "message"); gotID != id || text != ctMasked {
			t.Fatalf("ben's old socket: %s %q", gotID, text)
		}
		ctWant(t, "ben's pushed subscription, old socket send", ctNextMessage(t, benWS, benHand), ctMasked, true)
		ctWant(t, "ben's history, old socket send", e.ctRead(t, ben, conv.ID, id), ctMasked, true)
		ctWant(t, "the job-service's history, old socket send", e.ctRead(t, svc, conv.ID, id), ctDetails, true)

		// A message without details is the same for everyone.
		clean := e.ctSent(t, ben, conv.ID, ctClean)
		ctWant(t, "ben's clean message", clean, ctClean, false)
		ctWant(t, "ana reads ben's clean message", e.ctRead(t, ana, conv.ID, clean.ID), ctClean, false)
		// A deleted message has nothing left to mask.
		e.do(t, ana, `mutation($m: ID!) { deleteMessage(messageId: $m) { id } }`, map[string]any{"m": id}).ok(t, nil)
		ctWant(t, "ben's history, deleted", e.ctRead(t, ben, conv.ID, id), "", false)
		ctWant(t, "ana's history, deleted", e.ctRead(t, ana, conv.ID, id), "", false)
	})
}

// TestContactBlock: under BLOCK a text with contact details is refused
// with CONTACT_DETAILS_BLOCKED and nothing is stored, over HTTP, in
// edits and from the old chat socket; clean texts, SYSTEM messages, and
// the checks that come first (strangers, closed conversations) are not
// affected.
func TestContactBlock(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben, carl := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben"), userToken(t, "carl", "Carl")
		conv := e.openJob(t, "job-block", "ana", "ben", "Job accepted. Chat is now active.")
		e.ctPolicy(t, conv.ID, "BLOCK")

		before := e.apiSnapshot(t, conv.ID, ana, ben)
		apiFailsOn(t, e.ctSend(t, ana, conv.ID, ctDetails), "CONTACT_DETAILS_BLOCKED", "input.messageText")
		for _, text := range []string{"+44 7911 123456", "wa.me/14155552671", "my IG is @ana.fixes", "four one five, five five five, two six seven one"} {
			r := e.ctSend(t, ana, conv.ID, text)
			apiFailsOn(t, r, "CONTACT_DETAILS_BLOCKED", "input.messageText")
			if !strings.Contains(r.Errors[0].Message, "contact details are not allowed in this conversation") {
				t.Fatalf("message %q", r.Errors[0].Message)
			}
		}
		r := e.do(t, ana, `mutation($in: SendMessageInput!) { sendMessage(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"conversationId": conv.ID, "messageText": ctDetails, "clientMessageId": "c-1"}})
		apiFailsOn(t, r, "CONTACT_DETAILS_BLOCKED", "input.messageText")
		e.apiUnchanged(t, conv.ID, before, ana, ben)
		if c := e.ctConversation(t, ana, conv.ID); c.LastSeq != conv.LastSeq || c.ContactPolicy != "BLOCK" {
			t.Fatalf("after refusals: %+v, lastSeq was %d", c, conv.LastSeq)
		}

		// The checks before the policy's: strangers learn nothing.
		e.ctSend(t, carl, conv.ID, ctDetails).fails(t, "NOT_FOUND", "not found")

		// A clean text goes through; an edit that adds details does not.
		clean := e.ctSent(t, ana, conv.ID, ctClean)
		ctWant(t, "the clean message", clean, ctClean, false)
		apiFailsOn(t, e.ctEdit(t, ana, clean.ID, "call me: 415-555-2671"), "CONTACT_DETAILS_BLOCKED", "messageText")
		ctWant(t, "ben's history after the refused edit", e.ctRead(t, ben, conv.ID, clean.ID), ctClean, false)

		// The old socket: an error frame, the socket stays, nothing stored.
		oldAna := e.lsDial(t, conv.ID, "", lsBearer(ana))
		before = e.apiSnapshot(t, conv.ID, ana, ben)
		lsSendText(t, oldAna, ctDetails)
		lsNextError(t, oldAna, "CONTACT_DETAILS_BLOCKED", "contact details are not allowed")
		e.apiUnchanged(t, conv.ID, before, ana, ben)
		lsReady(t, oldAna, "still here")

		// SYSTEM messages are the job-service's: never screened.
		var sys struct {
			M ctMessage `json:"postSystemMessage"`
		}
		e.do(t, serviceToken(t), `mutation($c: ID!) { postSystemMessage(conversationId: $c, messageText: "Support: call 415 555 2671") { `+ctFields+` } }`,
			map[string]any{"c": conv.ID}).ok(t, &sys)
		ctWant(t, "the system message", sys.M, "Support: call 415 555 2671", false)

		// A closed conversation says so first.
		e.do(t, serviceToken(t), `mutation($c: ID!) { closeConversation(conversationId: $c) { id } }`, map[string]any{"c": conv.ID}).ok(t, nil)
		e.ctSend(t, ana, conv.ID, ctDetails).fails(t, "FAILED_PRECONDITION", "closed")
	})
}

// TestContactAllowAndFlag: ALLOW stores and delivers as written; FLAG
// too, with flags: [CONTACT_DETAILS], the same for every viewer.
func TestContactAllowAndFlag(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben, svc := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben"), serviceToken(t)
		conv := e.openJob(t, "job-flag", "ana", "ben", "")
		benWS := ctDial(t, e, ben)
		benSub := benWS.subscribe(ctHandSub, map[string]any{"c": conv.ID, "a": 0})

		for _, tc := range []struct {
			policy  string
			flagged bool
		}{{"FLAG", true}, {"ALLOW", false}} {
			e.ctPolicy(t, conv.ID, tc.policy)
			sent := e.ctSent(t, ana, conv.ID, ctDetails)
			ctWant(t, tc.policy+": ana's answer", sent, ctDetails, tc.flagged)
			ctWant(t, tc.policy+": ben's pushed subscription", ctNextMessage(t, benWS, benSub), ctDetails, tc.flagged)
			for _, who := range []string{ana, ben, svc} {
				ctWant(t, tc.policy+": history", e.ctRead(t, who, conv.ID, sent.ID), ctDetails, tc.flagged)
			}
			clean := e.ctSent(t, ana, conv.ID, ctClean)
			ctWant(t, tc.policy+": clean", clean, ctClean, false)
			ctWant(t, tc.policy+": ben's pushed clean", ctNextMessage(t, benWS, benSub), ctClean, false)
			// An edit is flagged by what it says now.
			var out struct {
				M ctMessage `json:"editMessage"`
			}
			e.ctEdit(t, ana, clean.ID, "text me 415.555.2671").ok(t, &out)
			ctWant(t, tc.policy+": edited", out.M, "text me 415.555.2671", tc.flagged)
			ctWant(t, tc.policy+": ben reads the edit", e.ctRead(t, ben, conv.ID, clean.ID), "text me 415.555.2671", tc.flagged)
		}
	})
}

// TestContactSetPolicy: setContactPolicy is the job-service's, answers
// NOT_FOUND for unknown conversations, is idempotent (a repeat tells the
// inboxes nothing), and applies to the messages stored after it.
func TestContactSetPolicy(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben, svc := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben"), serviceToken(t)
		conv := e.openJob(t, "job-policy", "ana", "ben", "")

		e.ctSetPolicy(t, ana, conv.ID, "ALLOW").fails(t, "FORBIDDEN", "service")
		e.ctSetPolicy(t, svc, "no-such-conversation", "ALLOW").fails(t, "NOT_FOUND", "not found")
		e.ctSetPolicy(t, svc, conv.ID, "SOMETIMES").fails(t, "BAD_USER_INPUT", "ContactPolicy")
		for _, who := range []string{ana, ben, svc} {
			if c := e.ctConversation(t, who, conv.ID); c.ContactPolicy != "FLAG" {
				t.Fatalf("the default policy reads %q", c.ContactPolicy)
			}
		}

		benWS := ctDial(t, e, ben)
		inbox := benWS.subscribe(ctInboxSub, nil)
		benSub := benWS.subscribe(ctHandSub, map[string]any{"c": conv.ID, "a": 0})
		liveWaitFollowers(t, e, 2)

		// Under the default, FLAG.
		m1 := e.ctSent(t, ana, conv.ID, ctDetails)
		ctNextMessage(t, benWS, benSub)
		ctNextInbox(t, benWS, inbox)

		// FLAG, the default, set explicitly: nothing changes in force, so
		// the inboxes hear nothing. MASK, twice: one CONVERSATION_UPDATED.
		// Each next inbox event is the one that follows, so the others
		// sent none.
		e.ctPolicy(t, conv.ID, "FLAG")
		e.ctPolicy(t, conv.ID, "MASK")
		if ev := ctNextInbox(t, benWS, inbox); ev.Kind != "CONVERSATION_UPDATED" || ev.Conversation.ContactPolicy != "MASK" {
			t.Fatalf("after MASK: %+v", ev)
		}
		e.ctPolicy(t, conv.ID, "MASK")
		m2 := e.ctSent(t, ana, conv.ID, ctDetails)
		ctWant(t, "ben's pushed m2", ctNextMessage(t, benWS, benSub), ctMasked, true)
		if ev := ctNextInbox(t, benWS, inbox); ev.Kind != "MESSAGE_ADDED" || ev.Conversation.LastMessage == nil || ev.Conversation.LastMessage.ID != m2.ID {
			t.Fatalf("after the repeated MASK and a send, ben's inbox got %+v", ev)
		}
		// Earlier messages stay as they were stored.
		ctWant(t, "m1 after MASK", e.ctRead(t, ben, conv.ID, m1.ID), ctDetails, true)
		ctWant(t, "m2", e.ctRead(t, ben, conv.ID, m2.ID), ctMasked, true)

		e.ctPolicy(t, conv.ID, "ALLOW")
		if ev := ctNextInbox(t, benWS, inbox); ev.Kind != "CONVERSATION_UPDATED" || ev.Conversation.ContactPolicy != "ALLOW" {
			t.Fatalf("after ALLOW: %+v", ev)
		}
		m3 := e.ctSent(t, ana, conv.ID, ctDetails)
		ctWant(t, "m3", e.ctRead(t, ben, conv.ID, m3.ID), ctDetails, false)
		ctWant(t, "m2 after ALLOW", e.ctRead(t, ben, conv.ID, m2.ID), ctMasked, true)
		for _, who := range []string{ana, ben, svc} {
			if c := e.ctConversation(t, who, conv.ID); c.ContactPolicy != "ALLOW" {
				t.Fatalf("policy reads %q", c.ContactPolicy)
			}
		}

		// A retry (same clientMessageId) of a stored message is answered
		// with it, whatever the policy says now.
		retry := func() gqlResponse {
			return e.do(t, ana, `mutation($in: SendMessageInput!) { sendMessage(input: $in) { `+ctFields+` } }`,
				map[string]any{"in": map[string]any{"conversationId": conv.ID, "messageText": ctDetails, "clientMessageId": "ct-retry"}})
		}
		e.ctPolicy(t, conv.ID, "MASK")
		var first, again struct {
			M ctMessage `json:"sendMessage"`
		}
		retry().ok(t, &first)
		e.ctPolicy(t, conv.ID, "BLOCK")
		retry().ok(t, &again)
		if again.M.ID != first.M.ID {
			t.Fatalf("the retry stored %+v, first %+v", again.M, first.M)
		}
		ctWant(t, "the retried send's answer", again.M, ctDetails, true)
		ctWant(t, "ben reads the retried message", e.ctRead(t, ben, conv.ID, first.M.ID), ctMasked, true)
	})
}

// TestContactDefaultPolicy: JOBCHAT_CONTACT_POLICY is the policy of
// conversations nobody set one for, and JOBCHAT_DEFAULT_REGION the region
// whose national numbers count; bad values stop the server.
func TestContactDefaultPolicy(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			e := newEnv(t, dialect, map[string]string{"JOBCHAT_CONTACT_POLICY": "MASK", "JOBCHAT_DEFAULT_REGION": "GB"})
			ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
			conv := e.openJob(t, "job-default", "ana", "ben", "")
			if c := e.ctConversation(t, ben, conv.ID); c.ContactPolicy != "MASK" {
				t.Fatalf("policy %q", c.ContactPolicy)
			}
			uk := e.ctSent(t, ana, conv.ID, "ring me on 07911 123456")
			ctWant(t, "a UK national number", e.ctRead(t, ben, conv.ID, uk.ID), "ring me on [hidden]", true)
			// A US number in national form is not a number in GB.
			us := e.ctSent(t, ana, conv.ID, "the price list was (415) 555-2671")
			ctWant(t, "a US national number", e.ctRead(t, ben, conv.ID, us.ID), "the price list was (415) 555-2671", false)
		})
	}

	vars := map[string]string{"JOBCHAT_DATA_DIR": t.TempDir(), "JOBCHAT_JWT_SECRET": testSecret}
	for k, v := range map[string]string{"JOBCHAT_CONTACT_POLICY": "SOMETIMES", "JOBCHAT_DEFAULT_REGION": "usa"} {
		t.Run(k, func(t *testing.T) {
			get := func(name string) string {
				if name == k {
					return v
				}
				return vars[name]
			}
			if _, _, err := config.Load("test", nil, get, testWriter{t}, nil); err == nil || !strings.Contains(err.Error(), k) {
				t.Fatalf("config accepted %s=%s: %v", k, v, err)
			}
		})
	}
	// Two letters, but no region libphonenumber knows.
	cfg, _, err := config.Load("test", nil, func(name string) string {
		if name == "JOBCHAT_DEFAULT_REGION" {
			return "XX"
		}
		return vars[name]
	}, testWriter{t}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := newApp(context.Background(), cfg, zerolog.Nop()); err == nil {
		a.close()
		t.Fatal("the server started with JOBCHAT_DEFAULT_REGION=XX")
	} else if !strings.Contains(err.Error(), "JOBCHAT_DEFAULT_REGION") {
		t.Fatalf("error %v does not name JOBCHAT_DEFAULT_REGION", err)
	}
}

// TestContactMaskAcrossInstances: a masked message and its edit travel
// between instances with what each viewer's encoding needs.
func TestContactMaskAcrossInstances(t *testing.T) {
	redisURL := testsvc.RedisURL(t)
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			vars := map[string]string{
				"JOBCHAT_REDIS_URL":    redisURL,
				"JOBCHAT_REDIS_PREFIX": "jobchat-test-contact-" + randomSuffix() + ":",
			}
			dbc := dbtest.Config(t, dialect)
			instA, instB := newEnvOnDB(t, dbc, vars), newEnvOnDB(t, dbc, vars)
			ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
			conv := instA.openJob(t, "job-contact-redis", "ana", "ben", "")
			instA.ctPolicy(t, conv.ID, "MASK")

			// Both watch on B; ana writes on A.
			benWS := ctDial(t, instB, ben)
			benMsgs := benWS.subscribe(ctHandSub, map[string]any{"c": conv.ID, "a": 0})
			benAct := benWS.subscribe(ctActSub, map[string]any{"c": conv.ID})
			anaWS := ctDial(t, instB, ana)
			anaMsgs := anaWS.subscribe(ctHandSub, map[string]any{"c": conv.ID, "a": 0})
			anaAct := anaWS.subscribe(ctActSub, map[string]any{"c": conv.ID})
			liveWaitFollowers(t, instB, 4)

			sent := instA.ctSent(t, ana, conv.ID, ctDetails)
			ctWant(t, "ben on B", ctNextMessage(t, benWS, benMsgs), ctMasked, true)
			ctWant(t, "ana on B", ctNextMessage(t, anaWS, anaMsgs), ctDetails, true)

			instA.ctEdit(t, ana, sent.ID, "email: ana.fixes@gmail.com").ok(t, nil)
			for _, tc := range []struct {
				c    *wsClient
				id   string
				want string
			}{{benWS, benAct, "email: [hidden]"}, {anaWS, anaAct, "email: ana.fixes@gmail.com"}} {
				var ev struct {
					Kind    string    `json:"kind"`
					Message ctMessage `json:"message"`
				}
				ctNext(t, tc.c, tc.id, &ev)
				if ev.Kind != "MESSAGE_EDITED" {
					t.Fatalf("activity %+v", ev)
				}
				ctWant(t, "the edit on B", ev.Message, tc.want, true)
			}
		})
	}
}
