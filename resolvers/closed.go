package resolvers

import (
	"context"

	"github.com/jobchat/jobchat/db"
)

// requireOpen refuses writes by participants to a closed conversation
// (sends, typing, edits) with FAILED_PRECONDITION. It does not check
// access: call it after the caller is known to be in the conversation.
func (r *Resolver) requireOpen(ctx context.Context, conversationID string) error {
	status, err := db.SelectConversationStatus(ctx, r.db, conversationID)
	if err != nil {
		return orNotFound(err, "conversation", conversationID, "check conversation status")
	}
	if status == db.ConversationClosed {
		return closedError(conversationID)
	}
	return nil
}

// closedError is the refusal of a participant's write to a closed
// conversation, the same whichever check caught it (requireOpen or the
// send statement's own).
func closedError(conversationID string) error {
	return failedPrecondition("conversation %q is closed: it is read-only now", conversationID)
}
