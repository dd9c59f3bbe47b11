package faults

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The load of a round: busyConversations conversations in which both
// participants send, the client through A and the worker through B, one
// message every sendInterval each; one more conversation, the quiet one,
// gets exactly one message, around the fault, and none after. Every
// conversation has four subscribers: client and worker on each instance.
const (
	busyConversations = 4
	sendInterval      = 150 * time.Millisecond
	warmUp            = 1500 * time.Millisecond // load before the fault
	afterFault        = 2 * time.Second         // load after it
	outage            = 3 * time.Second         // Redis down, PostgreSQL cut
	pause             = 4 * time.Second         // SIGSTOP to SIGCONT
)

// stallBound is the promise: a subscriber on a healthy instance gets every
// committed message within 2 s of the later of its commit and the end of
// the fault. The receive time is taken as the frame is read off the
// socket, with no polling, and the commit time by PostgreSQL at COMMIT
// (see recordCommitTimes), both on this machine's clock, so no slack is
// added.
const stallBound = 2 * time.Second

// Bounds that keep a broken round from hanging.
const (
	roundTimeout    = 2 * time.Minute
	convergeTimeout = 10 * time.Second
)

// window is what a fault reports: when it began, and for each instance
// whose subscribers the stall bound covers, when the fault was over for
// them (Redis answering again, PostgreSQL reachable again, the signal
// sent to the other instance, SIGCONT). An instance absent from ref
// (killed or stopped for good) is not covered: its subscribers move to
// the other instance and are checked for loss, duplicates and order only.
type window struct {
	start time.Time
	ref   map[int]time.Time
	quiet *sent // the quiet conversation's one message
}

// round is what inject works with.
type round struct {
	t          *testing.T
	w          *world
	ctx        context.Context
	quietConv  string
	quietToken string
}

// sendQuiet sends the quiet conversation's message, starting on instance
// first; it fails the test if the message is not acknowledged.
func (r *round) sendQuiet(first int) *sent {
	r.t.Helper()
	s := send(r.ctx, r.w.insts, first, r.quietToken, r.quietConv, "quiet-1")
	if !s.acked {
		r.t.Fatalf("the quiet message was not acknowledged: %s", s.lastErr)
	}
	return s
}

type faultCase struct {
	name   string
	what   string
	inject func(r *round) window
}

var faultCases = []faultCase{
	{
		name: "redis-restart",
		what: "the private redis-server killed and, 3 s later, started again; the quiet message is sent while it is down",
		inject: func(r *round) window {
			start := time.Now()
			r.w.redis.Stop()
			quiet := r.sendQuiet(instA)
			time.Sleep(time.Until(start.Add(outage)))
			r.w.redis.Start() // returns once it answers PING
			up := time.Now()
			return window{start: start, ref: map[int]time.Time{instA: up, instB: up}, quiet: quiet}
		},
	},
	{
		name: "pg-cut",
		what: "every PostgreSQL connection cut and new ones refused for 3 s (a restart or failover); the quiet message is sent during it and retried",
		inject: func(r *round) window {
			start := time.Now()
			r.w.pg.Refuse()
			r.w.pg.Cut()
			quiet := make(chan *sent, 1)
			go func() { quiet <- send(r.ctx, r.w.insts, instB, r.quietToken, r.quietConv, "quiet-1") }()
			time.Sleep(outage)
			r.w.pg.Restore()
			back := time.Now()
			return window{start: start, ref: map[int]time.Time{instA: back, instB: back}, quiet: r.waitQuiet(quiet)}
		},
	},
	{
		name: "pg-partition",
		what: "PostgreSQL blackholed for 3 s (a partition: nothing answers, connections hang, then resume); the quiet message is sent during it and retried",
		inject: func(r *round) window {
			start := time.Now()
			r.w.pg.Blackhole()
			quiet := make(chan *sent, 1)
			go func() { quiet <- send(r.ctx, r.w.insts, instB, r.quietToken, r.quietConv, "quiet-1") }()
			time.Sleep(outage)
			r.w.pg.Restore()
			back := time.Now()
			return window{start: start, ref: map[int]time.Time{instA: back, instB: back}, quiet: r.waitQuiet(quiet)}
		},
	},
	{
		name:   "sigterm",
		what:   "SIGTERM to A right after A acknowledged the quiet message; A's clients move to B",
		inject: func(r *round) window { return r.endA(syscall.SIGTERM, false) },
	},
	{
		name:   "kill9",
		what:   "SIGKILL to A right after A acknowledged the quiet message, with A's Redis link blackholed just before it, so its publish is certainly lost",
		inject: func(r *round) window { return r.endA(syscall.SIGKILL, true) },
	},
	{
		name: "sigstop",
		what: "SIGSTOP to A for 4 s right after A acknowledged the quiet message, A's Redis link blackholed from just before it until SIGCONT (a paused publisher: its publish is late or lost); A's subscribers stay on A",
		inject: func(r *round) window {
			a := r.w.insts[instA]
			r.w.redisLink[instA].Blackhole()
			quiet := r.sendQuiet(instA)
			start := time.Now()
			a.signal(r.t, syscall.SIGSTOP)
			time.Sleep(pause)
			a.signal(r.t, syscall.SIGCONT)
			r.w.redisLink[instA].Restore()
			cont := time.Now()
			return window{start: start, ref: map[int]time.Time{instA: cont, instB: start}, quiet: quiet}
		},
	},
}

// endA ends instance A with sig right after A acknowledged the quiet
// message, blackholing A's Redis link first if loseIt, so that the quiet
// message's publish is certainly lost. B stays up; A's clients move to it.
func (r *round) endA(sig syscall.Signal, loseIt bool) window {
	a := r.w.insts[instA]
	if loseIt {
		r.w.redisLink[instA].Blackhole()
	}
	quiet := r.sendQuiet(instA)
	start := time.Now()
	a.signal(r.t, sig)
	if !a.waitExit(10 * time.Second) {
		r.t.Fatalf("A still running 10s after %v", sig)
	}
	return window{start: start, ref: map[int]time.Time{instB: start}, quiet: quiet}
}

func (r *round) waitQuiet(ch <-chan *sent) *sent {
	r.t.Helper()
	select {
	case s := <-ch:
		if !s.acked {
			r.t.Fatalf("the quiet message was not acknowledged: %s", s.lastErr)
		}
		return s
	case <-time.After(sendDeadline + attemptTimeout):
		r.t.Fatal("the quiet message's send did not return")
		return nil
	}
}

// rounds is how many times each fault runs: JOBCHAT_FAULT_ROUNDS, 1 by
// default.
func rounds(t *testing.T) int {
	v := os.Getenv("JOBCHAT_FAULT_ROUNDS")
	if v == "" {
		return 1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("JOBCHAT_FAULT_ROUNDS=%q: want a positive number", v)
	}
	return n
}

// TestFaults runs each fault on a fresh system, rounds times, and logs the
// stall after it: per round, the median and the worst delay of the
// messages committed from 1 s before the fault to 2 s after its end, to
// covered subscribers, measured from the later of commit and the fault's
// end (0 when a message arrived before the fault was over); over the
// rounds, the median and the worst of the rounds' worst.
func TestFaults(t *testing.T) {
	n := rounds(t)
	for _, fc := range faultCases {
		t.Run(fc.name, func(t *testing.T) {
			var worst, quiet []time.Duration
			for i := 1; i <= n; i++ {
				var res stallResult
				measured := false
				t.Run(fmt.Sprintf("round%d", i), func(t *testing.T) {
					res = runRound(t, fc)
					t.Logf("stall fault=%s round=%d median=%v worst=%v quiet=%v deliveries=%d",
						fc.name, i, ms(res.median), ms(res.worst), ms(res.quiet), res.deliveries)
					measured = !t.Failed()
				})
				if !measured { // failed or skipped
					return
				}
				worst, quiet = append(worst, res.worst), append(quiet, res.quiet)
			}
			t.Logf("stall fault=%s rounds=%d median=%v worst=%v (per round: worst delay after the fault); quiet message median=%v worst=%v",
				fc.name, n, ms(median(worst)), ms(slices.Max(worst)), ms(median(quiet)), ms(slices.Max(quiet)))
		})
	}
}

type stallResult struct {
	median, worst, quiet time.Duration
	deliveries           int // the deliveries measured
}

func runRound(t *testing.T, fc faultCase) stallResult {
	t.Logf("fault %s: %s", fc.name, fc.what)
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), roundTimeout)
	t.Cleanup(cancel)
	t.Cleanup(httpClient.CloseIdleConnections)

	var convs []string
	for i := range busyConversations {
		convs = append(convs, w.openConversation(t, fmt.Sprintf("job-%d", i), fmt.Sprintf("client-%d", i), fmt.Sprintf("worker-%d", i)))
	}
	quietConv := w.openConversation(t, "job-quiet", "client-quiet", "worker-quiet")
	r := &round{t: t, w: w, ctx: ctx, quietConv: quietConv, quietToken: userToken(t, "client-quiet")}

	// Subscribers first (they resume from seq 0, so their start races
	// nothing), then the senders.
	subCtx, stopSubs := context.WithCancel(ctx)
	t.Cleanup(stopSubs)
	var subs []*subscriber
	var subWG sync.WaitGroup
	all := append(slices.Clone(convs), quietConv)
	for ci, conv := range all {
		client, worker := fmt.Sprintf("client-%d", ci), fmt.Sprintf("worker-%d", ci)
		if conv == quietConv {
			client, worker = "client-quiet", "worker-quiet"
		}
		for _, home := range []int{instA, instB} {
			for _, user := range []string{client, worker} {
				s := &subscriber{name: user + "@" + w.insts[home].name, token: userToken(t, user), conv: conv, home: home}
				subs = append(subs, s)
				subWG.Go(func() { s.run(subCtx, w.insts) })
			}
		}
	}

	stopSend := make(chan struct{})
	var senders []*sender
	var sendWG sync.WaitGroup
	for ci, conv := range convs {
		for _, s := range []*sender{
			{name: fmt.Sprintf("client-%d", ci), conv: conv, home: instA},
			{name: fmt.Sprintf("worker-%d", ci), conv: conv, home: instB},
		} {
			s.token = userToken(t, s.name)
			senders = append(senders, s)
			sendWG.Go(func() { s.run(ctx, w.insts, sendInterval, stopSend) })
		}
	}
	stopSenders := sync.OnceFunc(func() { close(stopSend) })
	// On the way out, failed or not, the clients stop before the
	// instances are killed (cleanups run last first).
	t.Cleanup(func() {
		cancel()
		stopSenders()
		waitGroup(&sendWG, 5*time.Second)
		waitGroup(&subWG, 5*time.Second)
	})

	time.Sleep(warmUp)
	win := fc.inject(r)
	t.Logf("fault began %s; quiet message acknowledged by %s at %s", clock(win.start), win.quiet.via, clock(win.quiet.ackAt))
	time.Sleep(afterFault)
	stopSenders()
	if !waitGroup(&sendWG, sendDeadline+5*time.Second) {
		t.Fatal("senders still running long after they were stopped")
	}

	// Every subscriber should now catch up with the database.
	db := w.storedMessages(t)
	deadline := time.Now().Add(convergeTimeout)
	for _, s := range subs {
		want := int64(len(db[s.conv]))
		for s.last.Load() < want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	stopSubs()
	if !waitGroup(&subWG, 10*time.Second) {
		t.Fatal("subscribers still running 10s after they were stopped")
	}
	db = w.storedMessages(t) // again: nothing may have been added meanwhile
	if len(db[quietConv]) != 1 || db[quietConv][0].cid != "quiet-1" {
		t.Errorf("the quiet conversation has %v, want exactly the quiet message", db[quietConv])
	}
	checkStored(t, db, senders, win.quiet)
	checkDelivered(t, db, subs)
	return checkStall(t, db, subs, w, win, quietConv)
}

// waitGroup waits for wg up to timeout and reports whether it finished.
func waitGroup(wg *sync.WaitGroup, timeout time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// checkStored: every conversation's seqs are 1..n, no clientMessageId is
// stored twice, and every acknowledged message is stored, once, with the
// seq and id its sender was told. Every send is acknowledged in the end.
func checkStored(t *testing.T, db map[string][]stored, senders []*sender, quiet *sent) {
	t.Helper()
	byCID := map[string]stored{}
	for conv, rows := range db {
		for i, m := range rows {
			if m.seq != i+1 {
				t.Errorf("conversation %s: seq %d at position %d: seqs have a gap", conv, m.seq, i+1)
				break
			}
		}
		for _, m := range rows {
			if prev, dup := byCID[m.cid]; dup {
				t.Errorf("clientMessageId %q stored twice: %v and %v", m.cid, prev, m)
			}
			byCID[m.cid] = m
		}
	}
	var acked, unacked, retried int
	msgs := []*sent{quiet}
	for _, s := range senders {
		msgs = append(msgs, s.msgs...)
	}
	tried := map[string]bool{}
	for _, s := range msgs {
		tried[s.cid] = true
	}
	for cid, m := range byCID {
		if !tried[cid] {
			t.Errorf("stored %v, which no client sent", m)
		}
	}
	for _, s := range msgs {
		if !s.acked {
			unacked++
			t.Errorf("send %s never acknowledged after %d attempts: %s", s.cid, s.attempts, s.lastErr)
			continue
		}
		acked++
		if s.attempts > 1 {
			retried++
		}
		m, ok := byCID[s.cid]
		switch {
		case !ok:
			t.Errorf("acknowledged message %s (seq %d via %s) is not stored: lost", s.cid, s.seq, s.via)
		case m.conv != s.conv || m.seq != s.seq || m.id != s.id:
			t.Errorf("acknowledged message %s was seq %d id %s in %s; stored as %v in %s", s.cid, s.seq, s.id, s.conv, m, m.conv)
		}
	}
	t.Logf("sends: %d acknowledged (%d after a retry), %d not; %d stored", acked, retried, unacked, len(byCID))
}

// checkDelivered: every subscriber got every stored message of its
// conversation exactly once, in seq order, across its reconnections, and
// the same message at each seq as the database (so all subscribers agree
// on one order).
func checkDelivered(t *testing.T, db map[string][]stored, subs []*subscriber) {
	t.Helper()
	var reconnected []string
	for _, s := range subs {
		want := db[s.conv]
		for i, r := range s.got {
			if i >= len(want) {
				t.Errorf("%s: %d events for %d stored messages; extra seq %d", s.name, len(s.got), len(want), r.seq)
				break
			}
			if r.seq != i+1 || r.id != want[i].id {
				t.Errorf("%s: event %d is seq %d id %s (from %s), want %v: a duplicate, a gap or another order",
					s.name, i+1, r.seq, r.id, r.inst, want[i])
				break
			}
		}
		if len(s.got) < len(want) {
			m := want[len(s.got)]
			t.Errorf("%s: got %d of %d messages; missing from %v, committed at %s (sessions %s)", s.name, len(s.got), len(want), m, clock(m.commit), sessions(s))
		}
		if len(s.sessions) > 1 {
			reconnected = append(reconnected, s.name+": "+sessions(s))
		}
	}
	if len(reconnected) > 0 {
		t.Logf("reconnections:\n  %s", strings.Join(reconnected, "\n  "))
	}
}

func sessions(s *subscriber) string {
	var parts []string
	for _, ss := range s.sessions {
		p := fmt.Sprintf("%s after %d from %s for %s", ss.inst, ss.afterSeq, clock(ss.start), ss.end.Sub(ss.start).Round(time.Millisecond))
		if ss.err != "" {
			p += " (" + ss.err + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

// checkStall holds the covered subscribers to the stall bound for every
// message, and measures the stall after the fault.
func checkStall(t *testing.T, db map[string][]stored, subs []*subscriber, w *world, win window, quietConv string) stallResult {
	t.Helper()
	commit := map[string]time.Time{}
	for _, rows := range db {
		for _, m := range rows {
			commit[m.id] = m.commit
		}
	}
	var end time.Time
	for _, ref := range win.ref {
		end = later(end, ref)
	}
	var res stallResult
	var delays []time.Duration
	var violations []string
	for _, s := range subs {
		ref, covered := win.ref[s.home]
		if !covered {
			continue
		}
		if len(s.sessions) > 1 || (len(s.sessions) == 1 && s.sessions[0].err != "") {
			t.Errorf("%s, on an instance that stayed up, lost its socket: %s", s.name, sessions(s))
		}
		for _, r := range s.got {
			c := commit[r.id]
			d := r.at.Sub(later(c, ref))
			if d > stallBound {
				violations = append(violations, fmt.Sprintf("%s got seq %d (%s) %v after the later of its commit (%s) and the fault's end (%s)",
					s.name, r.seq, r.cid, ms(d), clock(c), clock(ref)))
			}
			if c.Before(win.start.Add(-time.Second)) || c.After(end.Add(2*time.Second)) {
				continue
			}
			d = max(d, 0)
			delays = append(delays, d)
			if s.conv == quietConv {
				res.quiet = max(res.quiet, d)
			}
		}
	}
	for i, v := range violations {
		if i == 10 {
			t.Errorf("… and %d more over the stall bound", len(violations)-10)
			break
		}
		t.Errorf("stall over %v: %s", stallBound, v)
	}
	if len(delays) > 0 {
		res.median, res.worst, res.deliveries = median(delays), slices.Max(delays), len(delays)
	}
	return res
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

func clock(t time.Time) string { return t.Format("15:04:05.000") }
