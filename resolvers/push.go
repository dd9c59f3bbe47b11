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
	"github.com/jobchat/jobchat/internal/stream"
)

var _ stream.Pusher = (*Resolver)(nil)

// Push serves a messageAdded subscription without gqlgen's executor: no
// goroutine waits on it, and each message is encoded once per selection
// set for all of the instance's subscribers (see feeds). It declines
// whatever it cannot serve exactly as the executor would (other fields, a
// selection beyond the encoder) and whatever the executor would answer
// with an error (bad arguments, no access), so that clients see one
// behaviour either way.
func (r *Resolver) Push(ctx context.Context, rc *graphql.OperationContext, sink stream.Sink) (stop func(), ok bool) {
	roots := graphql.CollectFields(rc, rc.Operation.SelectionSet, []string{"Subscription"})
	if len(roots) != 1 || roots[0].Name != "messageAdded" {
		return nil, false
	}
	field := roots[0]
	args := field.ArgumentMap(rc.Variables)
	conv, ok := args["conversationId"].(string)
	if !ok {
		return nil, false
	}
	var afterSeq *int64
	if v, present := args["afterSeq"]; present && v != nil {
		n, ok := asInt64(v)
		if !ok || n < 0 {
			return nil, false
		}
		afterSeq = &n
	}
	c, err := userCaller(ctx, "messageAdded")
	if err != nil {
		return nil, false
	}
	if err := r.checkAccess(ctx, c, conv); err != nil {
		return nil, false
	}
	p, ok := r.plans.get(rc, field)
	if !ok {
		return nil, false
	}
	stop, err = r.feeds.follow(ctx, conv, afterSeq, p, sink)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("conversation_id", conv).Msg("push declined; the executor serves the subscription")
		return nil, false
	}
	return stop, true
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
	s  *eventSender
	at time.Time
}

const (
	senderTTL        = 30 * time.Second
	maxCachedSenders = 10000
)

func (sc *senderCache) get(ctx context.Context, r *Resolver, id string) (*eventSender, error) {
	now := time.Now()
	sc.mu.Lock()
	c, ok := sc.m[id]
	sc.mu.Unlock()
	if ok && now.Sub(c.at) < senderTTL {
		return c.s, nil
	}
	p, err := db.SelectProfile(ctx, r.db, id)
	if err != nil {
		return nil, fmt.Errorf("load sender: %w", err)
	}
	s := &eventSender{ID: p.ID, DisplayName: p.DisplayName, AvatarURL: p.AvatarURL}
	sc.mu.Lock()
	if sc.m == nil || len(sc.m) >= maxCachedSenders {
		sc.m = make(map[string]cachedSender)
	}
	sc.m[id] = cachedSender{s: s, at: now}
	sc.mu.Unlock()
	return s, nil
}

func (sc *senderCache) forget(ids ...string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, id := range ids {
		delete(sc.m, id)
	}
}
