package broadcast_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobchat/jobchat/internal/broadcast"
	"github.com/jobchat/jobchat/internal/testsvc"
)

// TestRedisClusterCrossInstance runs two hubs, as two server instances
// would, on separate clients of the test cluster with a shared prefix:
// payloads of many topics cross in order, the traffic is sharded (shard
// channels on several masters, no plain channel anywhere), and
// unsubscribing releases the shard channels.
func TestRedisClusterCrossInstance(t *testing.T) {
	addrs := testsvc.RedisClusterAddrs(t)
	prefix := uniquePrefix(t)
	clientA, clientB := newClusterClient(t, addrs, 0), newClusterClient(t, addrs, 0)
	brokerB := broadcast.NewRedisClusterBroker(clientB, prefix)
	a := newHub(t, broadcast.NewRedisClusterBroker(clientA, prefix), broadcast.Config{})
	b := newHub(t, brokerB, broadcast.Config{BufferSize: 1024})

	const perTopic = 5
	var topics []string
	for i := range 100 {
		topics = append(topics, fmt.Sprintf("room-%d", i))
	}
	subs := map[string]*broadcast.Subscription{}
	for _, topic := range topics {
		subs[topic] = subscribe(t, b, topic)
	}

	t.Run("payloads of every topic arrive in order", func(t *testing.T) {
		// One round with Publish, one through the queue, whose batches go
		// out as one pipeline per node.
		for round, send := range []func(topic, payload string){
			func(topic, payload string) { publish(t, a, topic, payload) },
			func(topic, payload string) {
				if err := a.Enqueue(topic, []byte(payload)); err != nil {
					t.Fatalf("enqueue: %v", err)
				}
			},
		} {
			for i := range perTopic {
				for _, topic := range topics {
					send(topic, fmt.Sprintf("%d:%s:%d", round, topic, i))
				}
			}
			for _, topic := range topics {
				for i := range perTopic {
					want := fmt.Sprintf("%d:%s:%d", round, topic, i)
					if got := recv(t, subs[topic]); got != want {
						t.Fatalf("%s: got %q, want %q", topic, got, want)
					}
				}
			}
		}
	})

	t.Run("the other way", func(t *testing.T) {
		onA := subscribe(t, a, "room-0")
		publish(t, b, "room-0", "from b")
		for name, s := range map[string]*broadcast.Subscription{"a": onA, "b": subs["room-0"]} {
			if got := recv(t, s); got != "from b" {
				t.Errorf("instance %s got %q, want %q", name, got, "from b")
			}
		}
		onA.Close()
	})

	t.Run("shard channels spread over the masters", func(t *testing.T) {
		sharded := perMaster(t, clientA, func(ctx context.Context, node *redis.Client) ([]string, error) {
			return node.PubSubShardChannels(ctx, prefix+"*").Result()
		})
		plain := perMaster(t, clientA, func(ctx context.Context, node *redis.Client) ([]string, error) {
			return node.PubSubChannels(ctx, prefix+"*").Result()
		})
		total, nodes := 0, 0
		for addr, channels := range sharded {
			n := 0
			for _, ch := range channels {
				if !strings.HasSuffix(ch, "}") { // not a bucket's anchor
					n++
				}
			}
			t.Logf("%s: %d topic channels", addr, n)
			total += n
			if n > 0 {
				nodes++
			}
			if len(plain[addr]) != 0 {
				t.Errorf("%s has plain channels %q", addr, plain[addr])
			}
		}
		if total != len(topics) || nodes < 2 {
			t.Fatalf("%d shard channels on %d masters, want %d on at least 2", total, nodes, len(topics))
		}
	})

	t.Run("unsubscribe releases the shard channel", func(t *testing.T) {
		for _, topic := range topics[:50] {
			subs[topic].Close()
		}
		for _, topic := range topics {
			want := 1
			if slicesIndex(topics, topic) < 50 {
				want = 0
			}
			eventually(t, fmt.Sprintf("%s has %d subscriber", topic, want), func() bool {
				return shardNumSub(t, clientA, brokerB.Channel(topic)) == want
			})
		}
		publish(t, a, topics[0], "after")
		publish(t, a, topics[50], "still")
		if got := recv(t, subs[topics[50]]); got != "still" {
			t.Fatalf("got %q, want %q", got, "still")
		}
	})
}

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// TestRedisClusterBrokerProtocols covers both wire protocols, whose
// replies to the confirming PING on a shard-subscribed connection differ
// in shape, on topics of several buckets.
func TestRedisClusterBrokerProtocols(t *testing.T) {
	addrs := testsvc.RedisClusterAddrs(t)
	for _, protocol := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", protocol), func(t *testing.T) {
			client := newClusterClient(t, addrs, protocol)
			broker := broadcast.NewRedisClusterBroker(client, uniquePrefix(t))
			h := newHub(t, broker, broadcast.Config{})
			for _, topic := range topicsInBuckets("room", 8) {
				s := subscribe(t, h, topic)
				if n := shardNumSub(t, client, broker.Channel(topic)); n != 1 {
					t.Fatalf("%s: SHARDNUMSUB after Subscribe returned = %d, want 1", topic, n)
				}
				publish(t, h, topic, "hello "+topic)
				if got := recv(t, s); got != "hello "+topic {
					t.Fatalf("got %q, want %q", got, "hello "+topic)
				}
			}
		})
	}
}

// TestRedisClusterBroker uses the broker directly, with SPUBLISH from
// outside, to pin down the channel naming that instances of different
// versions rely on.
func TestRedisClusterBroker(t *testing.T) {
	addrs := testsvc.RedisClusterAddrs(t)
	ctx := context.Background()

	t.Run("channel is prefix, bucket hash tag, topic", func(t *testing.T) {
		client := newClusterClient(t, addrs, 0)
		prefix := uniquePrefix(t)
		b := broadcast.NewRedisClusterBroker(client, prefix)
		t.Cleanup(func() { _ = b.Close() })
		h := fnv.New32a()
		_, _ = h.Write([]byte("42"))
		want := prefix + "{" + strconv.Itoa(int(h.Sum32()%64)) + "}42"
		if got := b.Channel("42"); got != want {
			t.Fatalf("channel %q, want %q", got, want)
		}
		type delivery struct{ topic, payload string }
		got := make(chan delivery, 1)
		if err := b.Start(func(topic string, payload []byte) { got <- delivery{topic, string(payload)} }); err != nil {
			t.Fatalf("start: %v", err)
		}
		if err := b.Subscribe(ctx, "42"); err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		if err := client.SPublish(ctx, want, "raw").Err(); err != nil {
			t.Fatalf("raw spublish: %v", err)
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
		b := broadcast.NewRedisClusterBroker(newClusterClient(t, addrs, 0), uniquePrefix(t))
		t.Cleanup(func() { _ = b.Close() })
		if err := b.Subscribe(ctx, "room"); err == nil {
			t.Fatal("no error")
		}
	})

	t.Run("closed", func(t *testing.T) {
		b := broadcast.NewRedisClusterBroker(newClusterClient(t, addrs, 0), uniquePrefix(t))
		if err := b.Start(func(string, []byte) {}); err != nil {
			t.Fatalf("start: %v", err)
		}
		if err := b.Subscribe(ctx, "room"); err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		closeAndCheck(t, b)
	})
}

// TestRedisClusterNodeFailure kills a master of a private cluster while an
// instance follows topics on it and on the other masters. The other
// topics keep working during the outage; once the node is restarted (with
// its nodes.conf, as after a crash), the instance is told it resumed, with
// a loss time within the outage, and payloads published afterwards arrive.
func TestRedisClusterNodeFailure(t *testing.T) {
	c := startPrivateCluster(t)
	prefix := uniquePrefix(t)
	broker := broadcast.NewRedisClusterBroker(newClusterClient(t, c.addrs(), 0), prefix)
	h := newHub(t, broker, broadcast.Config{BufferSize: 1024})
	resumed := make(chan time.Time, broadcast.ShardBuckets)
	h.OnResume(func(lostAt time.Time) { resumed <- lostAt })
	other := newHub(t, broadcast.NewRedisClusterBroker(newClusterClient(t, c.addrs(), 0), prefix), broadcast.Config{})

	topics := topicsInBuckets("room", 12)
	victim := c.owner(broker.Channel(topics[0]))
	var onVictim, elsewhere []string
	subs := map[string]*broadcast.Subscription{}
	for _, topic := range topics {
		if c.owner(broker.Channel(topic)) == victim {
			onVictim = append(onVictim, topic)
		} else {
			elsewhere = append(elsewhere, topic)
		}
		subs[topic] = subscribe(t, h, topic)
		publish(t, other, topic, "before")
		if got := recv(t, subs[topic]); got != "before" {
			t.Fatalf("%s: got %q", topic, got)
		}
	}
	if len(elsewhere) == 0 {
		t.Fatal("every topic is on one node")
	}
	t.Logf("node %d holds %d of %d buckets", victim, len(onVictim), len(topics))

	killedAt := time.Now()
	c.kill(victim)
	for _, topic := range elsewhere {
		publish(t, other, topic, "during")
		if got := recv(t, subs[topic]); got != "during" {
			t.Fatalf("%s during the outage: got %q", topic, got)
		}
	}

	restartedAt := time.Now()
	c.start(victim)
	c.waitOK()
	for range onVictim {
		select {
		case lostAt := <-resumed:
			if lostAt.Before(killedAt) || lostAt.After(restartedAt) {
				t.Fatalf("lost at %v, not between the kill at %v and the restart at %v", lostAt, killedAt, restartedAt)
			}
		case <-time.After(clusterWait):
			t.Fatalf("no resume of every bucket of the failed node within %v", clusterWait)
		}
	}
	// Resumed means resubscribed: the next publish arrives, on every topic.
	for _, topic := range topics {
		publish(t, other, topic, "after")
		for {
			got := recv(t, subs[topic])
			if got == "after" {
				break
			}
			// Only a payload of during the outage may come first.
			if got != "during" {
				t.Fatalf("%s after the restart: got %q", topic, got)
			}
		}
	}
}

// TestRedisClusterFailover kills a master that has a replica: the cluster
// promotes the replica, and the instance following a topic of that
// master's moves its bucket there (the reloaded slot map names it) and
// says it resumed; payloads published afterwards arrive.
func TestRedisClusterFailover(t *testing.T) {
	c := startPrivateCluster(t)
	prefix := uniquePrefix(t)
	broker := broadcast.NewRedisClusterBroker(newClusterClient(t, c.addrs(), 0), prefix)
	h := newHub(t, broker, broadcast.Config{BufferSize: 1024})
	resumed := make(chan time.Time, broadcast.ShardBuckets)
	h.OnResume(func(lostAt time.Time) { resumed <- lostAt })
	other := newHub(t, broadcast.NewRedisClusterBroker(newClusterClient(t, c.addrs(), 0), prefix), broadcast.Config{})

	const topic = "room"
	victim := c.owner(broker.Channel(topic))
	replica := c.addReplica(victim)
	s := subscribe(t, h, topic)
	publish(t, other, topic, "before")
	if got := recv(t, s); got != "before" {
		t.Fatalf("got %q", got)
	}

	killedAt := time.Now()
	c.kill(victim)
	select {
	case lostAt := <-resumed:
		if lostAt.Before(killedAt) {
			t.Fatalf("lost at %v, before the kill at %v", lostAt, killedAt)
		}
	case <-time.After(clusterWait):
		t.Fatalf("no resume within %v of the kill; cluster nodes:\n%s", clusterWait, c.describe())
	}
	t.Logf("resumed %v after the kill", time.Since(killedAt).Round(time.Millisecond))
	if owner := c.owner(broker.Channel(topic)); owner != replica {
		t.Fatalf("slot on node %d after the failover, want the replica %d", owner, replica)
	}
	// The other instance's client learns of the failover by itself; its
	// first publishes may still go to the dead node and fail.
	deadline := time.Now().Add(clusterWait)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), wait)
		err := other.Publish(ctx, topic, []byte("after"))
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish after the failover: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("published %v after the kill", time.Since(killedAt).Round(time.Millisecond))
	if got := recv(t, s); got != "after" {
		t.Fatalf("got %q", got)
	}
}

// TestRedisClusterSlotMoved reshards the slot of a bucket to another
// master of a private cluster, in two situations the broker must heal:
//   - it follows two topics of the bucket: the old owner tells its shard
//     subscribers that the slot left, the broker reconnects the bucket to
//     the new owner and says it resumed;
//   - it has not used the bucket yet and its client's slot map is stale:
//     the first SSUBSCRIBE goes to the old owner, which answers MOVED (and
//     then answers the confirming PING all the same), so Subscribe must not
//     return before the bucket is subscribed on the new owner.
//
// Either way payloads published afterwards arrive.
func TestRedisClusterSlotMoved(t *testing.T) {
	c := startPrivateCluster(t)
	for _, protocol := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", protocol), func(t *testing.T) {
			prefix := uniquePrefix(t)
			newInstance := func() (*broadcast.RedisClusterBroker, *broadcast.Hub, chan time.Time) {
				broker := broadcast.NewRedisClusterBroker(newClusterClient(t, c.addrs(), protocol), prefix)
				h := newHub(t, broker, broadcast.Config{})
				resumed := make(chan time.Time, broadcast.ShardBuckets)
				h.OnResume(func(lostAt time.Time) { resumed <- lostAt })
				return broker, h, resumed
			}
			_, other, _ := newInstance()
			// Two topics of one bucket.
			first := "room-0"
			var second string
			for i := 1; second == ""; i++ {
				if topic := fmt.Sprintf("room-%d", i); broadcast.ShardBucket(topic) == broadcast.ShardBucket(first) {
					second = topic
				}
			}

			t.Run("subscribed bucket follows its slot", func(t *testing.T) {
				broker, h, resumed := newInstance()
				subs := []*broadcast.Subscription{subscribe(t, h, first), subscribe(t, h, second)}
				from := c.owner(broker.Channel(first))
				to := (from + 1) % len(c.nodes)
				movedAt := time.Now()
				c.moveSlot(broker.Channel(first), from, to)

				select {
				case lostAt := <-resumed:
					if lostAt.Before(movedAt) {
						t.Fatalf("lost at %v, before the move at %v", lostAt, movedAt)
					}
				case <-time.After(clusterWait):
					t.Fatalf("no resume within %v of the move", clusterWait)
				}
				if owner := c.owner(broker.Channel(first)); owner != to {
					t.Fatalf("slot on node %d after the move, want %d", owner, to)
				}
				for i, topic := range []string{first, second} {
					publish(t, other, topic, "after "+topic)
					if got := recv(t, subs[i]); got != "after "+topic {
						t.Fatalf("%s: got %q", topic, got)
					}
				}
			})

			t.Run("stale slot map at the first subscribe", func(t *testing.T) {
				broker, h, _ := newInstance() // its client has loaded the slot map
				from := c.owner(broker.Channel(first))
				to := (from + 1) % len(c.nodes)
				c.moveSlot(broker.Channel(first), from, to)

				ctx, cancel := context.WithTimeout(t.Context(), clusterWait)
				defer cancel()
				s, err := h.Subscribe(ctx, first)
				if err != nil {
					t.Fatalf("subscribe: %v", err)
				}
				t.Cleanup(s.Close)
				publish(t, other, first, "after the move")
				if got := recv(t, s); got != "after the move" {
					t.Fatalf("got %q", got)
				}
			})
		})
	}
}
