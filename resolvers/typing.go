package resolvers

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/graph/model"
)

// Typing indicators. Nothing about typing is stored: the state lives in
// memory on the instance that took the setTyping call, one entry per
// (conversation, user) with one timer, and turns into TYPING_STARTED and
// TYPING_STOPPED activity only when it changes, so that an app calling
// setTyping(true) on every keystroke costs one broadcast, not one per key.
//
// The state is per instance. A renewal that lands on another instance
// (HTTP calls are balanced per request) starts a second entry there, which
// repeats TYPING_STARTED, and the first instance may then send
// TYPING_STOPPED at its TTL while the user is still typing; the next
// renewal on it starts again. Apps treat both events idempotently, as
// "typing now" and "not typing now". A shared store would avoid both at
// the cost of a round trip per keystroke.

const (
	// maxTypers bounds the tracker: past it, new typers are ignored (their
	// setTyping still succeeds) so that a flood of calls cannot grow the
	// map without end. A hundred thousand people typing at once on one
	// instance is far past what it serves.
	maxTypers = 100_000
	// typingStripes is how many locks order the broadcasts (see order).
	typingStripes = 64
)

// typingKey is one user typing in one conversation.
type typingKey struct {
	conversationID string
	profileID      string
}

// typingEntry is an active typer: its timer fires at expires unless a
// renewal moves it.
type typingEntry struct {
	timer   *time.Timer
	expires time.Time
}

// typingChange is what start did.
type typingChange int

const (
	typingStarted typingChange = iota // a new typer: TYPING_STARTED was sent
	typingRenewed                     // already typing: nothing was sent
	typingIgnored                     // full or closed: nothing was kept or sent
)

// typingTracker is the typing state machine of one instance. Its methods
// are safe for concurrent use. It starts no goroutine of its own: each
// active typer has a timer, whose function runs only when it fires.
// Close it at shutdown.
type typingTracker struct {
	ttl   time.Duration
	limit int
	// emit broadcasts a change. It is called without mu, so that a slow
	// broker never holds up renewals, but with the key's order lock.
	emit func(ctx context.Context, k typingKey, kind model.ActivityKind)

	// order serializes, per key, a change of state with its broadcast, so
	// that a TYPING_STOPPED never overtakes the TYPING_STARTED before it
	// (or the other way round) when calls from two devices, or a call and
	// the timer, race. The locks are striped by key: a slow publish holds
	// up the changes of that stripe only.
	order [typingStripes]sync.Mutex
	seed  maphash.Seed

	mu     sync.Mutex
	active map[typingKey]*typingEntry
	closed bool

	// ignoredLog keeps a full tracker from flooding the log.
	ignoredLog zerolog.BurstSampler
}

func newTypingTracker(ttl time.Duration, limit int, emit func(ctx context.Context, k typingKey, kind model.ActivityKind)) *typingTracker {
	return &typingTracker{
		ttl: ttl, limit: limit, emit: emit,
		seed:       maphash.MakeSeed(),
		active:     make(map[typingKey]*typingEntry),
		ignoredLog: zerolog.BurstSampler{Burst: 1, Period: time.Minute},
	}
}

func (t *typingTracker) stripe(k typingKey) *sync.Mutex {
	return &t.order[maphash.Comparable(t.seed, k)%typingStripes]
}

// start makes k a typer for the TTL from now, broadcasting
// TYPING_STARTED if it was not one already.
func (t *typingTracker) start(ctx context.Context, k typingKey) typingChange {
	// Renewals are the common call and change nothing visible: they take
	// only mu.
	if t.renew(k) {
		return typingRenewed
	}
	o := t.stripe(k)
	o.Lock()
	defer o.Unlock()
	t.mu.Lock()
	if e := t.active[k]; e != nil {
		t.renewLocked(e)
		t.mu.Unlock()
		return typingRenewed
	}
	if t.closed || len(t.active) >= t.limit {
		t.mu.Unlock()
		return typingIgnored
	}
	e := &typingEntry{expires: time.Now().Add(t.ttl)}
	// The function cannot run ahead of this call's broadcast: it needs the
	// order lock, held until start returns.
	e.timer = time.AfterFunc(t.ttl, func() { t.expire(k, e) })
	t.active[k] = e
	t.mu.Unlock()
	t.emit(ctx, k, model.ActivityKindTypingStarted)
	return typingStarted
}

// renew moves the expiry of an active typer; false when k is not one.
func (t *typingTracker) renew(k typingKey) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.active[k]
	if e == nil {
		return false
	}
	t.renewLocked(e)
	return true
}

func (t *typingTracker) renewLocked(e *typingEntry) {
	e.expires = time.Now().Add(t.ttl)
	// If the timer has fired already, its function is waiting for a lock;
	// it will see the new expiry and leave the entry to this new firing.
	e.timer.Reset(t.ttl)
}

// stop ends k's typing, broadcasting TYPING_STOPPED if it was typing.
func (t *typingTracker) stop(ctx context.Context, k typingKey) bool {
	// Most calls (every send) come from someone not typing.
	t.mu.Lock()
	_, typing := t.active[k]
	t.mu.Unlock()
	if !typing {
		return false
	}
	o := t.stripe(k)
	o.Lock()
	defer o.Unlock()
	t.mu.Lock()
	e := t.active[k]
	if e == nil {
		t.mu.Unlock()
		return false
	}
	delete(t.active, k)
	e.timer.Stop()
	t.mu.Unlock()
	t.emit(ctx, k, model.ActivityKindTypingStopped)
	return true
}

// expire is e's timer function: it ends the typing unless e was renewed,
// stopped or replaced since the timer was set.
func (t *typingTracker) expire(k typingKey, e *typingEntry) {
	o := t.stripe(k)
	o.Lock()
	defer o.Unlock()
	t.mu.Lock()
	if t.active[k] != e || time.Now().Before(e.expires) {
		t.mu.Unlock()
		return
	}
	delete(t.active, k)
	t.mu.Unlock()
	// No request is behind a timer: this is the server's own event.
	t.emit(context.Background(), k, model.ActivityKindTypingStopped)
}

// typing reports whether k is an active typer.
func (t *typingTracker) typing(k typingKey) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.active[k] != nil
}

// Close stops every timer and ignores later starts. It broadcasts
// TYPING_STOPPED for each typer still active, until ctx is done, so that
// subscribers on other instances are not left seeing someone type who
// never will again on this one; call it before the hub closes. Later
// calls do nothing.
func (t *typingTracker) Close(ctx context.Context) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	keys := make([]typingKey, 0, len(t.active))
	for k, e := range t.active {
		e.timer.Stop()
		keys = append(keys, k)
	}
	clear(t.active)
	t.mu.Unlock()
	for _, k := range keys {
		if ctx.Err() != nil {
			return
		}
		o := t.stripe(k)
		o.Lock()
		t.emit(ctx, k, model.ActivityKindTypingStopped)
		o.Unlock()
	}
}

// CloseTyping ends the typing tracker at shutdown: see typingTracker.Close.
// Call it after the server stops taking requests and before the hub and
// the database close, since its last broadcasts need both (the actor's
// profile may be looked up); ctx bounds how long they may take.
func (r *Resolver) CloseTyping(ctx context.Context) {
	r.typing.Close(ctx)
}

// setTyping is the setTyping mutation: users in an open conversation only.
func (r *Resolver) setTyping(ctx context.Context, conversationID string, typing bool) (bool, error) {
	c, err := userCaller(ctx, "setTyping")
	if err != nil {
		return false, err
	}
	// Before the access check, which may query: a flood is refused at
	// the cost of one bucket check.
	if ok, wait := r.allow(ctx, r.typings, "typing", c.ID); !ok {
		return false, &rateLimitedError{RetryAfter: wait, Doing: "setting typing"}
	}
	if err := r.checkAccess(ctx, c, conversationID); err != nil {
		return false, err
	}
	if err := r.requireOpen(ctx, conversationID); err != nil {
		return false, err
	}
	k := typingKey{conversationID: conversationID, profileID: c.ID}
	if !typing {
		r.typing.stop(ctx, k)
		return true, nil
	}
	if r.typing.start(ctx, k) == typingIgnored {
		// The indicator is a courtesy: the call still succeeds.
		log := zerolog.Ctx(ctx).Sample(&r.typing.ignoredLog)
		log.Warn().Str("conversation_id", conversationID).Str("user_id", c.ID).Int("limit", r.typing.limit).
			Msg("typing tracker full or closed: setTyping ignored")
	}
	return true, nil
}

// typingSent ends userID's typing in the conversation once they sent a
// message there: the message is what they were typing.
func (r *Resolver) typingSent(ctx context.Context, conversationID, userID string) {
	r.typing.stop(ctx, typingKey{conversationID: conversationID, profileID: userID})
}

// publishTyping is the tracker's broadcast. The actor is set so that the
// typer's own subscriptions can leave it out.
func (r *Resolver) publishTyping(ctx context.Context, k typingKey, kind model.ActivityKind) {
	r.publishActivity(ctx, activity{Kind: kind, ConversationID: k.conversationID, ActorID: k.profileID})
}
