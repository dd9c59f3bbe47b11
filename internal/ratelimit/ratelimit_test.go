package ratelimit

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobchat/jobchat/internal/testsvc"
)

func TestTake(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := Rate{PerSecond: 2, Burst: 3}
	type step struct {
		after time.Duration // since t0
		cost  float64
		ok    bool
		wait  time.Duration
		left  float64
	}
	tests := []struct {
		name  string
		rate  Rate
		steps []step
	}{
		{"a new key starts full", r, []step{{0, 1, true, 0, 2}, {0, 1, true, 0, 1}, {0, 1, true, 0, 0}, {0, 1, false, 500 * time.Millisecond, 0}}},
		{"tokens come back at the rate", r, []step{{0, 3, true, 0, 0}, {250 * time.Millisecond, 1, false, 250 * time.Millisecond, 0.5}, {500 * time.Millisecond, 1, true, 0, 0}}},
		{"never beyond the burst", r, []step{{0, 1, true, 0, 2}, {time.Hour, 0, true, 0, 3}, {time.Hour, -5, true, 0, 3}}},
		{"a refund gives one back", r, []step{{0, 3, true, 0, 0}, {0, -1, true, 0, 1}, {0, 1, true, 0, 0}}},
		{"a clock that goes back counts nothing", r, []step{{time.Second, 3, true, 0, 0}, {0, 1, false, 500 * time.Millisecond, 0}}},
		{"a burst below 1 is 1", Rate{PerSecond: 1}, []step{{0, 1, true, 0, 0}, {0, 1, false, time.Second, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bucket
			seen := false
			for i, s := range tt.steps {
				var ok bool
				var wait time.Duration
				b, ok, wait = take(b, seen, t0.Add(s.after), tt.rate, s.cost)
				seen = true
				if ok != s.ok || wait != s.wait || b.tokens != s.left {
					t.Fatalf("step %d: ok %v, wait %s, %.3f left; want %v, %s, %.3f", i, ok, wait, b.tokens, s.ok, s.wait, s.left)
				}
			}
		})
	}
}

// backends are the stores every limiter test runs on: memory, and Redis
// when the tests have one (always in CI).
func backends(t *testing.T) map[string]func(t *testing.T) Backend {
	return map[string]func(t *testing.T) Backend{
		"memory": func(*testing.T) Backend { return Memory{} },
		"redis": func(t *testing.T) Backend {
			return NewRedis(newRedisClient(t), RedisConfig{Prefix: uniquePrefix(t)})
		},
	}
}

// TestLimiter holds each backend to the same behaviour, with a rate slow
// enough (one an hour) that no token comes back while it runs.
func TestLimiter(t *testing.T) {
	slow := Rate{PerSecond: 1.0 / 3600, Burst: 3}
	ctx := context.Background()
	for name, backend := range backends(t) {
		t.Run(name, func(t *testing.T) {
			b := backend(t)
			sends := b.Limiter("send", slow)
			allow := func(l Limiter, key string, want bool) time.Duration {
				t.Helper()
				ok, wait, err := l.Allow(ctx, key)
				if err != nil || ok != want {
					t.Fatalf("Allow(%s) = %v, %s, %v; want %v", key, ok, wait, err, want)
				}
				return wait
			}
			for range 3 {
				allow(sends, "ana", true)
			}
			wait := allow(sends, "ana", false)
			if wait < 59*time.Minute || wait > time.Hour+time.Second {
				t.Fatalf("retry after %s, want about an hour", wait)
			}
			// Keys and names are apart.
			allow(sends, "ben", true)
			allow(b.Limiter("typing", slow), "ana", true)
			// A refund gives one back, and no more than the burst.
			if err := sends.Refund(ctx, "ana"); err != nil {
				t.Fatal(err)
			}
			allow(sends, "ana", true)
			allow(sends, "ana", false)
			for range 10 {
				if err := sends.Refund(ctx, "ben"); err != nil {
					t.Fatal(err)
				}
			}
			for range 3 {
				allow(sends, "ben", true)
			}
			allow(sends, "ben", false)
			// No rate: no limit.
			free := b.Limiter("free", Rate{})
			for range 100 {
				allow(free, "ana", true)
			}
		})
	}
}

// TestRedisShared: two instances, each with its own connection, spend one
// budget.
func TestRedisShared(t *testing.T) {
	prefix := uniquePrefix(t)
	slow := Rate{PerSecond: 1.0 / 3600, Burst: 3}
	a := NewRedis(newRedisClient(t), RedisConfig{Prefix: prefix}).Limiter("send", slow)
	b := NewRedis(newRedisClient(t), RedisConfig{Prefix: prefix}).Limiter("send", slow)
	ctx := context.Background()
	for i, l := range []Limiter{a, b, a} {
		if ok, _, err := l.Allow(ctx, "ana"); !ok || err != nil {
			t.Fatalf("send %d: %v, %v", i+1, ok, err)
		}
	}
	for _, l := range []Limiter{a, b} {
		if ok, wait, err := l.Allow(ctx, "ana"); ok || err != nil || wait < 59*time.Minute {
			t.Fatalf("past the shared burst: %v, %s, %v", ok, wait, err)
		}
	}
	if err := b.Refund(ctx, "ana"); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := a.Allow(ctx, "ana"); !ok || err != nil {
		t.Fatalf("after b's refund, a: %v, %v", ok, err)
	}
}

// TestRedisScriptFlushed: a Redis that lost its scripts (a restart, SCRIPT
// FLUSH) is sent the script again.
func TestRedisScriptFlushed(t *testing.T) {
	client := newRedisClient(t)
	l := NewRedis(client, RedisConfig{Prefix: uniquePrefix(t)}).Limiter("send", Rate{PerSecond: 1, Burst: 5})
	ctx := context.Background()
	if ok, _, err := l.Allow(ctx, "ana"); !ok || err != nil {
		t.Fatalf("%v, %v", ok, err)
	}
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := l.Allow(ctx, "ana"); !ok || err != nil {
		t.Fatalf("after SCRIPT FLUSH: %v, %v", ok, err)
	}
}

// TestRedisDown: a Redis that cannot answer lets through by this
// instance's own buckets, or refuses, by the setting, and always says why.
func TestRedisDown(t *testing.T) {
	ctx := context.Background()
	for _, failOpen := range []bool{true, false} {
		// Nothing listens on port 1 of loopback.
		down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second, ContextTimeoutEnabled: true})
		t.Cleanup(func() { _ = down.Close() })
		l := NewRedis(down, RedisConfig{Prefix: "down:", FailOpen: failOpen}).Limiter("send", Rate{PerSecond: 1, Burst: 1})
		ok, wait, err := l.Allow(ctx, "ana")
		if !errors.Is(err, ErrUnavailable) || ok != failOpen {
			t.Fatalf("fail open %v: %v, %s, %v", failOpen, ok, wait, err)
		}
		if !failOpen && wait != FailClosedRetry {
			t.Fatalf("fail closed: retry after %s, want %s", wait, FailClosedRetry)
		}
		// Failing open is not failing wide open: the local bucket of one
		// is spent.
		ok, wait, err = l.Allow(ctx, "ana")
		if !errors.Is(err, ErrUnavailable) || ok || wait <= 0 {
			t.Fatalf("fail open %v, second action: %v, %s, %v", failOpen, ok, wait, err)
		}
		if err := l.Refund(ctx, "ana"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("refund: %v", err)
		}
	}
}

// TestRedisHungThenBack: a Redis that takes connections but answers
// nothing costs the first check its timeout; the checks after it do not
// ask Redis at all (no send waits on it), and once Redis answers again a
// background probe brings the shared buckets back without any check
// having to try.
func TestRedisHungThenBack(t *testing.T) {
	url := testsvc.RedisURL(t)
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testsvc.NewFaultProxy(t, opt.Addr)
	opt.Addr = proxy.Addr()
	opt.MaxRetries = -1
	opt.ContextTimeoutEnabled = true
	client := redis.NewClient(opt)
	t.Cleanup(func() { _ = client.Close() })
	b := NewRedis(client, RedisConfig{Prefix: uniquePrefix(t), FailOpen: true})
	l := b.Limiter("send", Rate{PerSecond: 1000, Burst: 1000})
	ctx := context.Background()
	if ok, _, err := l.Allow(ctx, "ana"); !ok || err != nil {
		t.Fatalf("Redis up: %v, %v", ok, err)
	}

	proxy.Blackhole()
	ok, _, err := l.Allow(ctx, "ana")
	if !ok || !errors.Is(err, ErrUnavailable) || errors.Is(err, errNotAsked) || !b.Down() {
		t.Fatalf("hung Redis: %v, %v, down %v", ok, err, b.Down())
	}
	for range 100 {
		ok, _, err := l.Allow(ctx, "ana")
		if !ok || !errors.Is(err, ErrUnavailable) || !errors.Is(err, errNotAsked) {
			t.Fatalf("while down, a check asked Redis: %v, %v", ok, err)
		}
	}

	proxy.Restore()
	deadline := time.Now().Add(30 * time.Second) // only so as not to hang
	for b.Down() {
		if time.Now().After(deadline) {
			t.Fatal("the probe never saw Redis back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ok, _, err := l.Allow(ctx, "ana"); !ok || err != nil {
		t.Fatalf("Redis back: %v, %v", ok, err)
	}
}

func newRedisClient(tb testing.TB) *redis.Client {
	tb.Helper()
	opt, err := redis.ParseURL(testsvc.RedisURL(tb))
	if err != nil {
		tb.Fatalf("parse %s: %v", testsvc.RedisURLEnv, err)
	}
	client := redis.NewClient(opt)
	tb.Cleanup(func() { _ = client.Close() })
	return client
}

func uniquePrefix(tb testing.TB) string {
	return "test:" + tb.Name() + ":" + rand.Text() + ":"
}
