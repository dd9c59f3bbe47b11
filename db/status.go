package db

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/uptrace/bun"
)

// The status changes leave updated_at alone: it is the inbox's sort key,
// the time of the last message, and a close is not a message.

// CloseConversation makes an open conversation read-only for its
// participants, recording when and, if given, why. changed is false when
// it was closed already, in which case nothing is written (the first
// close's time and reason stay). ErrNotFound: no such conversation.
func CloseConversation(ctx context.Context, idb bun.IDB, conversationID string, reason *string) (changed bool, err error) {
	res, err := idb.NewUpdate().Model((*Conversation)(nil)).
		Set("status = ?", ConversationClosed).
		Set("closed_at = ?", now()).
		Set("close_reason = ?", reason).
		Where("id = ?", conversationID).
		Where("status = ?", ConversationOpen).
		Exec(ctx)
	return statusChanged(ctx, idb, "close conversation", conversationID, res, err)
}

// ReopenConversation undoes a close: the conversation is open again and
// its close time and reason are cleared. changed is false when it was open
// already. ErrNotFound: no such conversation.
func ReopenConversation(ctx context.Context, idb bun.IDB, conversationID string) (changed bool, err error) {
	res, err := idb.NewUpdate().Model((*Conversation)(nil)).
		Set("status = ?", ConversationOpen).
		Set("closed_at = NULL").
		Set("close_reason = NULL").
		Where("id = ?", conversationID).
		Where("status = ?", ConversationClosed).
		Exec(ctx)
	return statusChanged(ctx, idb, "reopen conversation", conversationID, res, err)
}

// statusChanged reads a conditional status UPDATE's outcome. An UPDATE that
// matched nothing either met the target status already or no conversation
// at all; only the second is an error.
func statusChanged(ctx context.Context, idb bun.IDB, op, conversationID string, res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, mapErr(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, mapErr(op, err)
	}
	if n > 0 {
		return true, nil
	}
	if _, err := SelectConversationStatus(ctx, idb, conversationID); err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	return false, nil
}
