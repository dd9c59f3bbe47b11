package resolvers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph/model"
	"github.com/jobchat/jobchat/internal/broadcast"
)

// activity is one conversationActivity event as the mutations describe it.
type activity struct {
	Kind           model.ActivityKind
	ConversationID string
	// ActorID is who acted; empty for the job-service. Typing events are
	// not delivered to the actor's own subscriptions.
	ActorID string
	// Actor is the actor's profile, when known (nil: loaded by ActorID).
	Actor   *db.Profile
	UpToSeq *int64
	// Message is the message as it is now (REACTIONS_CHANGED,
	// MESSAGE_EDITED, MESSAGE_DELETED), with all its reactions.
	Message   *db.Message
	Reactions []*db.Reaction
}

// publishActivity broadcasts a to the conversation's activity subscribers
// on every instance. Activity is live only: a failure is logged, and the
// apps' refetch on reconnect covers it.
func (r *Resolver) publishActivity(ctx context.Context, a activity) {
	w := wireActivity{V: wireVersion, Kind: string(a.Kind), ConversationID: a.ConversationID,
		ActorID: a.ActorID, UpToSeq: a.UpToSeq, At: time.Now().UTC()}
	actor := a.Actor
	if actor == nil && a.ActorID != "" {
		p, err := r.senders.get(ctx, r, a.ActorID)
		if err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Str("profile_id", a.ActorID).Msg("activity without the actor's profile")
		}
		actor = p
	}
	w.Actor = toWireProfile(actor)
	if m := a.Message; m != nil {
		// The receivers encode the message for every viewer without a
		// query: carry its state and sender, computed once here.
		var sender *db.Profile
		if m.SenderID != nil {
			var err error
			if sender, err = r.senders.get(ctx, r, *m.SenderID); err != nil {
				zerolog.Ctx(ctx).Warn().Err(err).Str("sender_id", *m.SenderID).Msg("activity without the sender's profile")
			}
		}
		w.Message = toWireMessage(m, sender)
		ps, err := db.SelectParticipants(ctx, r.db, m.ConversationID)
		if err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Str("conversation_id", m.ConversationID).Msg("activity not sent")
			return
		}
		st := stateOf(m, ps, nil)
		w.Read, w.Delivered = st.Read, st.Delivered
		for _, rc := range a.Reactions {
			w.Reactions = append(w.Reactions, wireReaction{ProfileID: rc.ProfileID, Emoji: rc.Emoji, At: rc.CreatedAt})
		}
	}
	r.publishJSON(ctx, activityTopic(a.ConversationID), w)
}

// publishInbox tells the inboxes of profileIDs that conversationID changed.
func (r *Resolver) publishInbox(ctx context.Context, kind model.InboxEventKind, conversationID string, profileIDs ...string) {
	w := wireInbox{V: wireVersion, Kind: string(kind), ConversationID: conversationID, At: time.Now().UTC()}
	for _, id := range profileIDs {
		r.publishJSON(ctx, inboxTopic(id), w)
	}
}

// publishInboxAll is publishInbox for every participant of the conversation.
func (r *Resolver) publishInboxAll(ctx context.Context, kind model.InboxEventKind, conversationID string) {
	ids, err := r.members.get(ctx, r, conversationID)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("conversation_id", conversationID).Msg("inbox event not sent")
		return
	}
	r.publishInbox(ctx, kind, conversationID, ids...)
}

// memberCache remembers who takes part in a conversation, for the inbox
// events of every send. A conversation's participants are set once, in
// the transaction that opens it, and never change, so nothing goes stale.
type memberCache struct {
	mu sync.Mutex
	m  map[string][]string
}

const maxCachedMembers = 100000

func (mc *memberCache) get(ctx context.Context, r *Resolver, conversationID string) ([]string, error) {
	mc.mu.Lock()
	ids, ok := mc.m[conversationID]
	mc.mu.Unlock()
	if ok {
		return ids, nil
	}
	ps, err := db.SelectParticipants(ctx, r.db, conversationID)
	if err != nil {
		return nil, fmt.Errorf("load participants: %w", err)
	}
	ids = make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ProfileID
	}
	if len(ids) == 0 {
		return ids, nil // not opened yet, or gone: don't remember
	}
	mc.mu.Lock()
	if mc.m == nil || len(mc.m) >= maxCachedMembers {
		mc.m = make(map[string][]string)
	}
	mc.m[conversationID] = ids
	mc.mu.Unlock()
	return ids, nil
}

// publishJSON queues v for broadcast after a commit and returns at once:
// a mutation's answer never waits for the broker (see broadcast's
// Enqueue). What the queue drops when full, or the broker loses, the
// feeds' sweep heals from the database (sweep.go); the hub counts it and
// the sweep loop logs it, so a full queue costs no log line per publish.
func (r *Resolver) publishJSON(ctx context.Context, topic string, v any) {
	payload, err := json.Marshal(v)
	if err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Str("topic", topic).Msg("broadcast not encoded")
		return
	}
	if err := r.hub.Enqueue(topic, payload); err != nil && !errors.Is(err, broadcast.ErrQueueFull) {
		zerolog.Ctx(ctx).Warn().Err(err).Str("topic", topic).Msg("broadcast not queued")
	}
}
