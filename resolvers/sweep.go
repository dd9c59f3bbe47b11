package resolvers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph/model"
)

// The sweep is how the feeds heal what the broker lost: a publish that
// failed (the broker was down, the queue was full), or never happened (the
// publisher died between its commit and its publish). Without it such a
// message would reach live subscribers only with the conversation's next
// one, which in a quiet conversation may be never.
//
// Every interval, one query reads the newest seq of every conversation with
// local message followers; a feed whose newest known seq is behind it
// loads what it misses, once for all its followers, and hands it to them
// exactly as the live path does. When the broker's connection comes back
// a sweep runs at once, and the inboxes and ticks of local subscribers are
// healed too (see resumed).

// sweepGrace is how old a conversation's change must be before a sweep
// takes a feed still short of it for a lost publish: younger ones are
// mostly on their way through the broker. A sweep after a broker's
// comeback waives it.
const sweepGrace = 500 * time.Millisecond

// sweepWorkers bounds the feeds healed at once, each a query or two.
const sweepWorkers = 8

// RunFeedSweep sweeps every interval, and at once whenever the broker's
// connection comes back, until ctx ends. The server runs it on a goroutine
// of its own.
func (r *Resolver) RunFeedSweep(ctx context.Context, every time.Duration) {
	fs := r.feeds
	log := zerolog.Ctx(ctx)
	t := time.NewTicker(every)
	defer t.Stop()
	var lastFailed, lastDropped uint64
	for {
		grace := sweepGrace
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case lostAt := <-fs.resume:
			grace = 0
			log.Info().Time("lost_at", lostAt).Msg("broker connection back; catching up from the database")
			if err := fs.healResumed(ctx, lostAt); err != nil && ctx.Err() == nil {
				log.Warn().Err(err).Msg("healing inboxes and ticks after the broker came back")
			}
		}
		if err := fs.sweep(ctx, grace); err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Msg("feed sweep")
		}
		// The broadcast package does not log; say here, once per interval
		// at most, that publishes are being lost (the sweep heals them).
		st := r.hub.Stats()
		if st.PublishFailed > lastFailed || st.QueueDropped > lastDropped {
			log.Warn().Uint64("failed", st.PublishFailed-lastFailed).Uint64("dropped", st.QueueDropped-lastDropped).
				Int("queued", st.Queued).Msg("broadcasts lost; the sweep heals them from the database")
		}
		lastFailed, lastDropped = st.PublishFailed, st.QueueDropped
	}
}

// resumed is the hub's OnResume callback: it runs on the broker's receiving
// path, so it only tells the sweep loop.
func (fs *feeds) resumed(lostAt time.Time) {
	select {
	case fs.resume <- lostAt:
	default: // one is pending, from an earlier loss: it covers this one
	}
}

// messageFeeds returns the message feeds whose hub subscription is active.
func (fs *feeds) messageFeeds() []*feed {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := make([]*feed, 0, len(fs.byKey))
	for _, f := range fs.byKey {
		if f.kind != messageFeed {
			continue
		}
		select {
		case <-f.ready:
			if f.err == nil {
				out = append(out, f)
			}
		default: // still subscribing: its followers catch up as they start
		}
	}
	return out
}

// sweep compares every message feed with the database, in one query, and
// catches up the feeds that are behind by changes older than grace.
func (fs *feeds) sweep(ctx context.Context, grace time.Duration) error {
	start := time.Now()
	defer func() {
		fs.sweeps.Add(1)
		if o := fs.r.cfg.Observer; o != nil {
			o.Sweep(time.Since(start))
		}
	}()
	list := fs.messageFeeds()
	if len(list) == 0 {
		return nil
	}
	at := make([]db.SeqPosition, len(list))
	byID := make(map[string]*feed, len(list))
	for i, f := range list {
		f.mu.Lock()
		at[i] = db.SeqPosition{ConversationID: f.id, Seq: f.top}
		f.mu.Unlock()
		byID[f.id] = f
	}
	// A change at the very moment of the query is on its way unless the
	// grace is zero; a little slack for clocks between instances.
	before := start.Add(-grace)
	if grace == 0 {
		before = start.Add(time.Minute)
	}
	seqs, err := db.SelectConversationsBehind(ctx, fs.r.db, at, before)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	var behind []*feed
	var from []int64
	for _, s := range seqs {
		f := byID[s.ID]
		if f == nil {
			continue
		}
		f.mu.Lock()
		top := f.top
		f.mu.Unlock()
		// The feed may have caught up while the query ran.
		if s.LastSeq > top {
			behind = append(behind, f)
			from = append(from, top)
		}
	}
	return fs.healAll(ctx, behind, from)
}

// healAll catches up the feeds behind, a few at a time.
func (fs *feeds) healAll(ctx context.Context, behind []*feed, from []int64) error {
	if len(behind) == 0 {
		return nil
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, sweepWorkers)
	)
	for i, f := range behind {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fs.heal(ctx, f, from[i]); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

// heal hands f's followers the messages after seq from the database, as if
// they had arrived live, and tells the local inboxes of the conversation's
// participants: their MESSAGE_ADDED was lost with the message.
func (fs *feeds) heal(ctx context.Context, f *feed, after int64) error {
	fs.healed.Add(1)
	fs.catchUps.Add(1)
	for {
		ms, err := fs.storedAfter(ctx, f.id, after)
		if err != nil {
			return fmt.Errorf("heal conversation %s: %w", f.id, err)
		}
		for _, m := range ms {
			f.deliver(fs, m)
			after = m.Seq
		}
		if len(ms) < replayBatch {
			break
		}
	}
	members, err := fs.r.members.get(ctx, fs.r, f.id)
	if err != nil {
		return fmt.Errorf("heal conversation %s: %w", f.id, err)
	}
	w := &wireInbox{V: wireVersion, Kind: string(model.InboxEventKindMessageAdded), ConversationID: f.id, At: time.Now().UTC()}
	for _, id := range members {
		if in := fs.local(inboxFeed, id); in != nil {
			in.queueWire(fs, w)
		}
	}
	return nil
}

// local returns the feed of kind for id on this instance, if it has one.
func (fs *feeds) local(kind feedKind, id string) *feed {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.byKey[feedTopic(kind, id)]
	if f == nil {
		return nil
	}
	select {
	case <-f.ready:
		if f.err == nil {
			return f
		}
	default:
	}
	return nil
}

// healResumed heals, after a broker outage that began at lostAt, what no
// sweep of the message feeds can see: each local inbox gets
// CONVERSATION_UPDATED for its user's conversations that changed since
// (one query for all of them), and each local activity feed gets its
// participants' read and delivered pointers as READ and DELIVERED events
// (one query), which carry no more than the truth again. Typing, reactions
// and edits lost in the outage are left to the apps' refetch rule (see the
// README's Operations section).
func (fs *feeds) healResumed(ctx context.Context, lostAt time.Time) error {
	// Clocks of instances differ a little; a second more is cheap.
	since := lostAt.Add(-time.Second)
	var users, convs []string
	fs.mu.Lock()
	for _, f := range fs.byKey {
		switch f.kind {
		case inboxFeed:
			users = append(users, f.id)
		case activityFeed:
			convs = append(convs, f.id)
		}
	}
	fs.mu.Unlock()

	changed, err := db.SelectConversationsChangedSince(ctx, fs.r.db, users, since)
	if err != nil {
		return fmt.Errorf("heal inboxes: %w", err)
	}
	now := time.Now().UTC()
	for _, pc := range changed {
		if in := fs.local(inboxFeed, pc.ProfileID); in != nil {
			in.queueWire(fs, &wireInbox{V: wireVersion, Kind: string(model.InboxEventKindConversationUpdated), ConversationID: pc.ConversationID, At: now})
		}
	}

	ps, err := db.SelectParticipantsOf(ctx, fs.r.db, convs)
	if err != nil {
		return fmt.Errorf("heal ticks: %w", err)
	}
	for _, p := range ps {
		f := fs.local(activityFeed, p.ConversationID)
		if f == nil {
			continue
		}
		read, delivered := p.LastReadSeq, max(p.LastDeliveredSeq, p.LastReadSeq)
		for _, ev := range []struct {
			kind model.ActivityKind
			seq  *int64
		}{{model.ActivityKindDelivered, &delivered}, {model.ActivityKindRead, &read}} {
			if *ev.seq == 0 {
				continue
			}
			f.dispatchLocal(fs, &wireActivity{V: wireVersion, Kind: string(ev.kind), ConversationID: p.ConversationID,
				ActorID: p.ProfileID, Actor: toWireProfile(p.Profile), UpToSeq: ev.seq, At: now})
		}
	}
	return nil
}
