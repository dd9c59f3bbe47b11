package main

import (
	"strconv"
	"sync/atomic"
	"time"
)

// The live scenario's sockets carry three subscriptions each, told apart by
// operation id:
//
//	"1" messageAdded(conversationId, afterSeq)   the seq accounting of ws.go
//	"2" inboxUpdated                             counted per socket
//	"3" conversationActivity(conversationId)     typing, counted per socket
//
// Every user is a participant of exactly one conversation, so what a socket
// must receive is known: one inbox MESSAGE_ADDED per message of its
// conversation, and one TYPING_STARTED and one TYPING_STOPPED per burst of
// the other participant. Its own user's typing must never arrive: the
// server leaves the typer's every socket out.

const (
	inboxOpID    = "2"
	activityOpID = "3"
)

// inboxSelection is what an app's conversation list needs of an inbox
// event: the row (last message preview, unread badge) and the total badge.
const inboxSelection = "kind unreadTotal conversation { id lastSeq unreadCount lastMessage { seq messageText senderName timestamp } }"

// activitySelection is what a chat screen needs to show "typing…".
const activitySelection = "kind conversationId actor { id } at"

func inboxSubscribeFrame() []byte {
	b := []byte(`{"id":"` + inboxOpID + `","type":"subscribe","payload":{"query":`)
	b = strconv.AppendQuote(b, "subscription { inboxUpdated { "+inboxSelection+" } }")
	return append(b, `}}`...)
}

func activitySubscribeFrame(convID string) []byte {
	b := []byte(`{"id":"` + activityOpID + `","type":"subscribe","payload":{"query":`)
	b = strconv.AppendQuote(b, "subscription($c: ID!) { conversationActivity(conversationId: $c) { "+activitySelection+" } }")
	b = append(b, `,"variables":{"c":`...)
	b = strconv.AppendQuote(b, convID)
	return append(b, `}}}`...)
}

// liveCounters are the live subscriptions' totals over all sockets.
type liveCounters struct {
	started, stopped atomic.Int64 // typing events from the other participant
	inbox            atomic.Int64 // inbox MESSAGE_ADDED events
	otherInbox       atomic.Int64 // inbox events of other kinds
	otherActivity    atomic.Int64 // activity other than typing
	// Violations, each also an error class in the report.
	own        atomic.Int64 // the user's own typing delivered to their socket
	disorder   atomic.Int64 // a start while started, or a stop while stopped
	foreign    atomic.Int64 // typing by someone not in the conversation
	unexpected atomic.Int64 // a next frame for no known operation, or without a kind

	// The typers' calls.
	calls, callOK, callErr, callLate atomic.Int64
	bursts, burstsStarted, skipped   atomic.Int64
}

// liveUser is one participant: one conversation, one or more sockets.
type liveUser struct {
	conv    int
	worker  bool
	id      string
	partner *liveUser
	// started counts this user's bursts whose setTyping(true) succeeded:
	// the partner's sockets must each see that many starts and stops.
	started atomic.Int64
	// startDue is when the current burst's start was due (ns since the
	// run's base), for the typing latency at the partner's sockets. One
	// user's bursts never overlap, so there is one current burst.
	startDue atomic.Int64
}

// liveSub is one socket's state for subscriptions 2 and 3. Its reader
// goroutine is the only writer.
type liveSub struct {
	user                    *liveUser
	started, stopped, inbox atomic.Int64
	// partnerTyping is the partner's typing as this socket last heard.
	partnerTyping bool
	// pong gets the answers to the bench's own pings (one slot).
	pong chan struct{}
}

// observeTyping records a typing event from the partner and reports whether
// it came out of order: a start while typing, or a stop while not.
func (s *liveSub) observeTyping(started bool) (outOfOrder bool) {
	outOfOrder = s.partnerTyping == started
	s.partnerTyping = started
	if started {
		s.started.Add(1)
	} else {
		s.stopped.Add(1)
	}
	return outOfOrder
}

// next handles a next frame of subscription 2 or 3.
func (s *liveSub) next(l *live, id, b []byte) {
	c := &l.typing
	kind := eventKind(b)
	switch {
	case kind == nil || (string(id) != inboxOpID && string(id) != activityOpID):
		c.unexpected.Add(1)
		l.errs.add("live: unexpected next frame: " + truncate(string(b), 60))
	case string(id) == inboxOpID:
		if string(kind) == "MESSAGE_ADDED" {
			s.inbox.Add(1)
			c.inbox.Add(1)
		} else {
			c.otherInbox.Add(1)
		}
	case string(kind) == "TYPING_STARTED" || string(kind) == "TYPING_STOPPED":
		started := string(kind) == "TYPING_STARTED"
		actor := activityActor(b)
		switch {
		case string(actor) == s.user.id:
			c.own.Add(1)
			l.errs.add("live: own typing delivered to the typer's socket")
			return
		case s.user.partner == nil || string(actor) != s.user.partner.id:
			c.foreign.Add(1)
			l.errs.add("live: typing by someone not in the conversation")
			return
		}
		if s.observeTyping(started) {
			c.disorder.Add(1)
			l.errs.add("live: typing start/stop out of order")
		}
		if started {
			c.started.Add(1)
			now := l.now()
			if due := s.user.partner.startDue.Load(); due > 0 {
				l.hists.Load().typingE2E.record(now - time.Duration(due))
			}
			markRecv(l, now)
		} else {
			c.stopped.Add(1)
		}
	default:
		c.otherActivity.Add(1)
	}
}

// markRecv moves the run's last-receive time forward to now.
func markRecv(l *live, now time.Duration) {
	for {
		last := l.lastRecv.Load()
		if int64(now) <= last || l.lastRecv.CompareAndSwap(last, int64(now)) {
			return
		}
	}
}

// countCheck compares what each socket received with what it should have.
// Loss on one socket and excess on another do not cancel out.
type countCheck struct {
	Expected int64 `json:"expected"`
	Received int64 `json:"received"`
	Lost     int64 `json:"lost"`
	Extra    int64 `json:"extra"`
}

func (c *countCheck) add(expected, received int64) {
	c.Expected += expected
	c.Received += received
	if received < expected {
		c.Lost += expected - received
	} else {
		c.Extra += received - expected
	}
}
