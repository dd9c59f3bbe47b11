package broadcast

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ShardBuckets is how many shard buckets RedisClusterBroker spreads topics
// over. It is part of the channel names: instances of one deployment must
// agree on it, so it is a constant. 64 hash tags land on three masters
// with the default slot split as 21, 22 and 21, and still spread over a
// dozen or so.
const ShardBuckets = 64

// RedisClusterBroker is a Broker over a Redis Cluster's sharded pub/sub
// (SPUBLISH/SSUBSCRIBE), for several server instances sharing one cluster.
// Plain PUBLISH on a cluster is sent to every node, so every node carries
// every payload; a shard channel lives on the node that owns its slot, so
// the pub/sub traffic spreads over the masters like keys do.
//
// Topic t travels on channel prefix+"{b}"+t, where b = fnv-1a(t) mod
// ShardBuckets: the hash tag {b} puts all topics of a bucket in one slot.
// That is what makes a bucket one connection: go-redis sends a PubSub's
// SSUBSCRIBEs, and after a reconnect all of its channels, to the node of its
// first channel, so one PubSub must hold channels of one slot only. Each
// bucket in use has its own connection and read goroutine (a subConn, the
// same engine as RedisBroker's, created on the bucket's first Subscribe), so
// an instance holds at most ShardBuckets subscription connections however
// many topics it follows, and each goes to the node owning its bucket.
//
// A node failure heals like a Redis restart: the buckets on that node lose
// their connection and reconnect (after a failover, to the node the
// refreshed slot map names) while the others go on; when a bucket is back,
// the Hub is told (Resumer) with the start of the outage. A slot that moves
// (resharding) is followed too; see subConn.
//
// The prefix must not contain '{': its hash tag would then put every
// bucket in one slot (still correct, but on one node).
type RedisClusterBroker struct {
	client *redis.ClusterClient
	prefix string
	outage outage

	// done is closed by Close.
	done chan struct{}

	mu      sync.Mutex
	started bool
	closed  bool
	handle  func(topic string, payload []byte)
	conns   [ShardBuckets]*subConn // nil until the bucket's first Subscribe
}

// NewRedisClusterBroker returns a RedisClusterBroker using client, which the
// caller keeps owning and closes after the broker. The prefix plays the
// part it plays for NewRedisBroker.
func NewRedisClusterBroker(client *redis.ClusterClient, prefix string) *RedisClusterBroker {
	return &RedisClusterBroker{
		client: client,
		prefix: prefix,
		done:   make(chan struct{}),
	}
}

// ShardBucket returns the bucket of topic.
func ShardBucket(topic string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(topic))
	return int(h.Sum32() % ShardBuckets)
}

// bucketPrefix is the start of the channel names of bucket: the prefix and
// the bucket's hash tag. It is also the bucket's anchor channel (see
// subConn), the channel of the empty topic.
func (b *RedisClusterBroker) bucketPrefix(bucket int) string {
	return b.prefix + "{" + strconv.Itoa(bucket) + "}"
}

// Channel returns the shard channel that carries topic.
func (b *RedisClusterBroker) Channel(topic string) string {
	return b.bucketPrefix(ShardBucket(topic)) + topic
}

// Publish sends payload with SPUBLISH to the node owning the topic's slot;
// it returns once Redis has accepted it.
func (b *RedisClusterBroker) Publish(ctx context.Context, topic string, payload []byte) error {
	if b.isClosed() {
		return ErrBrokerClosed
	}
	if err := b.client.SPublish(ctx, b.Channel(topic), payload).Err(); err != nil {
		b.failed()
		return fmt.Errorf("redis spublish: %w", err)
	}
	return nil
}

// failed follows a publish that failed. go-redis refreshes its slot map on
// MOVED, or every minute, but not when a node stops answering: after a
// failover it would go on sending the slot's publishes to the dead master.
// The read loops refresh it when their connection drops, but an instance
// may follow no topic of that node; so a failure asks for a refresh too
// (in the background, at most one at a time).
func (b *RedisClusterBroker) failed() {
	b.client.ReloadState(context.Background())
}

// PublishBatch sends every message pipelined: the client sends one
// pipeline to each node concerned, at once. The payloads of one topic go
// to one node in the order given.
func (b *RedisClusterBroker) PublishBatch(ctx context.Context, msgs []Message) (failed int) {
	if b.isClosed() {
		return len(msgs)
	}
	failed = publishPipelined(ctx, b.client, msgs, func(p redis.Pipeliner, m Message) {
		p.SPublish(ctx, b.Channel(m.Topic), m.Payload)
	})
	if failed > 0 {
		b.failed()
	}
	return failed
}

// OnResume sets what is called when a bucket's connection is back after a
// loss, with the start of the outage; see Resumer. It must be called
// before Start.
func (b *RedisClusterBroker) OnResume(fn func(lostAt time.Time)) {
	b.outage.setFn(fn)
}

// Subscribe sends SSUBSCRIBE on the connection of the topic's bucket and
// returns once Redis has processed it; see RedisBroker.Subscribe.
func (b *RedisClusterBroker) Subscribe(ctx context.Context, topic string) error {
	conn, err := b.conn(topic)
	if err != nil {
		return err
	}
	channel := b.Channel(topic)
	if err := conn.subscribe(ctx, channel); err != nil {
		if errors.Is(err, ErrBrokerClosed) {
			return err
		}
		return fmt.Errorf("redis ssubscribe %q: %w", channel, err)
	}
	return nil
}

// conn returns the connection of topic's bucket, made and started on first
// use.
func (b *RedisClusterBroker) conn(topic string) (*subConn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return nil, ErrBrokerClosed
	case !b.started:
		return nil, errors.New("redis ssubscribe: broker not started")
	}
	bucket := ShardBucket(topic)
	if b.conns[bucket] == nil {
		anchor := b.bucketPrefix(bucket)
		c := newShardedSubConn(b.client, anchor, anchor, b.done, &b.outage)
		c.start(b.handle)
		b.conns[bucket] = c
	}
	return b.conns[bucket], nil
}

// Unsubscribe sends SUNSUBSCRIBE without waiting for Redis to confirm it.
func (b *RedisClusterBroker) Unsubscribe(ctx context.Context, topic string) error {
	b.mu.Lock()
	closed, conn := b.closed, b.conns[ShardBucket(topic)]
	b.mu.Unlock()
	switch {
	case closed:
		return ErrBrokerClosed
	case conn == nil:
		return nil // never subscribed
	}
	channel := b.Channel(topic)
	if err := conn.unsubscribe(ctx, channel); err != nil {
		return fmt.Errorf("redis sunsubscribe %q: %w", channel, err)
	}
	return nil
}

// Start records handle, which the buckets' read loops call for each
// message with the topic of its channel.
func (b *RedisClusterBroker) Start(handle func(topic string, payload []byte)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return ErrBrokerClosed
	case b.started:
		return errors.New("redis cluster broker: already started")
	}
	b.started = true
	b.handle = handle
	return nil
}

// Close stops the read loops and closes the subscription connections. It
// does not close the client, which belongs to the caller.
func (b *RedisClusterBroker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.done)
	conns := b.conns
	b.mu.Unlock()
	var errs []error
	for _, c := range conns {
		if c != nil {
			errs = append(errs, c.close())
		}
	}
	return errors.Join(errs...)
}

func (b *RedisClusterBroker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}
