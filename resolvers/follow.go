package resolvers

import (
	"context"
	"fmt"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph/model"
	"github.com/jobchat/jobchat/internal/auth"
)

// FollowConversation is the feeds' door for bridges that speak another
// protocol (the old chat socket): it delivers the conversation's messages
// committed from now on, gap-free and with their Known state set, to
// onMessage, and its activity (edits, deletions, reactions, receipts,
// typing of others) to onActivity, through the same engine as every
// GraphQL subscription. Both run on the delivery path: they must not
// block, and they return false when the bridge cannot take more, after
// which the bridge is expected to close its client (a message follower
// with no room is not caught up again). onEnd runs if the feed ends the
// subscription (the database failed during a catch-up). The caller in ctx
// must take part in the conversation (see Authorize). stop ends both.
func (r *Resolver) FollowConversation(ctx context.Context, conversationID string,
	onMessage func(*db.Message) bool, onActivity func(*model.ConversationActivity) bool, onEnd func(),
) (stop func(), err error) {
	c, err := userCaller(ctx, "follow conversation")
	if err != nil {
		return nil, err
	}
	msgs := &follower{ctx: ctx, viewer: c.ID, end: onEnd, fn: func(v any) bool { return onMessage(v.(*db.Message)) }}
	// "Now" is read here, not by the catch-up goroutine: a bridge answers
	// its client's handshake as soon as this returns, and a message the
	// client sends at once must not fall before the follower's start.
	last, err := db.SelectLastSeq(ctx, r.db, conversationID)
	if err != nil {
		return nil, fmt.Errorf("follow conversation: %w", err)
	}
	stopMsgs, err := r.feeds.follow(ctx, messageFeed, conversationID, &last, msgs)
	if err != nil {
		return nil, fmt.Errorf("follow conversation: %w", err)
	}
	acts := &follower{ctx: ctx, viewer: c.ID, fn: func(v any) bool { return onActivity(v.(*model.ConversationActivity)) }}
	stopActs, err := r.feeds.follow(ctx, activityFeed, conversationID, nil, acts)
	if err != nil {
		stopMsgs()
		return nil, fmt.Errorf("follow conversation: %w", err)
	}
	return func() { stopMsgs(); stopActs() }, nil
}

// Authorize reports whether c may follow and write to the conversation:
// NOT_FOUND (as an error the presenter understands) when it is not theirs
// or does not exist.
func (r *Resolver) Authorize(ctx context.Context, c auth.Caller, conversationID string) error {
	if c.Service {
		return forbidden("the chat socket is for users: service tokens cannot use it")
	}
	if err := checkID("conversationId", conversationID); err != nil {
		return err
	}
	return r.checkAccess(ctx, c, conversationID)
}

// Send stores a message for a bridge exactly as sendMessage does (same
// validation, rate limit, closed-conversation rule and broadcast), so that
// GraphQL subscribers see what a bridge's clients send. msgType is the
// MessageType name ("TEXT" when empty).
func (r *Resolver) Send(ctx context.Context, c auth.Caller, conversationID, text, msgType string) (*db.Message, error) {
	if c.Service {
		return nil, forbidden("sendMessage is for users: service tokens cannot use it")
	}
	in := model.SendMessageInput{ConversationID: conversationID, MessageText: &text}
	if msgType != "" {
		t := db.MessageType(msgType)
		if !t.Valid() {
			return nil, badInput("type", "must be one of TEXT, LOCATION, IMAGE, FILE (got %q)", msgType)
		}
		in.MessageType = &t
	}
	typ, err := r.validateSend(in)
	if err != nil {
		return nil, err
	}
	return r.send(ctx, c, typ, in)
}

// Classify says what GraphQL would answer for err: its extensions.code and
// message. Internal causes are logged, as the presenter does, and come
// back as "internal error".
func Classify(ctx context.Context, err error) (code, message string) {
	e := ErrorPresenter(ctx, err)
	code, _ = e.Extensions["code"].(string)
	return code, e.Message
}
