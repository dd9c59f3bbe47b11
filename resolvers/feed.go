package resolvers

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/internal/broadcast"
	"github.com/jobchat/jobchat/internal/stream"
)

// event is a message as it travels on the broadcast bus: the stored row
// and, for user messages, the sender's profile as the publisher saw it, so
// that no receiving instance has to look it up per subscriber.
type event struct {
	*db.Message
	Sender *eventSender `json:"sender,omitempty"`
}

type eventSender struct {
	ID          string  `json:"id"`
	DisplayName string  `json:"displayName"`
	AvatarURL   *string `json:"avatarUrl,omitempty"`
}

func (s *eventSender) profile() *db.Profile {
	if s == nil {
		return nil
	}
	return &db.Profile{ID: s.ID, DisplayName: s.DisplayName, AvatarURL: s.AvatarURL}
}

// feeds serves pushed messageAdded subscriptions: one feed per conversation
// with local subscribers, each holding a single hub subscription however
// many followers it has, decoding each message once and encoding it once
// per plan.
type feeds struct {
	r *Resolver

	mu     sync.Mutex
	byConv map[string]*feed

	resyncs atomic.Uint64
}

// FeedStats counts what the pushed subscriptions did, for tests and
// benchmarks.
type FeedStats struct {
	// Feeds is the number of conversations with local followers.
	Feeds int
	// Resyncs counts followers that fell behind (a gap in the seqs, or a
	// client too slow to take a message) and caught up from the database.
	Resyncs uint64
}

// FeedStats returns a snapshot of the pushed subscriptions' counters.
func (r *Resolver) FeedStats() FeedStats {
	r.feeds.mu.Lock()
	defer r.feeds.mu.Unlock()
	return FeedStats{Feeds: len(r.feeds.byConv), Resyncs: r.feeds.resyncs.Load()}
}

type feed struct {
	conv string
	log  *zerolog.Logger // the first follower's, for the hub callback
	// refs counts followers and follows on their way; guarded by feeds.mu.
	refs  int
	ready chan struct{} // closed once sub (or err) is set
	sub   *broadcast.Subscription
	err   error

	mu        sync.Mutex
	top       int64 // the highest seq received live
	followers map[*follower]struct{}
}

// follower is one pushed subscription.
type follower struct {
	ctx  context.Context
	plan *plan
	sink stream.Sink

	// last is the seq last sent. While catching is set, only the catch-up
	// goroutine touches last; otherwise only dispatch does, under feed.mu.
	last     int64
	catching bool
}

// subscribeTimeout bounds a feed's hub subscription, which may wait on Redis.
const subscribeTimeout = 5 * time.Second

// follow starts a pushed subscription to conv from afterSeq (nil: from now
// on). It returns once the follower is registered, with the function that
// ends it; the replay runs on a goroutine of its own, which ends when the
// follower is live. ctx is the connection's.
func (fs *feeds) follow(ctx context.Context, conv string, afterSeq *int64, p *plan, sink stream.Sink) (stop func(), err error) {
	fs.mu.Lock()
	f := fs.byConv[conv]
	first := f == nil
	if first {
		f = &feed{conv: conv, ready: make(chan struct{}), followers: make(map[*follower]struct{}),
			log: zerolog.Ctx(ctx)}
		fs.byConv[conv] = f
	}
	f.refs++
	fs.mu.Unlock()

	if first {
		// Not the connection's context: others may come to wait on this
		// subscription while it is made.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), subscribeTimeout)
		f.sub, f.err = fs.r.hub.SubscribeFunc(sctx, conv, f.dispatch(fs))
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
		return nil, fmt.Errorf("subscribe to conversation: %w", f.err)
	}

	fl := &follower{ctx: ctx, plan: p, sink: sink, catching: true, last: -1}
	if afterSeq != nil {
		fl.last = *afterSeq
	}
	f.mu.Lock()
	f.followers[fl] = struct{}{}
	f.mu.Unlock()
	go fs.catchUp(f, fl, false)
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

// release drops a reference to f, and f itself with the last one.
func (fs *feeds) release(f *feed) {
	fs.mu.Lock()
	f.refs--
	last := f.refs == 0
	if last && fs.byConv[f.conv] == f {
		delete(fs.byConv, f.conv)
	}
	fs.mu.Unlock()
	if last && f.sub != nil {
		f.sub.Close()
	}
}

// dispatch returns f's hub callback. It runs on the broker's receiving path:
// it decodes the message once, encodes it once per plan, and queues it to
// every live follower without blocking. A follower that missed a seq, or
// whose client has no room, switches to catching up from the database.
func (f *feed) dispatch(fs *feeds) func([]byte) {
	return func(payload []byte) {
		var ev event
		if err := json.Unmarshal(payload, &ev); err != nil || ev.Message == nil {
			f.log.Error().Err(err).Str("conversation_id", f.conv).Msg("undecodable broadcast payload")
			return
		}
		it := item{m: ev.Message, sender: ev.Sender.profile()}
		// A message is broadcast as it is committed, when no other
		// participant can have read it yet.
		it.isRead = false

		// Most conversations have one plan (all clients run the same
		// query); a short slice beats a map.
		type encoded struct {
			p    *plan
			body []byte
		}
		var cache [4]encoded
		bodies := cache[:0]

		f.mu.Lock()
		defer f.mu.Unlock()
		if ev.Seq > f.top {
			f.top = ev.Seq
		}
		for fl := range f.followers {
			if fl.catching || ev.Seq <= fl.last {
				continue
			}
			if ev.Seq > fl.last+1 {
				fl.catching = true
				fs.resyncs.Add(1)
				go fs.catchUp(f, fl, false)
				continue
			}
			var body []byte
			for _, e := range bodies {
				if e.p == fl.plan {
					body = e.body
					break
				}
			}
			if body == nil {
				body = fl.plan.encode(fl.ctx, it)
				bodies = append(bodies, encoded{fl.plan, body})
			}
			if !fl.sink.Send(body) {
				fl.catching = true
				fs.resyncs.Add(1)
				go fs.catchUp(f, fl, true)
				continue
			}
			fl.last = ev.Seq
		}
	}
}

// catchUp sends fl what it has missed from the database, then hands it back
// to dispatch. waitRoom says the client's queue was full. It ends early if
// the subscription ends (the sink refuses) or the database fails (the
// subscription then completes: the client resumes with afterSeq).
func (fs *feeds) catchUp(f *feed, fl *follower, waitRoom bool) {
	ctx := fl.ctx
	if err := fs.sendMissed(ctx, f, fl, waitRoom); err != nil {
		if ctx.Err() == nil {
			zerolog.Ctx(ctx).Error().Err(err).Str("conversation_id", f.conv).Msg("subscription ended")
			fl.sink.Complete()
		}
	}
}

func (fs *feeds) sendMissed(ctx context.Context, f *feed, fl *follower, waitRoom bool) error {
	if waitRoom {
		if err := fl.sink.WaitRoom(ctx); err != nil {
			return nil // the client is gone or cut off; nothing to report
		}
	}
	if fl.last < 0 {
		last, err := db.SelectLastSeq(ctx, fs.r.db, f.conv)
		if err != nil {
			return fmt.Errorf("start subscription: %w", err)
		}
		fl.last = last
	}
	for {
		ms, err := db.SelectMessages(ctx, fs.r.db, db.MessageFilter{ConversationID: f.conv, AfterSeq: fl.last, Limit: replayBatch})
		if err != nil {
			return fmt.Errorf("catch up: %w", err)
		}
		items, err := fs.r.itemsFor(ctx, f.conv, ms, fl.plan)
		if err != nil {
			return fmt.Errorf("catch up: %w", err)
		}
		for _, it := range items {
			body := fl.plan.encode(ctx, it)
			for !fl.sink.Send(body) {
				if err := fl.sink.WaitRoom(ctx); err != nil {
					return nil
				}
			}
			fl.last = it.m.Seq
		}
		if len(ms) == replayBatch {
			continue
		}
		f.mu.Lock()
		if f.top <= fl.last {
			fl.catching = false
			f.mu.Unlock()
			return nil
		}
		f.mu.Unlock()
	}
}

// itemsFor loads what p needs to encode stored messages: read pointers for
// isRead, profiles for sender; one query each per batch.
func (r *Resolver) itemsFor(ctx context.Context, conv string, ms []*db.Message, p *plan) ([]item, error) {
	items := make([]item, len(ms))
	var ps []*db.Participant
	if p.needsRead && len(ms) > 0 {
		var err error
		if ps, err = db.SelectParticipants(ctx, r.db, conv); err != nil {
			return nil, err
		}
	}
	var profiles map[string]*db.Profile
	if p.needsSender {
		var ids []string
		for _, m := range ms {
			if m.SenderID != nil {
				ids = append(ids, *m.SenderID)
			}
		}
		var err error
		if profiles, err = db.SelectProfiles(ctx, r.db, ids); err != nil {
			return nil, err
		}
	}
	for i, m := range ms {
		items[i] = item{m: m}
		if p.needsRead {
			items[i].isRead = readByOthers(m, ps)
		}
		if m.SenderID != nil {
			items[i].sender = profiles[*m.SenderID]
		}
	}
	return items, nil
}
