package broadcast

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisBroker is a Broker over Redis PUBLISH/SUBSCRIBE, for several server
// instances sharing one Redis. Topic t travels on channel prefix+t.
//
// All subscriptions share one Redis connection, read by one goroutine (a
// subConn: it confirms each SUBSCRIBE and notices losses). If that
// connection drops, go-redis reconnects and resubscribes on its own;
// payloads published in the meantime are lost for this instance, which the
// at-most-once contract allows (the resolvers fill gaps from the database).
// A peer that vanishes without closing the socket is noticed by the client's
// TCP keep-alive, after which the same reconnect happens. Once the new
// connection has resubscribed every channel, the broker tells the Hub
// (Resumer), so that local consumers catch up on what was lost.
//
// RedisClusterBroker is its counterpart for a Redis Cluster.
type RedisBroker struct {
	client *redis.Client
	prefix string
	conn   *subConn
	outage outage

	// done is closed by Close.
	done chan struct{}

	mu      sync.Mutex
	started bool
	closed  bool
}

// NewRedisBroker returns a RedisBroker using client, which the caller keeps
// owning and closes after the broker. Channel names are prefix+topic, so
// instances of one deployment must share the prefix (e.g. "jobchat:") and
// other deployments or tests on the same Redis must not.
func NewRedisBroker(client *redis.Client, prefix string) *RedisBroker {
	b := &RedisBroker{
		client: client,
		prefix: prefix,
		done:   make(chan struct{}),
	}
	// With no channels this does no I/O; the connection is dialled by the
	// read loop or the first Subscribe.
	b.conn = newSubConn(client.Subscribe(context.Background()), prefix, b.done, &b.outage)
	return b
}

// Publish sends payload with PUBLISH; it returns once Redis has accepted it.
func (b *RedisBroker) Publish(ctx context.Context, topic string, payload []byte) error {
	if b.isClosed() {
		return ErrBrokerClosed
	}
	if err := b.client.Publish(ctx, b.prefix+topic, payload).Err(); err != nil {
		return fmt.Errorf("redis publish: %w", err)
	}
	return nil
}

// PublishBatch sends every message in one pipelined round trip, in order,
// and reports how many Redis did not accept.
func (b *RedisBroker) PublishBatch(ctx context.Context, msgs []Message) (failed int) {
	if b.isClosed() {
		return len(msgs)
	}
	return publishPipelined(ctx, b.client, msgs, func(p redis.Pipeliner, m Message) {
		p.Publish(ctx, b.prefix+m.Topic, m.Payload)
	})
}

// publishPipelined sends one publish command per message (publish adds it
// to the pipeline) in one pipelined round trip per node, and reports how
// many Redis did not accept: all of them when the pipeline itself failed.
func publishPipelined(ctx context.Context, client redis.Cmdable, msgs []Message, publish func(redis.Pipeliner, Message)) (failed int) {
	cmds, err := client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range msgs {
			publish(p, m)
		}
		return nil
	})
	if len(cmds) != len(msgs) {
		if err != nil {
			return len(msgs)
		}
		return 0
	}
	for _, c := range cmds {
		if c.Err() != nil {
			failed++
		}
	}
	return failed
}

// OnResume sets what is called when the connection is back after a loss;
// see Resumer. It must be called before Start.
func (b *RedisBroker) OnResume(fn func(lostAt time.Time)) {
	b.outage.setFn(fn)
}

// Subscribe sends SUBSCRIBE and returns once Redis has processed it (see
// subConn for how it knows). On failure the channel is dropped again, so
// that go-redis will not resubscribe it after a reconnect.
func (b *RedisBroker) Subscribe(ctx context.Context, topic string) error {
	b.mu.Lock()
	closed, started := b.closed, b.started
	b.mu.Unlock()
	switch {
	case closed:
		return ErrBrokerClosed
	case !started:
		// Without the read loop no PONG would ever be seen.
		return errors.New("redis subscribe: broker not started")
	}
	channel := b.prefix + topic
	if err := b.conn.subscribe(ctx, channel); err != nil {
		if errors.Is(err, ErrBrokerClosed) {
			return err
		}
		return fmt.Errorf("redis subscribe %q: %w", channel, err)
	}
	return nil
}

// Unsubscribe sends UNSUBSCRIBE without waiting for Redis to confirm it: a
// payload that still arrives finds no local subscriber and is dropped.
func (b *RedisBroker) Unsubscribe(ctx context.Context, topic string) error {
	if b.isClosed() {
		return ErrBrokerClosed
	}
	if err := b.conn.unsubscribe(ctx, b.prefix+topic); err != nil {
		return fmt.Errorf("redis unsubscribe %q: %w", b.prefix+topic, err)
	}
	return nil
}

// Start launches the goroutine that reads the subscription connection and
// calls handle for each message, with the prefix removed from the channel.
func (b *RedisBroker) Start(handle func(topic string, payload []byte)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return ErrBrokerClosed
	case b.started:
		return errors.New("redis broker: already started")
	}
	b.started = true
	b.conn.start(handle)
	return nil
}

// Close stops the read loop and closes the subscription connection. It does
// not close the client, which belongs to the caller.
func (b *RedisBroker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.done)
	b.mu.Unlock()
	return b.conn.close()
}

func (b *RedisBroker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}
