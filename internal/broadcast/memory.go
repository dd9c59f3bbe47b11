package broadcast

import (
	"context"
	"errors"
	"slices"
	"sync"
)

// MemoryBroker is a Broker for a single process: Publish hands the payload
// straight to the handler, on the publisher's goroutine, if the topic is
// subscribed.
type MemoryBroker struct {
	mu      sync.Mutex
	topics  map[string]struct{}
	handle  func(topic string, payload []byte)
	started bool
	closed  bool
}

// NewMemoryBroker returns a MemoryBroker with no subscriptions.
func NewMemoryBroker() *MemoryBroker {
	return &MemoryBroker{topics: make(map[string]struct{})}
}

// Publish calls the handler synchronously when topic is subscribed, so the
// payload has been handed over by the time Publish returns.
func (b *MemoryBroker) Publish(ctx context.Context, topic string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrBrokerClosed
	}
	_, ok := b.topics[topic]
	handle := b.handle
	// The handler runs without b.mu: the Hub calls Subscribe while holding
	// its own locks, and the handler takes one of them.
	b.mu.Unlock()
	if !ok || handle == nil {
		return nil
	}
	// Receivers keep the slice after Publish returns, and the publisher may
	// reuse its buffer; a copy gives them the ownership RedisBroker gives.
	handle(topic, slices.Clone(payload))
	return nil
}

// Subscribe makes Publish deliver topic. It is active on return.
func (b *MemoryBroker) Subscribe(ctx context.Context, topic string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrBrokerClosed
	}
	b.topics[topic] = struct{}{}
	return nil
}

// Unsubscribe stops Publish delivering topic.
func (b *MemoryBroker) Unsubscribe(ctx context.Context, topic string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrBrokerClosed
	}
	delete(b.topics, topic)
	return nil
}

// Start sets the handler that Publish calls.
func (b *MemoryBroker) Start(handle func(topic string, payload []byte)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return ErrBrokerClosed
	case b.started:
		return errors.New("memory broker: already started")
	}
	b.started = true
	b.handle = handle
	return nil
}

// Close stops delivery. A Publish already past its subscription check may
// still call the handler once.
func (b *MemoryBroker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.handle = nil
	clear(b.topics)
	return nil
}
