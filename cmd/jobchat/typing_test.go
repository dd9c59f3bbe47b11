package main

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/db/dbtest"
	"github.com/jobchat/jobchat/internal/testsvc"
)

// Typing indicators (issue 8, Semantics 2) over real HTTP and real
// WebSockets. The helpers here, prefixed "typ", also serve
// delivery_test.go: a socket that reads conversationActivity events in the
// background, and a probe that tells when a subscription is live.

const typActivitySubscription = `subscription($c: ID!) { conversationActivity(conversationId: $c) { kind conversationId actor { id displayName } upToSeq at } }`

const typSetTyping = `mutation($c: ID!, $typing: Boolean!) { setTyping(conversationId: $c, typing: $typing) }`

// typActivity is the ConversationActivity fields the tests read.
type typActivity struct {
	Kind           string   `json:"kind"`
	ConversationID string   `json:"conversationId"`
	Actor          *profile `json:"actor"`
	UpToSeq        *int     `json:"upToSeq"`
	At             string   `json:"at"`
}

func (a typActivity) String() string {
	actor := "<none>"
	if a.Actor != nil {
		actor = a.Actor.ID
	}
	return fmt.Sprintf("%s by %s upToSeq=%v", a.Kind, actor, apiDeref(a.UpToSeq))
}

// typSocket is a graphql-transport-ws socket with one conversationActivity
// subscription, whose frames a goroutine reads into a channel, so that a
// test can wait for an event with a timeout without breaking the socket.
type typSocket struct {
	tb     testing.TB
	name   string
	conn   *websocket.Conn
	wmu    sync.Mutex
	frames chan wsMessage
	// err is why the reader stopped; read it once frames is closed.
	err error
	// held is what the test put back to read again, before frames.
	held []wsMessage
	ids  atomic.Int64
	sub  string // the activity subscription's id
}

// typDial opens a socket as token's user; name labels its failures.
func (e *env) typDial(tb testing.TB, token, name string) *typSocket {
	tb.Helper()
	c := e.dial(tb, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + token})
	s := &typSocket{tb: tb, name: name, conn: c.conn, frames: make(chan wsMessage, 256)}
	go s.read()
	return s
}

func (s *typSocket) read() {
	defer close(s.frames)
	// dial's wait for the ack left a deadline; waits are poll's job now.
	_ = s.conn.SetReadDeadline(time.Time{})
	for {
		var m wsMessage
		if err := s.conn.ReadJSON(&m); err != nil {
			s.err = err
			return
		}
		switch m.Type {
		case "ping":
			_ = s.write(wsMessage{Type: "pong"})
			continue
		case "ka", "pong":
			continue
		}
		s.frames <- m
	}
}

func (s *typSocket) write(m wsMessage) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return s.conn.WriteJSON(m)
}

// start begins an operation and returns its id.
func (s *typSocket) start(query string, vars map[string]any) string {
	s.tb.Helper()
	id := fmt.Sprintf("%s-%d", s.name, s.ids.Add(1))
	if err := s.write(wsMessage{ID: id, Type: "subscribe", Payload: mustJSON(s.tb, map[string]any{"query": query, "variables": vars})}); err != nil {
		s.tb.Fatalf("%s: websocket write: %v", s.name, err)
	}
	return id
}

// watch subscribes to the conversation's activity.
func (s *typSocket) watch(conversationID string) *typSocket {
	s.tb.Helper()
	s.sub = s.start(typActivitySubscription, map[string]any{"c": conversationID})
	return s
}

// putBack makes m the next frame read.
func (s *typSocket) putBack(m wsMessage) {
	s.held = append([]wsMessage{m}, s.held...)
}

// poll returns the next frame, or false when none came within d.
func (s *typSocket) poll(d time.Duration) (wsMessage, bool) {
	s.tb.Helper()
	if len(s.held) > 0 {
		m := s.held[0]
		s.held = s.held[1:]
		return m, true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case m, ok := <-s.frames:
		if !ok {
			s.tb.Fatalf("%s: the socket closed: %v", s.name, s.err)
		}
		return m, true
	case <-timer.C:
		return wsMessage{}, false
	}
}

// frame waits for the next frame, failing after a generous 10s.
func (s *typSocket) frame() wsMessage {
	s.tb.Helper()
	m, ok := s.poll(10 * time.Second)
	if !ok {
		s.tb.Fatalf("%s: no frame within 10s", s.name)
	}
	return m
}

// activity decodes m as an event of the activity subscription.
func (s *typSocket) activity(m wsMessage) typActivity {
	s.tb.Helper()
	if m.Type != "next" || m.ID != s.sub {
		s.tb.Fatalf("%s: want next for %s, got %+v (%s)", s.name, s.sub, m, m.Payload)
	}
	var p struct {
		Data struct {
			Activity *typActivity `json:"conversationActivity"`
		} `json:"data"`
		Errors []gqlError `json:"errors"`
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		s.tb.Fatalf("%s: decode payload %s: %v", s.name, m.Payload, err)
	}
	if len(p.Errors) > 0 || p.Data.Activity == nil {
		s.tb.Fatalf("%s: activity errors %+v (%s)", s.name, p.Errors, m.Payload)
	}
	return *p.Data.Activity
}

// next waits for the next activity event.
func (s *typSocket) next() typActivity {
	s.tb.Helper()
	return s.activity(s.frame())
}

// expect checks that the next event is kind by actor, with upToSeq (nil:
// none) and the conversation's id.
func (s *typSocket) expect(conversationID, kind, actor string, upToSeq *int) typActivity {
	s.tb.Helper()
	a := s.next()
	if a.Kind != kind || a.Actor == nil || a.Actor.ID != actor || a.ConversationID != conversationID ||
		(a.UpToSeq == nil) != (upToSeq == nil) || (upToSeq != nil && *a.UpToSeq != *upToSeq) {
		s.tb.Fatalf("%s: got %v in %s, want %s by %s upToSeq=%v in %s", s.name, a, a.ConversationID, kind, actor, apiDeref(upToSeq), conversationID)
	}
	if a.Actor.DisplayName == "" {
		s.tb.Fatalf("%s: %v: the actor has no profile", s.name, a)
	}
	if _, err := time.Parse(time.RFC3339Nano, a.At); err != nil {
		s.tb.Fatalf("%s: %v: at %q: %v", s.name, a, a.At, err)
	}
	return a
}

// typLive waits until the activity subscriptions of socks are live.
// Activity is live only, never replayed, so a test must know that before
// it acts. sender sends a message and receiver marks it delivered, which is
// a DELIVERED event for every participant's subscription, until each socket
// has seen one; each is then read up to the last probe's event. It returns
// the last probe's seq, which is now receiver's delivered pointer.
func (e *env) typLive(tb testing.TB, conversationID, senderToken, receiverToken, receiverID string, socks ...*typSocket) int {
	tb.Helper()
	seen := make([]bool, len(socks))
	first := make([]typActivity, len(socks))
	last := 0
	for attempt := 0; ; attempt++ {
		missing := 0
		for _, ok := range seen {
			if !ok {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if attempt == 50 {
			tb.Fatalf("%d activity subscriptions still not live after %d probes", missing, attempt)
		}
		m := e.sendText(tb, senderToken, conversationID, "probe")
		e.do(tb, receiverToken, dlvMarkDelivered, map[string]any{"c": conversationID, "up": m.Seq}).ok(tb, nil)
		last = m.Seq
		for i, s := range socks {
			if seen[i] {
				continue
			}
			if f, ok := s.poll(200 * time.Millisecond); ok {
				seen[i], first[i] = true, s.activity(f)
			}
		}
	}
	for i, s := range socks {
		for a := first[i]; ; a = s.next() {
			if a.Kind != "DELIVERED" || a.Actor == nil || a.Actor.ID != receiverID || a.UpToSeq == nil {
				tb.Fatalf("%s: while probing: %v", s.name, a)
			}
			if *a.UpToSeq == last {
				break
			}
		}
	}
	return last
}

// typMark proves that nothing else reached socks since their last event:
// sender sends a message, receiver marks it delivered, and that DELIVERED
// must be the very next event on each.
func (e *env) typMark(tb testing.TB, conversationID, senderToken, receiverToken, receiverID string, socks ...*typSocket) int {
	tb.Helper()
	m := e.sendText(tb, senderToken, conversationID, "marker")
	e.do(tb, receiverToken, dlvMarkDelivered, map[string]any{"c": conversationID, "up": m.Seq}).ok(tb, nil)
	for _, s := range socks {
		s.expect(conversationID, "DELIVERED", receiverID, &m.Seq)
	}
	return m.Seq
}

// typSet calls setTyping over HTTP; it must return true.
func (e *env) typSet(tb testing.TB, token, conversationID string, typing bool) {
	tb.Helper()
	var out struct {
		SetTyping bool `json:"setTyping"`
	}
	e.do(tb, token, typSetTyping, map[string]any{"c": conversationID, "typing": typing}).ok(tb, &out)
	if !out.SetTyping {
		tb.Fatalf("setTyping(%v) returned false", typing)
	}
}

// TestTypingLive: TYPING_STARTED once however often the typer renews it,
// TYPING_STOPPED on setTyping(false) and on a message from the typer, and
// nothing of it on any of the typer's own sockets. The TTL is far longer
// than the test, so that no stop it expects can come from the timer.
func TestTypingLive(t *testing.T) {
	typForEachDialect(t, map[string]string{"JOBCHAT_TYPING_TTL": "10m"}, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		anaWS := e.typDial(t, ana, "ana").watch(conv.ID)
		benWS := e.typDial(t, ben, "ben's phone").watch(conv.ID)
		benWS2 := e.typDial(t, ben, "ben's laptop").watch(conv.ID)
		all := []*typSocket{anaWS, benWS, benWS2}
		e.typLive(t, conv.ID, ana, ben, "ben", all...)

		// Ben types: the argument defaults to true; repeats only renew.
		var out struct {
			SetTyping bool `json:"setTyping"`
		}
		e.do(t, ben, `mutation($c: ID!) { setTyping(conversationId: $c) }`, map[string]any{"c": conv.ID}).ok(t, &out)
		if !out.SetTyping {
			t.Fatal("setTyping returned false")
		}
		for range 5 {
			e.typSet(t, ben, conv.ID, true)
		}
		anaWS.expect(conv.ID, "TYPING_STARTED", "ben", nil)
		e.typSet(t, ben, conv.ID, false)
		anaWS.expect(conv.ID, "TYPING_STOPPED", "ben", nil)
		// Stopping again is quiet.
		e.typSet(t, ben, conv.ID, false)
		e.typMark(t, conv.ID, ana, ben, "ben", all...)

		// A message from the typer ends the typing.
		e.typSet(t, ben, conv.ID, true)
		anaWS.expect(conv.ID, "TYPING_STARTED", "ben", nil)
		e.sendText(t, ben, conv.ID, "on my way")
		anaWS.expect(conv.ID, "TYPING_STOPPED", "ben", nil)
		// A message from someone else does not end the other's typing.
		e.typSet(t, ben, conv.ID, true)
		anaWS.expect(conv.ID, "TYPING_STARTED", "ben", nil)
		e.typMark(t, conv.ID, ana, ben, "ben", all...)
		e.typSet(t, ben, conv.ID, false)
		anaWS.expect(conv.ID, "TYPING_STOPPED", "ben", nil)

		// Both type: each hears only the other.
		e.typSet(t, ana, conv.ID, true)
		e.typSet(t, ben, conv.ID, true)
		got := map[string]string{}
		for _, s := range all {
			a := s.next()
			got[s.name] = a.Kind + " by " + a.Actor.ID
		}
		want := map[string]string{"ana": "TYPING_STARTED by ben", "ben's phone": "TYPING_STARTED by ana", "ben's laptop": "TYPING_STARTED by ana"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("both typing: %v, want %v", got, want)
		}
		e.typSet(t, ana, conv.ID, false)
		benWS.expect(conv.ID, "TYPING_STOPPED", "ana", nil)
		benWS2.expect(conv.ID, "TYPING_STOPPED", "ana", nil)
		e.typSet(t, ben, conv.ID, false)
		anaWS.expect(conv.ID, "TYPING_STOPPED", "ben", nil)
		e.typMark(t, conv.ID, ana, ben, "ben", all...)
	})
}

// TestTypingStopsAfterTTL: the typer's app sets typing over its socket
// and vanishes; the server says TYPING_STOPPED by itself after the TTL.
func TestTypingStopsAfterTTL(t *testing.T) {
	typForEachDialect(t, map[string]string{"JOBCHAT_TYPING_TTL": "300ms"}, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		anaWS := e.typDial(t, ana, "ana").watch(conv.ID)
		e.typLive(t, conv.ID, ana, ben, "ben", anaWS)

		benWS := e.typDial(t, ben, "ben")
		op := benWS.start(typSetTyping, map[string]any{"c": conv.ID, "typing": true})
		m := benWS.frame()
		var res struct {
			Data struct {
				SetTyping bool `json:"setTyping"`
			} `json:"data"`
		}
		if err := json.Unmarshal(m.Payload, &res); err != nil || m.Type != "next" || m.ID != op || !res.Data.SetTyping {
			t.Fatalf("setTyping over the socket: %+v (%s)", m, m.Payload)
		}
		if err := benWS.conn.Close(); err != nil {
			t.Fatal(err)
		}
		anaWS.expect(conv.ID, "TYPING_STARTED", "ben", nil)
		anaWS.expect(conv.ID, "TYPING_STOPPED", "ben", nil)
		e.typMark(t, conv.ID, ana, ben, "ben", anaWS)
	})
}

// typForEachDialect is forEachDialect with settings of the server's own.
func typForEachDialect(t *testing.T, vars map[string]string, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			fn(t, newEnv(t, dialect, vars))
		})
	}
}

// TestTypingRefused: users only, participants only, open conversations
// only; access is checked before the status, so a stranger learns nothing
// of a closed conversation.
func TestTypingRefused(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, mallory := userToken(t, "ana", "Ana"), userToken(t, "mallory", "Mallory")
		conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
		vars := map[string]any{"c": conv.ID, "typing": true}
		e.do(t, serviceToken(t), typSetTyping, vars).fails(t, "FORBIDDEN", "setTyping")
		e.do(t, "", typSetTyping, vars).fails(t, "UNAUTHENTICATED", "")
		e.do(t, mallory, typSetTyping, vars).fails(t, "NOT_FOUND", conv.ID)
		missing := db.NewID()
		e.do(t, ana, typSetTyping, map[string]any{"c": missing, "typing": true}).fails(t, "NOT_FOUND", missing)

		e.do(t, serviceToken(t), `mutation($c: ID!) { closeConversation(conversationId: $c) { id } }`, map[string]any{"c": conv.ID}).ok(t, nil)
		for _, typing := range []bool{true, false} {
			e.do(t, ana, typSetTyping, map[string]any{"c": conv.ID, "typing": typing}).fails(t, "FAILED_PRECONDITION", "closed")
		}
		e.do(t, mallory, typSetTyping, vars).fails(t, "NOT_FOUND", conv.ID)

		e.do(t, serviceToken(t), `mutation($c: ID!) { reopenConversation(conversationId: $c) { id } }`, map[string]any{"c": conv.ID}).ok(t, nil)
		e.typSet(t, ana, conv.ID, true)
	})
}

// TestTypingAcrossInstances: two instances on one database and one Redis.
// Typing set on one instance (and its stop by the TTL there) and the
// receipts taken there reach subscribers on the other, and the typer's own
// socket on the other instance still hears none of its typing.
func TestTypingAcrossInstances(t *testing.T) {
	redisURL := testsvc.RedisURL(t)
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			vars := map[string]string{
				"JOBCHAT_REDIS_URL":    redisURL,
				"JOBCHAT_REDIS_PREFIX": "jobchat-test-typing-" + db.NewID() + ":",
				"JOBCHAT_TYPING_TTL":   "300ms",
			}
			dbc := dbtest.Config(t, dialect)
			instA, instB := newEnvOnDB(t, dbc, vars), newEnvOnDB(t, dbc, vars)
			ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
			conv := instA.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
			anaWS := instA.typDial(t, ana, "ana on A").watch(conv.ID)
			benWS := instA.typDial(t, ben, "ben on A").watch(conv.ID)
			// Ben acts on B only: what A's sockets see came through Redis.
			last := instB.typLive(t, conv.ID, ana, ben, "ben", anaWS, benWS)

			instB.typSet(t, ben, conv.ID, true)
			anaWS.expect(conv.ID, "TYPING_STARTED", "ben", nil)
			instB.typSet(t, ben, conv.ID, false)
			anaWS.expect(conv.ID, "TYPING_STOPPED", "ben", nil)
			instB.typSet(t, ben, conv.ID, true)
			anaWS.expect(conv.ID, "TYPING_STARTED", "ben", nil)
			anaWS.expect(conv.ID, "TYPING_STOPPED", "ben", nil) // B's timer

			instA.sendText(t, ana, conv.ID, "one")
			up := last + 1
			instB.dlvRead(t, ben, conv.ID, nil)
			anaWS.expect(conv.ID, "READ", "ben", &up)
			benWS.expect(conv.ID, "READ", "ben", &up)
			instB.typMark(t, conv.ID, ana, ben, "ben", anaWS, benWS)
		})
	}
}
