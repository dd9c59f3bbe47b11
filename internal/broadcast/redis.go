package broadcast

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// confirmRetry is how long Subscribe waits for its PONG before pinging
// again. Extra PINGs cost little; a lost one would stall Subscribe until its
// context ends.
const confirmRetry = time.Second

// RedisBroker is a Broker over Redis PUBLISH/SUBSCRIBE, for several server
// instances sharing one Redis. Topic t travels on channel prefix+t.
//
// All subscriptions share one Redis connection, read by one goroutine. If
// that connection drops, go-redis reconnects and resubscribes on its own;
// payloads published in the meantime are lost for this instance, which the
// at-most-once contract allows (the resolvers fill gaps from the database).
// A peer that vanishes without closing the socket is noticed by the client's
// TCP keep-alive, after which the same reconnect happens. Once the new
// connection has resubscribed every channel, the broker tells the Hub
// (Resumer), so that local consumers catch up on what was lost.
type RedisBroker struct {
	client *redis.Client
	prefix string
	pubsub *redis.PubSub

	// done is closed by Close; stopped is closed when the read loop exits.
	done    chan struct{}
	stopped chan struct{}

	mu      sync.Mutex
	started bool
	closed  bool
	nextID  uint64
	waiting map[string]chan struct{} // PING payload -> closed when its PONG arrives

	// onResume is set before Start and read only by the read loop.
	onResume func(lostAt time.Time)
}

// resumeToken is the payload of the PING the read loop sends after losing
// its connection; its PONG says the new connection is subscribed again.
const resumeToken = "broadcast-resume"

// NewRedisBroker returns a RedisBroker using client, which the caller keeps
// owning and closes after the broker. Channel names are prefix+topic, so
// instances of one deployment must share the prefix (e.g. "jobchat:") and
// other deployments or tests on the same Redis must not.
func NewRedisBroker(client *redis.Client, prefix string) *RedisBroker {
	return &RedisBroker{
		client: client,
		prefix: prefix,
		// With no channels this does no I/O; the connection is dialled by
		// the read loop or the first Subscribe.
		pubsub:  client.Subscribe(context.Background()),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
		waiting: make(map[string]chan struct{}),
	}
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
	cmds, err := b.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range msgs {
			p.Publish(ctx, b.prefix+m.Topic, m.Payload)
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
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onResume = fn
}

// Subscribe sends SUBSCRIBE and returns once Redis has processed it.
//
// go-redis reports the SUBSCRIBE confirmation only to the reader, and one
// for a channel is indistinguishable from a late one (an abandoned earlier
// attempt, or go-redis resubscribing after a reconnect). So Subscribe
// follows SUBSCRIBE with a PING carrying a payload of its own: Redis answers
// commands on a connection in order, so when the read loop sees that PONG,
// the subscription is in place.
//
// On failure the channel is dropped again, so that go-redis will not
// resubscribe it after a reconnect.
func (b *RedisBroker) Subscribe(ctx context.Context, topic string) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrBrokerClosed
	}
	if !b.started {
		b.mu.Unlock()
		// Without the read loop no PONG would ever be seen.
		return errors.New("redis subscribe: broker not started")
	}
	b.nextID++
	token := "broadcast-subscribe-" + strconv.FormatUint(b.nextID, 10)
	confirmed := make(chan struct{})
	b.waiting[token] = confirmed
	b.mu.Unlock()

	defer func() {
		b.mu.Lock()
		delete(b.waiting, token)
		b.mu.Unlock()
	}()

	channel := b.prefix + topic
	err := b.pubsub.Subscribe(ctx, channel)
	if err == nil {
		err = b.pubsub.Ping(ctx, token)
	}
	if err == nil {
		err = b.awaitConfirmation(ctx, token, confirmed)
		if err == nil {
			return nil
		}
	}
	if b.isClosed() {
		return ErrBrokerClosed
	}
	// The caller's context may be what failed; the rollback must still be
	// sent. go-redis bounds it with the client's dial and write timeouts.
	_ = b.pubsub.Unsubscribe(context.WithoutCancel(ctx), channel)
	return fmt.Errorf("redis subscribe %q: %w", channel, err)
}

// awaitConfirmation waits for the PONG carrying token. The PING or its PONG
// is lost if the connection drops meanwhile, so the PING is repeated now
// and then. Any PONG with the token will do: on a new connection go-redis
// resubscribes every channel before sending anything else.
func (b *RedisBroker) awaitConfirmation(ctx context.Context, token string, confirmed <-chan struct{}) error {
	retry := time.NewTicker(confirmRetry)
	defer retry.Stop()
	for {
		select {
		case <-confirmed:
			return nil
		case <-b.done:
			return ErrBrokerClosed
		case <-ctx.Done():
			return ctx.Err()
		case <-retry.C:
			// A failed write makes go-redis reconnect; the next tick retries.
			_ = b.pubsub.Ping(ctx, token)
		}
	}
}

// Unsubscribe sends UNSUBSCRIBE without waiting for Redis to confirm it: a
// payload that still arrives finds no local subscriber and is dropped.
func (b *RedisBroker) Unsubscribe(ctx context.Context, topic string) error {
	if b.isClosed() {
		return ErrBrokerClosed
	}
	if err := b.pubsub.Unsubscribe(ctx, b.prefix+topic); err != nil {
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
	go b.read(handle, b.onResume)
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
	started := b.started
	close(b.done)
	b.mu.Unlock()

	// Closing the PubSub closes its connection, which ends the blocking read.
	err := b.pubsub.Close()
	if started {
		<-b.stopped
	}
	if err != nil {
		return fmt.Errorf("redis pubsub close: %w", err)
	}
	return nil
}

func (b *RedisBroker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// read is the one reader of the subscription connection. It must keep
// reading: Subscribe depends on it to see PONGs.
//
// After an error it pauses, then sends a PING of its own (resumeToken):
// go-redis dials a new connection for it and resubscribes every channel
// first, so when that PONG arrives every channel is live again and
// onResume runs.
func (b *RedisBroker) read(handle func(topic string, payload []byte), onResume func(lostAt time.Time)) {
	defer close(b.stopped)

	const (
		minPause = 50 * time.Millisecond
		maxPause = time.Second
	)
	pause := minPause
	var lostAt time.Time // zero while connected
	pinged := false      // the resume PING went out on this attempt
	for {
		if !lostAt.IsZero() && !pinged {
			ctx, cancel := context.WithTimeout(context.Background(), confirmRetry)
			// A failure here is the outage going on: Receive fails too, or
			// reconnects by itself, and either way the PING goes again on
			// the next turn; a new connection without it would never say
			// it is back.
			pinged = b.pubsub.Ping(ctx, resumeToken) == nil
			cancel()
		}
		// No deadline: a quiet connection is normal. Close unblocks the read.
		msg, err := b.pubsub.Receive(context.Background())
		if err != nil {
			select {
			case <-b.done:
				return
			default:
			}
			if errors.Is(err, redis.ErrClosed) {
				return
			}
			if lostAt.IsZero() {
				lostAt = time.Now()
			}
			pinged = false
			// go-redis has dropped the bad connection and dials a new one on
			// the next Receive; pausing keeps a dead server from being
			// hammered.
			t := time.NewTimer(pause)
			select {
			case <-b.done:
				t.Stop()
				return
			case <-t.C:
			}
			pause = min(2*pause, maxPause)
			continue
		}
		pause = minPause

		switch m := msg.(type) {
		case *redis.Message:
			topic, ok := strings.CutPrefix(m.Channel, b.prefix)
			if ok {
				handle(topic, []byte(m.Payload))
			}
		case *redis.Pong:
			if m.Payload == resumeToken {
				if !lostAt.IsZero() && onResume != nil {
					onResume(lostAt)
				}
				lostAt = time.Time{}
				continue
			}
			b.confirm(m.Payload)
		}
	}
}

func (b *RedisBroker) confirm(token string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ch, ok := b.waiting[token]; ok {
		close(ch)
		delete(b.waiting, token)
	}
}
