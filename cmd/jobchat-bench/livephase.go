package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The live scenario (-live): every socket subscribes to messageAdded as in
// the other scenarios, then to inboxUpdated and conversationActivity; the
// server's memory and goroutines are measured with one subscription per
// socket and with three, and then every user types in bursts (typing.go)
// while the sockets count what they receive (activity.go).

// Goroutines must not grow with subscriptions: pushed subscriptions cost
// the server no goroutine of their own, only the socket's reader does.
const (
	maxGoroutinesPerSocket   = 1.5
	maxGoroutinesPerAddedSub = 0.25
	// goroutineSlack absorbs goroutines that come and go with no socket:
	// the profile request's own connection, an idle HTTP connection.
	goroutineSlack = 16
)

// pushedCheck judges the goroutine counts taken before any socket, with one
// subscription per socket and with three (-1: not measured). It returns why
// the subscriptions do not stay pushed; nothing when they do or when the
// counts are missing.
func pushedCheck(before, oneSub, threeSubs int64, sockets int) []string {
	if before < 0 || threeSubs < 0 || sockets <= 0 {
		return nil
	}
	n := float64(sockets)
	var why []string
	if g := float64(threeSubs - before); g > maxGoroutinesPerSocket*n+goroutineSlack {
		why = append(why, fmt.Sprintf("%.2f goroutines per socket with 3 subscriptions (> %.1f)", g/n, maxGoroutinesPerSocket))
	}
	if oneSub >= 0 {
		if g := float64(threeSubs - oneSub); g > maxGoroutinesPerAddedSub*2*n+goroutineSlack {
			why = append(why, fmt.Sprintf("%.2f goroutines per added subscription (> %.2f)", g/(2*n), maxGoroutinesPerAddedSub))
		}
	}
	return why
}

// makeUsers gives every participant of the requested sockets a liveUser:
// socket i belongs to user i mod 2C (see options.typers).
func (b *runner) makeUsers() {
	c := len(b.convs)
	b.users = make([]*liveUser, b.o.typers())
	for u := range b.users {
		conv := &b.convs[u%c]
		worker := (u/c)%2 == 1
		b.users[u] = &liveUser{conv: u % c, worker: worker, id: conv.participant(worker).ID}
	}
	for u, usr := range b.users {
		if p := (u + c) % (2 * c); p < len(b.users) {
			usr.partner = b.users[p]
		}
	}
}

// liveSubFor is socket i's live state.
func (b *runner) liveSubFor(i int) *liveSub {
	return &liveSub{user: b.users[i%(2*len(b.convs))], pong: make(chan struct{}, 1)}
}

// framePing asks the server for a pong. jobchat's transport handles one
// socket's messages one at a time, in order, and registers a pushed
// subscription before it reads the next message: the pong to a ping sent
// after the subscribe frames says they are in place, with no sleep.
var framePing = []byte(`{"type":"ping"}`)

// subscribeLive adds subscriptions 2 and 3 on every open socket, waits
// until the server answered a ping behind them, then -settle, and measures
// the server with three subscriptions per socket.
func (b *runner) subscribeLive(ctx context.Context) error {
	o := b.o
	b.setPhase("subscribe 2+3")
	r := &liveResult{Sockets: len(b.subs), Users: len(b.users), SubscriptionsPerSocket: 3}
	b.rep.Live = r
	t0 := time.Now()
	inbox := inboxSubscribeFrame()
	work := make(chan *subscriber)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed int
	for range min(32, max(len(b.subs), 1)) {
		wg.Go(func() {
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for s := range work {
				err := s.write(inbox)
				if err == nil {
					err = s.write(activitySubscribeFrame(b.convs[s.conv].ID))
				}
				if err == nil {
					err = s.write(framePing)
				}
				if err == nil {
					timer.Reset(15 * time.Second)
					select {
					case <-s.lv.pong:
					case <-timer.C:
						err = errors.New("no pong after subscribing")
					case <-ctx.Done():
						err = ctx.Err()
					}
					timer.Stop()
				}
				if err != nil {
					mu.Lock()
					failed++
					mu.Unlock()
					b.l.errs.add(errClass("live subscribe", err))
				}
			}
		})
	}
	for _, s := range b.subs {
		select {
		case work <- s:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	r.SubscribeFailed = failed
	r.SubscribeSeconds = time.Since(t0).Seconds()
	b.logf("subscribed %d sockets to inboxUpdated and conversationActivity in %s (%d failed)", len(b.subs), time.Since(t0).Round(time.Millisecond), failed)
	if err := sleepCtx(ctx, o.Settle); err != nil {
		return err
	}

	m := &b.rep.Memory
	p := readProc(b.pid)
	r.RSSThreeSubsBytes = p.rssBytes
	r.GoroutinesThreeSubs = b.pprof.goroutines(ctx)
	r.HeapInuseThreeSubs = b.pprof.heapInuse(ctx)
	n := int64(len(b.subs))
	if n > 0 && p.ok && m.RSSBeforeBytes > 0 {
		r.RSSPerSocketBytes = (p.rssBytes - m.RSSBeforeBytes) / n
		r.RSSPerAddedSubBytes = (p.rssBytes - m.RSSAfterBytes) / (2 * n)
	}
	if n > 0 && r.HeapInuseThreeSubs >= 0 && m.HeapInuseBefore >= 0 {
		r.HeapPerSocketBytes = (r.HeapInuseThreeSubs - m.HeapInuseBefore) / n
		r.HeapPerAddedSubBytes = (r.HeapInuseThreeSubs - m.HeapInuseAfter) / (2 * n)
	}
	r.GoroutinesPerSocket, r.GoroutinesPerAddedSub = -1, -1
	if n > 0 && r.GoroutinesThreeSubs >= 0 && m.GoroutinesBefore >= 0 {
		r.GoroutinesPerSocket = float64(r.GoroutinesThreeSubs-m.GoroutinesBefore) / float64(n)
		r.GoroutinesPerAddedSub = float64(r.GoroutinesThreeSubs-m.GoroutinesAfter) / float64(2*n)
	}
	r.PushedFailures = pushedCheck(m.GoroutinesBefore, m.GoroutinesAfter, r.GoroutinesThreeSubs, len(b.subs))
	r.Pushed = len(r.PushedFailures) == 0
	if !r.Pushed {
		b.logf("PUSHED SUBSCRIPTIONS GREW GOROUTINES: %s", strings.Join(r.PushedFailures, "; "))
	}
	return nil
}

// typingPhase runs the typing timetable with -senders workers, drains, and
// accounts for it.
func (b *runner) typingPhase(ctx context.Context) error {
	o, l, r := b.o, b.l, b.rep.Live
	b.setPhase(fmt.Sprintf("typing %.0f/s", o.TypingRate))
	// The run tag seeds the bursts' lengths and endings: runs differ, and
	// a report's tag gives its run's plan back.
	seed, _ := strconv.ParseUint(l.tag, 16, 64)
	// The first burst is due a little after the workers start, so that
	// none is late merely because its goroutine had not run yet.
	start := l.now() + 50*time.Millisecond
	plan, err := newTypingPlan(start, o.TypingRate, o.Duration, len(b.users), o.TypingRenew, o.TypingMin, o.TypingMax, o.TypingSendFrac, seed)
	if err != nil {
		return err
	}
	hists := &stepHists{}
	l.hists.Store(hists)
	b.peakRSS.Store(0)
	before := snapshotCounters(l)
	p0 := readProc(b.pid)
	self0 := readProc(os.Getpid())
	host0, host0ok := hostCPU()

	text := strings.Repeat("x", o.MessageBytes)
	workers := min(o.Senders, len(b.users))
	phaseCtx, cancel := context.WithTimeout(ctx, o.Duration+o.TypingMax+o.SendTimeout+5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for k := range workers {
		tl := newTypingTimeline(plan, k, workers)
		hs := &httpSender{client: b.httpc, url: b.gql.queryURL, timeout: o.SendTimeout}
		wg.Go(func() { b.typist(phaseCtx, tl, hs, text) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}

	b.setPhase("drain")
	seqs, err := b.gql.lastSeqs(ctx, b.svc, b.convs)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(o.Drain)
	var t liveTally
	for {
		t = b.liveTally(seqs)
		if t.complete() || !time.Now().Before(deadline) {
			break
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	p1 := readProc(b.pid)
	self1 := readProc(os.Getpid())
	host1, host1ok := hostCPU()
	after := snapshotCounters(l)

	c := &l.typing
	r.TypingRate = o.TypingRate
	r.DurationSeconds = o.Duration.Seconds()
	r.Scheduled = plan.total
	r.BurstsStarted = c.burstsStarted.Load()
	r.BurstsSkipped = c.skipped.Load()
	r.SetTypingCalls = c.calls.Load()
	r.SetTypingOK = c.callOK.Load()
	r.SetTypingErrors = c.callErr.Load()
	r.SetTypingLate = c.callLate.Load()
	r.SetTyping = hists.typingCall.summary()
	r.MessagesSent = after.sent - before.sent
	r.MessagesOK = after.ok - before.ok
	r.MessageErrors = after.err - before.err
	r.MessageSend = hists.send.summary()
	r.TypingStarted, r.TypingStopped, r.Inbox, r.Messages = t.started, t.stopped, t.inbox, t.messages
	r.MessageDups = after.dups - before.dups
	r.TypingLatency = hists.typingE2E.summary()
	r.MessageE2E = hists.e2e.summary()
	r.OwnTyping = c.own.Load()
	r.TypingOutOfOrder = c.disorder.Load()
	r.ForeignTyping = c.foreign.Load()
	r.OtherInbox = c.otherInbox.Load()
	r.OtherActivity = c.otherActivity.Load()
	r.Unexpected = c.unexpected.Load()
	typingEvents := t.started.Received + t.stopped.Received
	deliveries := typingEvents + t.inbox.Received + t.messages.Received + r.OtherInbox + r.OtherActivity
	if p0.ok && p1.ok {
		secs := p1.at.Sub(p0.at).Seconds()
		r.WindowSeconds = secs
		r.ServerCPUSeconds = p1.cpuSec - p0.cpuSec
		r.ServerCPUPercent = 100 * r.ServerCPUSeconds / secs
		r.TypingEventsPerSecond = float64(typingEvents) / secs
		r.DeliveriesPerSecond = float64(deliveries) / secs
		if typingEvents > 0 {
			r.CPUMicrosPerTypingEvent = r.ServerCPUSeconds * 1e6 / float64(typingEvents)
		}
		if deliveries > 0 {
			r.CPUMicrosPerDelivery = r.ServerCPUSeconds * 1e6 / float64(deliveries)
		}
		if calls := r.SetTypingCalls + r.MessagesSent; calls > 0 {
			r.CPUMicrosPerCall = r.ServerCPUSeconds * 1e6 / float64(calls)
		}
		r.ServerRSSPeakBytes = max(b.peakRSS.Load(), p1.rssBytes)
		if self0.ok && self1.ok {
			r.BenchCPUPercent = 100 * (self1.cpuSec - self0.cpuSec) / secs
			if host0ok && host1ok {
				r.OtherCPUPercent = max(0, 100*(host1-host0)/secs-r.BenchCPUPercent-r.ServerCPUPercent)
			}
		}
	}
	r.GoroutinesAfterLoad = b.pprof.goroutines(ctx)
	if n := len(b.subs); n > 0 && r.GoroutinesAfterLoad >= 0 && b.rep.Memory.GoroutinesBefore >= 0 {
		r.GoroutinesPerSocketAfterLoad = float64(r.GoroutinesAfterLoad-b.rep.Memory.GoroutinesBefore) / float64(n)
		// The bench's own keep-alive connections each hold a server
		// goroutine, up to one per worker.
		if g := float64(r.GoroutinesAfterLoad - b.rep.Memory.GoroutinesBefore); g > maxGoroutinesPerSocket*float64(n)+goroutineSlack+float64(workers) {
			r.PushedFailures = append(r.PushedFailures, fmt.Sprintf("%.2f goroutines per socket after the typing load (> %.1f)", g/float64(n), maxGoroutinesPerSocket))
			r.Pushed = false
		}
	}
	r.judge()
	return nil
}

// typist does one worker's share of the typing timetable.
func (b *runner) typist(ctx context.Context, tl *typingTimeline, hs *httpSender, text string) {
	o, l := b.o, b.l
	c := &l.typing
	id := make([]byte, 0, 64)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for ctx.Err() == nil {
		s, ok := tl.next()
		if !ok {
			return
		}
		now := l.now()
		end := s.b.isEnd(s.step)
		switch {
		case s.step == 0:
			c.bursts.Add(1)
			if o.MaxBehind > 0 && now-s.due > o.MaxBehind {
				// As a send would be: a burst this late is not typed at
				// all (counted), rather than fired in a pile.
				c.skipped.Add(1)
				continue
			}
		case !end && now >= s.b.end():
			// A renewal its burst's end has overtaken: end it now.
			tl.follow(s)
			continue
		}
		if wait := s.due - now; wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		u := b.users[s.b.typer]
		conv := &b.convs[u.conv]
		started := l.now()
		late := started-s.due > o.Late
		var class string
		if end && s.b.send {
			// The message is what they were typing; it ends the typing.
			id = appendClientID(id[:0], l.tag, s.due, started, s.b.g)
			l.sent.Add(1)
			if late {
				l.late.Add(1)
			}
			var seq int64
			seq, class = hs.send(ctx, conv, u.worker, id, text)
			if class == "" && seq <= 0 {
				class = "answer without seq"
			}
			if class != "" {
				l.sendErr.Add(1)
				l.errs.add("sendMessage: " + class)
			} else {
				l.sendOK.Add(1)
				l.hists.Load().send.record(l.now() - s.due)
			}
		} else {
			if s.step == 0 {
				u.startDue.Store(int64(s.due))
			}
			c.calls.Add(1)
			if late {
				c.callLate.Add(1)
			}
			class = hs.setTyping(ctx, conv, u.worker, !end)
			l.hists.Load().typingCall.record(l.now() - s.due)
			if class != "" {
				c.callErr.Add(1)
				l.errs.add("setTyping: " + class)
			} else {
				c.callOK.Add(1)
			}
		}
		if s.step == 0 {
			if class != "" {
				// Not typing as far as we know: no renewals, no end. If
				// the server did start it, its TTL stops it (counted as
				// extra, not lost).
				continue
			}
			u.started.Add(1)
			c.burstsStarted.Add(1)
		}
		tl.follow(s)
	}
}

// liveTally is what the sockets received against what they should have.
type liveTally struct {
	started, stopped, inbox, messages countCheck
}

func (t liveTally) complete() bool {
	return t.started.Lost == 0 && t.stopped.Lost == 0 && t.inbox.Lost == 0 && t.messages.Lost == 0
}

// liveTally counts, socket by socket: the partner's started bursts (one
// start and one stop each), and one inbox event and one message per seq of
// the conversation since the run began.
func (b *runner) liveTally(seqs []int64) liveTally {
	var t liveTally
	for _, s := range b.subs {
		if s.lv == nil {
			continue
		}
		var want int64
		if p := s.lv.user.partner; p != nil {
			want = p.started.Load()
		}
		t.started.add(want, s.lv.started.Load())
		t.stopped.add(want, s.lv.stopped.Load())
		base := b.convs[s.conv].BaseSeq
		t.inbox.add(seqs[s.conv]-base, s.lv.inbox.Load())
		t.messages.add(seqs[s.conv]-base, s.tracker.unique.Load())
	}
	return t
}

// liveErr is the run's error when the live scenario found a broken rule:
// goroutines that grew with subscriptions, or typing delivered where it
// must not be. The report is written first.
func liveErr(r *liveResult) error {
	if r == nil {
		return nil
	}
	var errs []error
	if !r.Pushed {
		errs = append(errs, fmt.Errorf("pushed subscriptions did not stay pushed: %s", strings.Join(r.PushedFailures, "; ")))
	}
	if r.OwnTyping > 0 {
		errs = append(errs, fmt.Errorf("%d typing events reached the typer's own sockets", r.OwnTyping))
	}
	if r.TypingOutOfOrder > 0 || r.ForeignTyping > 0 {
		errs = append(errs, fmt.Errorf("typing: %d out of order, %d from someone not in the conversation", r.TypingOutOfOrder, r.ForeignTyping))
	}
	return errors.Join(errs...)
}
