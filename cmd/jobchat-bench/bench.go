package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jobchat/jobchat/internal/auth"
)

// tokenTTL outlives any run (capped at minutes); sockets close when their
// token expires.
const tokenTTL = 2 * time.Hour

// socketsPerSourceIP is where -source-ips 0 starts spreading sockets.
const socketsPerSourceIP = 5000

// bench is run with its stderr made explicit, for tests.
func bench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, getenv, stderr)
	if err != nil {
		return err
	}
	b := &runner{o: o, stderr: stderr}
	rep, err := b.run(ctx)
	if rep != nil {
		// A run cut short still reports what it measured.
		if werr := writeReports(rep, o.JSONPath, stdout); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// runner holds one run's long-lived pieces.
type runner struct {
	o      options
	stderr io.Writer

	l       *live
	gql     *gqlClient
	httpc   *http.Client
	svc     string
	convs   []conversation
	subs    []*subscriber
	users   []*liveUser // -live only
	pid     int
	pprof   pprofProbe
	rep     *report
	phase   atomic.Pointer[string]
	peakRSS atomic.Int64
}

func (b *runner) logf(format string, a ...any) {
	fmt.Fprintf(b.stderr, format+"\n", a...)
}

func (b *runner) setPhase(p string) { b.phase.Store(&p) }

func (b *runner) run(ctx context.Context) (*report, error) {
	o := b.o
	tag := make([]byte, 4)
	if _, err := rand.Read(tag); err != nil {
		return nil, fmt.Errorf("run tag: %w", err)
	}
	b.l = &live{base: time.Now(), tag: hex.EncodeToString(tag)}
	b.l.hists.Store(&stepHists{})
	b.setPhase("setup")

	soft, hard, err := raiseNofile()
	if err != nil {
		return nil, err
	}
	need := o.Subscribers + o.Senders + 64
	if o.SendVia == "ws" && o.Rate > 0 {
		need += 2 * o.Conversations
	}
	if uint64(need) > soft {
		return nil, fmt.Errorf("%d sockets need about %d file descriptors; RLIMIT_NOFILE allows %d (hard %d)", o.Subscribers, need, soft, hard)
	}

	serverURL, secret := o.URL, o.secret
	spawnedPprof := ""
	b.pid = o.ServerPID
	b.rep = &report{
		Scenario: o.Scenario, Options: o, StartedAt: time.Now().UTC(), RunTag: b.l.tag,
		Host: hostInfo{GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(), NofileSoft: soft, NofileHard: hard},
	}
	if o.Spawn {
		sp, err := spawnServer(ctx, spawnConfig{bin: o.ServerBin, dbURL: o.DB, redisURL: o.Redis, extraEnv: o.ServerEnv, pprof: o.PprofURL == "" && !o.NoPprof, keep: o.KeepServerDir, stderr: b.stderr})
		if err != nil {
			return nil, err
		}
		defer func() {
			sp.stop()
			if o.KeepServerDir {
				b.logf("server dir kept: %s", sp.dir)
			}
		}()
		serverURL, secret, b.pid = sp.url, sp.secret, sp.pid()
		spawnedPprof = sp.pprofURL
		b.logf("spawned server pid %d at %s (log %s, pprof %s)", b.pid, serverURL, sp.logPath, sp.pprofURL)
	}
	u, err := parseTarget(ctx, "url", serverURL, o.AllowRemote, net.DefaultResolver)
	if err != nil {
		return nil, err
	}
	db := "sqlite"
	if o.DB != "" {
		db = "postgres"
	} else if !o.Spawn {
		db = "unknown (-url)"
	}
	b.rep.Server = serverInfo{URL: serverURL, PID: b.pid, Spawned: o.Spawn, DB: db, Redis: o.Redis != ""}

	b.httpc = &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConns:        o.Senders + 16,
		MaxIdleConnsPerHost: o.Senders + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
	defer b.httpc.CloseIdleConnections()
	b.gql = &gqlClient{http: b.httpc, queryURL: strings.TrimSuffix(serverURL, "/") + "/query"}
	pprofBase := o.PprofURL
	if pprofBase == "" && o.Spawn {
		pprofBase = spawnedPprof
	} else if pprofBase == "" && !o.NoPprof {
		pprofBase = strings.TrimSuffix(serverURL, "/") + "/debug/pprof"
	}
	if o.NoPprof {
		pprofBase = ""
	}
	if o.PprofURL != "" {
		// The probe is a request like any other: loopback only, as -url.
		if _, err := parseTarget(ctx, "pprof", o.PprofURL, o.AllowRemote, net.DefaultResolver); err != nil {
			return nil, err
		}
	}
	b.pprof = pprofProbe{base: strings.TrimSuffix(pprofBase, "/"), client: b.httpc}

	if b.svc, err = auth.Issue([]byte(secret), auth.Caller{ID: "jobchat-bench", Service: true}, tokenTTL); err != nil {
		return nil, err
	}
	t0 := time.Now()
	if len(o.ConversationIDs) > 0 {
		b.convs, err = b.gql.loadConversations(ctx, b.svc, o.ConversationIDs)
	} else {
		b.convs, err = b.gql.createConversations(ctx, b.svc, b.l.tag, o.Conversations, 8)
	}
	if err != nil {
		return b.rep, err
	}
	if err := signTokens([]byte(secret), b.convs, tokenTTL); err != nil {
		return b.rep, err
	}
	b.logf("%d conversations ready in %s", len(b.convs), time.Since(t0).Round(time.Millisecond))
	if o.Live {
		b.makeUsers()
	}

	progressCtx, stopProgress := context.WithCancel(ctx)
	var progressDone sync.WaitGroup
	progressDone.Go(func() { b.progress(progressCtx) })
	defer func() {
		stopProgress()
		progressDone.Wait()
	}()

	// Memory before any socket, so that the difference is the sockets'.
	before := readProc(b.pid)
	b.rep.Memory.RSSBeforeBytes = before.rssBytes
	b.rep.Memory.GoroutinesBefore = b.pprof.goroutines(ctx)
	b.rep.Memory.HeapInuseBefore = b.pprof.heapInuse(ctx)
	b.rep.Server.PprofAvailable = b.rep.Memory.GoroutinesBefore >= 0

	ips := sourceIPs(u.Hostname(), o.Subscribers, socketsPerSourceIP, o.SourceIPs)
	dialers := newWSDialers(serverURL, ips)
	defer b.closeAll()
	if err := b.connect(ctx, dialers, len(ips)); err != nil {
		return b.rep, err
	}

	b.setPhase("settle")
	if err := sleepCtx(ctx, o.Settle); err != nil {
		return b.rep, err
	}
	after := readProc(b.pid)
	m := &b.rep.Memory
	if self := readProc(os.Getpid()); self.ok {
		m.BenchRSSBytes = self.rssBytes
	}
	m.RSSAfterBytes = after.rssBytes
	m.GoroutinesAfter = b.pprof.goroutines(ctx)
	m.HeapInuseAfter = b.pprof.heapInuse(ctx)
	if n := int64(b.rep.Connect.Connected); n > 0 && before.ok && after.ok {
		m.RSSPerSocketBytes = (after.rssBytes - before.rssBytes) / n
		if m.HeapInuseBefore >= 0 && m.HeapInuseAfter >= 0 {
			m.HeapPerSocketBytes = (m.HeapInuseAfter - m.HeapInuseBefore) / n
		}
		if m.GoroutinesBefore >= 0 && m.GoroutinesAfter >= 0 {
			m.GoroutinesPerSocket = float64(m.GoroutinesAfter-m.GoroutinesBefore) / float64(n)
		}
	}

	if o.Live {
		if err := b.subscribeLive(ctx); err != nil {
			return b.rep, err
		}
	}

	if o.Idle > 0 {
		b.setPhase("idle")
		p0 := readProc(b.pid)
		if err := sleepCtx(ctx, o.Idle); err != nil {
			return b.rep, err
		}
		p1 := readProc(b.pid)
		if p0.ok && p1.ok {
			secs := p1.at.Sub(p0.at).Seconds()
			b.rep.Idle = &idleResult{Seconds: secs, CPUSeconds: p1.cpuSec - p0.cpuSec, CPUPercent: 100 * (p1.cpuSec - p0.cpuSec) / secs, RSSBytes: p1.rssBytes}
		}
	}

	if o.Rate > 0 {
		if err := b.sendPhases(ctx); err != nil {
			return b.rep, err
		}
	}
	if o.Live && o.TypingRate > 0 {
		if err := b.typingPhase(ctx); err != nil {
			return b.rep, err
		}
	}
	b.rep.Errors = b.l.errs.snapshot()
	b.rep.SubscriberErrors = b.l.subErrors.Load()
	b.rep.SubscribersDown = b.l.subDown.Load()
	b.rep.FinishedAt = time.Now().UTC()
	return b.rep, liveErr(b.rep.Live)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// connect opens the subscriber sockets, a bounded number at a time, and
// keeps going past failures (up to a limit): the idle scenario wants as many
// as the machine allows, not all or nothing.
func (b *runner) connect(ctx context.Context, d wsDialers, nIPs int) error {
	o := b.o
	b.setPhase("connect")
	b.subs = make([]*subscriber, 0, o.Subscribers)
	var mu sync.Mutex
	var failed atomic.Int64
	maxFail := int64(max(100, o.Subscribers/10))
	ctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	sel := o.selection()
	next := make(chan int)
	var wg sync.WaitGroup
	t0 := time.Now()
	for range min(o.DialConcurrency, max(o.Subscribers, 1)) {
		wg.Go(func() {
			for i := range next {
				ci := i % len(b.convs)
				c := &b.convs[ci]
				p := &c.Client
				if (i/len(b.convs))%2 == 1 {
					p = &c.Worker
				}
				conn, err := d.open(ctx, i, p.token)
				if err == nil {
					s := &subscriber{conv: ci, conn: conn, tracker: newSeqTracker(c.BaseSeq), done: make(chan struct{})}
					if o.Live {
						s.lv = b.liveSubFor(i)
					}
					if err = s.start(b.l, subscribeFrame(c.ID, c.BaseSeq, sel)); err == nil {
						mu.Lock()
						b.subs = append(b.subs, s)
						mu.Unlock()
						b.rep.Connect.connected.Add(1)
						continue
					}
					_ = conn.Close()
				}
				failed.Add(1)
				b.l.errs.add(errClass("connect", err))
			}
		})
	}
	for i := 0; i < o.Subscribers; i++ {
		if failed.Load() >= maxFail || ctx.Err() != nil {
			break
		}
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	secs := time.Since(t0).Seconds()
	c := &b.rep.Connect
	c.Requested = o.Subscribers
	c.Connected = len(b.subs)
	c.Failed = int(failed.Load())
	c.Seconds = secs
	c.SourceIPs = max(nIPs, 1)
	if secs > 0 {
		c.PerSecond = float64(c.Connected) / secs
	}
	b.logf("connected %d/%d subscribers in %.1fs (%d failed)", c.Connected, c.Requested, secs, c.Failed)
	if c.Connected == 0 && o.Subscribers > 0 {
		return fmt.Errorf("no subscriber could connect; errors: %v", b.l.errs.snapshot())
	}
	return nil
}

// closeAll closes every socket, a few at a time, and waits (bounded) for the
// readers to end.
func (b *runner) closeAll() {
	if b.l == nil {
		return
	}
	b.l.closing.Store(true)
	var wg sync.WaitGroup
	work := make(chan *subscriber)
	for range 32 {
		wg.Go(func() {
			for s := range work {
				s.close()
			}
		})
	}
	for _, s := range b.subs {
		work <- s
	}
	close(work)
	wg.Wait()
	deadline := time.After(5 * time.Second)
	for _, s := range b.subs {
		select {
		case <-s.done:
		case <-deadline:
			return
		}
	}
}

// sendPhases runs one send step, or the -find-max search.
func (b *runner) sendPhases(ctx context.Context) error {
	o := b.o
	var snd func(k int) sender
	if o.SendVia == "ws" {
		conns, closeConns, err := b.openSendConns(ctx)
		if err != nil {
			return err
		}
		defer closeConns()
		snd = func(int) sender { return newWSSender(conns, o.SendTimeout) }
	} else {
		snd = func(int) sender {
			return &httpSender{client: b.httpc, url: b.gql.queryURL, timeout: o.SendTimeout}
		}
	}
	prevSeqs := make([]int64, len(b.convs))
	for i, c := range b.convs {
		prevSeqs[i] = c.BaseSeq
	}
	rate := o.Rate
	steps := 1
	if o.FindMax {
		steps = o.MaxSteps
	}
	for step := range steps {
		res, seqs, err := b.step(ctx, step, rate, snd, prevSeqs)
		if err != nil {
			return err
		}
		prevSeqs = seqs
		b.rep.Steps = append(b.rep.Steps, res)
		if !o.FindMax {
			break
		}
		if !res.Pass {
			b.logf("step %d at %.0f/s failed: %s", step+1, rate, strings.Join(res.FailReasons, "; "))
			break
		}
		b.rep.MaxSustainedRate = rate
		rate *= o.StepFactor
		if rate > maxRate {
			break
		}
	}
	return nil
}

// openSendConns opens one socket per participant for -send-via ws.
func (b *runner) openSendConns(ctx context.Context) (map[string]*wsSendConn, func(), error) {
	o := b.o
	b.setPhase("connect senders")
	d := newWSDialers(b.rep.Server.URL, nil)
	conns := map[string]*wsSendConn{}
	var all []*wsSendConn
	closeAll := func() {
		for _, w := range all {
			w.close()
		}
		deadline := time.After(5 * time.Second)
		for _, w := range all {
			select {
			case <-w.done:
			case <-deadline:
				return
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	for i := range b.convs {
		for _, p := range []*participant{&b.convs[i].Client, &b.convs[i].Worker} {
			if conns[p.ID] != nil {
				continue
			}
			conn, err := d.open(ctx, 0, p.token)
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("open sender socket for %s: %w", p.ID, err)
			}
			w := newWSSendConn(conn)
			go w.read(b.l)
			conns[p.ID] = w
			all = append(all, w)
		}
	}
	return conns, closeAll, nil
}

// step runs one open-loop send phase at rate, drains, and accounts for it.
func (b *runner) step(ctx context.Context, n int, rate float64, snd func(int) sender, prevSeqs []int64) (stepResult, []int64, error) {
	o := b.o
	l := b.l
	b.setPhase(fmt.Sprintf("send %.0f/s", rate))
	hists := &stepHists{}
	l.hists.Store(hists)
	b.peakRSS.Store(0)
	before := snapshotCounters(l)
	lostBefore, outBefore := b.lostAndDisorder(prevSeqs)
	p0 := readProc(b.pid)
	self0 := readProc(os.Getpid())
	host0, host0ok := hostCPU()

	text := strings.Repeat("x", o.MessageBytes)
	// The first send is due a little after the senders start, so that none
	// is late merely because its goroutine had not run yet.
	start := l.now() + 50*time.Millisecond
	scheds := make([]*schedule, o.Senders)
	var wg sync.WaitGroup
	sendCtx, cancel := context.WithTimeout(ctx, o.Duration+o.SendTimeout+5*time.Second)
	defer cancel()
	for k := range o.Senders {
		scheds[k] = newSchedule(start, rate, o.Duration, k, o.Senders, o.Late, o.MaxBehind)
		s := snd(k)
		wg.Go(func() { b.sendLoop(sendCtx, scheds[k], s, text) })
	}
	wg.Wait()
	sendEnd := l.now()
	if err := ctx.Err(); err != nil {
		return stepResult{}, nil, err
	}

	b.setPhase("drain")
	seqs, err := b.gql.lastSeqs(ctx, b.svc, b.convs)
	if err != nil {
		return stepResult{}, nil, err
	}
	var expected int64
	for _, s := range b.subs {
		expected += seqs[s.conv] - prevSeqs[s.conv]
	}
	deadline := time.Now().Add(o.Drain)
	for time.Now().Before(deadline) {
		if lost, _ := b.lostAndDisorder(seqs); lost == 0 {
			break
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return stepResult{}, nil, err
		}
	}
	p1 := readProc(b.pid)
	self1 := readProc(os.Getpid())
	host1, host1ok := hostCPU()
	after := snapshotCounters(l)
	lostAfter, outAfter := b.lostAndDisorder(seqs)

	r := stepResult{Step: n + 1, TargetRate: rate, DurationSeconds: o.Duration.Seconds()}
	r.Scheduled = int64(rate*o.Duration.Seconds() + 0.5)
	r.Sent = after.sent - before.sent
	r.OK = after.ok - before.ok
	r.Errors = after.err - before.err
	r.Late = after.late - before.late
	r.Skipped = after.skipped - before.skipped
	r.AchievedRate = float64(r.Sent) / o.Duration.Seconds()
	r.SendLatency = hists.send.summary()
	r.SendService = hists.sendSvc.summary()
	r.E2E = hists.e2e.summary()
	r.E2EService = hists.e2eSvc.summary()
	r.Deliveries = after.deliveries - before.deliveries
	r.ExpectedDeliveries = expected
	r.Dups = after.dups - before.dups
	// Loss is counted against the conversations' lastSeq, so sends that
	// committed but whose answer was lost still count as expected.
	r.Lost = lostAfter - lostBefore
	r.OutOfOrder = outAfter - outBefore
	if last := time.Duration(l.lastRecv.Load()); last > start {
		window := max(last, sendEnd) - start
		r.DeliveriesPerSecond = float64(r.Deliveries) / window.Seconds()
	}
	if p0.ok && p1.ok {
		r.ServerCPUSeconds = p1.cpuSec - p0.cpuSec
		r.ServerCPUPercent = 100 * r.ServerCPUSeconds / p1.at.Sub(p0.at).Seconds()
		if r.Deliveries > 0 {
			r.ServerCPUMicrosPerDelivery = r.ServerCPUSeconds * 1e6 / float64(r.Deliveries)
		}
		if r.OK > 0 {
			r.ServerCPUMicrosPerSend = r.ServerCPUSeconds * 1e6 / float64(r.OK)
		}
		r.ServerRSSBytes = p1.rssBytes
		r.ServerRSSPeakBytes = max(b.peakRSS.Load(), p1.rssBytes)
	}
	if self0.ok && self1.ok {
		// The bench shares the machine with the server: its own CPU shows
		// whether it, rather than the server, could be the limit.
		r.BenchCPUPercent = 100 * (self1.cpuSec - self0.cpuSec) / self1.at.Sub(self0.at).Seconds()
		if host0ok && host1ok && p0.ok && p1.ok {
			r.OtherCPUPercent = max(0, 100*(host1-host0)/self1.at.Sub(self0.at).Seconds()-r.BenchCPUPercent-r.ServerCPUPercent)
		}
	}
	r.Goroutines = b.pprof.goroutines(ctx)
	r.judge(o)
	return r, seqs, nil
}

// lostAndDisorder sums, over subscribers, the seqs not yet received up to
// each conversation's lastSeq in seqs, and the out-of-order arrivals.
func (b *runner) lostAndDisorder(seqs []int64) (lost, outOfOrder int64) {
	for _, s := range b.subs {
		lost += s.tracker.lost(seqs[s.conv])
		outOfOrder += s.tracker.outOfOrder.Load()
	}
	return lost, outOfOrder
}

// sendLoop makes one sender's sends at their scheduled times.
func (b *runner) sendLoop(ctx context.Context, s *schedule, snd sender, text string) {
	l := b.l
	id := make([]byte, 0, 64)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		now := l.now()
		g, due, skipped, ok := s.nextDue(now)
		if skipped > 0 {
			l.skipped.Add(skipped)
		}
		if !ok {
			return
		}
		if wait := due - now; wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		started := l.now()
		if s.begin(due, started) {
			l.late.Add(1)
		}
		c := &b.convs[g%int64(len(b.convs))]
		// Alternate the participants from one round to the next, so that
		// both read pointers move as in a real conversation.
		worker := (g/int64(len(b.convs)))%2 == 1
		id = appendClientID(id[:0], l.tag, due, started, g)
		l.sent.Add(1)
		seq, class := snd.send(ctx, c, worker, id, text)
		end := l.now()
		if class != "" || seq <= 0 {
			if class == "" {
				class = "answer without seq"
			}
			l.sendErr.Add(1)
			l.errs.add(class)
			continue
		}
		l.sendOK.Add(1)
		h := l.hists.Load()
		h.send.record(end - due)
		h.sendSvc.record(end - started)
	}
}

type counterSnapshot struct {
	sent, ok, err, late, skipped, deliveries, dups int64
}

func snapshotCounters(l *live) counterSnapshot {
	return counterSnapshot{
		sent: l.sent.Load(), ok: l.sendOK.Load(), err: l.sendErr.Load(),
		late: l.late.Load(), skipped: l.skipped.Load(),
		deliveries: l.deliveries.Load(), dups: l.dups.Load(),
	}
}

// progress prints one line a second until ctx ends.
func (b *runner) progress(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	prev := snapshotCounters(b.l)
	prevProc := readProc(b.pid)
	prevSelf := readProc(os.Getpid())
	prevHost, _ := hostCPU()
	var prevTyping [3]int64
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := snapshotCounters(b.l)
		p := readProc(b.pid)
		server := "server n/a"
		if p.ok {
			if p.rssBytes > b.peakRSS.Load() {
				b.peakRSS.Store(p.rssBytes)
			}
			cpu := 0.0
			if prevProc.ok {
				cpu = 100 * (p.cpuSec - prevProc.cpuSec) / p.at.Sub(prevProc.at).Seconds()
			}
			server = fmt.Sprintf("server cpu %3.0f%% rss %s thr %d", cpu, mib(p.rssBytes), p.threads)
		}
		prevProc = p
		self := readProc(os.Getpid())
		host, _ := hostCPU()
		if self.ok && prevSelf.ok {
			secs := self.at.Sub(prevSelf.at).Seconds()
			server += fmt.Sprintf(" | bench cpu %3.0f%% | host busy %3.0f%%", 100*(self.cpuSec-prevSelf.cpuSec)/secs, 100*(host-prevHost)/secs)
		}
		prevSelf, prevHost = self, host
		typing := ""
		c := &b.l.typing
		st, sp, ib := c.started.Load(), c.stopped.Load(), c.inbox.Load()
		if b.o.Live {
			h := b.l.hists.Load()
			typing = fmt.Sprintf(" | typing calls %d err %d, recv start %d/s stop %d/s own %d p99 %s | inbox %d/s",
				c.calls.Load(), c.callErr.Load(), st-prevTyping[0], sp-prevTyping[1], c.own.Load(),
				fmtDur(h.typingE2E.quantile(0.99)), ib-prevTyping[2])
		}
		prevTyping = [3]int64{st, sp, ib}
		if b.o.Progress {
			h := b.l.hists.Load()
			fmt.Fprintf(b.stderr, "[%4.0fs] %-14s subs %d down %d | sent %d/s err %d late %d skip %d | deliv %d/s dup %d | e2e p50 %s p99 %s%s | %s\n",
				time.Since(start).Seconds(), *b.phase.Load(), b.rep.Connect.connected.Load(), b.l.subDown.Load(),
				cur.sent-prev.sent, cur.err, cur.late, cur.skipped,
				cur.deliveries-prev.deliveries, cur.dups,
				fmtDur(h.e2e.quantile(0.5)), fmtDur(h.e2e.quantile(0.99)), typing, server)
		}
		prev = cur
	}
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/1e6)
}

func mib(n int64) string {
	return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
}
