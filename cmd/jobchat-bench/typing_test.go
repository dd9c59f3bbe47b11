package main

import (
	"math"
	"testing"
	"time"
)

func TestTypingPlanBursts(t *testing.T) {
	for _, c := range []struct {
		name           string
		rate           float64
		d              time.Duration
		typers         int
		renew          time.Duration
		minLen, maxLen time.Duration
		sendFrac       float64
	}{
		{"live preset", 100, 30 * time.Second, 2000, 2500 * time.Millisecond, time.Second, 8 * time.Second, 0.5},
		{"tiny e2e", 10, 1500 * time.Millisecond, 16, 100 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond, 0.5},
		{"fixed length, never sends", 7, 10 * time.Second, 100, time.Second, 3 * time.Second, 3 * time.Second, 0},
		{"always sends, renewal longer than bursts", 50, 20 * time.Second, 500, 9 * time.Second, time.Second, 2 * time.Second, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := newTypingPlan(time.Second, c.rate, c.d, c.typers, c.renew, c.minLen, c.maxLen, c.sendFrac, 42)
			if err != nil {
				t.Fatal(err)
			}
			if want := int64(c.rate*c.d.Seconds() + 0.5); p.total != want {
				t.Fatalf("total %d, want %d", p.total, want)
			}
			var sends int64
			last := map[int]burst{}
			for g := range p.total {
				b := p.burst(g)
				if b != p.burst(g) {
					t.Fatalf("burst %d differs between two calls", g)
				}
				if b.g != g || b.typer != int(g%int64(c.typers)) {
					t.Fatalf("burst %d: g %d typer %d", g, b.g, b.typer)
				}
				if want := time.Second + time.Duration(float64(g)/c.rate*float64(time.Second)); (b.start - want).Abs() > time.Nanosecond {
					t.Fatalf("burst %d starts at %v, want %v", g, b.start, want)
				}
				if b.length < c.minLen || b.length > c.maxLen {
					t.Fatalf("burst %d lasts %v, outside %v..%v", g, b.length, c.minLen, c.maxLen)
				}
				// Renewals every renew while the burst lasts, none at or
				// after its end, and none missing before it.
				if b.steps() != b.renewals+2 || b.at(0) != b.start || b.at(b.steps()-1) != b.end() || !b.isEnd(b.steps()-1) {
					t.Fatalf("burst %d: steps %d, first %v, last %v", g, b.steps(), b.at(0), b.at(b.steps()-1))
				}
				for i := 1; i <= b.renewals; i++ {
					if b.at(i)-b.at(i-1) != c.renew || b.at(i) >= b.end() || b.isEnd(i) {
						t.Fatalf("burst %d renewal %d at %v (start %v, end %v)", g, i, b.at(i), b.start, b.end())
					}
				}
				if b.start+time.Duration(b.renewals+1)*c.renew < b.end() {
					t.Fatalf("burst %d of %v has only %d renewals every %v", g, b.length, b.renewals, c.renew)
				}
				// One typer's bursts never overlap: the receivers count
				// one start and one stop per burst.
				if prev, ok := last[b.typer]; ok && b.start < prev.end()+typingGapMargin {
					t.Fatalf("typer %d: burst %d starts at %v, before burst %d ends (%v) plus the margin", b.typer, g, b.start, prev.g, prev.end())
				}
				last[b.typer] = b
				if b.send {
					sends++
				}
			}
			frac := float64(sends) / float64(p.total)
			if tol := 4 / math.Sqrt(float64(p.total)); math.Abs(frac-c.sendFrac) > tol {
				t.Fatalf("%.3f of bursts end with a message, want %.2f ± %.3f", frac, c.sendFrac, tol)
			}
		})
	}
}

func TestTypingPlanSeed(t *testing.T) {
	a, _ := newTypingPlan(0, 100, 30*time.Second, 2000, time.Second, time.Second, 8*time.Second, 0.5, 1)
	b, _ := newTypingPlan(0, 100, 30*time.Second, 2000, time.Second, time.Second, 8*time.Second, 0.5, 2)
	same := 0
	for g := range int64(100) {
		if a.burst(g) == b.burst(g) {
			same++
		}
	}
	if same > 5 {
		t.Fatalf("%d of 100 bursts are the same under two seeds", same)
	}
}

func TestTypingPlanRefuses(t *testing.T) {
	ok := func() *typingPlan {
		return &typingPlan{rate: 10, total: 10, typers: 100, renew: time.Second, minLen: time.Second, maxLen: 2 * time.Second, sendFrac: 0.5}
	}
	if err := ok().check(); err != nil {
		t.Fatalf("a valid plan: %v", err)
	}
	for _, c := range []struct {
		name string
		edit func(p *typingPlan)
	}{
		{"overlapping bursts", func(p *typingPlan) { p.typers = 20 }}, // 2 s apart, 2 s long
		{"no margin", func(p *typingPlan) { p.typers, p.maxLen = 30, 3*time.Second }},
		{"no typers", func(p *typingPlan) { p.typers = 0 }},
		{"no rate", func(p *typingPlan) { p.rate = 0 }},
		{"no renewal", func(p *typingPlan) { p.renew = 0 }},
		{"min above max", func(p *typingPlan) { p.minLen = 3 * time.Second }},
		{"zero length", func(p *typingPlan) { p.minLen = 0 }},
		{"send fraction", func(p *typingPlan) { p.sendFrac = 1.5 }},
	} {
		p := ok()
		c.edit(p)
		if err := p.check(); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

// runTimeline drains a worker's timeline, following every step, and
// returns the steps in the order it gave them.
func runTimeline(p *typingPlan, k, w int, follow func(typingStep) bool) []typingStep {
	tl := newTypingTimeline(p, k, w)
	var out []typingStep
	for {
		s, ok := tl.next()
		if !ok {
			return out
		}
		out = append(out, s)
		if follow(s) {
			tl.follow(s)
		}
	}
}

func TestTypingTimelineCoversEveryStepInOrder(t *testing.T) {
	for _, c := range []struct {
		typers, workers int
		rate            float64
		d               time.Duration
	}{
		{16, 4, 10, 3 * time.Second},
		{16, 5, 10, 3 * time.Second}, // workers do not divide typers
		{7, 16, 3, 5 * time.Second},  // more workers than typers
		{2000, 16, 100, 30 * time.Second},
		{3, 1, 1, 20 * time.Second},
	} {
		p, err := newTypingPlan(time.Second, c.rate, c.d, c.typers, 300*time.Millisecond, 300*time.Millisecond, time.Second, 0.5, 7)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		nextStep := map[int64]int{} // burst → the step expected next
		var steps int
		for k := range c.workers {
			var prev time.Duration
			for _, s := range runTimeline(p, k, c.workers, func(typingStep) bool { return true }) {
				if s.b.typer%c.workers != k {
					t.Fatalf("%+v: worker %d got typer %d", c, k, s.b.typer)
				}
				if s.due < prev {
					t.Fatalf("%+v: worker %d went back in time: %v after %v", c, k, s.due, prev)
				}
				prev = s.due
				if s.step != nextStep[s.b.g] || s.due != s.b.at(s.step) || s.b != p.burst(s.b.g) {
					t.Fatalf("%+v: burst %d step %d due %v; want step %d", c, s.b.g, s.step, s.due, nextStep[s.b.g])
				}
				nextStep[s.b.g]++
				steps++
			}
		}
		want := 0
		for g := range p.total {
			b := p.burst(g)
			want += b.steps()
			if nextStep[g] != b.steps() {
				t.Fatalf("%+v: burst %d made %d of %d steps", c, g, nextStep[g], b.steps())
			}
		}
		if steps != want || int64(len(nextStep)) != p.total {
			t.Fatalf("%+v: %d steps of %d bursts, want %d of %d", c, steps, len(nextStep), want, p.total)
		}
	}
}

func TestTypingTimelineAbandonedBurst(t *testing.T) {
	// A burst whose start is not followed (the call failed, or it was
	// skipped) makes no more calls; the others are unaffected.
	p, err := newTypingPlan(0, 10, 5*time.Second, 10, 200*time.Millisecond, 500*time.Millisecond, 700*time.Millisecond, 0.5, 3)
	if err != nil {
		t.Fatal(err)
	}
	abandoned := func(g int64) bool { return g%3 == 0 }
	got := map[int64]int{}
	for k := range 2 {
		for _, s := range runTimeline(p, k, 2, func(s typingStep) bool { return !(s.step == 0 && abandoned(s.b.g)) }) {
			got[s.b.g]++
		}
	}
	for g := range p.total {
		want := p.burst(g).steps()
		if abandoned(g) {
			want = 1
		}
		if got[g] != want {
			t.Fatalf("burst %d: %d steps, want %d", g, got[g], want)
		}
	}
}
