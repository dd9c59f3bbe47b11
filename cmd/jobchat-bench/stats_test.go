package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBucketsRoundTrip(t *testing.T) {
	// Every value must land in a bucket whose bound is at or above it and
	// within the promised relative error, and buckets must be ordered.
	vals := []uint64{0, 1, 63, 64, 127, 128, 129, 255, 256, 1000, 1 << 20, 123456789, 1<<40 + 12345, maxHistVal}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		vals = append(vals, r.Uint64N(1<<45))
	}
	for _, v := range vals {
		i := bucketOf(v)
		if i < 0 || i >= histLen {
			t.Fatalf("bucketOf(%d) = %d, out of range", v, i)
		}
		hi := bucketHigh(i)
		if hi < v {
			t.Fatalf("bucketHigh(bucketOf(%d)) = %d < value", v, hi)
		}
		if v >= 2*subCount && float64(hi-v) > float64(v)/subCount {
			t.Fatalf("value %d in bucket up to %d: error above 1/%d", v, hi, subCount)
		}
		if i > 0 && bucketHigh(i-1) >= v {
			t.Fatalf("value %d should be in an earlier bucket than %d", v, i)
		}
	}
	if bucketOf(math.MaxUint64) != histLen-1 {
		t.Fatalf("huge values must clamp to the last bucket")
	}
}

// exactQuantile is nearest-rank on sorted samples.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func TestHistogramQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	cases := map[string]func() time.Duration{
		"uniform 0-10ms":  func() time.Duration { return time.Duration(r.Int64N(int64(10 * time.Millisecond))) },
		"exponential 2ms": func() time.Duration { return time.Duration(r.ExpFloat64() * float64(2*time.Millisecond)) },
		"bimodal with tail": func() time.Duration {
			if r.IntN(100) == 0 {
				return 200*time.Millisecond + time.Duration(r.Int64N(int64(time.Second)))
			}
			return 500*time.Microsecond + time.Duration(r.Int64N(int64(time.Millisecond)))
		},
		"tiny exact values": func() time.Duration { return time.Duration(r.IntN(100)) },
	}
	for name, gen := range cases {
		t.Run(name, func(t *testing.T) {
			var h histogram
			samples := make([]time.Duration, 50000)
			for i := range samples {
				samples[i] = gen()
				h.record(samples[i])
			}
			slices.Sort(samples)
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
				want := exactQuantile(samples, q)
				got := h.quantile(q)
				if got < want || float64(got-want) > float64(want)/subCount+1 {
					t.Errorf("q%.3f = %v, exact %v", q, got, want)
				}
			}
			s := h.summary()
			if s.Count != uint64(len(samples)) {
				t.Errorf("count %d, want %d", s.Count, len(samples))
			}
			if want := float64(samples[len(samples)-1]) / 1e6; math.Abs(s.MaxMs-want) > 0.001 {
				t.Errorf("max %.3fms, want %.3fms", s.MaxMs, want)
			}
		})
	}
}

func TestHistogramEmptyAndNegative(t *testing.T) {
	var h histogram
	if h.quantile(0.99) != 0 || h.summary().P99Ms != 0 {
		t.Fatal("empty histogram must report zeros")
	}
	h.record(-time.Second) // a clock step must not wrap around to a huge value
	if got := h.quantile(1); got != 0 {
		t.Fatalf("negative duration recorded as %v, want 0", got)
	}
}

func TestHistogramConcurrent(t *testing.T) {
	var h histogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.record(time.Duration(g*1000+i) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	if h.n.Load() != 8000 {
		t.Fatalf("count %d, want 8000", h.n.Load())
	}
	if got := time.Duration(h.maxNs.Load()); got != 7999*time.Microsecond {
		t.Fatalf("max %v, want 7.999ms", got)
	}
}

func TestSeqTracker(t *testing.T) {
	cases := []struct {
		name                   string
		base                   int64
		seqs                   []int64
		lastSeq                int64
		lost, dups, ooo, stray int64
	}{
		{name: "all in order", base: 0, seqs: []int64{1, 2, 3, 4}, lastSeq: 4},
		{name: "after a base", base: 10, seqs: []int64{11, 12, 13}, lastSeq: 13},
		{name: "gap is lost", base: 0, seqs: []int64{1, 2, 4, 5}, lastSeq: 5, lost: 1, ooo: 1},
		{name: "tail not arrived", base: 0, seqs: []int64{1, 2}, lastSeq: 5, lost: 3},
		{name: "duplicate", base: 0, seqs: []int64{1, 2, 2, 3}, lastSeq: 3, dups: 1},
		{name: "duplicate after a gap filled late", base: 0, seqs: []int64{1, 3, 2, 3}, lastSeq: 3, dups: 1, ooo: 2},
		{name: "replayed seq at or below base is stray", base: 5, seqs: []int64{5, 6, 7}, lastSeq: 7, stray: 1},
		{name: "nothing sent", base: 3, seqs: nil, lastSeq: 3},
		{name: "crosses bitmap words", base: 0, seqs: seqRange(1, 200), lastSeq: 200},
		{name: "crosses words with a loss", base: 0, seqs: append(seqRange(1, 64), seqRange(66, 200)...), lastSeq: 200, lost: 1, ooo: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := newSeqTracker(c.base)
			var dups int64
			for _, s := range c.seqs {
				if tr.add(s) {
					dups++
				}
			}
			if got := tr.lost(c.lastSeq); got != c.lost {
				t.Errorf("lost = %d, want %d", got, c.lost)
			}
			if dups != c.dups || tr.dups.Load() != c.dups {
				t.Errorf("dups = %d (counter %d), want %d", dups, tr.dups.Load(), c.dups)
			}
			if got := tr.outOfOrder.Load(); got != c.ooo {
				t.Errorf("out of order = %d, want %d", got, c.ooo)
			}
			if got := tr.stray.Load(); got != c.stray {
				t.Errorf("stray = %d, want %d", got, c.stray)
			}
		})
	}
}

func seqRange(lo, hi int64) []int64 {
	var out []int64
	for s := lo; s <= hi; s++ {
		out = append(out, s)
	}
	return out
}
