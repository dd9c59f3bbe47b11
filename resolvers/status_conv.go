package resolvers

import (
	"context"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph/model"
)

// maxReasonLen caps closeConversation's reason, in characters: a note for
// support, not a message.
const maxReasonLen = 500

// closeConversation makes a conversation read-only for its participants.
// Only a change is broadcast, so the job-service may retry freely; a
// repeated close keeps the first close's time and reason.
func (r *Resolver) closeConversation(ctx context.Context, conversationID string, reason *string) (*db.Conversation, error) {
	c, err := serviceCaller(ctx, "closeConversation")
	if err != nil {
		return nil, err
	}
	if err := checkClose(conversationID, reason); err != nil {
		return nil, err
	}
	changed, err := db.CloseConversation(ctx, r.db, conversationID, reason)
	if err != nil {
		return nil, orNotFound(err, "conversation", conversationID, "close conversation")
	}
	if changed {
		r.publishStatus(ctx, model.ActivityKindConversationClosed, conversationID)
	}
	return r.loadConversation(ctx, c, conversationID)
}

// reopenConversation undoes closeConversation; like it, it broadcasts only
// a change.
func (r *Resolver) reopenConversation(ctx context.Context, conversationID string) (*db.Conversation, error) {
	c, err := serviceCaller(ctx, "reopenConversation")
	if err != nil {
		return nil, err
	}
	if err := checkID("conversationId", conversationID); err != nil {
		return nil, err
	}
	changed, err := db.ReopenConversation(ctx, r.db, conversationID)
	if err != nil {
		return nil, orNotFound(err, "conversation", conversationID, "reopen conversation")
	}
	if changed {
		r.publishStatus(ctx, model.ActivityKindConversationReopened, conversationID)
	}
	return r.loadConversation(ctx, c, conversationID)
}

// checkClose validates closeConversation's arguments.
func checkClose(conversationID string, reason *string) error {
	if err := checkID("conversationId", conversationID); err != nil {
		return err
	}
	return checkOptText("reason", reason, maxReasonLen)
}

// publishStatus tells the open chats and both inboxes of a status change,
// after its commit. The job-service acted: no actor.
func (r *Resolver) publishStatus(ctx context.Context, kind model.ActivityKind, conversationID string) {
	r.publishActivity(ctx, activity{Kind: kind, ConversationID: conversationID})
	r.publishInboxAll(ctx, model.InboxEventKindConversationUpdated, conversationID)
}
