package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Latencies are kept in a log-linear histogram rather than as samples: a
// fan-out run records millions of deliveries from thousands of goroutines,
// and a fixed array of atomic counters costs neither memory per sample nor a
// lock. Values below 2*subCount ns are exact; above, each power of two is cut
// into subCount buckets, so a reported percentile is at most 1/subCount
// (1.6%) above the true one.
const (
	subBits  = 6
	subCount = 1 << subBits
	// maxShift bounds the range to 2^(maxShift+subBits+1) ns (~39 hours);
	// anything longer is clamped, which no bounded run can reach.
	maxShift   = 40
	histLen    = subCount * (maxShift + 2)
	maxHistVal = uint64(1)<<(maxShift+subBits+1) - 1
)

// histogram counts durations. Safe for concurrent use.
type histogram struct {
	counts [histLen]atomic.Uint64
	n      atomic.Uint64
	sumNs  atomic.Uint64
	maxNs  atomic.Uint64
}

func bucketOf(v uint64) int {
	if v > maxHistVal {
		v = maxHistVal
	}
	if v < 2*subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return subCount*(shift+1) + int(v>>shift) - subCount
}

// bucketHigh is the largest value that falls in bucket i.
func bucketHigh(i int) uint64 {
	if i < 2*subCount {
		return uint64(i)
	}
	shift := i/subCount - 1
	mant := uint64(i%subCount + subCount)
	return (mant+1)<<shift - 1
}

// record adds one duration; negative ones (a clock step) count as zero.
func (h *histogram) record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	h.sumNs.Add(v)
	for {
		m := h.maxNs.Load()
		if v <= m || h.maxNs.CompareAndSwap(m, v) {
			return
		}
	}
}

// latencySummary is what the report shows of a histogram, in milliseconds.
type latencySummary struct {
	Count  uint64  `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// quantile returns the smallest bucket bound at or below which at least a
// fraction q of the values lie (nearest-rank), capped by the exact maximum.
func (h *histogram) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var cum uint64
	for i := range h.counts {
		cum += h.counts[i].Load()
		if cum >= rank {
			return time.Duration(min(bucketHigh(i), h.maxNs.Load()))
		}
	}
	// Counters are read while writers may still add; the max is then the
	// honest answer for a rank beyond what was summed.
	return time.Duration(h.maxNs.Load())
}

func (h *histogram) summary() latencySummary {
	n := h.n.Load()
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	s := latencySummary{Count: n}
	if n == 0 {
		return s
	}
	s.MeanMs = ms(time.Duration(h.sumNs.Load() / n))
	s.P50Ms = ms(h.quantile(0.50))
	s.P90Ms = ms(h.quantile(0.90))
	s.P99Ms = ms(h.quantile(0.99))
	s.P999Ms = ms(h.quantile(0.999))
	s.MaxMs = ms(time.Duration(h.maxNs.Load()))
	return s
}

// maxTrackedSeqs bounds one subscriber's bitmap (8 MiB) so that a server
// sending absurd seqs cannot make the bench allocate without limit.
const maxTrackedSeqs = 1 << 26

// seqTracker checks one subscription's exactly-once delivery: every seq after
// base must arrive once. The reader goroutine that owns it calls add; the
// counters are atomics so that progress and reports can read them meanwhile.
type seqTracker struct {
	base int64
	seen []uint64 // bit i: seq base+1+i arrived
	last int64

	unique     atomic.Int64
	dups       atomic.Int64
	outOfOrder atomic.Int64
	// stray counts seqs at or below base (the subscription asked for
	// afterSeq=base) or beyond maxTrackedSeqs: protocol violations.
	stray atomic.Int64
}

func newSeqTracker(base int64) *seqTracker {
	return &seqTracker{base: base, last: base}
}

// add records seq and reports whether it was a duplicate.
func (t *seqTracker) add(seq int64) (dup bool) {
	off := seq - t.base - 1
	if off < 0 || off >= maxTrackedSeqs {
		t.stray.Add(1)
		return false
	}
	w, b := int(off/64), uint(off%64)
	if w >= len(t.seen) {
		// Grow geometrically: one append per doubling, not per message.
		t.seen = append(t.seen, make([]uint64, max(w+1-len(t.seen), len(t.seen)))...)
	}
	if t.seen[w]&(1<<b) != 0 {
		t.dups.Add(1)
		return true
	}
	t.seen[w] |= 1 << b
	t.unique.Add(1)
	if seq != t.last+1 {
		t.outOfOrder.Add(1)
	}
	if seq > t.last {
		t.last = seq
	}
	return false
}

// lost is how many of the seqs in (base, lastSeq] have not arrived.
func (t *seqTracker) lost(lastSeq int64) int64 {
	want := lastSeq - t.base
	if want < 0 {
		return 0
	}
	return max(want-t.unique.Load(), 0)
}
