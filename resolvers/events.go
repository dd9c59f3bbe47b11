package resolvers

import (
	"context"
	"encoding/json"
	"time"

	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph/model"
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
		s, err := r.senders.get(ctx, r, a.ActorID)
		if err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Str("profile_id", a.ActorID).Msg("activity without the actor's profile")
		}
		actor = s.profile()
	}
	w.Actor = toWireProfile(actor)
	if a.Message != nil {
		w.Message = toWireMessage(a.Message, nil)
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
	ps, err := db.SelectParticipants(ctx, r.db, conversationID)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("conversation_id", conversationID).Msg("inbox event not sent")
		return
	}
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ProfileID
	}
	r.publishInbox(ctx, kind, conversationID, ids...)
}

// publishJSON publishes v after a commit. The change is stored: publish it
// even if the caller has gone, but never hold the mutation's answer
// hostage to a stuck broker.
func (r *Resolver) publishJSON(ctx context.Context, topic string, v any) {
	payload, err := json.Marshal(v)
	if err == nil {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
		err = r.hub.Publish(pctx, topic, payload)
		cancel()
	}
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("topic", topic).Msg("broadcast failed")
	}
}
