package broadcast_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobchat/jobchat/internal/broadcast"
	"github.com/jobchat/jobchat/internal/testsvc"
)

// TestEnqueue: queued payloads reach subscribers on every backend, in the
// order they were queued, and Close publishes what is still queued.
func TestEnqueue(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			be.require(t)
			broker, _ := be.newBroker(t)
			h := newHub(t, broker, broadcast.Config{BufferSize: 1024})
			s := subscribe(t, h, "room")
			for i := range 300 {
				if err := h.Enqueue("room", []byte(fmt.Sprint(i))); err != nil {
					t.Fatalf("enqueue %d: %v", i, err)
				}
			}
			for i := range 300 {
				if got := recv(t, s); got != fmt.Sprint(i) {
					t.Fatalf("payload %d: got %s", i, got)
				}
			}
			eventually(t, "published counted", func() bool { return h.Stats().Published == 300 })
		})
	}
}

// stuckBroker is a MemoryBroker whose Publish blocks until released, as a
// Redis that does not answer would.
type stuckBroker struct {
	*broadcast.MemoryBroker
	release chan struct{}
	entered chan struct{}
	once    sync.Once
}

func (b *stuckBroker) Publish(ctx context.Context, topic string, payload []byte) error {
	b.once.Do(func() { close(b.entered) })
	select {
	case <-b.release:
		return b.MemoryBroker.Publish(ctx, topic, payload)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestEnqueueFull: with the broker stuck, Enqueue never waits; past the
// queue's bound it drops and counts; a hand-over that times out counts its
// payloads as failed; once the broker answers again, publishing goes on.
func TestEnqueueFull(t *testing.T) {
	b := &stuckBroker{MemoryBroker: broadcast.NewMemoryBroker(), release: make(chan struct{}), entered: make(chan struct{})}
	const size = 10
	h := newHub(t, b, broadcast.Config{QueueSize: size, PublishTimeout: 200 * time.Millisecond})
	s := subscribe(t, h, "room")

	if err := h.Enqueue("room", []byte("first")); err != nil {
		t.Fatal(err)
	}
	<-b.entered // the worker holds "first" and is stuck on it
	var full int
	for i := range size + 5 {
		err := h.Enqueue("room", []byte(fmt.Sprint(i)))
		switch {
		case errors.Is(err, broadcast.ErrQueueFull):
			full++
		case err != nil:
			t.Fatalf("enqueue: %v", err)
		}
	}
	// Some of the queued may already be in the worker's next batch.
	if full < 5 {
		t.Fatalf("%d enqueues refused as full, want at least 5", full)
	}
	st := h.Stats()
	if st.QueueDropped != uint64(full) || st.QueueSize != size {
		t.Fatalf("stats %+v, want %d dropped of a queue of %d", st, full, size)
	}
	eventually(t, "timed-out hand-over counted failed", func() bool { return h.Stats().PublishFailed >= 1 })

	close(b.release)
	if err := h.Enqueue("room", []byte("after")); err != nil {
		t.Fatal(err)
	}
	for {
		if recv(t, s) == "after" {
			break
		}
	}
	// The worker counts a batch once the broker has taken it, which may be
	// after the subscriber got "after".
	eventually(t, "every payload published, failed or dropped", func() bool {
		st := h.Stats()
		return st.Published+st.PublishFailed+st.QueueDropped == uint64(size+5+2)
	})
}

// TestHubCloseDrainsQueue: what is queued when the hub closes is published.
func TestHubCloseDrainsQueue(t *testing.T) {
	var (
		mu  sync.Mutex
		got []string
	)
	b := broadcast.NewMemoryBroker()
	h, err := broadcast.NewHub(b, broadcast.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.SubscribeFunc(t.Context(), "room", func(p []byte) {
		mu.Lock()
		got = append(got, string(p))
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := h.Enqueue("room", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Enqueue("room", nil); !errors.Is(err, broadcast.ErrHubClosed) {
		t.Fatalf("enqueue after close: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 100 {
		t.Fatalf("%d of 100 queued payloads published before close", len(got))
	}
}

// TestRedisUnreachableEnqueue: with Redis gone, Enqueue still returns at
// once, and what could not be published is counted as failed.
func TestRedisUnreachableEnqueue(t *testing.T) {
	testsvc.RedisURL(t)
	// A port nobody listens on: connections are refused at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	h := newHub(t, broadcast.NewRedisBroker(client, uniquePrefix(t)), broadcast.Config{PublishTimeout: time.Second})
	for i := range 100 {
		if err := h.Enqueue("room", []byte(fmt.Sprint(i))); err != nil {
			t.Fatalf("enqueue %d: %v", i, err)
		}
	}
	eventually(t, "failures counted", func() bool { return h.Stats().PublishFailed == 100 })
}

// TestRedisResume: when the subscription connection is killed, the hub is
// told once it is back and resubscribed, with the time it was lost, and a
// payload published after that arrives.
func TestRedisResume(t *testing.T) {
	opt, err := redis.ParseURL(testsvc.RedisURL(t))
	if err != nil {
		t.Fatalf("parse JOBCHAT_TEST_REDIS_URL: %v", err)
	}
	opt.ClientName = "test-" + rand.Text()
	client := redis.NewClient(opt)
	t.Cleanup(func() { _ = client.Close() })
	admin := newRedisClient(t, 0)
	h := newHub(t, broadcast.NewRedisBroker(client, uniquePrefix(t)), broadcast.Config{})
	resumed := make(chan time.Time, 4)
	h.OnResume(func(lostAt time.Time) { resumed <- lostAt })
	s := subscribe(t, h, "room")

	before := time.Now()
	ctx := t.Context()
	list, err := admin.ClientList(ctx).Result()
	if err != nil {
		t.Fatalf("client list: %v", err)
	}
	for line := range strings.Lines(list) {
		fields := strings.Fields(line)
		if slices.Contains(fields, "name="+opt.ClientName) && !slices.Contains(fields, "sub=0") {
			id, _ := strings.CutPrefix(fields[0], "id=")
			if err := admin.Do(ctx, "client", "kill", "id", id).Err(); err != nil {
				t.Fatalf("client kill: %v", err)
			}
		}
	}
	select {
	case lostAt := <-resumed:
		if lostAt.Before(before) {
			t.Fatalf("lost at %v, before the kill at %v", lostAt, before)
		}
	case <-time.After(wait):
		t.Fatalf("no resume within %v", wait)
	}
	// Resumed means resubscribed: the next publish arrives.
	publish(t, h, "room", "after")
	if got := recv(t, s); got != "after" {
		t.Fatalf("got %q", got)
	}
	if st := h.Stats(); st.Resumes != 1 {
		t.Fatalf("resumes %d, want 1", st.Resumes)
	}
}
