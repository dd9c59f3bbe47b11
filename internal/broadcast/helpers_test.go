package broadcast_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobchat/jobchat/internal/broadcast"
	"github.com/jobchat/jobchat/internal/testsvc"
)

// wait bounds every liveness wait; the tests never assert on speed.
const wait = 5 * time.Second

// backend makes brokers of one kind for the shared Hub suite.
type backend struct {
	name string
	// require skips or fails the test when the backend is unavailable.
	require func(tb testing.TB)
	// newBroker returns a fresh broker isolated from other tests, wrapped
	// to count calls, and a function reporting how many instances the
	// transport itself sees subscribed to a topic.
	newBroker func(tb testing.TB) (*countingBroker, func(topic string) int)
}

func backends() []backend {
	return []backend{
		{
			name:    "memory",
			require: func(testing.TB) {},
			newBroker: func(tb testing.TB) (*countingBroker, func(string) int) {
				b := newCountingBroker(broadcast.NewMemoryBroker())
				return b, b.active
			},
		},
		{
			name:    "redis",
			require: func(tb testing.TB) { tb.Helper(); testsvc.RedisURL(tb) },
			newBroker: func(tb testing.TB) (*countingBroker, func(string) int) {
				tb.Helper()
				client := newRedisClient(tb, 0)
				prefix := uniquePrefix(tb)
				b := newCountingBroker(broadcast.NewRedisBroker(client, prefix))
				return b, func(topic string) int {
					return numSub(tb, client, prefix+topic)
				}
			},
		},
		{
			name:    "redis-cluster",
			require: func(tb testing.TB) { tb.Helper(); testsvc.RedisClusterAddrs(tb) },
			newBroker: func(tb testing.TB) (*countingBroker, func(string) int) {
				tb.Helper()
				client := newClusterClient(tb, testsvc.RedisClusterAddrs(tb), 0)
				rb := broadcast.NewRedisClusterBroker(client, uniquePrefix(tb))
				return newCountingBroker(rb), func(topic string) int {
					return shardNumSub(tb, client, rb.Channel(topic))
				}
			},
		},
	}
}

// newRedisClient connects to the test Redis, with the given RESP protocol
// version (0 for the client's default), and closes the client at cleanup.
func newRedisClient(tb testing.TB, protocol int) *redis.Client {
	tb.Helper()
	opt, err := redis.ParseURL(testsvc.RedisURL(tb))
	if err != nil {
		tb.Fatalf("parse JOBCHAT_TEST_REDIS_URL: %v", err)
	}
	if protocol != 0 {
		opt.Protocol = protocol
	}
	client := redis.NewClient(opt)
	tb.Cleanup(func() { _ = client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		tb.Fatalf("ping redis: %v", err)
	}
	return client
}

// newProxiedRedisClient is newRedisClient with its connections going
// through p.
func newProxiedRedisClient(tb testing.TB, p *proxy) *redis.Client {
	tb.Helper()
	opt, err := redis.ParseURL(testsvc.RedisURL(tb))
	if err != nil {
		tb.Fatalf("parse JOBCHAT_TEST_REDIS_URL: %v", err)
	}
	opt.Addr = p.addr
	client := redis.NewClient(opt)
	tb.Cleanup(func() { _ = client.Close() })
	return client
}

// proxy forwards TCP connections to Redis and can degrade the client's side
// of them, as a distant or failing network would.
type proxy struct {
	addr  string
	delay time.Duration // added before forwarding each chunk the client sends

	mu       sync.Mutex
	conns    []net.Conn
	swallow  bool   // discard what the client sends instead of forwarding it
	swallowd []byte // what was discarded
}

// newProxy starts a proxy to the test Redis and stops it at cleanup.
func newProxy(tb testing.TB, delay time.Duration) *proxy {
	tb.Helper()
	opt, err := redis.ParseURL(testsvc.RedisURL(tb))
	if err != nil {
		tb.Fatalf("parse JOBCHAT_TEST_REDIS_URL: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxy listen: %v", err)
	}
	p := &proxy{addr: ln.Addr().String(), delay: delay}
	var wg sync.WaitGroup
	tb.Cleanup(func() {
		_ = ln.Close()
		p.dropConnections()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", opt.Addr)
			if err != nil {
				_ = client.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, client, server)
			p.mu.Unlock()
			wg.Go(func() {
				_, _ = io.Copy(client, server)
				_ = client.Close()
			})
			wg.Go(func() { p.forward(server, client) })
		}
	})
	return p
}

func (p *proxy) forward(server, client net.Conn) {
	defer server.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			time.Sleep(p.delay)
			p.mu.Lock()
			swallow := p.swallow
			if swallow {
				p.swallowd = append(p.swallowd, buf[:n]...)
			}
			p.mu.Unlock()
			if !swallow {
				if _, werr := server.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// setSwallow starts or stops discarding what clients send.
func (p *proxy) setSwallow(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.swallow = on
}

func (p *proxy) swallowed(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Contains(p.swallowd, []byte(s))
}

// dropConnections closes every connection made so far.
func (p *proxy) dropConnections() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// uniquePrefix keeps tests sharing one Redis from hearing each other.
func uniquePrefix(tb testing.TB) string {
	tb.Helper()
	return "test:" + tb.Name() + ":" + rand.Text() + ":"
}

func numSub(tb testing.TB, client *redis.Client, channel string) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	counts, err := client.PubSubNumSub(ctx, channel).Result()
	if err != nil {
		tb.Fatalf("pubsub numsub %s: %v", channel, err)
	}
	return int(counts[channel])
}

func newHub(tb testing.TB, broker broadcast.Broker, cfg broadcast.Config) *broadcast.Hub {
	tb.Helper()
	h, err := broadcast.NewHub(broker, cfg)
	if err != nil {
		tb.Fatalf("new hub: %v", err)
	}
	tb.Cleanup(func() { _ = h.Close() })
	return h
}

func subscribe(tb testing.TB, h *broadcast.Hub, topic string) *broadcast.Subscription {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	s, err := h.Subscribe(ctx, topic)
	if err != nil {
		tb.Fatalf("subscribe %q: %v", topic, err)
	}
	tb.Cleanup(s.Close)
	return s
}

func publish(tb testing.TB, h *broadcast.Hub, topic, payload string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := h.Publish(ctx, topic, []byte(payload)); err != nil {
		tb.Fatalf("publish %q to %q: %v", payload, topic, err)
	}
}

// recv returns the next payload of s, failing if none comes or C closes.
func recv(tb testing.TB, s *broadcast.Subscription) string {
	tb.Helper()
	select {
	case p, ok := <-s.C():
		if !ok {
			tb.Fatalf("subscription ended (err %v) while waiting for a payload", s.Err())
		}
		return string(p)
	case <-time.After(wait):
		tb.Fatalf("no payload within %v", wait)
		return ""
	}
}

// ended drains s until C closes and returns Err.
func ended(tb testing.TB, s *broadcast.Subscription) error {
	tb.Helper()
	deadline := time.After(wait)
	for {
		select {
		case _, ok := <-s.C():
			if !ok {
				return s.Err()
			}
		case <-deadline:
			tb.Fatalf("subscription still open after %v", wait)
			return nil
		}
	}
}

// eventually polls cond until it holds, for state that settles
// asynchronously (Redis unsubscribes, goroutine exits).
// closeAndCheck closes b twice (the second a no-op) and checks that every
// method then answers ErrBrokerClosed.
func closeAndCheck(t *testing.T, b broadcast.Broker) {
	t.Helper()
	ctx := context.Background()
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	for name, err := range map[string]error{
		"publish":     b.Publish(ctx, "room", nil),
		"subscribe":   b.Subscribe(ctx, "room"),
		"unsubscribe": b.Unsubscribe(ctx, "room"),
		"start":       b.Start(func(string, []byte) {}),
	} {
		if !errors.Is(err, broadcast.ErrBrokerClosed) {
			t.Errorf("%s after close: %v, want %v", name, err, broadcast.ErrBrokerClosed)
		}
	}
}

func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not true within %v", what, wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// countingBroker wraps a Broker to record what the Hub asks of it.
type countingBroker struct {
	broadcast.Broker
	// beforeSubscribe, if set, runs before each Subscribe reaches the
	// wrapped broker; an error fails the Subscribe.
	beforeSubscribe func(ctx context.Context, topic string) error

	mu           sync.Mutex
	subscribes   map[string]int
	unsubscribes map[string]int
	subscribed   map[string]bool
}

func newCountingBroker(b broadcast.Broker) *countingBroker {
	return &countingBroker{
		Broker:       b,
		subscribes:   make(map[string]int),
		unsubscribes: make(map[string]int),
		subscribed:   make(map[string]bool),
	}
}

func (c *countingBroker) Subscribe(ctx context.Context, topic string) error {
	c.mu.Lock()
	c.subscribes[topic]++
	c.mu.Unlock()
	if c.beforeSubscribe != nil {
		if err := c.beforeSubscribe(ctx, topic); err != nil {
			return err
		}
	}
	if err := c.Broker.Subscribe(ctx, topic); err != nil {
		return err
	}
	c.mu.Lock()
	c.subscribed[topic] = true
	c.mu.Unlock()
	return nil
}

func (c *countingBroker) Unsubscribe(ctx context.Context, topic string) error {
	c.mu.Lock()
	c.unsubscribes[topic]++
	c.subscribed[topic] = false
	c.mu.Unlock()
	return c.Broker.Unsubscribe(ctx, topic)
}

// Close forgets the subscriptions, as closing the broker drops them.
func (c *countingBroker) Close() error {
	c.mu.Lock()
	clear(c.subscribed)
	c.mu.Unlock()
	return c.Broker.Close()
}

func (c *countingBroker) calls(topic string) (subscribes, unsubscribes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.subscribes[topic], c.unsubscribes[topic]
}

func (c *countingBroker) active(topic string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subscribed[topic] {
		return 1
	}
	return 0
}
