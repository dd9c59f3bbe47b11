package main

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Reactions, edits and deletions on the conversationActivity stream, over
// real WebSockets on every dialect: one broadcast, read by two viewers,
// each with their own reactedByMe; MESSAGE_EDITED and MESSAGE_DELETED with
// the message as it is now; nothing for idempotent repeats. Helpers start
// with "rxl"; the message helpers are reactions_test.go's.

const rxlActivitySubscription = `subscription($c: ID!) { conversationActivity(conversationId: $c) {
  kind conversationId actor { id } at message { ` + rxMessageFields + ` } } }`

type rxlActivity struct {
	Kind           string     `json:"kind"`
	ConversationID string     `json:"conversationId"`
	Actor          *profile   `json:"actor"`
	At             string     `json:"at"`
	Message        *rxMessage `json:"message"`
}

func (a rxlActivity) String() string {
	actor, msg := "<none>", "<none>"
	if a.Actor != nil {
		actor = a.Actor.ID
	}
	if a.Message != nil {
		msg = fmt.Sprintf("%s %q %v", a.Message.ID, a.Message.MessageText, a.Message.Reactions)
	}
	return fmt.Sprintf("%s by %s on %s", a.Kind, actor, msg)
}

// rxlSocket reads one conversationActivity subscription in the background,
// so that a test can wait for an event with a timeout.
type rxlSocket struct {
	tb     testing.TB
	name   string
	conn   *websocket.Conn
	frames chan wsMessage
	err    error // why the reader stopped; read once frames is closed
}

// rxlSubscribe opens a socket as token's user with one subscription, whose
// events a goroutine reads in the background. After the subscribe frame
// only that goroutine writes (its pongs), so writes need no lock.
func (e *env) rxlSubscribe(tb testing.TB, token, name, query string, vars map[string]any) *rxlSocket {
	tb.Helper()
	c := e.dial(tb, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + token})
	s := &rxlSocket{tb: tb, name: name, conn: c.conn, frames: make(chan wsMessage, 256)}
	c.send(wsMessage{ID: "sub", Type: "subscribe", Payload: mustJSON(tb, map[string]any{"query": query, "variables": vars})})
	// The handshake's read deadline is the harness's; events may be
	// further apart, and poll has timeouts of its own.
	_ = s.conn.SetReadDeadline(time.Time{})
	go func() {
		defer close(s.frames)
		for {
			var m wsMessage
			if err := s.conn.ReadJSON(&m); err != nil {
				s.err = err
				return
			}
			switch m.Type {
			case "ping":
				_ = s.conn.WriteJSON(wsMessage{Type: "pong"})
				continue
			case "pong", "ka":
				continue
			}
			s.frames <- m
		}
	}()
	return s
}

// rxlWatch subscribes to a conversation's activity as token's user.
func (e *env) rxlWatch(tb testing.TB, token, name, conversationID string) *rxlSocket {
	tb.Helper()
	return e.rxlSubscribe(tb, token, name, rxlActivitySubscription, map[string]any{"c": conversationID})
}

// pollData decodes the next event's data into v, or returns false when
// none came within d.
func (s *rxlSocket) pollData(d time.Duration, v any) bool {
	s.tb.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	var m wsMessage
	select {
	case f, ok := <-s.frames:
		if !ok {
			s.tb.Fatalf("%s: the socket closed: %v", s.name, s.err)
		}
		m = f
	case <-timer.C:
		return false
	}
	if m.Type != "next" || m.ID != "sub" {
		s.tb.Fatalf("%s: want an event, got %+v (%s)", s.name, m, m.Payload)
	}
	var p struct {
		Data   json.RawMessage `json:"data"`
		Errors []gqlError      `json:"errors"`
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		s.tb.Fatalf("%s: decode %s: %v", s.name, m.Payload, err)
	}
	if len(p.Errors) > 0 {
		s.tb.Fatalf("%s: event errors %+v (%s)", s.name, p.Errors, m.Payload)
	}
	if err := json.Unmarshal(p.Data, v); err != nil {
		s.tb.Fatalf("%s: decode data %s: %v", s.name, p.Data, err)
	}
	return true
}

// poll returns the next activity event, or false when none came within d.
func (s *rxlSocket) poll(d time.Duration) (rxlActivity, bool) {
	s.tb.Helper()
	var data struct {
		Activity *rxlActivity `json:"conversationActivity"`
	}
	if !s.pollData(d, &data) {
		return rxlActivity{}, false
	}
	if data.Activity == nil {
		s.tb.Fatalf("%s: null activity event", s.name)
	}
	return *data.Activity, true
}

// next waits for the next event, failing after 10s.
func (s *rxlSocket) next() rxlActivity {
	s.tb.Helper()
	a, ok := s.poll(10 * time.Second)
	if !ok {
		s.tb.Fatalf("%s: no activity event within 10s", s.name)
	}
	return a
}

// expect checks the next event's kind, actor ("" for the job-service),
// conversation and message, and returns it.
func (s *rxlSocket) expect(kind, conversationID, actor, messageID string) rxlActivity {
	s.tb.Helper()
	a := s.next()
	gotActor := ""
	if a.Actor != nil {
		gotActor = a.Actor.ID
	}
	if a.Kind != kind || a.ConversationID != conversationID || gotActor != actor || a.Message == nil || a.Message.ID != messageID {
		s.tb.Fatalf("%s: got %v in %s, want %s by %q on %s in %s", s.name, a, a.ConversationID, kind, actor, messageID, conversationID)
	}
	if _, err := time.Parse(time.RFC3339Nano, a.At); err != nil {
		s.tb.Fatalf("%s: %v: at %q: %v", s.name, a, a.At, err)
	}
	return a
}

// rxlLive waits until the sockets' subscriptions are live (activity is
// never replayed): token's user toggles 👀 on a probe message of their own
// until every socket has seen it, then marks the end with 🏁, which must
// come after nothing but probes. It returns the probe message's id.
func (e *env) rxlLive(tb testing.TB, token, conversationID string, socks ...*rxlSocket) string {
	tb.Helper()
	probe := e.sendText(tb, token, conversationID, "probe")
	seen := make([]bool, len(socks))
	for attempt := 0; ; attempt++ {
		done := true
		for _, ok := range seen {
			done = done && ok
		}
		if done {
			break
		}
		if attempt == 50 {
			tb.Fatalf("activity subscriptions still not live after %d probes", attempt)
		}
		if attempt%2 == 0 {
			e.rxAdd(tb, token, probe.ID, "👀")
		} else {
			e.rxRemove(tb, token, probe.ID, "👀")
		}
		for i, s := range socks {
			if !seen[i] {
				_, seen[i] = s.poll(200 * time.Millisecond)
			}
		}
	}
	e.rxAdd(tb, token, probe.ID, "🏁")
	for _, s := range socks {
		e.rxlSkipProbes(s, probe.ID)
	}
	return probe.ID
}

// rxlSkipProbes reads s up to and including the probe's 🏁 event.
func (e *env) rxlSkipProbes(s *rxlSocket, probeID string) {
	s.tb.Helper()
	for {
		a := s.next()
		if a.Kind != "REACTIONS_CHANGED" || a.Message == nil || a.Message.ID != probeID {
			s.tb.Fatalf("%s: while probing: %v", s.name, a)
		}
		for _, g := range a.Message.Reactions {
			if g.Emoji == "🏁" {
				return
			}
		}
	}
}

// rxlQuiet proves that nothing reached socks since their last event: the
// next event on each must be a new reaction on the probe message.
func (e *env) rxlQuiet(tb testing.TB, token, probeID, emoji string, socks ...*rxlSocket) {
	tb.Helper()
	e.rxAdd(tb, token, probeID, emoji)
	for _, s := range socks {
		a := s.next()
		found := false
		if a.Kind == "REACTIONS_CHANGED" && a.Message != nil && a.Message.ID == probeID {
			for _, g := range a.Message.Reactions {
				found = found || g.Emoji == emoji
			}
		}
		if !found {
			s.tb.Fatalf("%s: want the marker %s on the probe, got %v", s.name, emoji, a)
		}
	}
}

func TestReactionsLiveActivity(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben, svc := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben"), serviceToken(t)
		conv := e.openJob(t, "job-1", "ana", "ben", "")
		m := e.sendText(t, ana, conv.ID, "hello")
		bens := e.sendText(t, ben, conv.ID, "call me on 555-0199")

		sa := e.rxlWatch(t, ana, "ana", conv.ID)
		sb := e.rxlWatch(t, ben, "ben", conv.ID)
		probe := e.rxlLive(t, ana, conv.ID, sa, sb)

		// One broadcast, two viewers: each reads their own reactedByMe.
		e.rxAdd(t, ben, m.ID, "👍")
		rxSameGroups(t, "ana's view of ben's 👍", sa.expect("REACTIONS_CHANGED", conv.ID, "ben", m.ID).Message.Reactions,
			[]rxGroup{rxG("👍", 1, false)})
		rxSameGroups(t, "ben's view of ben's 👍", sb.expect("REACTIONS_CHANGED", conv.ID, "ben", m.ID).Message.Reactions,
			[]rxGroup{rxG("👍", 1, true)})
		e.rxAdd(t, ana, m.ID, "🎉")
		rxSameGroups(t, "ana's view of ana's 🎉", sa.expect("REACTIONS_CHANGED", conv.ID, "ana", m.ID).Message.Reactions,
			[]rxGroup{rxG("👍", 1, false), rxG("🎉", 1, true)})
		rxSameGroups(t, "ben's view of ana's 🎉", sb.expect("REACTIONS_CHANGED", conv.ID, "ana", m.ID).Message.Reactions,
			[]rxGroup{rxG("👍", 1, true), rxG("🎉", 1, false)})

		// Repeats change nothing and broadcast nothing.
		e.rxAdd(t, ben, m.ID, "👍")
		e.rxRemove(t, ben, m.ID, "😮")
		e.rxlQuiet(t, ana, probe, "1️⃣", sa, sb)

		e.rxRemove(t, ben, m.ID, "👍")
		rxSameGroups(t, "ana's view of the removal", sa.expect("REACTIONS_CHANGED", conv.ID, "ben", m.ID).Message.Reactions,
			[]rxGroup{rxG("🎉", 1, true)})
		rxSameGroups(t, "ben's view of the removal", sb.expect("REACTIONS_CHANGED", conv.ID, "ben", m.ID).Message.Reactions,
			[]rxGroup{rxG("🎉", 1, false)})

		// An edit: the message as it is now, reactions and all.
		e.rxEditAs(t, ana, m.ID, "hello there").ok(t, nil)
		for _, s := range []*rxlSocket{sa, sb} {
			got := s.expect("MESSAGE_EDITED", conv.ID, "ana", m.ID).Message
			if got.MessageText != "hello there" || got.EditedAt == nil || got.Seq != m.Seq {
				t.Fatalf("%s: edited message %+v", s.name, got)
			}
			rxSameGroups(t, s.name+": reactions of the edited message", got.Reactions, []rxGroup{rxG("🎉", 1, s == sa)})
		}
		e.rxEditAs(t, ana, m.ID, "hello there").ok(t, nil)
		e.rxlQuiet(t, ana, probe, "2️⃣", sa, sb)

		// A deletion: cleared content, no reactions; the second is silent.
		e.rxDeleteAs(t, ana, m.ID).ok(t, nil)
		for _, s := range []*rxlSocket{sa, sb} {
			got := s.expect("MESSAGE_DELETED", conv.ID, "ana", m.ID).Message
			if got.MessageText != "" || got.DeletedAt == nil || len(got.Reactions) != 0 || got.Seq != m.Seq {
				t.Fatalf("%s: deleted message %+v", s.name, got)
			}
		}
		e.rxDeleteAs(t, ana, m.ID).ok(t, nil)
		e.rxlQuiet(t, ana, probe, "3️⃣", sa, sb)

		// The job-service's moderation has no actor.
		e.do(t, svc, rxDelete, map[string]any{"m": bens.ID}).ok(t, nil)
		for _, s := range []*rxlSocket{sa, sb} {
			if got := s.expect("MESSAGE_DELETED", conv.ID, "", bens.ID).Message; got.MessageText != "" || got.DeletedAt == nil {
				t.Fatalf("%s: moderated message %+v", s.name, got)
			}
		}
		e.rxlQuiet(t, ana, probe, "4️⃣", sa, sb)
	})
}

const rxlInboxSubscription = `subscription { inboxUpdated { kind conversation { id lastMessage { ` + rxMessageFields + ` } } } }`

type rxlInboxEvent struct {
	Kind         string `json:"kind"`
	Conversation struct {
		ID          string     `json:"id"`
		LastMessage *rxMessage `json:"lastMessage"`
	} `json:"conversation"`
}

// nextInbox waits for the next inboxUpdated event, failing after 10s.
func (s *rxlSocket) nextInbox() rxlInboxEvent {
	s.tb.Helper()
	var data struct {
		Event *rxlInboxEvent `json:"inboxUpdated"`
	}
	if !s.pollData(10*time.Second, &data) || data.Event == nil {
		s.tb.Fatalf("%s: no inbox event within 10s", s.name)
	}
	return *data.Event
}

// TestEditDeleteInboxLive: editing or deleting a conversation's last
// message refreshes its preview in the inbox (CONVERSATION_UPDATED); an
// older message's edit is no inbox news.
func TestEditDeleteInboxLive(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-1", "ana", "ben", "")
		older := e.sendText(t, ana, conv.ID, "first")
		sb := e.rxlSubscribe(t, ben, "ben's inbox", rxlInboxSubscription, nil)

		// Live once a message of ana's reaches it; then read up to the
		// last probe's MESSAGE_ADDED.
		var (
			last  message
			first struct {
				Event *rxlInboxEvent `json:"inboxUpdated"`
			}
		)
		for attempt := 0; ; attempt++ {
			if attempt == 50 {
				t.Fatal("inboxUpdated still not live after 50 probes")
			}
			last = e.sendText(t, ana, conv.ID, "probe")
			if sb.pollData(200*time.Millisecond, &first) {
				if first.Event == nil {
					t.Fatal("null inbox event")
				}
				break
			}
		}
		for ev := *first.Event; ; ev = sb.nextInbox() {
			if ev.Kind != "MESSAGE_ADDED" {
				t.Fatalf("while probing: %+v", ev)
			}
			if ev.Conversation.LastMessage != nil && ev.Conversation.LastMessage.ID == last.ID {
				break
			}
		}

		e.rxEditAs(t, ana, last.ID, "the last word").ok(t, nil)
		ev := sb.nextInbox()
		if p := ev.Conversation.LastMessage; ev.Kind != "CONVERSATION_UPDATED" || ev.Conversation.ID != conv.ID ||
			p == nil || p.ID != last.ID || p.MessageText != "the last word" || p.EditedAt == nil {
			t.Fatalf("after editing the last message: %+v (%+v)", ev, ev.Conversation.LastMessage)
		}

		// An older message is not in any preview: no inbox event. The
		// next one must be the marker's.
		e.rxEditAs(t, ana, older.ID, "first, edited").ok(t, nil)
		e.rxDeleteAs(t, ana, older.ID).ok(t, nil)
		marker := e.sendText(t, ana, conv.ID, "marker")
		if ev := sb.nextInbox(); ev.Kind != "MESSAGE_ADDED" || ev.Conversation.LastMessage == nil || ev.Conversation.LastMessage.ID != marker.ID {
			t.Fatalf("want the marker's MESSAGE_ADDED, got %+v", ev)
		}

		e.rxDeleteAs(t, ana, marker.ID).ok(t, nil)
		ev = sb.nextInbox()
		if p := ev.Conversation.LastMessage; ev.Kind != "CONVERSATION_UPDATED" || p == nil || p.ID != marker.ID || p.MessageText != "" || p.DeletedAt == nil {
			t.Fatalf("after deleting the last message: %+v (%+v)", ev, ev.Conversation.LastMessage)
		}
	})
}
