package broadcast_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobchat/jobchat/internal/broadcast"
	"github.com/jobchat/jobchat/internal/testsvc"
)

// TestRedisCrossInstance runs two hubs, as two server instances would, on
// separate connections to one Redis with a shared prefix.
func TestRedisCrossInstance(t *testing.T) {
	testsvc.RedisURL(t)
	prefix := uniquePrefix(t)
	a := newHub(t, broadcast.NewRedisBroker(newRedisClient(t, 0), prefix), broadcast.Config{})
	b := newHub(t, broadcast.NewRedisBroker(newRedisClient(t, 0), prefix), broadcast.Config{})

	t.Run("both instances receive from either", func(t *testing.T) {
		onA, onB := subscribe(t, a, "room"), subscribe(t, b, "room")
		cases := []struct {
			from    *broadcast.Hub
			payload string
		}{
			{a, "from a"},
			{b, "from b"},
		}
		for _, c := range cases {
			publish(t, c.from, "room", c.payload)
			for name, s := range map[string]*broadcast.Subscription{"a": onA, "b": onB} {
				if got := recv(t, s); got != c.payload {
					t.Errorf("instance %s got %q, want %q", name, got, c.payload)
				}
			}
		}
	})

	t.Run("publish on one right after Subscribe returns on the other", func(t *testing.T) {
		for i := range 50 {
			topic := fmt.Sprintf("fresh-%d", i)
			s := subscribe(t, b, topic)
			publish(t, a, topic, "first")
			if got := recv(t, s); got != "first" {
				t.Fatalf("%s: got %q, want %q", topic, got, "first")
			}
		}
	})
}

// TestRedisSubscribeWaitsForConfirmation puts the subscribing instance
// behind a slow link, so a Subscribe that returned before Redis processed
// SUBSCRIBE would let the publish overtake it and lose the payload.
func TestRedisSubscribeWaitsForConfirmation(t *testing.T) {
	testsvc.RedisURL(t)
	prefix := uniquePrefix(t)
	slow := newProxy(t, 50*time.Millisecond)
	far := newHub(t, broadcast.NewRedisBroker(newProxiedRedisClient(t, slow), prefix), broadcast.Config{})
	near := newHub(t, broadcast.NewRedisBroker(newRedisClient(t, 0), prefix), broadcast.Config{})
	for i := range 5 {
		topic := fmt.Sprintf("room-%d", i)
		s := subscribe(t, far, topic)
		publish(t, near, topic, "first")
		if got := recv(t, s); got != "first" {
			t.Fatalf("%s: got %q, want %q", topic, got, "first")
		}
	}
}

// TestRedisSubscribeSurvivesLostConfirmation loses a Subscribe's commands
// in the network and then drops the connection: Subscribe must still
// return once go-redis has reconnected and resubscribed, not hang waiting
// for a reply that will never come.
func TestRedisSubscribeSurvivesLostConfirmation(t *testing.T) {
	testsvc.RedisURL(t)
	prefix := uniquePrefix(t)
	p := newProxy(t, 0)
	far := newHub(t, broadcast.NewRedisBroker(newProxiedRedisClient(t, p), prefix), broadcast.Config{})
	near := newHub(t, broadcast.NewRedisBroker(newRedisClient(t, 0), prefix), broadcast.Config{})
	subscribe(t, far, "warm-up") // the subscription connection is up

	p.setSwallow(true)
	ctx, cancel := context.WithTimeout(t.Context(), 4*wait)
	defer cancel()
	type result struct {
		s   *broadcast.Subscription
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := far.Subscribe(ctx, "room")
		done <- result{s, err}
	}()
	eventually(t, "SUBSCRIBE and PING lost", func() bool { return p.swallowed("broadcast-subscribe-") })
	p.setSwallow(false)
	p.dropConnections()

	r := <-done
	if r.err != nil {
		t.Fatalf("subscribe: %v", r.err)
	}
	t.Cleanup(r.s.Close)
	publish(t, near, "room", "made it")
	if got := recv(t, r.s); got != "made it" {
		t.Fatalf("got %q, want %q", got, "made it")
	}
}

// TestRedisReconnect kills the subscription connection, as a Redis restart
// or network fault would, and checks that delivery resumes once go-redis has
// reconnected and resubscribed. Payloads sent during the outage may be lost,
// so the test keeps publishing until one arrives.
func TestRedisReconnect(t *testing.T) {
	opt, err := redis.ParseURL(testsvc.RedisURL(t))
	if err != nil {
		t.Fatalf("parse JOBCHAT_TEST_REDIS_URL: %v", err)
	}
	opt.ClientName = "test-" + rand.Text()
	client := redis.NewClient(opt)
	t.Cleanup(func() { _ = client.Close() })
	admin := newRedisClient(t, 0)
	h := newHub(t, broadcast.NewRedisBroker(client, uniquePrefix(t)), broadcast.Config{BufferSize: 1024})
	s := subscribe(t, h, "room")

	ctx := t.Context()
	list, err := admin.ClientList(ctx).Result()
	if err != nil {
		t.Fatalf("client list: %v", err)
	}
	killed := 0
	for line := range strings.Lines(list) {
		fields := strings.Fields(line)
		if !slices.Contains(fields, "name="+opt.ClientName) || slices.Contains(fields, "sub=0") {
			continue
		}
		id, _ := strings.CutPrefix(fields[0], "id=")
		if err := admin.Do(ctx, "client", "kill", "id", id).Err(); err != nil {
			t.Fatalf("client kill %s: %v", id, err)
		}
		killed++
	}
	if killed != 1 {
		t.Fatalf("killed %d subscription connections, want 1", killed)
	}

	deadline := time.Now().Add(wait)
	for i := 0; ; i++ {
		publish(t, h, "room", strconv.Itoa(i))
		select {
		case p, ok := <-s.C():
			if !ok {
				t.Fatalf("subscription ended: %v", s.Err())
			}
			t.Logf("delivery resumed with payload %s", p)
			// A topic subscribed after the reconnect must work too.
			later := subscribe(t, h, "later")
			publish(t, h, "later", "hello")
			if got := recv(t, later); got != "hello" {
				t.Fatalf("got %q, want %q", got, "hello")
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery within %v of killing the connection", wait)
		}
	}
}

// TestRedisBrokerProtocols covers both wire protocols, whose replies to the
// confirming PING differ in shape.
func TestRedisBrokerProtocols(t *testing.T) {
	testsvc.RedisURL(t)
	for _, protocol := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", protocol), func(t *testing.T) {
			client := newRedisClient(t, protocol)
			prefix := uniquePrefix(t)
			h := newHub(t, broadcast.NewRedisBroker(client, prefix), broadcast.Config{})
			s := subscribe(t, h, "room")
			if n := numSub(t, client, prefix+"room"); n != 1 {
				t.Fatalf("NUMSUB after Subscribe returned = %d, want 1", n)
			}
			publish(t, h, "room", "hello")
			if got := recv(t, s); got != "hello" {
				t.Fatalf("got %q, want %q", got, "hello")
			}
		})
	}
}

// TestRedisBroker uses the broker directly, with plain PUBLISH from outside,
// to pin down the channel naming the deployment relies on.
func TestRedisBroker(t *testing.T) {
	testsvc.RedisURL(t)
	ctx := context.Background()

	t.Run("topic is the channel without the prefix", func(t *testing.T) {
		client := newRedisClient(t, 0)
		prefix := uniquePrefix(t)
		b := broadcast.NewRedisBroker(client, prefix)
		t.Cleanup(func() { _ = b.Close() })
		type delivery struct{ topic, payload string }
		got := make(chan delivery, 1)
		if err := b.Start(func(topic string, payload []byte) { got <- delivery{topic, string(payload)} }); err != nil {
			t.Fatalf("start: %v", err)
		}
		if err := b.Subscribe(ctx, "42"); err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		if err := client.Publish(ctx, prefix+"42", "raw").Err(); err != nil {
			t.Fatalf("raw publish: %v", err)
		}
		select {
		case d := <-got:
			if d != (delivery{"42", "raw"}) {
				t.Errorf("delivered %+v, want topic 42, payload raw", d)
			}
		case <-time.After(wait):
			t.Fatalf("nothing delivered within %v", wait)
		}
	})

	t.Run("subscribe before start fails", func(t *testing.T) {
		b := broadcast.NewRedisBroker(newRedisClient(t, 0), uniquePrefix(t))
		t.Cleanup(func() { _ = b.Close() })
		if err := b.Subscribe(ctx, "room"); err == nil {
			t.Fatal("no error")
		}
	})

	t.Run("closed", func(t *testing.T) {
		b := broadcast.NewRedisBroker(newRedisClient(t, 0), uniquePrefix(t))
		if err := b.Start(func(string, []byte) {}); err != nil {
			t.Fatalf("start: %v", err)
		}
		closeAndCheck(t, b)
	})
}
