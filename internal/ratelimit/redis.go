package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// takeScript is take (bucket.go) in Redis: the bucket is a hash of its
// tokens and the time they were counted, taken from Redis's own clock so
// that instances whose clocks disagree still share one bucket, and it
// expires once it would be full again. KEYS[1] is the bucket; ARGV the
// rate per second, the burst and the cost (negative: a refund). It
// returns {1 if taken else 0, the wait in microseconds}.
var takeScript = redis.NewScript(`
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1])
local at = tonumber(b[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate)
  at = now
end
local ok = 0
local wait = 0
if tokens >= cost then
  tokens = math.min(burst, tokens - cost)
  ok = 1
else
  wait = math.ceil((cost - tokens) / rate * 1000000)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.17g', at))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {ok, wait}
`)

// RedisConfig configures a Redis backend.
type RedisConfig struct {
	// Prefix begins every bucket's key.
	Prefix string
	// FailOpen decides what happens while Redis cannot answer: true
	// counts on this instance alone, as without Redis (a user may reach N
	// times the rate behind N instances, for as long as the outage
	// lasts); false refuses every action, asking to retry after
	// FailClosedRetry.
	FailOpen bool
}

// FailClosedRetry is the wait a limiter that fails closed asks for.
const FailClosedRetry = time.Second

// Redis keeps buckets in Redis, shared by every instance that uses it.
//
// A check is on the request path of every send, so it must not wait for a
// Redis that is gone: a failed check marks Redis down, and from then on
// checks answer by the fail policy at once without asking Redis, while one
// background probe asks it now and then; the first probe that gets an
// answer brings the shared buckets back. So an outage costs one request
// at most checkTimeout (none when the connection is refused outright),
// not one per second or per check.
//
// The client must honour context deadlines (go-redis:
// Options.ContextTimeoutEnabled), or a Redis that accepts connections but
// does not answer holds that first check for its read timeout instead.
type Redis struct {
	client redis.Scripter
	cfg    RedisConfig
	// down is set by a failed check and cleared by a probe that Redis
	// answered.
	down atomic.Bool
	// probing is set while the probe goroutine runs; there is one at most.
	probing atomic.Bool
}

// errNotAsked is why a check did not ask Redis.
var errNotAsked = errors.New("not asked: down since a check failed, and a probe is watching for it")

// checkTimeout bounds one check, and one probe: a round trip takes well
// under a millisecond when Redis is well, and a few on a busy machine.
const checkTimeout = 100 * time.Millisecond

// probeEvery is the pause between probes of a Redis that is down.
const probeEvery = 250 * time.Millisecond

var _ Backend = (*Redis)(nil)

// NewRedis returns a backend keeping its buckets in client's Redis. Close
// the client to stop a probe that is running.
func NewRedis(client redis.Scripter, cfg RedisConfig) *Redis {
	return &Redis{client: client, cfg: cfg}
}

// Down reports whether Redis failed and no probe has seen it back yet.
func (b *Redis) Down() bool { return b.down.Load() }

// markDown notes that Redis failed and starts the probe unless one runs.
func (b *Redis) markDown() {
	b.down.Store(true)
	if !b.probing.CompareAndSwap(false, true) {
		return
	}
	go b.probe()
}

// probe asks Redis, every probeEvery, to run a trivial script, until it
// answers (Redis is back) or the client is closed (shutting down).
func (b *Redis) probe() {
	defer b.probing.Store(false)
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for range t.C {
		ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
		err := b.client.Eval(ctx, "return 1", nil).Err()
		cancel()
		switch {
		case err == nil:
			b.down.Store(false)
			return
		case errors.Is(err, redis.ErrClosed):
			return
		}
	}
}

// Limiter returns the limiter of name's buckets at rate r. Instances that
// share a Redis and a prefix must give each name the same rate: the rate
// is the caller's, the bucket everyone's.
func (b *Redis) Limiter(name string, r Rate) Limiter {
	if r.unlimited() {
		return Unlimited
	}
	return &redisLimiter{b: b, prefix: b.cfg.Prefix + name + ":", rate: r, local: Memory{}.Limiter(name, r)}
}

type redisLimiter struct {
	b      *Redis
	prefix string
	rate   Rate
	// local counts on this instance while Redis is down and the policy
	// is to fail open.
	local Limiter
}

func (l *redisLimiter) run(ctx context.Context, key string, cost int) (bool, time.Duration, error) {
	if l.b.down.Load() {
		return false, 0, fmt.Errorf("%w: %w", ErrUnavailable, errNotAsked)
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	res, err := takeScript.Run(ctx, l.b.client, []string{l.prefix + key}, l.rate.PerSecond, l.rate.burst(), cost).Int64Slice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("script answered %v", res)
	}
	if err != nil {
		if parent.Err() == nil {
			// Redis failed, not the caller, who may have gone.
			l.b.markDown()
		}
		return false, 0, fmt.Errorf("%w: %s: %w", ErrUnavailable, l.prefix+key, err)
	}
	return res[0] == 1, time.Duration(res[1]) * time.Microsecond, nil
}

func (l *redisLimiter) Allow(ctx context.Context, key string) (bool, time.Duration, error) {
	ok, wait, err := l.run(ctx, key, 1)
	if err != nil {
		if l.b.cfg.FailOpen {
			ok, wait, _ := l.local.Allow(ctx, key)
			return ok, wait, err
		}
		return false, FailClosedRetry, err
	}
	return ok, wait, nil
}

func (l *redisLimiter) Refund(ctx context.Context, key string) error {
	_, _, err := l.run(ctx, key, -1)
	if err != nil && l.b.cfg.FailOpen {
		// The token may have come from the local bucket; giving one back
		// there too errs on the user's side for the outage's length.
		_ = l.local.Refund(ctx, key)
	}
	return err
}
