package resolvers

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/internal/auth"
	"github.com/jobchat/jobchat/internal/stream"
)

var _ stream.Pusher = (*Resolver)(nil)

// Push serves subscriptions without gqlgen's executor: no goroutine waits
// on them, and each event is encoded once per selection (and viewer, where
// the selection depends on it) for all of the instance's subscribers (see
// feeds). It declines whatever the executor would answer with an error
// (bad arguments, no access), so that clients see one behaviour either way:
// the executor path then runs the same checks and reports them.
func (r *Resolver) Push(ctx context.Context, rc *graphql.OperationContext, sink stream.Sink) (stop func(), ok bool) {
	roots := graphql.CollectFields(rc, rc.Operation.SelectionSet, []string{"Subscription"})
	if len(roots) != 1 {
		return nil, false
	}
	field := roots[0]
	sub, err := r.authorizeSubscription(ctx, field.Name, field.ArgumentMap(rc.Variables))
	if err != nil {
		return nil, false
	}
	fl := &follower{ctx: ctx, viewer: sub.caller.ID, enc: r.plans.get(r, rc, field), sink: sink}
	stop, err = r.feeds.follow(ctx, sub.kind, sub.id, sub.afterSeq, fl)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("op", field.Name).Msg("push declined; the executor serves the subscription")
		return nil, false
	}
	return stop, true
}

// subscription is what a subscription follows, once authorized.
type subscription struct {
	caller   auth.Caller
	kind     feedKind
	id       string
	afterSeq *int64
}

// authorizeSubscription is the one check of every subscription, pushed or
// run by the executor: who may follow what, and from where.
func (r *Resolver) authorizeSubscription(ctx context.Context, field string, args map[string]any) (subscription, error) {
	// Live events are for the people in the conversation; the job-service
	// reads history instead.
	c, err := userCaller(ctx, field)
	if err != nil {
		return subscription{}, err
	}
	sub := subscription{caller: c}
	switch field {
	case "inboxUpdated":
		sub.kind, sub.id = inboxFeed, c.ID
		return sub, nil
	case "messageAdded":
		sub.kind = messageFeed
		if v, present := args["afterSeq"]; present && v != nil {
			n, ok := asInt64(v)
			if !ok {
				return sub, badInput("afterSeq", "must be an integer")
			}
			if n < 0 {
				return sub, badInput("afterSeq", "must not be negative (got %d)", n)
			}
			sub.afterSeq = &n
		}
	case "conversationActivity":
		sub.kind = activityFeed
	default:
		return sub, fmt.Errorf("subscribe: unknown field %q", field)
	}
	conv, ok := args["conversationId"].(string)
	if !ok {
		return sub, badInput("conversationId", "must be an ID")
	}
	if err := checkID("conversationId", conv); err != nil {
		return sub, err
	}
	if err := r.checkAccess(ctx, c, conv); err != nil {
		return sub, err
	}
	sub.id = conv
	return sub, nil
}

// followValues serves a subscription run by gqlgen's executor: the same
// check and the same feed as a pushed one, with values instead of bytes.
func followValues[T any](r *Resolver, ctx context.Context, field string, args map[string]any) (<-chan T, error) {
	sub, err := r.authorizeSubscription(ctx, field, args)
	if err != nil {
		return nil, err
	}
	vals := newValueSink(r.cfg.ValueBuffer)
	fl := &follower{ctx: ctx, viewer: sub.caller.ID, vals: vals}
	stop, err := r.feeds.follow(ctx, sub.kind, sub.id, sub.afterSeq, fl)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	out := make(chan T)
	go forward(ctx, vals, stop, out)
	return out, nil
}

// asInt64 reads an Int argument as gqlgen hands it over: a literal is an
// int64, a variable whatever the transport decoded (json.Number here).
func asInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case float64:
		if n == float64(int64(n)) {
			return int64(n), true
		}
	}
	return 0, false
}

// senderCache keeps the profiles that publish attaches to broadcast
// messages, so that a busy sender costs one lookup per TTL rather than one
// per message. Profiles change only when the job-service reopens a
// conversation; this instance forgets the ones it refreshes at once, others
// within the TTL.
type senderCache struct {
	mu sync.Mutex
	m  map[string]cachedSender
}

type cachedSender struct {
	p  *db.Profile
	at time.Time
}

const (
	senderTTL        = 30 * time.Second
	maxCachedSenders = 10000
)

func (sc *senderCache) get(ctx context.Context, r *Resolver, id string) (*db.Profile, error) {
	now := time.Now()
	sc.mu.Lock()
	c, ok := sc.m[id]
	sc.mu.Unlock()
	if ok && now.Sub(c.at) < senderTTL {
		return c.p, nil
	}
	p, err := db.SelectProfile(ctx, r.db, id)
	if err != nil {
		return nil, fmt.Errorf("load sender: %w", err)
	}
	sc.mu.Lock()
	if sc.m == nil || len(sc.m) >= maxCachedSenders {
		sc.m = make(map[string]cachedSender)
	}
	sc.m[id] = cachedSender{p: p, at: now}
	sc.mu.Unlock()
	return p, nil
}

func (sc *senderCache) forget(ids ...string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, id := range ids {
		delete(sc.m, id)
	}
}
