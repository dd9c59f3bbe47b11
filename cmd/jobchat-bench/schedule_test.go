package main

import (
	"testing"
	"time"
)

func TestScheduleCoversEverySendOnce(t *testing.T) {
	// However the run is split over senders, the senders together make
	// exactly rate×duration sends, each number once, each at g/rate.
	for _, c := range []struct {
		rate    float64
		d       time.Duration
		senders int
	}{
		{30, time.Second, 8}, {1000, 3 * time.Second, 32}, {7, 2 * time.Second, 3}, {10, time.Second, 16}, {2500, 1500 * time.Millisecond, 1},
	} {
		want := int64(c.rate*c.d.Seconds() + 0.5)
		seen := make([]bool, want)
		var total int64
		for k := range c.senders {
			s := newSchedule(time.Second, c.rate, c.d, k, c.senders, 10*time.Millisecond, time.Second)
			var n int64
			for {
				g, due, skipped, ok := s.nextDue(0) // always early: nothing skipped
				if !ok {
					break
				}
				if skipped != 0 {
					t.Fatalf("skipped %d sends while early", skipped)
				}
				if g%int64(c.senders) != int64(k) || seen[g] {
					t.Fatalf("sender %d got send %d (seen before: %v)", k, g, seen[g])
				}
				seen[g] = true
				if wantDue := time.Second + time.Duration(float64(g)/c.rate*float64(time.Second)); (due - wantDue).Abs() > time.Nanosecond {
					t.Fatalf("send %d due at %v, want %v", g, due, wantDue)
				}
				n++
			}
			if n != s.owned() {
				t.Fatalf("sender %d made %d sends, owned() says %d", k, n, s.owned())
			}
			total += n
		}
		if total != want {
			t.Fatalf("rate %v for %v over %d senders: %d sends, want %d", c.rate, c.d, c.senders, total, want)
		}
	}
}

func TestScheduleLateAndSkipped(t *testing.T) {
	// One sender at 100/s for 1 s: sends due every 10 ms from 0. The fake
	// sender takes 0 for the first 10 sends, then stalls 1.5 s on send 10,
	// then is fast again.
	s := newSchedule(0, 100, time.Second, 0, 1, 5*time.Millisecond, 300*time.Millisecond)
	now := time.Duration(0)
	var made, late, skipped int64
	for {
		g, due, sk, ok := s.nextDue(now)
		skipped += sk
		if !ok {
			break
		}
		if due > now {
			now = due // sleep until due
		}
		if s.begin(due, now) {
			late++
		}
		made++
		if g == 10 {
			now += 1500 * time.Millisecond
		} else {
			now += time.Millisecond
		}
	}
	// Send 10 started on time at 100ms and ended at 1600ms, past the end of
	// the run: every later send is more than 300ms behind and skipped.
	if made != 11 || skipped != 89 || late != 0 {
		t.Fatalf("made %d, skipped %d, late %d; want 11, 89, 0", made, skipped, late)
	}
	if s.skipped != skipped || s.lateCount != late || s.started != made {
		t.Fatalf("schedule counters %d/%d/%d disagree with %d/%d/%d", s.skipped, s.lateCount, s.started, skipped, late, made)
	}
}

func TestScheduleLateWithinMaxBehind(t *testing.T) {
	// A stall shorter than the skip age makes the following sends late
	// (measured from their due time), not skipped, and the sender catches up.
	s := newSchedule(0, 100, time.Second, 0, 1, 5*time.Millisecond, time.Second)
	now := time.Duration(0)
	var late, skipped, made int64
	lateSends := map[int64]bool{}
	for {
		g, due, sk, ok := s.nextDue(now)
		skipped += sk
		if !ok {
			break
		}
		if due > now {
			now = due
		}
		if s.begin(due, now) {
			late++
			lateSends[g] = true
		}
		made++
		if g == 20 {
			now += 50 * time.Millisecond // sends 21..24 are due before it ends
		} else {
			now += time.Millisecond
		}
	}
	if made != 100 || skipped != 0 {
		t.Fatalf("made %d, skipped %d; want 100, 0", made, skipped)
	}
	// Send 21 starts at 250ms (due 210): late. 22 at 251 (due 220), 23 at 252,
	// 24 at 253 (due 240), 25 at 254 (due 250): 4ms, within the 5ms grace.
	if late != 4 || !lateSends[21] || !lateSends[24] || lateSends[25] {
		t.Fatalf("late %d (%v); want sends 21-24 late", late, lateSends)
	}
}

func TestScheduleMoreSendersThanSends(t *testing.T) {
	s := newSchedule(0, 2, time.Second, 5, 8, 0, 0)
	if s.owned() != 0 {
		t.Fatalf("sender 5 of 8 owns %d of 2 sends", s.owned())
	}
	if _, _, _, ok := s.nextDue(0); ok {
		t.Fatal("sender with no sends must be done at once")
	}
}
