package main

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jobchat/jobchat/db/dbtest"
	"github.com/jobchat/jobchat/internal/testsvc"
)

// liveEvent is what these tests read of an inboxUpdated or
// conversationActivity event.
type liveEvent struct {
	Kind        string `json:"kind"`
	UnreadTotal int    `json:"unreadTotal"`
	UpToSeq     *int   `json:"upToSeq"`
	Actor       *struct {
		ID string `json:"id"`
	} `json:"actor"`
	Conversation *struct {
		ID          string `json:"id"`
		UnreadCount int    `json:"unreadCount"`
		LastMessage *struct {
			MessageText string `json:"messageText"`
		} `json:"lastMessage"`
	} `json:"conversation"`
	Message *struct {
		ID        string `json:"id"`
		Reactions []struct {
			Emoji       string `json:"emoji"`
			Count       int    `json:"count"`
			ReactedByMe bool   `json:"reactedByMe"`
		} `json:"reactions"`
	} `json:"message"`
}

const (
	liveInboxSub    = `subscription { inboxUpdated { kind unreadTotal conversation { id unreadCount lastMessage { messageText } } } }`
	liveActivitySub = `subscription($c: ID!) { conversationActivity(conversationId: $c) { kind upToSeq actor { id } message { id reactions { emoji count reactedByMe } } } }`
)

// nextEvent reads the next event of operation id, whichever root field it
// carries.
func (c *wsClient) nextEvent(id string) liveEvent {
	c.tb.Helper()
	m := c.nextFor(id)
	if m.Type != "next" {
		c.tb.Fatalf("want next for %s, got %+v (%s)", id, m, m.Payload)
	}
	var p struct {
		Data   map[string]liveEvent `json:"data"`
		Errors []gqlError           `json:"errors"`
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		c.tb.Fatalf("decode %s: %v", m.Payload, err)
	}
	if len(p.Errors) > 0 || len(p.Data) != 1 {
		c.tb.Fatalf("event %s", m.Payload)
	}
	for _, ev := range p.Data {
		return ev
	}
	panic("unreachable")
}

// TestLiveAcrossInstances runs two instances on one database and one
// Redis: typing, receipts, reactions and inbox events made on one reach
// subscribers on the other, each viewer with its own reactedByMe.
func TestLiveAcrossInstances(t *testing.T) {
	redisURL := testsvc.RedisURL(t)
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			vars := map[string]string{
				"JOBCHAT_REDIS_URL":    redisURL,
				"JOBCHAT_REDIS_PREFIX": "jobchat-test-live-" + randomSuffix() + ":",
			}
			dbc := dbtest.Config(t, dialect)
			instA, instB := newEnvOnDB(t, dbc, vars), newEnvOnDB(t, dbc, vars)
			ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
			conv := instA.openJob(t, "job-live", "ana", "ben", "")
			waitPublished(t, instA) // its CONVERSATION_OPENED is not news to ben's inbox below

			// Ben watches on B; Ana acts on A.
			benWS := instB.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + ben})
			benInbox := benWS.subscribe(liveInboxSub, nil)
			benAct := benWS.subscribe(liveActivitySub, map[string]any{"c": conv.ID})
			anaWS := instA.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + ana})
			anaAct := anaWS.subscribe(liveActivitySub, map[string]any{"c": conv.ID})
			// The subscribe frames go out unanswered: wait until each
			// instance has registered them with their feeds, whose hub
			// subscriptions are then active.
			liveWaitFollowers(t, instB, 2)
			liveWaitFollowers(t, instA, 1)
			// Ana types; ben sees it, ana's own subscription must not.
			instA.do(t, ana, `mutation($c: ID!) { setTyping(conversationId: $c, typing: true) }`, map[string]any{"c": conv.ID}).ok(t, nil)
			if ev := benWS.nextEvent(benAct); ev.Kind != "TYPING_STARTED" || ev.Actor == nil || ev.Actor.ID != "ana" {
				t.Fatalf("ben's activity: %+v", ev)
			}

			sent := instA.sendText(t, ana, conv.ID, "across instances")
			if ev := benWS.nextEvent(benAct); ev.Kind != "TYPING_STOPPED" {
				t.Fatalf("after ana's send, ben's activity: %+v", ev)
			}
			ev := benWS.nextEvent(benInbox)
			if ev.Kind != "MESSAGE_ADDED" || ev.UnreadTotal != 1 || ev.Conversation.UnreadCount != 1 ||
				ev.Conversation.LastMessage == nil || ev.Conversation.LastMessage.MessageText != "across instances" {
				t.Fatalf("ben's inbox: %+v", ev)
			}

			// Receipts from B reach ana's subscription on A.
			instB.do(t, ben, `mutation($c: ID!, $s: Int!) { markDelivered(conversationId: $c, upToSeq: $s) { id } }`,
				map[string]any{"c": conv.ID, "s": sent.Seq}).ok(t, nil)
			if ev := anaWS.nextEvent(anaAct); ev.Kind != "DELIVERED" || ev.UpToSeq == nil || *ev.UpToSeq != sent.Seq {
				t.Fatalf("ana's activity after ben's markDelivered: %+v", ev)
			}
			instB.do(t, ben, `mutation($c: ID!) { markRead(conversationId: $c) { id } }`, map[string]any{"c": conv.ID}).ok(t, nil)
			if ev := anaWS.nextEvent(anaAct); ev.Kind != "READ" || ev.UpToSeq == nil || *ev.UpToSeq != sent.Seq {
				t.Fatalf("ana's activity after ben's markRead: %+v", ev)
			}
			if ev := benWS.nextEvent(benAct); ev.Kind != "DELIVERED" {
				t.Fatalf("ben's activity: %+v", ev)
			}
			if ev := benWS.nextEvent(benAct); ev.Kind != "READ" {
				t.Fatalf("ben's activity: %+v", ev)
			}
			if ev := benWS.nextEvent(benInbox); ev.Kind != "READ" || ev.UnreadTotal != 0 {
				t.Fatalf("ben's inbox after his read: %+v", ev)
			}

			// One reaction, two viewers on two instances, each with their
			// own reactedByMe.
			instA.do(t, ana, `mutation($m: ID!) { addReaction(messageId: $m, emoji: "👍") { id } }`, map[string]any{"m": sent.ID}).ok(t, nil)
			for _, v := range []struct {
				ws   *wsClient
				id   string
				mine bool
			}{{anaWS, anaAct, true}, {benWS, benAct, false}} {
				ev := v.ws.nextEvent(v.id)
				if ev.Kind != "REACTIONS_CHANGED" || ev.Message == nil || ev.Message.ID != sent.ID || len(ev.Message.Reactions) != 1 {
					t.Fatalf("reaction event: %+v", ev)
				}
				if r := ev.Message.Reactions[0]; r.Emoji != "👍" || r.Count != 1 || r.ReactedByMe != v.mine {
					t.Fatalf("reaction group %+v, want reactedByMe %v", r, v.mine)
				}
			}
		})
	}
}

// liveWaitFollowers waits, bounded, until e's feeds hold n subscriptions.
func liveWaitFollowers(tb testing.TB, e *env, n int) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.app.resolver.FeedStats().Followers < n {
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d subscriptions registered after 10s", e.app.resolver.FeedStats().Followers, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func randomSuffix() string {
	var b [8]byte
	for i := range b {
		b[i] = byte('a' + rand.IntN(26))
	}
	return string(b[:])
}
