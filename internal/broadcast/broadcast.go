// Package broadcast carries encoded chat messages from the server instance
// that committed them to every instance with WebSocket subscribers for the
// same conversation, and fans them out to those local subscribers.
//
// A Hub does the local fan-out; a Broker moves payloads between instances.
// MemoryBroker serves a single process, RedisBroker serves several
// processes sharing one Redis, and RedisClusterBroker several sharing a
// Redis Cluster, over sharded pub/sub. Publishing goes through the Hub's bounded
// queue (Enqueue), so that no request waits for the broker.
//
// The package moves opaque bytes keyed by a topic (the conversation id). It
// may import only the standard library and the Redis client: it knows
// nothing of GraphQL or SQL. Delivery is at most once, so consumers that need
// every message must fill gaps from the database (the resolvers do, by seq).
package broadcast

import (
	"context"
	"errors"
	"time"
)

// Broker moves payloads between server instances.
//
// Guarantees:
//   - At most once: a payload reaches each subscribed instance once or not at
//     all. Nothing is persisted or replayed; payloads published while an
//     instance is not subscribed, or while its connection to the transport is
//     down, are lost for that instance.
//   - Payloads that one publisher publishes to one topic, each Publish
//     returning before the next starts, are handed over in that order.
//     Payloads from different publishers, or to different topics, have no
//     defined relative order.
//   - Once Subscribe returns nil, payloads published to the topic afterwards
//     reach this instance (barring the losses above).
//
// Subscribe and Unsubscribe for one topic must not be called concurrently;
// the Hub serialises them.
type Broker interface {
	// Publish sends payload to every instance subscribed to topic, including
	// this one. It must not keep payload after returning.
	Publish(ctx context.Context, topic string, payload []byte) error
	// Subscribe makes this instance receive topic; it returns once the
	// subscription is active.
	Subscribe(ctx context.Context, topic string) error
	// Unsubscribe stops this instance receiving topic.
	Unsubscribe(ctx context.Context, topic string) error
	// Start begins handing received payloads to handle, until Close. It may
	// be called once. handle must not block: it runs on the broker's
	// receiving path. Receivers share payload and must not modify it.
	Start(handle func(topic string, payload []byte)) error
	// Close stops delivery and releases the broker's resources. It is
	// idempotent.
	Close() error
}

// Resumer is implemented by a Broker whose connection can drop and come
// back (RedisBroker, RedisClusterBroker). The Hub registers itself before
// Start.
type Resumer interface {
	// OnResume sets fn, called on the broker's receiving path each time a
	// connection is back after a loss and every topic on it is subscribed
	// again, with the time the loss was noticed (with several connections,
	// the first loss of the outage). Payloads published in between may be
	// lost for this instance. fn must not block, and may be called from
	// several goroutines at once.
	OnResume(fn func(lostAt time.Time))
}

var (
	// ErrQueueFull is returned by Hub.Enqueue when the publish queue is
	// full; the payload was dropped.
	ErrQueueFull = errors.New("broadcast: publish queue full, payload dropped")
	// ErrSlowSubscriber is the Err of a subscription that was cut off
	// because its buffer was full when a payload arrived.
	ErrSlowSubscriber = errors.New("broadcast: subscriber too slow, cut off")
	// ErrHubClosed is returned by a closed Hub, and is the Err of
	// subscriptions ended by Hub.Close.
	ErrHubClosed = errors.New("broadcast: hub closed")
	// ErrBrokerClosed is returned by a Broker used after Close.
	ErrBrokerClosed = errors.New("broadcast: broker closed")
)

var (
	_ Broker         = (*MemoryBroker)(nil)
	_ Broker         = (*RedisBroker)(nil)
	_ BatchPublisher = (*RedisBroker)(nil)
	_ Resumer        = (*RedisBroker)(nil)
	_ Broker         = (*RedisClusterBroker)(nil)
	_ BatchPublisher = (*RedisClusterBroker)(nil)
	_ Resumer        = (*RedisClusterBroker)(nil)
)
