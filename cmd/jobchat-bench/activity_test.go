package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func activityFrame(kind, actor string) []byte {
	a := `null`
	if actor != "" {
		a = `{"id":"` + actor + `"}`
	}
	return []byte(`{"id":"3","type":"next","payload":{"data":{"conversationActivity":{"kind":"` + kind +
		`","conversationId":"c1","actor":` + a + `,"at":"2026-12-07T06:08:50.603504514Z"}}}}`)
}

func inboxFrame(kind string) []byte {
	return []byte(`{"id":"2","type":"next","payload":{"data":{"inboxUpdated":{"kind":"` + kind +
		`","unreadTotal":1,"conversation":{"id":"c1","lastSeq":1,"unreadCount":1,"lastMessage":{"seq":1,"messageText":"say \"kind\":\"READ\"","senderName":"C","timestamp":"2026-12-07T06:08:50.606402Z"}}}}}}`)
}

func TestLiveSubCounts(t *testing.T) {
	me := &liveUser{id: "bench-t-c0"}
	other := &liveUser{id: "bench-t-w0", partner: me}
	me.partner = other
	other.startDue.Store(int64(time.Millisecond))

	type want struct {
		started, stopped, inbox, own, disorder, foreign, otherInbox, otherActivity, unexpected int64
	}
	for _, c := range []struct {
		name   string
		frames [][]byte
		want   want
	}{
		{"a burst of the other participant", [][]byte{
			activityFrame("TYPING_STARTED", other.id), activityFrame("TYPING_STOPPED", other.id),
		}, want{started: 1, stopped: 1}},
		{"my own typing is a violation, not a count", [][]byte{
			activityFrame("TYPING_STARTED", me.id), activityFrame("TYPING_STOPPED", me.id),
		}, want{own: 2}},
		{"a stranger's typing", [][]byte{activityFrame("TYPING_STARTED", "someone-else")}, want{foreign: 1}},
		{"a null actor's typing", [][]byte{activityFrame("TYPING_STARTED", "")}, want{foreign: 1}},
		{"two starts in a row", [][]byte{
			activityFrame("TYPING_STARTED", other.id), activityFrame("TYPING_STARTED", other.id),
		}, want{started: 2, disorder: 1}},
		{"a stop first", [][]byte{activityFrame("TYPING_STOPPED", other.id)}, want{stopped: 1, disorder: 1}},
		{"a stop after the TTL, then a renewal that restarts", [][]byte{
			activityFrame("TYPING_STARTED", other.id), activityFrame("TYPING_STOPPED", other.id),
			activityFrame("TYPING_STARTED", other.id), activityFrame("TYPING_STOPPED", other.id),
		}, want{started: 2, stopped: 2}},
		{"other activity", [][]byte{activityFrame("DELIVERED", other.id), activityFrame("READ", other.id)}, want{otherActivity: 2}},
		{"inbox", [][]byte{inboxFrame("MESSAGE_ADDED"), inboxFrame("MESSAGE_ADDED"), inboxFrame("READ")}, want{inbox: 2, otherInbox: 1}},
		{"unknown operation", [][]byte{[]byte(`{"id":"9","type":"next","payload":{"data":{"x":{"kind":"A"}}}}`)}, want{unexpected: 1}},
		{"no kind", [][]byte{[]byte(`{"id":"3","type":"next","payload":{"errors":[{"message":"x"}]}}`)}, want{unexpected: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := &live{base: time.Now()}
			l.hists.Store(&stepHists{})
			s := &liveSub{user: me}
			for _, f := range c.frames {
				s.next(l, frameID(f), f)
			}
			k := &l.typing
			got := want{
				started: k.started.Load(), stopped: k.stopped.Load(), inbox: k.inbox.Load(),
				own: k.own.Load(), disorder: k.disorder.Load(), foreign: k.foreign.Load(),
				otherInbox: k.otherInbox.Load(), otherActivity: k.otherActivity.Load(), unexpected: k.unexpected.Load(),
			}
			if got != c.want {
				t.Fatalf("got %+v\nwant %+v", got, c.want)
			}
			// The socket's own counts are the ones the tally compares.
			if s.started.Load() != c.want.started || s.stopped.Load() != c.want.stopped || s.inbox.Load() != c.want.inbox {
				t.Fatalf("socket counts: started %d stopped %d inbox %d", s.started.Load(), s.stopped.Load(), s.inbox.Load())
			}
			if n := l.hists.Load().typingE2E.n.Load(); n != uint64(c.want.started) {
				t.Fatalf("%d typing latencies recorded for %d starts", n, c.want.started)
			}
			violations := c.want.own + c.want.disorder + c.want.foreign + c.want.unexpected
			var classes int64
			for _, n := range l.errs.snapshot() {
				classes += n
			}
			if classes != violations {
				t.Fatalf("%d errors reported for %d violations: %v", classes, violations, l.errs.snapshot())
			}
		})
	}
}

func TestCountCheck(t *testing.T) {
	var c countCheck
	for _, p := range [][2]int64{{5, 5}, {5, 3}, {2, 4}, {0, 0}, {1, 0}} {
		c.add(p[0], p[1])
	}
	// Two missing on one socket and one on another are not made up for
	// by two extra on a third.
	if c != (countCheck{Expected: 13, Received: 12, Lost: 3, Extra: 2}) {
		t.Fatalf("%+v", c)
	}
}

func TestLiveTallyComplete(t *testing.T) {
	for _, c := range []struct {
		t    liveTally
		done bool
	}{
		{liveTally{}, true},
		{liveTally{started: countCheck{Extra: 3}}, true}, // extra (a TTL restart) does not hold up the drain
		{liveTally{stopped: countCheck{Lost: 1}}, false},
		{liveTally{inbox: countCheck{Lost: 1}}, false},
		{liveTally{messages: countCheck{Lost: 1}}, false},
	} {
		if got := c.t.complete(); got != c.done {
			t.Errorf("%+v: complete %v", c.t, got)
		}
	}
}

func TestPushedCheck(t *testing.T) {
	for _, c := range []struct {
		name               string
		before, one, three int64
		sockets            int
		fails              int
		mentions           string
	}{
		{name: "one goroutine per socket", before: 17, one: 2017, three: 2017, sockets: 2000},
		{name: "a little noise", before: 17, one: 2020, three: 2030, sockets: 2000},
		{name: "a goroutine per subscription", before: 17, one: 2017, three: 6017, sockets: 2000, fails: 2, mentions: "per added subscription"},
		{name: "two per socket from the start", before: 17, one: 4017, three: 4017, sockets: 2000, fails: 1, mentions: "per socket"},
		{name: "tiny run: a goroutine per subscription still shows", before: 20, one: 60, three: 140, sockets: 40, fails: 2},
		{name: "tiny run: noise within the slack", before: 20, one: 60, three: 75, sockets: 40},
		{name: "no pprof", before: -1, one: -1, three: -1, sockets: 2000},
		{name: "one-subscription count missing", before: 17, one: -1, three: 6017, sockets: 2000, fails: 1},
	} {
		why := pushedCheck(c.before, c.one, c.three, c.sockets)
		if len(why) != c.fails || (c.mentions != "" && !strings.Contains(strings.Join(why, "; "), c.mentions)) {
			t.Errorf("%s: %q", c.name, why)
		}
	}
}

func TestLiveSubscribeFrames(t *testing.T) {
	type frame struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Payload struct {
			Query     string            `json:"query"`
			Variables map[string]string `json:"variables"`
		} `json:"payload"`
	}
	var f frame
	if err := json.Unmarshal(inboxSubscribeFrame(), &f); err != nil {
		t.Fatalf("inbox: %v", err)
	}
	if f.ID != inboxOpID || f.Type != "subscribe" || !strings.Contains(f.Payload.Query, "inboxUpdated { kind ") {
		t.Fatalf("inbox: %+v", f)
	}
	f = frame{}
	if err := json.Unmarshal(activitySubscribeFrame(`c"1`), &f); err != nil {
		t.Fatalf("activity: %v", err)
	}
	if f.ID != activityOpID || f.Type != "subscribe" || f.Payload.Variables["c"] != `c"1` ||
		!strings.Contains(f.Payload.Query, "conversationActivity(conversationId: $c) { kind ") ||
		!strings.Contains(f.Payload.Query, "actor { id }") {
		t.Fatalf("activity: %+v", f)
	}
}

func TestMakeUsers(t *testing.T) {
	convs := func(n int) []conversation {
		out := make([]conversation, n)
		for i := range out {
			out[i] = conversation{ID: "conv" + string(rune('a'+i)), Client: participant{ID: "c" + string(rune('a'+i))}, Worker: participant{ID: "w" + string(rune('a'+i))}}
		}
		return out
	}
	for _, c := range []struct{ convs, sockets, users int }{{3, 6, 6}, {3, 4, 4}, {3, 40, 6}, {1000, 2000, 2000}} {
		b := &runner{o: options{Conversations: c.convs, Subscribers: c.sockets}, convs: convs(c.convs)}
		b.makeUsers()
		if len(b.users) != c.users {
			t.Fatalf("%+v: %d users", c, len(b.users))
		}
		for i := range c.sockets {
			// connect gives socket i to conversation i mod C, as its
			// client in even rounds and its worker in odd ones.
			ci := i % c.convs
			worker := (i/c.convs)%2 == 1
			u := b.liveSubFor(i).user
			if u.conv != ci || u.worker != worker || u.id != b.convs[ci].participant(worker).ID {
				t.Fatalf("%+v: socket %d belongs to %+v", c, i, u)
			}
		}
		for _, u := range b.users {
			p := u.partner
			if p == nil {
				// Only when the other participant has no socket.
				if c.sockets >= 2*c.convs {
					t.Fatalf("%+v: %s has no partner", c, u.id)
				}
				continue
			}
			if p.conv != u.conv || p.worker == u.worker || p.partner != u {
				t.Fatalf("%+v: %s's partner is %s", c, u.id, p.id)
			}
		}
	}
}

func TestLiveErr(t *testing.T) {
	if err := liveErr(nil); err != nil {
		t.Fatal(err)
	}
	if err := liveErr(&liveResult{Pushed: true, TypingStarted: countCheck{Lost: 5}}); err != nil {
		t.Fatalf("loss is a failed check, not a broken rule: %v", err)
	}
	for _, r := range []*liveResult{
		{Pushed: false, PushedFailures: []string{"3.00 goroutines per socket"}},
		{Pushed: true, OwnTyping: 1},
		{Pushed: true, TypingOutOfOrder: 1},
		{Pushed: true, ForeignTyping: 1},
	} {
		if err := liveErr(r); err == nil {
			t.Errorf("%+v: no error", r)
		}
	}
}
