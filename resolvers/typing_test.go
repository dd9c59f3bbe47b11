package resolvers

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jobchat/jobchat/graph/model"
)

// typingEvent is one broadcast the tracker asked for.
type typingEvent struct {
	k    typingKey
	kind model.ActivityKind
}

func (e typingEvent) String() string {
	return fmt.Sprintf("%s %s/%s", e.kind, e.k.conversationID, e.k.profileID)
}

// typingRecorder stands in for the broadcast: it keeps every event in the
// order the tracker emitted it.
type typingRecorder struct {
	mu     sync.Mutex
	events []typingEvent
	ch     chan typingEvent
}

func newTypingRecorder() *typingRecorder {
	return &typingRecorder{ch: make(chan typingEvent, 1<<16)}
}

func (r *typingRecorder) emit(_ context.Context, k typingKey, kind model.ActivityKind) {
	ev := typingEvent{k: k, kind: kind}
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	select {
	case r.ch <- ev:
	default:
	}
}

func (r *typingRecorder) all() []typingEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]typingEvent(nil), r.events...)
}

// wait returns the next event, failing after a generous timeout: timers
// are late under -race on a busy machine, never early.
func (r *typingRecorder) wait(tb testing.TB) typingEvent {
	tb.Helper()
	select {
	case ev := <-r.ch:
		return ev
	case <-time.After(10 * time.Second):
		tb.Fatalf("no typing event within 10s; so far: %v", r.all())
		return typingEvent{}
	}
}

func typingK(user string) typingKey {
	return typingKey{conversationID: "c1", profileID: user}
}

// TestTypingStateMachine walks the tracker through calls, with a TTL too
// long to fire, and checks what each call reports and broadcasts.
func TestTypingStateMachine(t *testing.T) {
	const (
		start = "start"
		stop  = "stop"
	)
	type step struct {
		op   string
		k    typingKey
		want string // start: started, renewed or ignored; stop: stopped or idle
		// emits is what the step broadcasts, in order.
		emits []typingEvent
	}
	started := func(k typingKey) []typingEvent {
		return []typingEvent{{k, model.ActivityKindTypingStarted}}
	}
	stopped := func(k typingKey) []typingEvent {
		return []typingEvent{{k, model.ActivityKindTypingStopped}}
	}
	ana, ben, carl := typingK("ana"), typingK("ben"), typingK("carl")
	anaElsewhere := typingKey{conversationID: "c2", profileID: "ana"}
	tests := []struct {
		name  string
		limit int
		steps []step
	}{
		{"repeats only renew; one stop", maxTypers, []step{
			{start, ana, "started", started(ana)},
			{start, ana, "renewed", nil},
			{start, ana, "renewed", nil},
			{stop, ana, "stopped", stopped(ana)},
			{stop, ana, "idle", nil},
		}},
		{"stop without start is silent", maxTypers, []step{
			{stop, ana, "idle", nil},
			{stop, ana, "idle", nil},
		}},
		{"typing again after a stop starts again", maxTypers, []step{
			{start, ana, "started", started(ana)},
			{stop, ana, "stopped", stopped(ana)},
			{start, ana, "started", started(ana)},
			{start, ana, "renewed", nil},
		}},
		{"users are independent", maxTypers, []step{
			{start, ana, "started", started(ana)},
			{start, ben, "started", started(ben)},
			{stop, ana, "stopped", stopped(ana)},
			{start, ben, "renewed", nil},
			{stop, ben, "stopped", stopped(ben)},
		}},
		{"conversations are independent", maxTypers, []step{
			{start, ana, "started", started(ana)},
			{start, anaElsewhere, "started", started(anaElsewhere)},
			{stop, anaElsewhere, "stopped", stopped(anaElsewhere)},
			{start, ana, "renewed", nil},
		}},
		{"a full tracker ignores new typers and keeps renewing the others", 2, []step{
			{start, ana, "started", started(ana)},
			{start, ben, "started", started(ben)},
			{start, carl, "ignored", nil},
			{stop, carl, "idle", nil},
			{start, ana, "renewed", nil},
			{stop, ben, "stopped", stopped(ben)},
			{start, carl, "started", started(carl)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newTypingRecorder()
			tr := newTypingTracker(time.Hour, tt.limit, rec.emit)
			defer tr.Close(context.Background())
			for i, s := range tt.steps {
				before := len(rec.all())
				var got string
				switch s.op {
				case start:
					got = map[typingChange]string{typingStarted: "started", typingRenewed: "renewed", typingIgnored: "ignored"}[tr.start(context.Background(), s.k)]
				case stop:
					got = "idle"
					if tr.stop(context.Background(), s.k) {
						got = "stopped"
					}
				}
				if got != s.want {
					t.Fatalf("step %d (%s %v): %s, want %s", i, s.op, s.k, got, s.want)
				}
				emitted := rec.all()[before:]
				if fmt.Sprint(emitted) != fmt.Sprint(s.emits) {
					t.Fatalf("step %d (%s %v) broadcast %v, want %v", i, s.op, s.k, emitted, s.emits)
				}
			}
		})
	}
}

// TestTypingExpires: without a renewal, the tracker stops the typing by
// itself, once, and forgets it.
func TestTypingExpires(t *testing.T) {
	rec := newTypingRecorder()
	tr := newTypingTracker(20*time.Millisecond, maxTypers, rec.emit)
	defer tr.Close(context.Background())
	ana := typingK("ana")
	if got := tr.start(context.Background(), ana); got != typingStarted {
		t.Fatalf("start: %v", got)
	}
	if ev := rec.wait(t); ev.kind != model.ActivityKindTypingStarted || ev.k != ana {
		t.Fatalf("first event %v", ev)
	}
	if ev := rec.wait(t); ev.kind != model.ActivityKindTypingStopped || ev.k != ana {
		t.Fatalf("second event %v", ev)
	}
	if tr.typing(ana) {
		t.Fatal("still typing after the stop was broadcast")
	}
	if tr.stop(context.Background(), ana) {
		t.Fatal("an expired typer stopped again")
	}
	// And it can start again.
	if got := tr.start(context.Background(), ana); got != typingStarted {
		t.Fatalf("start after expiry: %v", got)
	}
}

// TestTypingStaleTimer plays the timer's function at the moments a renewal
// or a restart races it: a firing that a renewal overtook, or one meant
// for an entry that was stopped and replaced, must not stop the typing.
func TestTypingStaleTimer(t *testing.T) {
	rec := newTypingRecorder()
	tr := newTypingTracker(time.Hour, maxTypers, rec.emit)
	defer tr.Close(context.Background())
	ana := typingK("ana")
	entry := func() *typingEntry {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.active[ana]
	}
	expireNow := func(e *typingEntry) {
		tr.mu.Lock()
		e.expires = time.Now().Add(-time.Millisecond)
		tr.mu.Unlock()
	}

	tr.start(context.Background(), ana)
	first := entry()
	// Fired, then renewed before the function ran: not due yet.
	tr.expire(ana, first)
	if !tr.typing(ana) {
		t.Fatal("a firing overtaken by a renewal stopped the typing")
	}

	// Stopped and started again: the old entry's firing is not the new one's.
	tr.stop(context.Background(), ana)
	tr.start(context.Background(), ana)
	expireNow(first)
	tr.expire(ana, first)
	if !tr.typing(ana) {
		t.Fatal("the firing of a replaced entry stopped the new one")
	}

	// Due: stops, once.
	second := entry()
	expireNow(second)
	tr.expire(ana, second)
	tr.expire(ana, second)
	want := "[TYPING_STARTED c1/ana TYPING_STOPPED c1/ana TYPING_STARTED c1/ana TYPING_STOPPED c1/ana]"
	if got := fmt.Sprint(rec.all()); got != want {
		t.Fatalf("events %s, want %s", got, want)
	}
}

// TestTypingClose: Close stops every timer, says TYPING_STOPPED for the
// typers still active, and ignores what comes after.
func TestTypingClose(t *testing.T) {
	rec := newTypingRecorder()
	tr := newTypingTracker(time.Hour, maxTypers, rec.emit)
	ana, ben := typingK("ana"), typingK("ben")
	tr.start(context.Background(), ana)
	tr.start(context.Background(), ben)
	tr.start(context.Background(), typingK("carl"))
	tr.stop(context.Background(), typingK("carl"))
	tr.mu.Lock()
	entries := []*typingEntry{tr.active[ana], tr.active[ben]}
	tr.mu.Unlock()

	tr.Close(context.Background())
	stops := map[typingKey]int{}
	for _, ev := range rec.all()[4:] {
		if ev.kind != model.ActivityKindTypingStopped {
			t.Fatalf("Close broadcast %v", ev)
		}
		stops[ev.k]++
	}
	if len(stops) != 2 || stops[ana] != 1 || stops[ben] != 1 {
		t.Fatalf("Close stopped %v, want ana and ben once each", stops)
	}
	for _, e := range entries {
		if e.timer.Stop() {
			t.Fatal("a timer still ran after Close")
		}
	}
	n := len(rec.all())
	if got := tr.start(context.Background(), ana); got != typingIgnored {
		t.Fatalf("start after Close: %v", got)
	}
	if tr.stop(context.Background(), ana) {
		t.Fatal("stop after Close found a typer")
	}
	tr.Close(context.Background())
	if got := rec.all()[n:]; len(got) != 0 {
		t.Fatalf("after Close: %v", got)
	}

	// A shutdown out of time drops the stops but still stops the timers.
	rec2 := newTypingRecorder()
	tr2 := newTypingTracker(time.Hour, maxTypers, rec2.emit)
	tr2.start(context.Background(), ana)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tr2.Close(ctx)
	if got := rec2.all(); len(got) != 1 || tr2.typing(ana) {
		t.Fatalf("Close with a done context: events %v, typing %v", got, tr2.typing(ana))
	}
}

// TestTypingConcurrent races starts, stops and expiries on a few keys from
// many goroutines: under -race, and with each key's broadcasts strictly
// alternating STARTED and STOPPED, whatever the interleaving.
func TestTypingConcurrent(t *testing.T) {
	rec := newTypingRecorder()
	tr := newTypingTracker(time.Millisecond, maxTypers, rec.emit)
	defer tr.Close(context.Background())
	keys := []typingKey{typingK("ana"), typingK("ben"), {conversationID: "c2", profileID: "ana"}}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 400 {
				k := keys[rng.IntN(len(keys))]
				switch rng.IntN(4) {
				case 0:
					tr.stop(context.Background(), k)
				case 1:
					// Let some timers fire.
					time.Sleep(time.Duration(rng.IntN(1500)) * time.Microsecond)
				default:
					tr.start(context.Background(), k)
				}
			}
		})
	}
	wg.Wait()
	for _, k := range keys {
		tr.stop(context.Background(), k)
	}
	byKey := map[typingKey][]model.ActivityKind{}
	for _, ev := range rec.all() {
		byKey[ev.k] = append(byKey[ev.k], ev.kind)
	}
	for _, k := range keys {
		kinds := byKey[k]
		if len(kinds) == 0 {
			t.Fatalf("%v never typed", k)
		}
		for i, kind := range kinds {
			want := model.ActivityKindTypingStarted
			if i%2 == 1 {
				want = model.ActivityKindTypingStopped
			}
			if kind != want {
				t.Fatalf("%v: event %d is %s, want %s (%d events)", k, i, kind, want, len(kinds))
			}
		}
		if len(kinds)%2 != 0 {
			t.Fatalf("%v ends typing after everything stopped (%d events)", k, len(kinds))
		}
		if tr.typing(k) {
			t.Fatalf("%v still typing", k)
		}
	}
}
