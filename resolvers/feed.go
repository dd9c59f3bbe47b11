package resolvers

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/internal/broadcast"
	"github.com/jobchat/jobchat/internal/stream"
)

// feeds is the one engine behind every subscription: messageAdded,
// conversationActivity and inboxUpdated, pushed or run by gqlgen's
// executor, over WebSocket or SSE. Each topic with local subscribers has
// one feed holding a single hub subscription however many followers it
// has; a payload is decoded once and encoded once per (selection, viewer
// class), and handed to every follower without blocking.
//
// A message feed also keeps each follower gap-free: a follower that
// starts from afterSeq, misses a seq or has no room for a message catches
// up from the database on a goroutine of its own, then rejoins the live
// feed. That is the only resume path; every messageAdded subscription
// goes through it.
type feeds struct {
	r *Resolver

	mu    sync.Mutex
	byKey map[string]*feed

	resyncs   atomic.Uint64
	dropped   atomic.Uint64
	delivered atomic.Uint64
	catchUps  atomic.Uint64
	sweeps    atomic.Uint64
	healed    atomic.Uint64

	// resume carries the broker's comebacks to the sweep loop (see
	// RunFeedSweep): the time the connection was lost. One pending is
	// enough; it is the earliest.
	resume chan time.Time
}

// FeedStats counts what the subscriptions did, for tests and benchmarks.
type FeedStats struct {
	// Feeds is the number of topics with local followers.
	Feeds int
	// Followers counts subscriptions registered with their feed, whose
	// hub subscription is active: events published from then on reach
	// them.
	Followers int
	// Resyncs counts message followers that fell behind (a gap in the
	// seqs, or a client too slow to take a message) and caught up from
	// the database.
	Resyncs uint64
	// Dropped counts live-only events (activity, inbox) a follower had no
	// room for.
	Dropped uint64

	// By kind ("messageAdded", "conversationActivity", "inboxUpdated"):
	// the followers and the feeds.
	FollowersByKind, FeedsByKind map[string]int
	// Conversations counts conversations with local followers of their
	// messages or activity.
	Conversations int
	// Delivered counts events handed to followers live (a message, an
	// activity or inbox event, once per follower).
	Delivered uint64
	// CatchUps counts catch-ups from the database: each message follower's
	// start, its resyncs, and every feed a sweep found behind.
	CatchUps uint64
	// Sweeps counts sweeps run; Healed the message feeds they found behind
	// the database and caught up.
	Sweeps, Healed uint64
}

// Observer is told what sends and the subscription engine measure;
// package metrics implements it. Its methods run on hot paths (once per
// send, per message received, per sweep; never per follower): they must be
// cheap and must not block.
type Observer interface {
	// Send: a new message was stored and queued for broadcast d after the
	// send began (refusals and retries answered from the store are not
	// counted).
	Send(d time.Duration)
	// Delivery: a live message was queued to this instance's followers d
	// after its timestamp, which the send's transaction sets just before
	// its commit.
	Delivery(d time.Duration)
	// Sweep: one sweep of the feeds took d.
	Sweep(d time.Duration)
}

// FeedStats returns a snapshot of the feeds' counters. It visits every
// feed: for scrapes and tests, not for hot paths.
func (r *Resolver) FeedStats() FeedStats {
	fs := r.feeds
	st := FeedStats{Resyncs: fs.resyncs.Load(), Dropped: fs.dropped.Load(),
		Delivered: fs.delivered.Load(), CatchUps: fs.catchUps.Load(),
		Sweeps: fs.sweeps.Load(), Healed: fs.healed.Load(),
		FollowersByKind: make(map[string]int, 3), FeedsByKind: make(map[string]int, 3)}
	for _, k := range []feedKind{messageFeed, activityFeed, inboxFeed} {
		st.FollowersByKind[k.String()], st.FeedsByKind[k.String()] = 0, 0
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	st.Feeds = len(fs.byKey)
	convs := make(map[string]struct{})
	for _, f := range fs.byKey {
		f.mu.Lock()
		n := len(f.followers)
		f.mu.Unlock()
		st.Followers += n
		st.FollowersByKind[f.kind.String()] += n
		st.FeedsByKind[f.kind.String()]++
		if f.kind != inboxFeed {
			convs[f.id] = struct{}{}
		}
	}
	st.Conversations = len(convs)
	return st
}

type feedKind uint8

const (
	messageFeed feedKind = iota
	activityFeed
	inboxFeed
)

// String is the kind's subscription field, as metrics label it.
func (k feedKind) String() string {
	switch k {
	case activityFeed:
		return "conversationActivity"
	case inboxFeed:
		return "inboxUpdated"
	}
	return "messageAdded"
}

type feed struct {
	kind  feedKind
	topic string
	// id is the conversation (messages, activity) or the user (inbox).
	id  string
	log *zerolog.Logger // the first follower's, for the hub callback

	// refs counts followers and follows on their way; guarded by feeds.mu.
	refs  int
	ready chan struct{} // closed once sub (or err) is set
	sub   *broadcast.Subscription
	err   error

	mu        sync.Mutex
	followers map[*follower]struct{}
	// top is the highest seq known to have reached the feed: received
	// live, or read by a follower's catch-up (message feeds). A sweep
	// compares it with the database.
	top int64
	// pending holds inbox events waiting for the feed's worker, which
	// runs only while there are some (inbox feeds).
	pending []*wireInbox
	working bool
}

// follower is one subscription. Exactly one of sink (pushed: the
// transport takes encoded bytes), vals (gqlgen's executor: it takes values
// and marshals them itself) and fn (a bridge such as the old chat socket,
// which encodes values its own way) is set.
type follower struct {
	ctx    context.Context // the connection's: caller and logger
	viewer string          // the caller's id
	enc    encoder
	sink   stream.Sink
	vals   *valueSink
	fn     func(v any) bool // must not block; false: no room
	end    func()           // with fn: the feed ended the subscription

	// last is the seq last sent (message feeds). While catching is set,
	// only the catch-up goroutine touches last; otherwise only dispatch
	// does, under feed.mu.
	last     int64
	catching bool
}

// subscribeTimeout bounds a feed's hub subscription, which may wait on Redis.
const subscribeTimeout = 5 * time.Second

// follow adds fl to the feed of kind for id, creating the feed (and its hub
// subscription) for the first follower. It returns once fl is registered,
// with the function that ends it. A message follower starts catching up
// at once: from afterSeq, or from the newest stored message when afterSeq
// is nil. ctx is the connection's.
func (fs *feeds) follow(ctx context.Context, kind feedKind, id string, afterSeq *int64, fl *follower) (stop func(), err error) {
	topic := feedTopic(kind, id)
	fs.mu.Lock()
	f := fs.byKey[topic]
	first := f == nil
	if first {
		f = &feed{kind: kind, topic: topic, id: id, ready: make(chan struct{}),
			followers: make(map[*follower]struct{}), log: zerolog.Ctx(ctx)}
		fs.byKey[topic] = f
	}
	f.refs++
	fs.mu.Unlock()

	if first {
		// Not the connection's context: others may come to wait on this
		// subscription while it is made.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), subscribeTimeout)
		f.sub, f.err = fs.r.hub.SubscribeFunc(sctx, topic, f.dispatcher(fs))
		cancel()
		close(f.ready)
	} else {
		select {
		case <-f.ready:
		case <-ctx.Done():
			fs.release(f)
			return nil, ctx.Err()
		}
	}
	if f.err != nil {
		fs.release(f)
		return nil, fmt.Errorf("subscribe to %s: %w", topic, f.err)
	}

	if kind == messageFeed {
		fl.catching = true
		if afterSeq != nil {
			fl.last = *afterSeq
		} else {
			// "From now" is read before the follower is registered: a
			// message committed in between is then read by its catch-up,
			// where one read after could fall between the two unseen.
			last, err := db.SelectLastSeq(ctx, fs.r.db, id)
			if err != nil {
				fs.release(f)
				return nil, fmt.Errorf("start subscription: %w", err)
			}
			fl.last = last
		}
	}
	f.mu.Lock()
	f.followers[fl] = struct{}{}
	f.mu.Unlock()
	if kind == messageFeed {
		go fs.catchUp(f, fl, false)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.followers, fl)
			f.mu.Unlock()
			fs.release(f)
		})
	}, nil
}

func feedTopic(kind feedKind, id string) string {
	switch kind {
	case activityFeed:
		return activityTopic(id)
	case inboxFeed:
		return inboxTopic(id)
	}
	return messageTopic(id)
}

// release drops a reference to f, and f itself with the last one.
func (fs *feeds) release(f *feed) {
	fs.mu.Lock()
	f.refs--
	last := f.refs == 0
	if last && fs.byKey[f.topic] == f {
		delete(fs.byKey, f.topic)
	}
	fs.mu.Unlock()
	if last && f.sub != nil {
		f.sub.Close()
	}
}

// dispatcher returns f's hub callback, which runs on the broker's
// receiving path and so never blocks nor queries.
func (f *feed) dispatcher(fs *feeds) func([]byte) {
	switch f.kind {
	case activityFeed:
		return func(payload []byte) { f.dispatchActivity(fs, payload) }
	case inboxFeed:
		return func(payload []byte) { f.queueInbox(fs, payload) }
	}
	return func(payload []byte) { f.dispatchMessage(fs, payload) }
}

// dispatchMessage delivers a live message to every follower that is live
// and expects it next. A follower that missed a seq, or whose client has
// no room, switches to catching up from the database.
func (f *feed) dispatchMessage(fs *feeds, payload []byte) {
	w, err := decodeWireMessage(payload)
	if err != nil {
		f.log.Error().Err(err).Str("conversation_id", f.id).Msg("undecodable broadcast payload")
		return
	}
	m := w.message()
	// A message is broadcast as it is committed, when no other
	// participant can have received or read it yet, and nobody reacted.
	m.Known = &db.MessageState{Sender: w.Sender.profile()}
	f.deliver(fs, m)
	if o := fs.r.cfg.Observer; o != nil {
		// Once per message, not per follower: the fan-out stays free of
		// clock reads. CreatedAt is stamped in the send's transaction.
		o.Delivery(time.Since(m.CreatedAt))
	}
}

// deliver hands m to every follower that is live and expects it next, the
// live path's and the sweep's common step. A follower that missed a seq,
// or whose client has no room, switches to catching up from the database.
func (f *feed) deliver(fs *feeds, m *db.Message) {
	var enc encodings
	n := 0
	f.mu.Lock()
	defer f.mu.Unlock()
	if m.Seq > f.top {
		f.top = m.Seq
	}
	for fl := range f.followers {
		if fl.catching || m.Seq <= fl.last {
			continue
		}
		if m.Seq > fl.last+1 || !fl.offer(&enc, m) {
			fl.catching = true
			fs.resyncs.Add(1)
			go fs.catchUp(f, fl, m.Seq <= fl.last+1)
			continue
		}
		fl.last = m.Seq
		n++
	}
	// One atomic add per message, not per follower.
	fs.delivered.Add(uint64(n))
}

// catchUp sends fl what it has missed from the database, then hands it back
// to dispatch. waitRoom says the client's queue was full. It ends early if
// the subscription ends or the database fails (the subscription then
// completes: the client resumes with afterSeq).
func (fs *feeds) catchUp(f *feed, fl *follower, waitRoom bool) {
	fs.catchUps.Add(1)
	ctx := fl.ctx
	if err := fs.sendMissed(ctx, f, fl, waitRoom); err != nil {
		if ctx.Err() == nil {
			zerolog.Ctx(ctx).Error().Err(err).Str("conversation_id", f.id).Msg("subscription ended")
			fl.complete()
		}
	}
}

func (fs *feeds) sendMissed(ctx context.Context, f *feed, fl *follower, waitRoom bool) error {
	if waitRoom && fl.waitRoom(ctx) != nil {
		return nil // the client is gone or cut off; nothing to report
	}
	for {
		ms, err := fs.storedAfter(ctx, f.id, fl.last)
		if err != nil {
			return fmt.Errorf("catch up: %w", err)
		}
		for _, m := range ms {
			if fl.put(ctx, m) != nil {
				return nil
			}
			fl.last = m.Seq
		}
		if len(ms) == replayBatch {
			continue
		}
		f.mu.Lock()
		if f.top <= fl.last {
			// Live followers behind what this catch-up read missed it
			// live (a lost publish): catch them up too, since the sweep
			// compares the database with top alone.
			for o := range f.followers {
				if o != fl && !o.catching && o.last < fl.last {
					o.catching = true
					fs.resyncs.Add(1)
					go fs.catchUp(f, o, false)
				}
			}
			// What the database had is the feed's too: a sweep must not
			// take a quiet conversation for one left behind.
			f.top = fl.last
			fl.catching = false
			f.mu.Unlock()
			return nil
		}
		f.mu.Unlock()
	}
}

// replayBatch is how many stored messages a catch-up reads at a time.
const replayBatch = 100

// storedAfter reads the next replayBatch stored messages of conv after seq,
// with their Known state, for a catch-up or a heal.
func (fs *feeds) storedAfter(ctx context.Context, conv string, seq int64) ([]*db.Message, error) {
	ms, err := db.SelectMessages(ctx, fs.r.db, db.MessageFilter{ConversationID: conv, AfterSeq: seq, Limit: replayBatch})
	if err != nil {
		return nil, err
	}
	if err := fs.r.knowMessages(ctx, conv, ms); err != nil {
		return nil, err
	}
	return ms, nil
}

// knowMessages sets the Known state of stored messages of one
// conversation: read pointers, reactions and senders, one query each for
// the whole batch.
func (r *Resolver) knowMessages(ctx context.Context, conv string, ms []*db.Message) error {
	if len(ms) == 0 {
		return nil
	}
	ps, err := db.SelectParticipants(ctx, r.db, conv)
	if err != nil {
		return err
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	rs, err := db.SelectReactions(ctx, r.db, ids)
	if err != nil {
		return err
	}
	profiles := make(map[string]*db.Profile, len(ps))
	for _, p := range ps {
		if p.Profile != nil {
			profiles[p.ProfileID] = p.Profile
		}
	}
	for _, m := range ms {
		m.Known = stateOf(m, ps, rs[m.ID])
		if m.SenderID != nil {
			m.Known.Sender = profiles[*m.SenderID]
		}
	}
	return nil
}

// stateOf computes a message's derived state from its conversation's
// participants and its reactions.
func stateOf(m *db.Message, ps []*db.Participant, rs []*db.Reaction) *db.MessageState {
	st := &db.MessageState{Read: true, Delivered: true, Reactions: rs}
	for _, p := range ps {
		if m.SenderID != nil && p.ProfileID == *m.SenderID {
			continue
		}
		if p.LastReadSeq < m.Seq {
			st.Read = false
		}
		if max(p.LastDeliveredSeq, p.LastReadSeq) < m.Seq {
			st.Delivered = false
		}
	}
	return st
}

// encodings remembers, within one dispatch, each encoding made, so that
// followers with the same selection (and share key: the viewer, or what
// the viewer sees, for encodings that depend on it) share it. Most feeds
// have one or two; a short slice beats a map.
type encodings struct {
	cache [4]encoded
	list  []encoded
}

type encoded struct {
	enc  encoder
	key  string
	body []byte
}

func (e *encodings) get(fl *follower, v any) []byte {
	key := fl.enc.shareKey(fl, v)
	if e.list == nil {
		e.list = e.cache[:0]
	}
	for _, x := range e.list {
		if x.enc == fl.enc && x.key == key {
			return x.body
		}
	}
	body := fl.enc.encode(fl.ctx, v)
	e.list = append(e.list, encoded{fl.enc, key, body})
	return body
}

// offer hands v to fl without blocking; false when there is no room.
func (fl *follower) offer(enc *encodings, v any) bool {
	if fl.fn != nil {
		return fl.fn(v)
	}
	if fl.vals != nil {
		return fl.vals.offer(v)
	}
	return fl.sink.Send(enc.get(fl, v))
}

// put hands v to fl, waiting for room; an error means the subscription
// is over.
func (fl *follower) put(ctx context.Context, v any) error {
	if fl.fn != nil {
		if !fl.fn(v) {
			return errSubscriptionOver
		}
		return nil
	}
	if fl.vals != nil {
		return fl.vals.put(ctx, v)
	}
	body := fl.enc.encode(fl.ctx, v)
	for !fl.sink.Send(body) {
		if err := fl.sink.WaitRoom(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (fl *follower) waitRoom(ctx context.Context) error {
	if fl.fn != nil {
		return errSubscriptionOver // it had no room: the bridge has cut it off
	}
	if fl.vals != nil {
		return nil // put waits
	}
	return fl.sink.WaitRoom(ctx)
}

func (fl *follower) complete() {
	if fl.fn != nil {
		if fl.end != nil {
			fl.end()
		}
		return
	}
	if fl.vals != nil {
		fl.vals.complete()
		return
	}
	fl.sink.Complete()
}

// valueSink is where a follower run by gqlgen's executor (SSE, or a
// WebSocket subscription the pusher declined) puts values: a small
// buffer, forwarded to the resolver's channel by the subscription's own
// goroutine, which closes that channel when the subscription completes.
type valueSink struct {
	in   chan any
	done chan struct{}
	once sync.Once
}

// newValueSink makes a sink for an executor-run subscription that may lag
// size events before its message feed resyncs it from the database (or,
// live-only feeds, drops what does not fit).
func newValueSink(size int) *valueSink {
	return &valueSink{in: make(chan any, size), done: make(chan struct{})}
}

func (s *valueSink) offer(v any) bool {
	select {
	case <-s.done:
		return false
	default:
	}
	select {
	case s.in <- v:
		return true
	default:
		return false
	}
}

func (s *valueSink) put(ctx context.Context, v any) error {
	select {
	case s.in <- v:
		return nil
	case <-s.done:
		return errSubscriptionOver
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *valueSink) complete() { s.once.Do(func() { close(s.done) }) }

var errSubscriptionOver = fmt.Errorf("subscription over")

// forward runs for an executor-run subscription: it moves values to out
// (typed for gqlgen) until ctx ends or the subscription completes, then
// stops the follower and closes out.
func forward[T any](ctx context.Context, s *valueSink, stop func(), out chan<- T) {
	defer close(out)
	defer stop()
	for {
		select {
		case v := <-s.in:
			select {
			case out <- v.(T):
			case <-ctx.Done():
				return
			}
		case <-s.done:
			return
		case <-ctx.Done():
			return
		}
	}
}
