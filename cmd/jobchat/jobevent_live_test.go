package main

import (
	"encoding/json"
	"testing"
)

// The job's life, live: conversationActivity and inboxUpdated over real
// WebSockets on every dialect, for close and reopen, and the inbox events
// of createConversationForJob. Helpers start with "jel".

const (
	jelActivity = `subscription($c: ID!) { conversationActivity(conversationId: $c) { kind conversationId actor { id } upToSeq message { id } at } }`
	jelInbox    = `subscription { inboxUpdated { kind unreadTotal conversation {
  id status closedAt lastSeq unreadCount job { title } lastMessage { id messageText messageType jobEvent } } } }`
	jelMessages = `subscription($c: ID!, $after: Int) { messageAdded(conversationId: $c, afterSeq: $after) { ` + jeMessageFields + ` } }`
)

type jelActivityEvent struct {
	Kind           string               `json:"kind"`
	ConversationID string               `json:"conversationId"`
	Actor          *struct{ ID string } `json:"actor"`
	UpToSeq        *int                 `json:"upToSeq"`
	Message        *struct{ ID string } `json:"message"`
	At             string               `json:"at"`
}

type jelInboxEvent struct {
	Kind         string `json:"kind"`
	UnreadTotal  int    `json:"unreadTotal"`
	Conversation struct {
		jeStatus
		LastMessage *struct {
			ID          string  `json:"id"`
			MessageText string  `json:"messageText"`
			MessageType string  `json:"messageType"`
			JobEvent    *string `json:"jobEvent"`
		} `json:"lastMessage"`
	} `json:"conversation"`
}

// jelData reads the next result of operation id and decodes its data.
func jelData(tb testing.TB, c *wsClient, id string, v any) {
	tb.Helper()
	m := c.next()
	want := "next"
	if c.proto == "graphql-ws" {
		want = "data"
	}
	if m.Type != want || m.ID != id {
		tb.Fatalf("want %s for %s, got %+v (%s)", want, id, m, m.Payload)
	}
	var p struct {
		Data   json.RawMessage `json:"data"`
		Errors []gqlError      `json:"errors"`
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		tb.Fatalf("decode payload %s: %v", m.Payload, err)
	}
	if len(p.Errors) > 0 {
		tb.Fatalf("operation %s: errors %+v", id, p.Errors)
	}
	if err := json.Unmarshal(p.Data, v); err != nil {
		tb.Fatalf("decode data %s: %v", p.Data, err)
	}
}

// jelSubscribe starts a live-only subscription and returns once the server
// holds it: the socket handles its messages in order, and a pushed
// subscription is in place before the next one is read, so the answer to
// a query sent after it proves that it will see what happens from now on.
func jelSubscribe(tb testing.TB, c *wsClient, query string, vars map[string]any) string {
	tb.Helper()
	id := c.subscribe(query, vars)
	sync := c.subscribe(`{ me { id } }`, nil)
	var me struct {
		Me struct{ ID string } `json:"me"`
	}
	jelData(tb, c, sync, &me)
	if end := c.next(); end.Type != "complete" || end.ID != sync {
		tb.Fatalf("want complete for %s, got %+v (%s)", sync, end, end.Payload)
	}
	return id
}

func jelNextActivity(tb testing.TB, c *wsClient, id string) jelActivityEvent {
	tb.Helper()
	var out struct {
		A jelActivityEvent `json:"conversationActivity"`
	}
	jelData(tb, c, id, &out)
	return out.A
}

func jelNextInbox(tb testing.TB, c *wsClient, id string) jelInboxEvent {
	tb.Helper()
	var out struct {
		E jelInboxEvent `json:"inboxUpdated"`
	}
	jelData(tb, c, id, &out)
	return out.E
}

func TestJobEventLiveCloseReopen(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")

		anaWS := e.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + ana})
		benWS := e.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + ben})
		act := jelSubscribe(t, anaWS, jelActivity, map[string]any{"c": conv.ID})
		inbox := jelSubscribe(t, benWS, jelInbox, nil)

		closed := e.jeSetStatus(t, conv.ID, true, "Job completed")
		a := jelNextActivity(t, anaWS, act)
		if a.Kind != "CONVERSATION_CLOSED" || a.ConversationID != conv.ID || a.Actor != nil || a.UpToSeq != nil || a.Message != nil || a.At == "" {
			t.Fatalf("activity of the close: %+v", a)
		}
		ev := jelNextInbox(t, benWS, inbox)
		if ev.Kind != "CONVERSATION_UPDATED" || ev.Conversation.ID != conv.ID || ev.Conversation.Status != "CLOSED" ||
			ev.Conversation.ClosedAt != closed.ClosedAt || ev.Conversation.UnreadCount != 1 || ev.UnreadTotal != 1 {
			t.Fatalf("inbox event of the close: %+v", ev)
		}

		// A repeated close broadcasts nothing: the next events are the
		// reopen's.
		e.jeSetStatus(t, conv.ID, true, nil)
		e.jeSetStatus(t, conv.ID, false, nil)
		if a := jelNextActivity(t, anaWS, act); a.Kind != "CONVERSATION_REOPENED" || a.ConversationID != conv.ID || a.Actor != nil {
			t.Fatalf("activity after a repeated close and a reopen: %+v", a)
		}
		if ev := jelNextInbox(t, benWS, inbox); ev.Kind != "CONVERSATION_UPDATED" || ev.Conversation.Status != "OPEN" || ev.Conversation.ClosedAt != "" {
			t.Fatalf("inbox event after a repeated close and a reopen: %+v", ev)
		}

		// Likewise a repeated reopen: the next events are the close's.
		e.jeSetStatus(t, conv.ID, false, nil)
		e.jeSetStatus(t, conv.ID, true, nil)
		if a := jelNextActivity(t, anaWS, act); a.Kind != "CONVERSATION_CLOSED" {
			t.Fatalf("activity after a repeated reopen and a close: %+v", a)
		}
		if ev := jelNextInbox(t, benWS, inbox); ev.Kind != "CONVERSATION_UPDATED" || ev.Conversation.Status != "CLOSED" {
			t.Fatalf("inbox event after a repeated reopen and a close: %+v", ev)
		}

		// A job event on the closed conversation is a message like any:
		// live with its event, and news in the inbox.
		var first struct {
			M jeMessage `json:"messageAdded"`
		}
		msgs := anaWS.subscribe(jelMessages, map[string]any{"c": conv.ID, "after": 1})
		posted := e.jePostJobEvent(t, conv.ID, "PAYMENT_RELEASED", "Payment released.", "paid")
		jelData(t, anaWS, msgs, &first)
		if first.M.ID != posted.ID || first.M.JobEvent == nil || *first.M.JobEvent != "PAYMENT_RELEASED" || first.M.MessageType != "SYSTEM" {
			t.Fatalf("messageAdded of a job event: %+v", first.M)
		}
		ev = jelNextInbox(t, benWS, inbox)
		if ev.Kind != "MESSAGE_ADDED" || ev.Conversation.LastMessage == nil || ev.Conversation.LastMessage.ID != posted.ID ||
			ev.Conversation.LastMessage.JobEvent == nil || ev.Conversation.Status != "CLOSED" || ev.UnreadTotal != 2 {
			t.Fatalf("inbox event of a job event: %+v", ev)
		}
	})
}

func TestJobEventLiveOpenedInbox(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		old := e.openJob(t, "job-0", "ana", "carl", "Chat is now active.")

		// Both subscribe before the conversation exists.
		anaWS := e.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + ana})
		benWS := e.dial(t, "graphql-ws", map[string]any{"authorization": "Bearer " + ben})
		anaInbox := jelSubscribe(t, anaWS, jelInbox, nil)
		benInbox := jelSubscribe(t, benWS, jelInbox, nil)

		conv := e.openJob(t, "job-1", "ana", "ben", "Job 'Title of job-1' has been accepted. Chat is now active.")
		for _, s := range []struct {
			name  string
			ws    *wsClient
			id    string
			total int
		}{{"ana", anaWS, anaInbox, 2}, {"ben", benWS, benInbox, 1}} {
			ev := jelNextInbox(t, s.ws, s.id)
			c := ev.Conversation
			if ev.Kind != "CONVERSATION_OPENED" || c.ID != conv.ID || c.Status != "OPEN" || c.LastSeq != 1 || c.UnreadCount != 1 ||
				c.LastMessage == nil || c.LastMessage.MessageType != "SYSTEM" || c.LastMessage.MessageText != "Job 'Title of job-1' has been accepted. Chat is now active." ||
				ev.UnreadTotal != s.total {
				t.Fatalf("%s's inbox event of the opening: %+v", s.name, ev)
			}
		}

		// The opening message was news of CONVERSATION_OPENED only: the
		// next event anyone gets is the one after it.
		e.jeSetStatus(t, old.ID, true, nil)
		if ev := jelNextInbox(t, anaWS, anaInbox); ev.Kind != "CONVERSATION_UPDATED" || ev.Conversation.ID != old.ID {
			t.Fatalf("ana's next inbox event: %+v", ev)
		}

		// A repeat refreshes the title and profiles: CONVERSATION_UPDATED
		// for both, whatever the status.
		e.jeSetStatus(t, conv.ID, true, nil)
		for _, s := range []struct {
			ws *wsClient
			id string
		}{{anaWS, anaInbox}, {benWS, benInbox}} {
			if ev := jelNextInbox(t, s.ws, s.id); ev.Kind != "CONVERSATION_UPDATED" || ev.Conversation.Status != "CLOSED" {
				t.Fatalf("inbox event of the close: %+v", ev)
			}
		}
		e.apiOpen(t, map[string]any{
			"jobId": "job-1", "jobTitle": "Fix the kitchen sink",
			"client":        map[string]any{"id": "ana", "displayName": "Ana"},
			"worker":        map[string]any{"id": "ben", "displayName": "Ben"},
			"systemMessage": "Job 'Title of job-1' has been accepted. Chat is now active.",
		})
		for _, s := range []struct {
			ws *wsClient
			id string
		}{{anaWS, anaInbox}, {benWS, benInbox}} {
			ev := jelNextInbox(t, s.ws, s.id)
			if ev.Kind != "CONVERSATION_UPDATED" || ev.Conversation.ID != conv.ID || ev.Conversation.Job.Title != "Fix the kitchen sink" ||
				ev.Conversation.Status != "CLOSED" || ev.Conversation.LastSeq != 1 {
				t.Fatalf("inbox event of the repeat: %+v", ev)
			}
		}

		// Without a system message there is nothing to show yet.
		bare := e.openJob(t, "job-2", "ana", "ben", "")
		ev := jelNextInbox(t, benWS, benInbox)
		if ev.Kind != "CONVERSATION_OPENED" || ev.Conversation.ID != bare.ID || ev.Conversation.LastMessage != nil ||
			ev.Conversation.UnreadCount != 0 || ev.UnreadTotal != 1 {
			t.Fatalf("inbox event of a bare opening: %+v", ev)
		}
	})
}
