package broadcast

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Hub. The zero value gives the defaults.
type Config struct {
	// BufferSize is how many payloads a subscriber may lag behind before it
	// is cut off. Zero (or less) means 256.
	BufferSize int
	// QueueSize bounds the payloads Enqueue holds for the broker. When it
	// is full Enqueue drops the payload (counted in Stats.QueueDropped) and
	// reports ErrQueueFull. Zero (or less) means 10,000.
	QueueSize int
	// PublishTimeout bounds one hand-over of queued payloads to the broker
	// (a batch of at most 256); what it could not publish in time counts
	// as failed. Zero (or less) means 2s.
	PublishTimeout time.Duration
}

const defaultBufferSize = 256

// Stats is a snapshot of a Hub, for health checks and benchmarks.
type Stats struct {
	// Topics counts topics with at least one local subscriber.
	Topics int
	// Subscribers counts open local subscriptions.
	Subscribers int
	// Delivered counts payloads placed in subscriber buffers.
	Delivered uint64
	// Dropped counts subscribers cut off for lagging. Each lost the payload
	// that did not fit and everything after it.
	Dropped uint64

	// Queued is how many payloads wait in the publish queue now, of
	// QueueSize at most.
	Queued, QueueSize int
	// Enqueued counts payloads Enqueue accepted; each is then published or
	// failed. Published counts payloads the broker accepted from the queue;
	// PublishFailed those it refused or did not take in time; QueueDropped
	// those Enqueue dropped because the queue was full.
	Enqueued, Published, PublishFailed, QueueDropped uint64
	// Resumes counts the times the broker's connection came back after a
	// loss (see Resumer).
	Resumes uint64
}

// Hub fans payloads out to local subscribers, one set per topic, and keeps
// the broker subscribed to exactly the topics that have local subscribers.
//
// Fan-out never waits for a subscriber: a subscriber whose buffer is full is
// cut off, so one slow WebSocket cannot stall the broker or its neighbours.
// Subscribers of a topic receive its payloads in the order the broker hands
// them over. All methods are safe for concurrent use.
type Hub struct {
	broker     Broker
	bufferSize int

	// mu guards the fields below, the topics' subs/pending/active, and every
	// subscriber channel: sends and closes both happen under it, so a send
	// can never meet a closed channel. It is never held across a broker
	// call, because the broker's receiving path needs it to deliver.
	mu        sync.Mutex
	topics    map[string]*topicState
	closed    bool
	delivered uint64
	dropped   uint64

	// releases tracks the goroutines started to unsubscribe topics left
	// empty by cut-offs, so that Close can wait for them.
	releases sync.WaitGroup

	queue *publishQueue

	// resumeMu guards onResume; resumes counts the broker's comebacks.
	resumeMu sync.Mutex
	onResume []func(lostAt time.Time)
	resumes  atomic.Uint64
}

type topicState struct {
	name string

	// gate serialises broker Subscribe/Unsubscribe for this topic and is
	// held across the broker call, so the two can never race (a topic
	// subscribed by one caller and unsubscribed by another's late call). It
	// is a channel so that waiting for it can honour a context.
	gate chan struct{}

	subs map[*Subscription]struct{}
	// pending counts Subscribe calls between looking the topic up and adding
	// their subscriber. While it is non-zero the topic must stay in the map
	// and stay subscribed.
	pending int
	// active reports that the broker is subscribed. It changes only under
	// gate.
	active bool
}

// NewHub returns a Hub delivering what broker receives. It calls
// broker.Start, so a broker serves a single Hub. Once NewHub succeeds the
// Hub owns the broker and closes it in Close; if it fails, closing the
// broker is still up to the caller.
func NewHub(broker Broker, cfg Config) (*Hub, error) {
	size := cfg.BufferSize
	if size <= 0 {
		size = defaultBufferSize
	}
	h := &Hub{
		broker:     broker,
		bufferSize: size,
		topics:     make(map[string]*topicState),
		queue:      newPublishQueue(cfg.QueueSize, cfg.PublishTimeout),
	}
	if r, ok := broker.(Resumer); ok {
		r.OnResume(h.resumed)
	}
	if err := broker.Start(h.deliver); err != nil {
		return nil, fmt.Errorf("start broker: %w", err)
	}
	go h.queue.run(broker)
	return h, nil
}

// Enqueue queues payload for topic's subscribers on every instance, this
// one included, and returns at once: a request never waits for the
// broker. One goroutine hands the queue to the broker in order. When the
// queue is full the payload is dropped and counted, and Enqueue reports
// ErrQueueFull; like a payload the broker loses, the consumers must heal
// that from their store. The Hub keeps payload: the caller must not
// modify it afterwards.
func (h *Hub) Enqueue(topic string, payload []byte) error {
	return h.queue.enqueue(Message{Topic: topic, Payload: payload})
}

// OnResume registers fn to be called each time the broker's connection is
// back after a loss, with the time it was lost: payloads published in
// between may be lost for this instance, so consumers catch up from their
// store. fn runs on the broker's receiving path and must not block.
// Brokers that cannot lose their connection (MemoryBroker) never call it.
func (h *Hub) OnResume(fn func(lostAt time.Time)) {
	h.resumeMu.Lock()
	defer h.resumeMu.Unlock()
	h.onResume = append(h.onResume, fn)
}

func (h *Hub) resumed(lostAt time.Time) {
	h.resumes.Add(1)
	h.resumeMu.Lock()
	fns := h.onResume
	h.resumeMu.Unlock()
	for _, fn := range fns {
		fn(lostAt)
	}
}

// Publish sends payload through the broker to the subscribers of topic on
// every instance, this one included, and waits for the broker to take it:
// for tools and tests; the server's requests use Enqueue. The caller may
// reuse payload once Publish returns.
func (h *Hub) Publish(ctx context.Context, topic string, payload []byte) error {
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return ErrHubClosed
	}
	if err := h.broker.Publish(ctx, topic, payload); err != nil {
		return fmt.Errorf("publish to %q: %w", topic, err)
	}
	return nil
}

// Subscribe returns a subscription to topic. It returns once the broker
// subscription is active, so anything published after it returns is
// received (within the broker's at-most-once guarantee).
func (h *Hub) Subscribe(ctx context.Context, topic string) (*Subscription, error) {
	return h.subscribe(ctx, topic, nil)
}

// SubscribeFunc is Subscribe for a subscriber that takes payloads in a
// callback instead of a channel: fn runs on the broker's receiving path, in
// the order payloads arrive, so it must not block; it is never cut off. fn
// may still run once or twice after Close returns. A topic with many
// subscribers is best served by one SubscribeFunc that fans out itself, so
// that the work per payload (decoding it, say) is done once.
func (h *Hub) SubscribeFunc(ctx context.Context, topic string, fn func(payload []byte)) (*Subscription, error) {
	if fn == nil {
		return nil, fmt.Errorf("subscribe to %q: nil func", topic)
	}
	return h.subscribe(ctx, topic, fn)
}

func (h *Hub) subscribe(ctx context.Context, topic string, fn func([]byte)) (*Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("subscribe to %q: %w", topic, err)
	}

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrHubClosed
	}
	t := h.topics[topic]
	if t == nil {
		t = &topicState{
			name: topic,
			gate: make(chan struct{}, 1),
			subs: make(map[*Subscription]struct{}),
		}
		h.topics[topic] = t
	}
	t.pending++
	h.mu.Unlock()

	select {
	case t.gate <- struct{}{}:
	case <-ctx.Done():
		h.mu.Lock()
		t.pending--
		// The gate holder may have been a release that kept the broker
		// subscription for us; nobody else would undo it now.
		if !h.closed && len(t.subs) == 0 && t.pending == 0 {
			h.releaseAsync(t)
		}
		h.mu.Unlock()
		return nil, fmt.Errorf("subscribe to %q: %w", topic, ctx.Err())
	}
	defer func() { <-t.gate }()

	h.mu.Lock()
	closed := h.closed
	needBroker := !t.active
	if closed {
		t.pending--
	}
	h.mu.Unlock()
	if closed {
		return nil, ErrHubClosed
	}

	if needBroker {
		if err := h.broker.Subscribe(ctx, topic); err != nil {
			h.mu.Lock()
			defer h.mu.Unlock()
			t.pending--
			if h.closed {
				return nil, ErrHubClosed
			}
			h.forget(t)
			return nil, fmt.Errorf("subscribe to %q: %w", topic, err)
		}
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	t.pending--
	if needBroker {
		t.active = true
	}
	if h.closed {
		return nil, ErrHubClosed
	}
	s := &Subscription{hub: h, topic: t, fn: fn}
	if fn == nil {
		s.ch = make(chan []byte, h.bufferSize)
	}
	t.subs[s] = struct{}{}
	return s, nil
}

// Stats returns a snapshot of the hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	q := h.queue
	st := Stats{Delivered: h.delivered, Dropped: h.dropped,
		Queued: len(q.ch), QueueSize: cap(q.ch),
		Enqueued: q.accepted.Load(), Published: q.published.Load(), PublishFailed: q.failed.Load(), QueueDropped: q.dropped.Load(),
		Resumes: h.resumes.Load()}
	for _, t := range h.topics {
		if n := len(t.subs); n > 0 {
			st.Topics++
			st.Subscribers += n
		}
	}
	return st
}

// Close hands what the publish queue holds to the broker (waiting at most
// PublishTimeout for it), ends every subscription with ErrHubClosed and
// closes the broker. It is idempotent; later calls return nil.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.mu.Unlock()

	// What is queued was committed: publish it while the broker is still
	// open, unless the broker is stuck; closing the broker below then makes
	// the rest fail fast.
	h.queue.stop()
	drained := time.NewTimer(h.queue.timeout)
	select {
	case <-h.queue.done:
	case <-drained.C:
	}
	drained.Stop()

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	for _, t := range h.topics {
		for s := range t.subs {
			h.end(s, ErrHubClosed)
		}
	}
	clear(h.topics)
	h.mu.Unlock()

	// Closing the broker first makes broker calls still in flight in
	// releases fail fast instead of running to their timeouts.
	err := h.broker.Close()
	h.releases.Wait()
	<-h.queue.done
	if err != nil {
		return fmt.Errorf("close broker: %w", err)
	}
	return nil
}

// deliver is the broker's handler. It runs on the broker's receiving path
// (for MemoryBroker, the publisher's goroutine), so it must not block.
func (h *Hub) deliver(topic string, payload []byte) {
	var fns []func([]byte)
	defer func() {
		// Outside the lock: callbacks do real work (decoding, encoding,
		// queueing to sockets), and other topics must not wait for it.
		for _, fn := range fns {
			fn(payload)
		}
	}()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	t := h.topics[topic]
	if t == nil {
		return
	}
	cut := false
	for s := range t.subs {
		if s.fn != nil {
			fns = append(fns, s.fn)
			h.delivered++
			continue
		}
		select {
		case s.ch <- payload:
			h.delivered++
		default:
			h.end(s, ErrSlowSubscriber)
			h.dropped++
			cut = true
		}
	}
	if cut && len(t.subs) == 0 && t.pending == 0 {
		// Unsubscribing here would block the receiving path on the broker
		// (and could deadlock against a Subscribe waiting for that path).
		h.releaseAsync(t)
	}
}

// end finishes s with err. h.mu must be held.
func (h *Hub) end(s *Subscription, err error) {
	delete(s.topic.subs, s)
	s.ended = true
	s.err = err
	if s.ch != nil {
		close(s.ch)
	}
}

// forget drops t from the map if nothing refers to it and the broker is not
// subscribed. h.mu and t.gate must be held.
func (h *Hub) forget(t *topicState) {
	if len(t.subs) == 0 && t.pending == 0 && !t.active && h.topics[t.name] == t {
		delete(h.topics, t.name)
	}
}

// releaseAsync runs release on its own goroutine. h.mu must be held and the
// hub open, which orders the WaitGroup Add before Close's Wait.
func (h *Hub) releaseAsync(t *topicState) {
	h.releases.Add(1)
	go func() {
		defer h.releases.Done()
		h.release(t)
	}()
}

// release unsubscribes the broker from t if t has no subscribers and no
// Subscribe is on its way, and then drops t from the map.
func (h *Hub) release(t *topicState) {
	t.gate <- struct{}{}
	defer func() { <-t.gate }()

	h.mu.Lock()
	if h.closed || len(t.subs) > 0 || t.pending > 0 {
		h.mu.Unlock()
		return
	}
	wasActive := t.active
	t.active = false
	h.mu.Unlock()

	if wasActive {
		// There is no caller to report a failure to. If it fails the broker
		// may stay subscribed; payloads that arrive find no subscriber and
		// are dropped, and the next Subscribe subscribes again, which is
		// harmless.
		_ = h.broker.Unsubscribe(context.Background(), t.name)
	}

	h.mu.Lock()
	h.forget(t)
	h.mu.Unlock()
}

// Subscription is one local subscriber's view of a topic.
type Subscription struct {
	hub   *Hub
	topic *topicState
	ch    chan []byte  // nil for SubscribeFunc
	fn    func([]byte) // nil for Subscribe

	// Guarded by hub.mu.
	ended bool
	err   error
}

// C returns the channel of payloads (nil for SubscribeFunc). Payloads are shared with the topic's
// other subscribers and must not be modified. The channel is closed exactly
// once, when the subscription ends; Err then says why.
func (s *Subscription) C() <-chan []byte {
	return s.ch
}

// Err reports why the subscription ended: nil if it is still open or was
// ended by Close, ErrSlowSubscriber if it was cut off for lagging, and
// ErrHubClosed if the hub was closed.
func (s *Subscription) Err() error {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.err
}

// Close ends the subscription, closing C. If it was the topic's last local
// subscriber, the broker is unsubscribed before Close returns. Close is
// idempotent and safe to call concurrently with delivery.
func (s *Subscription) Close() {
	h := s.hub
	h.mu.Lock()
	if s.ended {
		h.mu.Unlock()
		return
	}
	h.end(s, nil)
	last := len(s.topic.subs) == 0 && s.topic.pending == 0
	h.mu.Unlock()
	if last {
		h.release(s.topic)
	}
}
