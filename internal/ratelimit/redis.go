package ratelimit

import (
	"context"
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
	// FailOpen allows actions while Redis cannot answer; false refuses
	// them, asking to retry after FailClosedRetry.
	FailOpen bool
}

// FailClosedRetry is the wait a limiter that fails closed asks for.
const FailClosedRetry = time.Second

// Redis keeps buckets in Redis, shared by every instance that uses it.
type Redis struct {
	client redis.Scripter
	cfg    RedisConfig
	// downUntil (Unix nanoseconds) is when to ask Redis again after it
	// failed: until then checks answer by the fail policy at once, rather
	// than each wait out the client's dial and retries (a second or more)
	// while Redis is down.
	downUntil atomic.Int64
}

// checkTimeout bounds one check: a round trip takes well under a
// millisecond when Redis is well.
const checkTimeout = 500 * time.Millisecond

// downFor is how long a failed Redis is left alone.
const downFor = time.Second

var _ Backend = (*Redis)(nil)

// NewRedis returns a backend keeping its buckets in client's Redis.
func NewRedis(client redis.Scripter, cfg RedisConfig) *Redis {
	return &Redis{client: client, cfg: cfg}
}

// Limiter returns the limiter of name's buckets at rate r. Instances that
// share a Redis and a prefix must give each name the same rate: the rate
// is the caller's, the bucket everyone's.
func (b *Redis) Limiter(name string, r Rate) Limiter {
	if r.unlimited() {
		return Unlimited
	}
	return &redisLimiter{b: b, prefix: b.cfg.Prefix + name + ":", rate: r}
}

type redisLimiter struct {
	b      *Redis
	prefix string
	rate   Rate
}

func (l *redisLimiter) run(ctx context.Context, key string, cost int) (bool, time.Duration, error) {
	if until := l.b.downUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return false, 0, fmt.Errorf("%w: failed within the last %s", ErrUnavailable, downFor)
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
			l.b.downUntil.Store(time.Now().Add(downFor).UnixNano())
		}
		return false, 0, fmt.Errorf("%w: %s: %w", ErrUnavailable, l.prefix+key, err)
	}
	return res[0] == 1, time.Duration(res[1]) * time.Microsecond, nil
}

func (l *redisLimiter) Allow(ctx context.Context, key string) (bool, time.Duration, error) {
	ok, wait, err := l.run(ctx, key, 1)
	if err != nil {
		if l.b.cfg.FailOpen {
			return true, 0, err
		}
		return false, FailClosedRetry, err
	}
	return ok, wait, nil
}

func (l *redisLimiter) Refund(ctx context.Context, key string) error {
	_, _, err := l.run(ctx, key, -1)
	return err
}
