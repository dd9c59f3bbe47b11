package resolvers

import (
	"context"
	"fmt"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph/model"
	"github.com/jobchat/jobchat/internal/auth"
)

// Delivery and read ticks. Each participant has two pointers, delivered
// and read; both only move forward, and a read moves delivery with it.
// A send moves the sender's own pointers silently (db.PostMessage): the
// message itself is the news. Moves by markRead and markDelivered are
// broadcast after they commit, and only when a pointer actually moved, so
// that apps that acknowledge every message they get cost nothing when
// nothing changed.

// messageStatus is m's own state, the same for every viewer: READ when
// every participant but the sender has read it (both, for a SYSTEM
// message), else DELIVERED when every one of them has received it, else
// SENT. READ is exactly isRead (readByOthers), so the two never disagree.
func messageStatus(m *db.Message, ps []*db.Participant) model.MessageStatus {
	return statusOf(stateOf(m, ps, nil))
}

// messageStatusOf resolves Message.status from the response's participants,
// which the subscription engine seeds for pushed events.
func (r *Resolver) messageStatusOf(ctx context.Context, m *db.Message) (model.MessageStatus, error) {
	ps, err := cacheFrom(ctx).loadParticipants(ctx, r.db, m.ConversationID)
	if err != nil {
		return "", fmt.Errorf("load delivery pointers: %w", err)
	}
	return messageStatus(m, ps), nil
}

// markRead moves the caller's read pointer (and delivered pointer) up to
// upToSeq, or to the end when it is nil.
func (r *Resolver) markRead(ctx context.Context, conversationID string, upToSeq *int) (*db.Conversation, error) {
	c, err := userCaller(ctx, "markRead")
	if err != nil {
		return nil, err
	}
	if upToSeq != nil && *upToSeq < 0 {
		return nil, badInput("upToSeq", "must not be negative (got %d)", *upToSeq)
	}
	var want *int64
	if upToSeq != nil {
		seq := int64(*upToSeq)
		want = &seq
	}
	target, err := r.pointerTarget(ctx, c, conversationID, want, "mark read")
	if err != nil {
		return nil, err
	}
	moved, err := db.MarkRead(ctx, r.db, conversationID, c.ID, target)
	if err != nil {
		return nil, fmt.Errorf("mark read: %w", err)
	}
	if moved {
		// One READ: it implies delivery, so no DELIVERED goes with it. Only
		// the reader's inbox changes: the other side's unread count does
		// not depend on it.
		r.publishActivity(ctx, activity{Kind: model.ActivityKindRead, ConversationID: conversationID, ActorID: c.ID, UpToSeq: &target})
		r.publishInbox(ctx, model.InboxEventKindRead, conversationID, c.ID)
	}
	return r.loadConversation(ctx, c, conversationID)
}

// markDelivered moves the caller's delivered pointer up to upToSeq. It
// works on closed conversations too: receiving is not writing.
func (r *Resolver) markDelivered(ctx context.Context, conversationID string, upToSeq int) (*db.Conversation, error) {
	c, err := userCaller(ctx, "markDelivered")
	if err != nil {
		return nil, err
	}
	if upToSeq < 0 {
		return nil, badInput("upToSeq", "must not be negative (got %d)", upToSeq)
	}
	want := int64(upToSeq)
	target, err := r.pointerTarget(ctx, c, conversationID, &want, "mark delivered")
	if err != nil {
		return nil, err
	}
	moved, err := db.MarkDelivered(ctx, r.db, conversationID, c.ID, target)
	if err != nil {
		return nil, fmt.Errorf("mark delivered: %w", err)
	}
	if moved {
		r.publishActivity(ctx, activity{Kind: model.ActivityKindDelivered, ConversationID: conversationID, ActorID: c.ID, UpToSeq: &target})
	}
	return r.loadConversation(ctx, c, conversationID)
}

// pointerTarget checks that c takes part in the conversation and returns
// where its pointer goes: want, capped at the last seq, so that no pointer
// covers a message that does not exist yet; nil means the last seq.
func (r *Resolver) pointerTarget(ctx context.Context, c auth.Caller, conversationID string, want *int64, op string) (int64, error) {
	if _, err := db.SelectParticipant(ctx, r.db, conversationID, c.ID); err != nil {
		return 0, orNotFound(err, "conversation", conversationID, op)
	}
	lastSeq, err := db.SelectLastSeq(ctx, r.db, conversationID)
	if err != nil {
		return 0, orNotFound(err, "conversation", conversationID, op)
	}
	if want != nil && *want < lastSeq {
		return *want, nil
	}
	return lastSeq, nil
}

// myPointer and otherPointer back the Conversation pointer fields: a
// member's own pointer, and the other participant's for the sender's
// ticks. Service callers and non-members get null, as for myLastReadSeq
// and otherParticipant.
func myPointer(ctx context.Context, conv *db.Conversation, seq func(*db.Participant) int64) (*int, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if c.Service {
		return nil, nil
	}
	if p := conv.Member(c.ID); p != nil {
		n := int(seq(p))
		return &n, nil
	}
	return nil, nil
}

func otherPointer(ctx context.Context, conv *db.Conversation, seq func(*db.Participant) int64) (*int, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if c.Service || conv.Member(c.ID) == nil {
		return nil, nil
	}
	for _, p := range conv.Participants {
		if p.ProfileID != c.ID {
			n := int(seq(p))
			return &n, nil
		}
	}
	return nil, nil
}

func readPointer(p *db.Participant) int64 { return p.LastReadSeq }

// deliveredPointer never reports less than the read pointer: a read
// message was received.
func deliveredPointer(p *db.Participant) int64 { return max(p.LastDeliveredSeq, p.LastReadSeq) }
