package db

import (
	"context"
	"database/sql"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// SelectMessage loads one message by id.
func SelectMessage(ctx context.Context, idb bun.IDB, id string) (*Message, error) {
	m := new(Message)
	if err := idb.NewSelect().Model(m).Where("m.id = ?", id).Scan(ctx); err != nil {
		return nil, mapErr("select message", err)
	}
	return m, nil
}

// LockMessage loads one message and, on PostgreSQL, locks its row until the
// transaction ends, so that the checks made on it (deleted, its reactions
// counted) still hold when the transaction writes. SQLite needs no row
// lock: its transactions take the database's write lock at BEGIN. Call it
// inside a transaction.
func LockMessage(ctx context.Context, idb bun.IDB, id string) (*Message, error) {
	m := new(Message)
	q := idb.NewSelect().Model(m).Where("m.id = ?", id)
	if idb.Dialect().Name() == dialect.PG {
		q = q.For("UPDATE")
	}
	if err := q.Scan(ctx); err != nil {
		return nil, mapErr("lock message", err)
	}
	return m, nil
}

// UpdateMessageText replaces the text of m, unless it is deleted, and
// stamps its editedAt; original and flags replace its OriginalText and
// Flags (the edit is screened for contact details like a send). It
// reports whether the row changed and, if so, updates m to match.
func UpdateMessageText(ctx context.Context, idb bun.IDB, m *Message, text string, original *string, flags MessageFlags) (bool, error) {
	at := now()
	res, err := idb.NewUpdate().Model((*Message)(nil)).
		Set("message_text = ?", text).
		Set("original_text = ?", original).
		Set("flags = ?", flags).
		Set("edited_at = ?", at).
		Where("id = ?", m.ID).
		Where("deleted_at IS NULL").
		Exec(ctx)
	changed, err := oneRowChanged("update message text", res, err)
	if changed {
		m.MessageText, m.OriginalText, m.Flags, m.EditedAt = text, original, flags, &at
	}
	return changed, err
}

// UpdateMessageDeleted clears m's content for everyone and stamps its
// deletedAt, keeping its row and seq; a message already deleted is left as
// it is. It reports whether the row changed and, if so, updates m to match.
// Its reactions are DeleteReactions' to remove, in the same transaction.
func UpdateMessageDeleted(ctx context.Context, idb bun.IDB, m *Message) (bool, error) {
	at := now()
	res, err := idb.NewUpdate().Model((*Message)(nil)).
		Set("message_text = ''").
		Set("original_text = NULL").
		Set("flags = NULL").
		Set("location_latitude = NULL").
		Set("location_longitude = NULL").
		Set("location_label = NULL").
		Set("attachment_url = NULL").
		Set("attachment_file_name = NULL").
		Set("attachment_mime_type = NULL").
		Set("attachment_size_bytes = NULL").
		Set("attachment_id = NULL").
		Set("attachment_key = NULL").
		Set("attachment_thumb_key = NULL").
		Set("attachment_width = NULL").
		Set("attachment_height = NULL").
		Set("deleted_at = ?", at).
		Where("id = ?", m.ID).
		Where("deleted_at IS NULL").
		Exec(ctx)
	changed, err := oneRowChanged("update message deleted", res, err)
	if changed {
		m.MessageText, m.OriginalText, m.Flags = "", nil, nil
		m.LocationLatitude, m.LocationLongitude, m.LocationLabel = nil, nil, nil
		m.AttachmentURL, m.AttachmentFileName, m.AttachmentMimeType, m.AttachmentSizeBytes = nil, nil, nil, nil
		m.AttachmentID, m.AttachmentKey, m.AttachmentThumbKey, m.AttachmentWidth, m.AttachmentHeight = nil, nil, nil, nil, nil
		m.DeletedAt = &at
	}
	return changed, err
}

// SelectLastMessageID returns the id of a conversation's last message, or
// "" when it has none.
func SelectLastMessageID(ctx context.Context, idb bun.IDB, conversationID string) (string, error) {
	var id *string
	err := idb.NewSelect().Model((*Conversation)(nil)).Column("last_message_id").
		Where("id = ?", conversationID).Scan(ctx, &id)
	if err != nil {
		return "", mapErr("select last message id", err)
	}
	if id == nil {
		return "", nil
	}
	return *id, nil
}

// oneRowChanged maps an UPDATE's outcome to whether it changed a row.
func oneRowChanged(op string, res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, mapErr(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, mapErr(op, err)
	}
	return n > 0, nil
}
