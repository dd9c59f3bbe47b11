package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobchat/jobchat/db"
)

// Delivery and read ticks (issue 8, Semantics 3) over real HTTP and real
// WebSockets: the pointers, Message.status, and their live events.
// Helpers are prefixed "dlv"; the socket helpers are typing_test.go's.

// dlvConversationFields is what these tests read of a Conversation.
const dlvConversationFields = `id lastSeq unreadCount myLastReadSeq myLastDeliveredSeq otherLastReadSeq otherLastDeliveredSeq`

const (
	dlvMarkDelivered = `mutation($c: ID!, $up: Int!) { markDelivered(conversationId: $c, upToSeq: $up) { ` + dlvConversationFields + ` } }`
	dlvMarkRead      = `mutation($c: ID!, $up: Int) { markRead(conversationId: $c, upToSeq: $up) { ` + dlvConversationFields + ` } }`
)

// dlvPointers is a Conversation's pointer fields as one caller sees them.
type dlvPointers struct {
	ID                    string `json:"id"`
	LastSeq               int    `json:"lastSeq"`
	UnreadCount           int    `json:"unreadCount"`
	MyLastReadSeq         *int   `json:"myLastReadSeq"`
	MyLastDeliveredSeq    *int   `json:"myLastDeliveredSeq"`
	OtherLastReadSeq      *int   `json:"otherLastReadSeq"`
	OtherLastDeliveredSeq *int   `json:"otherLastDeliveredSeq"`
}

// String writes the pointers as "my=read/delivered other=read/delivered",
// with "-" for null.
func (p dlvPointers) String() string {
	f := func(v *int) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprint(*v)
	}
	return fmt.Sprintf("my=%s/%s other=%s/%s", f(p.MyLastReadSeq), f(p.MyLastDeliveredSeq), f(p.OtherLastReadSeq), f(p.OtherLastDeliveredSeq))
}

func (e *env) dlvMark(tb testing.TB, query, token, conversationID string, upToSeq any) dlvPointers {
	tb.Helper()
	var out struct {
		Delivered *dlvPointers `json:"markDelivered"`
		Read      *dlvPointers `json:"markRead"`
	}
	e.do(tb, token, query, map[string]any{"c": conversationID, "up": upToSeq}).ok(tb, &out)
	if out.Delivered != nil {
		return *out.Delivered
	}
	if out.Read == nil {
		tb.Fatalf("no conversation returned")
	}
	return *out.Read
}

func (e *env) dlvDelivered(tb testing.TB, token, conversationID string, upToSeq int) dlvPointers {
	tb.Helper()
	return e.dlvMark(tb, dlvMarkDelivered, token, conversationID, upToSeq)
}

// dlvRead marks read up to upToSeq; nil marks everything.
func (e *env) dlvRead(tb testing.TB, token, conversationID string, upToSeq any) dlvPointers {
	tb.Helper()
	return e.dlvMark(tb, dlvMarkRead, token, conversationID, upToSeq)
}

func (e *env) dlvPointersAs(tb testing.TB, token, conversationID string) dlvPointers {
	tb.Helper()
	var out struct {
		Conversation dlvPointers `json:"conversation"`
	}
	e.do(tb, token, `query($c: ID!) { conversation(id: $c) { `+dlvConversationFields+` } }`, map[string]any{"c": conversationID}).ok(tb, &out)
	return out.Conversation
}

func dlvWant(tb testing.TB, what string, got dlvPointers, want string) {
	tb.Helper()
	if got.String() != want {
		tb.Fatalf("%s: %s, want %s", what, got, want)
	}
}

// dlvStatuses is the history as token's caller sees it: "seq:status" for
// each message, oldest first. It checks that isRead agrees with status.
func (e *env) dlvStatuses(tb testing.TB, token, conversationID string) string {
	tb.Helper()
	var out struct {
		Messages struct {
			Edges []struct {
				Node struct {
					Seq    int    `json:"seq"`
					Status string `json:"status"`
					IsRead bool   `json:"isRead"`
				} `json:"node"`
			} `json:"edges"`
		} `json:"messages"`
	}
	e.do(tb, token, `query($c: ID!) { messages(conversationId: $c, first: 100) { edges { node { seq status isRead } } } }`,
		map[string]any{"c": conversationID}).ok(tb, &out)
	var parts []string
	for _, edge := range out.Messages.Edges {
		n := edge.Node
		if n.IsRead != (n.Status == "READ") {
			tb.Fatalf("message %d: isRead %v but status %s", n.Seq, n.IsRead, n.Status)
		}
		parts = append(parts, fmt.Sprintf("%d:%s", n.Seq, n.Status))
	}
	return strings.Join(parts, " ")
}

// dlvStatusesAll checks that every viewer sees the same statuses, want.
func (e *env) dlvStatusesAll(tb testing.TB, conversationID, want string, tokens ...string) {
	tb.Helper()
	for i, tok := range tokens {
		if got := e.dlvStatuses(tb, tok, conversationID); got != want {
			tb.Fatalf("viewer %d sees %q, want %q", i, got, want)
		}
	}
}

// TestDeliverMarkDelivered: forward only, capped at the last seq, and the
// usual refusals, which change nothing.
func TestDeliverMarkDelivered(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		e.sendText(t, ana, conv.ID, "one")
		e.sendText(t, ana, conv.ID, "two") // seq 3

		dlvWant(t, "ben receives up to 2", e.dlvDelivered(t, ben, conv.ID, 2), "my=0/2 other=3/3")
		dlvWant(t, "backwards", e.dlvDelivered(t, ben, conv.ID, 1), "my=0/2 other=3/3")
		dlvWant(t, "the same", e.dlvDelivered(t, ben, conv.ID, 2), "my=0/2 other=3/3")
		dlvWant(t, "zero", e.dlvDelivered(t, ben, conv.ID, 0), "my=0/2 other=3/3")
		got := e.dlvDelivered(t, ben, conv.ID, 99)
		dlvWant(t, "past the end", got, "my=0/3 other=3/3")
		if got.UnreadCount != 3 || got.LastSeq != 3 {
			t.Fatalf("delivery changed the unread count: %+v", got)
		}
		dlvWant(t, "ana sees ben's delivery", e.dlvPointersAs(t, ana, conv.ID), "my=3/3 other=0/3")

		before := e.apiSnapshot(t, conv.ID, ana, ben)
		vars := map[string]any{"c": conv.ID, "up": -1}
		apiFailsOn(t, e.do(t, ben, dlvMarkDelivered, vars), "BAD_USER_INPUT", "upToSeq")
		vars["up"] = 2
		e.do(t, userToken(t, "mallory", "Mallory"), dlvMarkDelivered, vars).fails(t, "NOT_FOUND", conv.ID)
		e.do(t, serviceToken(t), dlvMarkDelivered, vars).fails(t, "FORBIDDEN", "markDelivered")
		e.do(t, "", dlvMarkDelivered, vars).fails(t, "UNAUTHENTICATED", "")
		missing := db.NewID()
		e.do(t, ben, dlvMarkDelivered, map[string]any{"c": missing, "up": 1}).fails(t, "NOT_FOUND", missing)
		e.apiUnchanged(t, conv.ID, before, ana, ben)
		dlvWant(t, "after the refusals", e.dlvPointersAs(t, ben, conv.ID), "my=0/3 other=3/3")
	})
}

// TestDeliverMarkRead: a read moves the delivered pointer with it, never
// back; and both work on a closed conversation.
func TestDeliverMarkRead(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		for _, text := range []string{"one", "two", "three"} {
			e.sendText(t, ana, conv.ID, text) // seqs 2 to 4
		}
		dlvWant(t, "read up to 2", e.dlvRead(t, ben, conv.ID, 2), "my=2/2 other=4/4")
		dlvWant(t, "delivered up to 3", e.dlvDelivered(t, ben, conv.ID, 3), "my=2/3 other=4/4")
		dlvWant(t, "read backwards", e.dlvRead(t, ben, conv.ID, 1), "my=2/3 other=4/4")
		dlvWant(t, "read below delivered", e.dlvRead(t, ben, conv.ID, 3), "my=3/3 other=4/4")
		dlvWant(t, "delivered below read", e.dlvDelivered(t, ben, conv.ID, 2), "my=3/3 other=4/4")

		e.do(t, serviceToken(t), `mutation($c: ID!) { closeConversation(conversationId: $c) { id } }`, map[string]any{"c": conv.ID}).ok(t, nil)
		e.do(t, serviceToken(t), apiPostSystem, map[string]any{"c": conv.ID, "text": "Job complete."}).ok(t, nil) // seq 5
		dlvWant(t, "delivered when closed", e.dlvDelivered(t, ben, conv.ID, 5), "my=3/5 other=4/4")
		dlvWant(t, "read all when closed", e.dlvRead(t, ben, conv.ID, nil), "my=5/5 other=4/4")
		dlvWant(t, "ana reads the system message", e.dlvRead(t, ana, conv.ID, nil), "my=5/5 other=5/5")
	})
}

// TestDeliverStatus: Message.status goes SENT, DELIVERED, READ with the
// recipient's pointers, the same for the sender, the recipient and the
// job-service; a SYSTEM message waits for both participants.
func TestDeliverStatus(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben, svc := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben"), serviceToken(t)
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		viewers := []string{ana, ben, svc}

		e.dlvStatusesAll(t, conv.ID, "1:SENT", viewers...)
		e.dlvDelivered(t, ana, conv.ID, 1)
		e.dlvStatusesAll(t, conv.ID, "1:SENT", viewers...)
		e.dlvDelivered(t, ben, conv.ID, 1)
		e.dlvStatusesAll(t, conv.ID, "1:DELIVERED", viewers...)
		e.dlvRead(t, ana, conv.ID, 1)
		e.dlvStatusesAll(t, conv.ID, "1:DELIVERED", viewers...)
		e.dlvRead(t, ben, conv.ID, 1)
		e.dlvStatusesAll(t, conv.ID, "1:READ", viewers...)

		// The sender's own pointers do not count; the send returns SENT.
		var sent struct {
			Msg struct {
				Status string `json:"status"`
			} `json:"sendMessage"`
		}
		e.do(t, ana, `mutation($c: ID!) { sendMessage(input: {conversationId: $c, messageText: "hi"}) { status } }`,
			map[string]any{"c": conv.ID}).ok(t, &sent)
		if sent.Msg.Status != "SENT" {
			t.Fatalf("sendMessage returned status %s", sent.Msg.Status)
		}
		e.sendText(t, ana, conv.ID, "there") // seq 3
		e.dlvStatusesAll(t, conv.ID, "1:READ 2:SENT 3:SENT", viewers...)
		e.dlvDelivered(t, ben, conv.ID, 2)
		e.dlvStatusesAll(t, conv.ID, "1:READ 2:DELIVERED 3:SENT", viewers...)
		e.dlvRead(t, ben, conv.ID, 2)
		e.dlvStatusesAll(t, conv.ID, "1:READ 2:READ 3:SENT", viewers...)
		e.dlvRead(t, ben, conv.ID, nil)
		e.dlvStatusesAll(t, conv.ID, "1:READ 2:READ 3:READ", viewers...)

		// Ben's reply waits on Ana; lastMessage shows the same status.
		e.sendText(t, ben, conv.ID, "hello") // seq 4
		e.dlvStatusesAll(t, conv.ID, "1:READ 2:READ 3:READ 4:SENT", viewers...)
		e.dlvDelivered(t, ana, conv.ID, 4)
		lastStatus := func(token string) string {
			var out struct {
				Conversation struct {
					LastMessage struct {
						Status string `json:"status"`
					} `json:"lastMessage"`
				} `json:"conversation"`
			}
			e.do(t, token, `query($c: ID!) { conversation(id: $c) { lastMessage { status } } }`, map[string]any{"c": conv.ID}).ok(t, &out)
			return out.Conversation.LastMessage.Status
		}
		for _, tok := range viewers {
			if got := lastStatus(tok); got != "DELIVERED" {
				t.Fatalf("lastMessage.status %s, want DELIVERED", got)
			}
		}

		// A SYSTEM message sent now: both must receive and read it.
		e.do(t, svc, apiPostSystem, map[string]any{"c": conv.ID, "text": "Job started."}).ok(t, nil) // seq 5
		e.dlvStatusesAll(t, conv.ID, "1:READ 2:READ 3:READ 4:DELIVERED 5:SENT", viewers...)
		e.dlvRead(t, ben, conv.ID, nil)
		e.dlvStatusesAll(t, conv.ID, "1:READ 2:READ 3:READ 4:DELIVERED 5:SENT", viewers...)
		e.dlvDelivered(t, ana, conv.ID, 5)
		e.dlvStatusesAll(t, conv.ID, "1:READ 2:READ 3:READ 4:DELIVERED 5:DELIVERED", viewers...)
		e.dlvRead(t, ana, conv.ID, nil)
		e.dlvStatusesAll(t, conv.ID, "1:READ 2:READ 3:READ 4:READ 5:READ", viewers...)
	})
}

// TestDeliverPointerFields: each participant sees its own pointers and the
// other's; the job-service sees none.
func TestDeliverPointerFields(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		dlvWant(t, "ana before anything", e.dlvPointersAs(t, ana, conv.ID), "my=0/0 other=0/0")
		e.sendText(t, ana, conv.ID, "one")
		e.sendText(t, ana, conv.ID, "two") // seq 3
		e.dlvRead(t, ben, conv.ID, 1)
		e.dlvDelivered(t, ben, conv.ID, 2)
		dlvWant(t, "ana", e.dlvPointersAs(t, ana, conv.ID), "my=3/3 other=1/2")
		dlvWant(t, "ben", e.dlvPointersAs(t, ben, conv.ID), "my=1/2 other=3/3")
		dlvWant(t, "the job-service", e.dlvPointersAs(t, serviceToken(t), conv.ID), "my=-/- other=-/-")
	})
}

// TestDeliverLive: a move of a pointer is one DELIVERED or READ event with
// the new pointer, for both participants' subscriptions; a mark that moves
// nothing sends nothing, and a read sends no DELIVERED beside its READ.
func TestDeliverLive(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		anaWS := e.typDial(t, ana, "ana").watch(conv.ID)
		benWS := e.typDial(t, ben, "ben").watch(conv.ID)
		both := []*typSocket{anaWS, benWS}
		last := e.typLive(t, conv.ID, ana, ben, "ben", both...)

		e.sendText(t, ana, conv.ID, "one")
		e.sendText(t, ana, conv.ID, "two")
		up := last + 1
		e.dlvDelivered(t, ben, conv.ID, up)
		for _, s := range both {
			s.expect(conv.ID, "DELIVERED", "ben", &up)
		}
		// Nothing moves: nothing is sent.
		e.dlvDelivered(t, ben, conv.ID, up)
		e.dlvDelivered(t, ben, conv.ID, 1)
		up = last + 2
		e.dlvRead(t, ben, conv.ID, nil)
		for _, s := range both {
			s.expect(conv.ID, "READ", "ben", &up)
		}
		e.dlvRead(t, ben, conv.ID, nil)
		e.dlvDelivered(t, ben, conv.ID, up)
		// A send moves the sender's pointers silently.
		e.sendText(t, ben, conv.ID, "three")
		up = e.typMark(t, conv.ID, ben, ana, "ana", both...)
		up2 := up
		e.dlvRead(t, ana, conv.ID, up2)
		for _, s := range both {
			s.expect(conv.ID, "READ", "ana", &up2)
		}
		e.typMark(t, conv.ID, ana, ben, "ben", both...)
	})
}

const dlvInboxSubscription = `subscription { inboxUpdated { kind conversation { id lastSeq unreadCount } unreadTotal } }`

// dlvInboxEvent is the InboxEvent fields these tests read.
type dlvInboxEvent struct {
	Kind         string `json:"kind"`
	Conversation struct {
		ID          string `json:"id"`
		LastSeq     int    `json:"lastSeq"`
		UnreadCount int    `json:"unreadCount"`
	} `json:"conversation"`
	UnreadTotal int `json:"unreadTotal"`
}

func (ev dlvInboxEvent) String() string {
	return fmt.Sprintf("%s lastSeq=%d unread=%d total=%d", ev.Kind, ev.Conversation.LastSeq, ev.Conversation.UnreadCount, ev.UnreadTotal)
}

// dlvInbox reads the next inboxUpdated event of s.
func dlvInbox(tb testing.TB, s *typSocket) dlvInboxEvent {
	tb.Helper()
	m := s.frame()
	if m.Type != "next" || m.ID != s.sub {
		tb.Fatalf("%s: want next for %s, got %+v (%s)", s.name, s.sub, m, m.Payload)
	}
	var p struct {
		Data struct {
			Event *dlvInboxEvent `json:"inboxUpdated"`
		} `json:"data"`
		Errors []gqlError `json:"errors"`
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil || len(p.Errors) > 0 || p.Data.Event == nil {
		tb.Fatalf("%s: inbox event %s: %v", s.name, m.Payload, err)
	}
	return *p.Data.Event
}

// TestDeliverReadInbox: a read that moves the pointer tells the reader's
// inbox (READ, with the counts after it), not the other participant's; a
// read that moves nothing tells no one.
func TestDeliverReadInbox(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		anaIn, benIn := e.typDial(t, ana, "ana's inbox"), e.typDial(t, ben, "ben's inbox")
		anaIn.sub = anaIn.start(dlvInboxSubscription, nil)
		benIn.sub = benIn.start(dlvInboxSubscription, nil)

		// Live only: Ana's messages probe both inboxes until each hears one.
		var last int
		seen := map[*typSocket]bool{}
		for attempt := 0; len(seen) < 2; attempt++ {
			if attempt == 50 {
				t.Fatal("inbox subscriptions still not live after 50 probes")
			}
			last = e.sendText(t, ana, conv.ID, "probe").Seq
			for _, s := range []*typSocket{anaIn, benIn} {
				if seen[s] {
					continue
				}
				if f, ok := s.poll(200 * time.Millisecond); ok {
					seen[s] = true
					s.putBack(f)
				}
			}
		}
		for _, s := range []*typSocket{anaIn, benIn} {
			for ev := dlvInbox(t, s); ev.Conversation.LastSeq != last; ev = dlvInbox(t, s) {
				if ev.Kind != "MESSAGE_ADDED" {
					t.Fatalf("%s while probing: %v", s.name, ev)
				}
			}
		}

		e.dlvRead(t, ben, conv.ID, nil)
		if ev := dlvInbox(t, benIn); ev.Kind != "READ" || ev.Conversation.ID != conv.ID || ev.Conversation.UnreadCount != 0 || ev.UnreadTotal != 0 {
			t.Fatalf("ben's inbox after his read: %v", ev)
		}
		e.dlvRead(t, ben, conv.ID, nil)
		e.dlvDelivered(t, ben, conv.ID, last)
		// Marker: the next event of each inbox is this message, so the
		// read sent Ana nothing, and the repeated read Ben nothing.
		m := e.sendText(t, ana, conv.ID, "marker")
		for _, s := range []*typSocket{anaIn, benIn} {
			if ev := dlvInbox(t, s); ev.Kind != "MESSAGE_ADDED" || ev.Conversation.LastSeq != m.Seq {
				t.Fatalf("%s: %v, want MESSAGE_ADDED of seq %d", s.name, ev, m.Seq)
			}
		}
	})
}
