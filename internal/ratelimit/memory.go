package ratelimit

import (
	"context"
	"sync"
	"time"
)

// Memory keeps buckets in this process: each instance counts apart.
type Memory struct{}

var _ Backend = Memory{}

// Limiter returns a limiter of its own buckets at rate r.
func (Memory) Limiter(_ string, r Rate) Limiter {
	if r.unlimited() {
		return Unlimited
	}
	return &memoryLimiter{rate: r, buckets: make(map[string]bucket)}
}

type memoryLimiter struct {
	rate Rate

	mu        sync.Mutex
	buckets   map[string]bucket
	lastSweep time.Time
}

func (l *memoryLimiter) Allow(_ context.Context, key string) (bool, time.Duration, error) {
	ok, wait := l.take(key, 1, time.Now())
	return ok, wait, nil
}

func (l *memoryLimiter) Refund(_ context.Context, key string) error {
	l.take(key, -1, time.Now())
	return nil
}

func (l *memoryLimiter) take(key string, cost float64, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b, seen := l.buckets[key]
	b, ok, wait := take(b, seen, now, l.rate, cost)
	l.buckets[key] = b
	return ok, wait
}

// sweep forgets, once a minute at most, the buckets that have had time to
// fill again: the map holds the keys active lately, not every key ever
// seen.
func (l *memoryLimiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < time.Minute {
		return
	}
	l.lastSweep = now
	full := l.rate.full()
	for k, b := range l.buckets {
		if now.Sub(b.at) > full {
			delete(l.buckets, k)
		}
	}
}
