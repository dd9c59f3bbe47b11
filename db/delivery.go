package db

import (
	"context"

	"github.com/uptrace/bun"
)

// The two pointers of a participant say how far their apps have received
// (delivered) and read a conversation. Both only move forward, and the
// delivered pointer is never behind the read one: a message read was
// received. Each move is one statement, so that concurrent moves from the
// same user's devices cannot leave the pair inconsistent.

// MarkRead moves a participant's read pointer forward to upToSeq, and the
// delivered pointer with it where it is behind; a read pointer already at
// or past upToSeq stays where it is. moved reports whether the read
// pointer moved. A read pointer that does not move leaves nothing to do:
// the delivered pointer is already at least as far.
func MarkRead(ctx context.Context, idb bun.IDB, conversationID, profileID string, upToSeq int64) (moved bool, err error) {
	res, err := idb.NewUpdate().Model((*Participant)(nil)).
		Set("last_read_seq = ?", upToSeq).
		// CASE, not GREATEST or MAX: it reads the same on both dialects.
		Set("last_delivered_seq = CASE WHEN last_delivered_seq < ? THEN ? ELSE last_delivered_seq END", upToSeq, upToSeq).
		Where("conversation_id = ?", conversationID).
		Where("profile_id = ?", profileID).
		Where("last_read_seq < ?", upToSeq).
		Exec(ctx)
	if err != nil {
		return false, mapErr("mark read", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, mapErr("mark read", err)
	}
	return n > 0, nil
}

// MarkDelivered moves a participant's delivered pointer forward to
// upToSeq; one already at or past it stays where it is. moved reports
// whether it moved.
func MarkDelivered(ctx context.Context, idb bun.IDB, conversationID, profileID string, upToSeq int64) (moved bool, err error) {
	res, err := idb.NewUpdate().Model((*Participant)(nil)).
		Set("last_delivered_seq = ?", upToSeq).
		Where("conversation_id = ?", conversationID).
		Where("profile_id = ?", profileID).
		Where("last_delivered_seq < ?", upToSeq).
		Exec(ctx)
	if err != nil {
		return false, mapErr("mark delivered", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, mapErr("mark delivered", err)
	}
	return n > 0, nil
}
