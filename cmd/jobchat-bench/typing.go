package main

import (
	"container/heap"
	"errors"
	"fmt"
	"time"
)

// The live scenario's typing is a timetable of bursts, fixed before the run
// like the sends' (schedule.go): burst g is due at start + g/rate whatever
// happened before it, so that a slow server makes bursts late (counted)
// rather than fewer. A burst is what an app does while someone types:
//
//	setTyping(true)             at start
//	setTyping(true)             every renew while typing (the server forgets
//	                            a typer after its TTL, 6 s by default)
//	sendMessage or setTyping(false)  at start + length
//
// Burst g belongs to typer g mod typers, so one typer's bursts are
// typers/rate apart, and the plan refuses a rate at which one typer's bursts
// would overlap: each burst must then be one TYPING_STARTED and one
// TYPING_STOPPED for the other participant, which is what the receivers
// count. Lengths and endings come from a hash of (seed, g): the same plan
// gives the same bursts, in tests and between runs.

// typingGapMargin is the least time between the end of one typer's burst and
// the start of their next.
const typingGapMargin = 250 * time.Millisecond

// typingPlan is one run's typing timetable.
type typingPlan struct {
	start    time.Duration // burst 0 is due here (since the run's base)
	rate     float64       // bursts started per second over all typers
	total    int64         // bursts in the run
	typers   int
	renew    time.Duration // renewal interval while typing
	minLen   time.Duration // burst lengths are spread evenly over [minLen, maxLen]
	maxLen   time.Duration
	sendFrac float64 // fraction of bursts that end with a message
	seed     uint64
}

func newTypingPlan(start time.Duration, rate float64, d time.Duration, typers int, renew, minLen, maxLen time.Duration, sendFrac float64, seed uint64) (*typingPlan, error) {
	p := &typingPlan{
		start: start, rate: rate, total: int64(rate*d.Seconds() + 0.5), typers: typers,
		renew: renew, minLen: minLen, maxLen: maxLen, sendFrac: sendFrac, seed: seed,
	}
	return p, p.check()
}

// check refuses a plan whose bursts could not each be one start and one
// stop for the receivers.
func (p *typingPlan) check() error {
	switch {
	case p.typers < 1:
		return errors.New("typing: no typers")
	case p.rate <= 0:
		return errors.New("typing: the rate must be positive")
	case p.renew <= 0:
		return errors.New("typing: the renewal interval must be positive")
	case p.minLen <= 0 || p.maxLen < p.minLen:
		return fmt.Errorf("typing: burst lengths %s..%s: want 0 < min ≤ max", p.minLen, p.maxLen)
	case p.sendFrac < 0 || p.sendFrac > 1:
		return fmt.Errorf("typing: send fraction %v: want 0..1", p.sendFrac)
	}
	if gap := p.gap(); gap < p.maxLen+typingGapMargin {
		return fmt.Errorf("typing: %d typers at %.4g bursts/s start one typer's bursts %s apart, less than the longest burst (%s) plus %s: lower the rate or the burst length, or add users",
			p.typers, p.rate, gap.Round(time.Millisecond), p.maxLen, typingGapMargin)
	}
	return nil
}

// gap is the time between the starts of one typer's consecutive bursts.
func (p *typingPlan) gap() time.Duration {
	return time.Duration(float64(p.typers) / p.rate * float64(time.Second))
}

// burst is one typer's typing, from setTyping(true) to its end.
type burst struct {
	g        int64
	typer    int
	start    time.Duration
	length   time.Duration
	renew    time.Duration
	renewals int  // setTyping(true) calls after the first, every renew
	send     bool // ends with sendMessage rather than setTyping(false)
}

// burst returns burst number g of the plan.
func (p *typingPlan) burst(g int64) burst {
	h1 := splitmix64(p.seed ^ uint64(g))
	h2 := splitmix64(h1)
	length := p.minLen + time.Duration(unitFloat(h1)*float64(p.maxLen-p.minLen))
	return burst{
		g:        g,
		typer:    int(g % int64(p.typers)),
		start:    p.start + time.Duration(float64(g)*float64(time.Second)/p.rate),
		length:   length,
		renew:    p.renew,
		renewals: int((length - 1) / p.renew),
		send:     unitFloat(h2) < p.sendFrac,
	}
}

// Steps of a burst: 0 is the start, 1..renewals the renewals, renewals+1
// the end.
func (b burst) steps() int { return b.renewals + 2 }

func (b burst) end() time.Duration { return b.start + b.length }

// at is when step i is due: renewals every renew from the start, the end
// at start + length.
func (b burst) at(i int) time.Duration {
	if i > b.renewals {
		return b.end()
	}
	return b.start + time.Duration(i)*b.renew
}

// isEnd reports whether step i ends the burst.
func (b burst) isEnd(i int) bool { return i == b.renewals+1 }

// splitmix64 is a fast, well-mixed hash of a 64-bit value.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// unitFloat maps h onto [0, 1).
func unitFloat(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// typingStep is one call of a burst, due at due.
type typingStep struct {
	b    burst
	step int
	due  time.Duration
}

// typingTimeline is one worker's share of the plan, in due order. Worker k
// of w owns the typers u ≡ k (mod w), so that all of one typer's calls go
// through one worker, one at a time and in order: a stop can never overtake
// its start. A worker that falls behind makes its calls late, never in
// another order.
type typingTimeline struct {
	p     *typingPlan
	k, w  int
	round int64 // the next burst to start is round*typers + u
	u     int
	// pending holds the next step of each burst under way.
	pending stepHeap
}

func newTypingTimeline(p *typingPlan, k, w int) *typingTimeline {
	return &typingTimeline{p: p, k: k, w: w, u: k}
}

// nextStart is the g of the worker's next burst to start, if any is left.
func (t *typingTimeline) nextStart() (int64, bool) {
	if t.u >= t.p.typers {
		return 0, false
	}
	g := t.round*int64(t.p.typers) + int64(t.u)
	return g, g < t.p.total
}

// next returns the worker's next step: the earliest of its bursts' pending
// steps and its next burst's start. ok is false when the worker is done.
// The caller does the step, then calls follow to schedule the burst's next
// one, or not, to abandon the burst.
func (t *typingTimeline) next() (s typingStep, ok bool) {
	g, more := t.nextStart()
	if more {
		b := t.p.burst(g)
		if len(t.pending) == 0 || b.start < t.pending[0].due {
			t.u += t.w
			if t.u >= t.p.typers {
				t.round++
				t.u = t.k
			}
			return typingStep{b: b, step: 0, due: b.start}, true
		}
	}
	if len(t.pending) == 0 {
		return typingStep{}, false
	}
	return heap.Pop(&t.pending).(typingStep), true
}

// follow schedules the step after s in its burst.
func (t *typingTimeline) follow(s typingStep) {
	if s.b.isEnd(s.step) {
		return
	}
	n := s.step + 1
	heap.Push(&t.pending, typingStep{b: s.b, step: n, due: s.b.at(n)})
}

// stepHeap orders pending steps by due time, then by burst.
type stepHeap []typingStep

func (h stepHeap) Len() int { return len(h) }
func (h stepHeap) Less(i, j int) bool {
	if h[i].due != h[j].due {
		return h[i].due < h[j].due
	}
	return h[i].b.g < h[j].b.g
}
func (h stepHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *stepHeap) Push(x any)   { *h = append(*h, x.(typingStep)) }
func (h *stepHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	*h = old[:len(old)-1]
	return s
}
