package resolvers

import (
	"context"
	"fmt"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph/model"
)

// activityOf rebuilds an activity event from the wire, with everything
// its encodings read: the actor, and the message with its known state.
func activityOf(w *wireActivity) *model.ConversationActivity {
	a := &model.ConversationActivity{
		Kind: model.ActivityKind(w.Kind), ConversationID: w.ConversationID,
		Actor: w.Actor.profile(), At: w.At,
	}
	if w.UpToSeq != nil {
		n := int(*w.UpToSeq)
		a.UpToSeq = &n
	}
	if w.Message != nil {
		m := w.Message.message()
		m.Known = &db.MessageState{Read: w.Read, Delivered: w.Delivered, Sender: w.Message.Sender.profile()}
		for _, rc := range w.Reactions {
			m.Known.Reactions = append(m.Known.Reactions, &db.Reaction{MessageID: m.ID, ProfileID: rc.ProfileID, Emoji: rc.Emoji, CreatedAt: rc.At})
		}
		a.Message = m
	}
	return a
}

// isTyping reports the typing kinds, which are not delivered to the
// typer's own subscriptions: the rule is per user.
func isTyping(kind string) bool {
	return kind == string(model.ActivityKindTypingStarted) || kind == string(model.ActivityKindTypingStopped)
}

// dispatchActivity delivers a live activity event. Activity is not
// replayed: a follower with no room misses it (counted), and its app
// refetches on reconnect; the transport cuts off a client that stays
// stuck.
func (f *feed) dispatchActivity(fs *feeds, payload []byte) {
	w, err := decodeWireActivity(payload)
	if err != nil {
		f.log.Error().Err(err).Str("conversation_id", f.id).Msg("undecodable activity payload")
		return
	}
	f.dispatchLocal(fs, w)
}

// dispatchLocal delivers an activity event to this instance's followers:
// one received, or one a heal made up.
func (f *feed) dispatchLocal(fs *feeds, w *wireActivity) {
	a := activityOf(w)
	typing := isTyping(w.Kind)
	var enc encodings
	n := 0
	f.mu.Lock()
	defer f.mu.Unlock()
	for fl := range f.followers {
		if typing && fl.viewer == w.ActorID {
			continue
		}
		if !fl.offer(&enc, a) {
			fs.dropped.Add(1)
			continue
		}
		n++
	}
	fs.delivered.Add(uint64(n))
}

// maxPendingInbox bounds the inbox events waiting for one user's feed
// worker; past it the oldest are dropped, since each event carries the
// whole conversation as it is when it is loaded.
const maxPendingInbox = 256

// queueInbox hands an inbox event to the feed's worker, starting it if
// it is not running. Loading the conversation as the user sees it takes
// queries, which the broker's receiving path must not wait for; one worker
// per feed keeps the events in order.
func (f *feed) queueInbox(fs *feeds, payload []byte) {
	w, err := decodeWireInbox(payload)
	if err != nil {
		f.log.Error().Err(err).Str("profile_id", f.id).Msg("undecodable inbox payload")
		return
	}
	f.queueWire(fs, w)
}

// queueWire queues an inbox event for the feed's worker: one received, or
// one a sweep made up to heal an event that was lost.
func (f *feed) queueWire(fs *feeds, w *wireInbox) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.pending) >= maxPendingInbox {
		f.pending = f.pending[1:]
		fs.dropped.Add(1)
	}
	f.pending = append(f.pending, w)
	if !f.working {
		f.working = true
		go f.workInbox(fs)
	}
}

func (f *feed) workInbox(fs *feeds) {
	for {
		f.mu.Lock()
		if len(f.pending) == 0 {
			f.working = false
			f.mu.Unlock()
			return
		}
		w := f.pending[0]
		f.pending = f.pending[1:]
		followers := make([]*follower, 0, len(f.followers))
		for fl := range f.followers {
			followers = append(followers, fl)
		}
		f.mu.Unlock()
		if len(followers) == 0 {
			continue
		}
		ctx := followers[0].ctx
		ev, err := fs.r.inboxEvent(ctx, f.id, w)
		if err != nil {
			f.log.Warn().Err(err).Str("profile_id", f.id).Str("conversation_id", w.ConversationID).Msg("inbox event not delivered")
			continue
		}
		var enc encodings
		n := 0
		for _, fl := range followers {
			if !fl.offer(&enc, ev) {
				fs.dropped.Add(1)
				continue
			}
			n++
		}
		fs.delivered.Add(uint64(n))
	}
}

// inboxEvent loads what an inbox event shows its user: the conversation as
// they see it now, with its last message's state, and their unread total.
func (r *Resolver) inboxEvent(ctx context.Context, userID string, w *wireInbox) (*model.InboxEvent, error) {
	conv, err := db.SelectConversation(ctx, r.db, w.ConversationID)
	if err != nil {
		return nil, fmt.Errorf("load inbox conversation: %w", err)
	}
	if conv.Member(userID) == nil {
		return nil, fmt.Errorf("load inbox conversation: %s is not a participant", userID)
	}
	if m := conv.LastMessage; m != nil {
		if err := r.knowMessages(ctx, conv.ID, []*db.Message{m}); err != nil {
			return nil, fmt.Errorf("load inbox conversation: %w", err)
		}
	}
	total, err := db.UnreadTotal(ctx, r.db, userID)
	if err != nil {
		return nil, fmt.Errorf("load inbox unread total: %w", err)
	}
	return &model.InboxEvent{Kind: model.InboxEventKind(w.Kind), Conversation: conv, UnreadTotal: int(total)}, nil
}

// viewerOf is the user whose view a per-viewer field shows; empty for
// services and anonymous callers.
func viewerOf(ctx context.Context) string {
	if c, err := caller(ctx); err == nil && !c.Service {
		return c.ID
	}
	return ""
}
