// Package ratelimit is how often one caller may do one thing: send a
// message, set typing, upload a file. Each kind of action has a Limiter, a
// token bucket per key (the user's id): Rate.Burst tokens at most, coming
// back at Rate.PerSecond, one taken by each action.
//
// A Backend makes the limiters of one store. Memory counts on this
// instance only: behind a load balancer with N instances a user may reach
// N times the rate. Redis keeps the buckets in Redis, so that every
// instance sharing it spends one budget; each check is one round trip
// (a Lua script, by EVALSHA). When Redis cannot answer (within 100 ms),
// checks stop asking it until a background probe sees it back, and
// meanwhile count on this instance (FailOpen) or refuse, saying so with
// the error: a send never waits on a Redis that is gone.
// Both run the same arithmetic (bucket.go, and its Lua twin in redis.go);
// one table of tests holds both to it.
//
// It may import the standard library and the Redis client.
package ratelimit

import (
	"context"
	"errors"
	"time"
)

// Rate is a token bucket's shape. A PerSecond of zero or less means no
// limit.
type Rate struct {
	// PerSecond is how many tokens come back each second.
	PerSecond float64
	// Burst is how many tokens the bucket holds: the actions allowed at
	// once after a quiet spell. Less than 1 counts as 1.
	Burst int
}

func (r Rate) unlimited() bool { return r.PerSecond <= 0 }

func (r Rate) burst() float64 { return float64(max(r.Burst, 1)) }

// Limiter decides whether one more action fits a key's budget. Its
// methods are safe for concurrent use.
type Limiter interface {
	// Allow takes a token from key's bucket. When the bucket is empty ok
	// is false and retryAfter says when the next token comes. err is not
	// nil when the store could not answer: ok and retryAfter are then the
	// fail policy's (see RedisConfig.FailOpen), and the caller logs err.
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
	// Refund gives back a token that Allow took, for an action that
	// turned out to cost nothing (a retry answered from storage, a
	// refusal); never beyond the burst.
	Refund(ctx context.Context, key string) error
}

// Backend makes limiters that keep their buckets in one store.
type Backend interface {
	// Limiter returns the limiter of the action called name (its buckets
	// are apart from other names') at rate r. Call it once per action,
	// at start: it is not a lookup.
	Limiter(name string, r Rate) Limiter
}

// ErrUnavailable wraps the failures of a limiter's store.
var ErrUnavailable = errors.New("rate limit store unavailable")

// unlimited allows everything: the limiter of a Rate without one.
type unlimited struct{}

func (unlimited) Allow(context.Context, string) (bool, time.Duration, error) { return true, 0, nil }
func (unlimited) Refund(context.Context, string) error                       { return nil }

// Unlimited is a Limiter that allows everything.
var Unlimited Limiter = unlimited{}
