package broadcast

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Message is one payload for one topic, as a batch hands them to a broker.
type Message struct {
	Topic   string
	Payload []byte
}

// BatchPublisher is a Broker that can hand several payloads over at once
// (Redis: one pipelined round trip). Payloads must be handed over in the
// order given, as consecutive Publish calls would be.
type BatchPublisher interface {
	// PublishBatch publishes every message and reports how many failed.
	PublishBatch(ctx context.Context, msgs []Message) (failed int)
}

const (
	defaultQueueSize      = 10000
	defaultPublishTimeout = 2 * time.Second
	// maxBatch bounds what one hand-over carries: enough to amortise a
	// Redis round trip, small enough that one stuck hand-over holds little.
	maxBatch = 256
)

// publishQueue takes payloads off the request path: Enqueue never waits,
// and one goroutine hands what is queued to the broker, in order, in
// batches. One goroutine keeps the broker's per-publisher order; batches
// keep it fast enough (a pipelined batch costs one round trip).
type publishQueue struct {
	// mu orders Enqueue's sends before stop's close of ch.
	mu      sync.RWMutex
	stopped bool
	ch      chan Message
	done    chan struct{} // closed when the worker has drained ch

	timeout   time.Duration
	accepted  atomic.Uint64
	published atomic.Uint64
	failed    atomic.Uint64
	dropped   atomic.Uint64
}

func newPublishQueue(size int, timeout time.Duration) *publishQueue {
	if size <= 0 {
		size = defaultQueueSize
	}
	if timeout <= 0 {
		timeout = defaultPublishTimeout
	}
	return &publishQueue{ch: make(chan Message, size), done: make(chan struct{}), timeout: timeout}
}

// enqueue queues m without waiting. It reports ErrQueueFull, counting the
// payload as dropped, when the queue is full, and ErrHubClosed once the
// queue is stopped.
func (q *publishQueue) enqueue(m Message) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.stopped {
		return ErrHubClosed
	}
	select {
	case q.ch <- m:
		q.accepted.Add(1)
		return nil
	default:
		q.dropped.Add(1)
		return ErrQueueFull
	}
}

// run hands queued payloads to b until the queue is stopped and drained.
func (q *publishQueue) run(b Broker) {
	defer close(q.done)
	batch := make([]Message, 0, maxBatch)
	for m := range q.ch {
		batch = append(batch[:0], m)
	fill:
		for len(batch) < maxBatch {
			select {
			case m, ok := <-q.ch:
				if !ok {
					break fill
				}
				batch = append(batch, m)
			default:
				break fill
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), q.timeout)
		failed := publishBatch(ctx, b, batch)
		cancel()
		q.failed.Add(uint64(failed))
		q.published.Add(uint64(len(batch) - failed))
		// The payloads are the broker's no longer; don't keep them alive.
		clear(batch)
	}
}

func publishBatch(ctx context.Context, b Broker, batch []Message) (failed int) {
	if bp, ok := b.(BatchPublisher); ok {
		return bp.PublishBatch(ctx, batch)
	}
	for i, m := range batch {
		if ctx.Err() != nil {
			// The batch's time is up: what is left fails at once rather
			// than wait for a stuck broker one payload at a time.
			return failed + len(batch) - i
		}
		if b.Publish(ctx, m.Topic, m.Payload) != nil {
			failed++
		}
	}
	return failed
}

// stop refuses further payloads and lets the worker finish what is queued.
func (q *publishQueue) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.stopped {
		q.stopped = true
		close(q.ch)
	}
}
