package ratelimit

import (
	"math"
	"time"
)

// bucket is one key's tokens as of a moment. The zero bucket of a key
// never seen is a full one: first sets it so.
type bucket struct {
	tokens float64
	at     time.Time
}

// take is the bucket's arithmetic: the tokens that came back since b.at
// (at r.PerSecond, up to the burst), then cost taken from them if they
// suffice; a negative cost gives tokens back. It returns the bucket as of
// now, whether cost was taken, and if not, the wait until it could be.
// redis.go's script does the same, line for line.
func take(b bucket, seen bool, now time.Time, r Rate, cost float64) (next bucket, ok bool, wait time.Duration) {
	burst := r.burst()
	if !seen {
		b = bucket{tokens: burst, at: now}
	}
	if now.After(b.at) {
		b.tokens = math.Min(burst, b.tokens+now.Sub(b.at).Seconds()*r.PerSecond)
		b.at = now
	}
	if b.tokens >= cost {
		b.tokens = math.Min(burst, b.tokens-cost)
		return b, true, 0
	}
	secs := (cost - b.tokens) / r.PerSecond
	return b, false, time.Duration(math.Ceil(secs * float64(time.Second)))
}

// full is how long an untouched bucket takes to fill from empty: after
// that, forgetting it changes nothing.
func (r Rate) full() time.Duration {
	return time.Duration(math.Ceil(r.burst() / r.PerSecond * float64(time.Second)))
}
