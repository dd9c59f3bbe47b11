package main

import "time"

// schedule is one sender's share of an open-loop timetable. The run's sends
// are numbered g = 0, 1, 2 … total-1 and send g is due at start + g/rate,
// whatever happened to the sends before it; sender k of n makes the sends
// with g ≡ k (mod n). A sender stuck on a slow request therefore does not
// push its later sends back (that would hide the server's slowness, the
// "coordinated omission" of closed-loop load generators): they become late,
// and latency is measured from when they were due.
//
// Times are durations since the run's monotonic base, so that a schedule can
// be tested with made-up clocks.
type schedule struct {
	start   time.Duration
	rate    float64 // sends per second over all senders
	total   int64   // sends in the run over all senders
	k, n    int64   // this sender's index and the number of senders
	next    int64   // the next g this sender owns
	late    time.Duration
	skipAge time.Duration

	// Owned by the sender; summed after the run.
	started, lateCount, skipped int64
}

func newSchedule(start time.Duration, rate float64, d time.Duration, k, n int, late, skipAge time.Duration) *schedule {
	total := int64(rate*d.Seconds() + 0.5)
	return &schedule{start: start, rate: rate, total: total, k: int64(k), n: int64(n), next: int64(k), late: late, skipAge: skipAge}
}

func (s *schedule) due(g int64) time.Duration {
	return s.start + time.Duration(float64(g)*float64(time.Second)/s.rate)
}

// nextDue returns the number g and due time of the next send to make, given
// the time now,
// and how many sends it skipped to get there: a send more than skipAge behind
// its time is not made at all, which bounds the burst a stalled sender would
// otherwise fire when it recovers. ok is false once the timetable is done.
func (s *schedule) nextDue(now time.Duration) (g int64, due time.Duration, skipped int64, ok bool) {
	// Walking over skipped sends one by one is bounded by the run's send
	// count and costs nanoseconds each; arithmetic shortcuts are not worth
	// their rounding cases.
	for ; s.next < s.total; s.next += s.n {
		due = s.due(s.next)
		if s.skipAge > 0 && now-due > s.skipAge {
			s.skipped++
			skipped++
			continue
		}
		g = s.next
		s.next += s.n
		return g, due, skipped, true
	}
	return 0, 0, skipped, false
}

// begin records that the send due at due actually started at start, and
// reports whether it was late.
func (s *schedule) begin(due, start time.Duration) bool {
	s.started++
	if start-due > s.late {
		s.lateCount++
		return true
	}
	return false
}

// owned is how many sends of the run belong to this sender.
func (s *schedule) owned() int64 {
	if s.k >= s.total {
		return 0
	}
	return (s.total - s.k + s.n - 1) / s.n
}
