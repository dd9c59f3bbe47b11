package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// ErrAttachmentTaken means an upload could not be linked to the message
// being sent: it was sent already, swept, or is not the sender's upload
// to this conversation.
var ErrAttachmentTaken = errors.New("attachment is not available to send")

// UploadedFile is a row of attachments: a file uploaded with
// uploadAttachment, with its place in the file store. (Not "Attachment":
// gqlgen would bind the GraphQL type of that name, a message's view of a
// file, to it.) It is sent at most once: MessageID is set in the
// transaction that stores its message.
type UploadedFile struct {
	bun.BaseModel `bun:"table:attachments,alias:a"`

	ID             string `bun:"id,pk"`
	ConversationID string `bun:"conversation_id,notnull"`
	UploaderID     string `bun:"uploader_id,notnull"`
	// FileKey and ThumbKey are the store's keys of the file and of an
	// image's thumbnail (nil: none).
	FileKey     string  `bun:"file_key,notnull"`
	ThumbKey    *string `bun:"thumb_key"`
	ContentType string  `bun:"content_type,notnull"`
	Name        string  `bun:"name,notnull"`
	SizeBytes   int64   `bun:"size_bytes,notnull"`
	// Width and Height are an image's pixels as shown; nil for others.
	Width     *int      `bun:"width"`
	Height    *int      `bun:"height"`
	MessageID *string   `bun:"message_id"`
	CreatedAt time.Time `bun:"created_at,notnull"`
}

// InsertAttachment stores a's row; the caller chose a.ID (NewID) to make
// its keys. It fills CreatedAt.
func InsertAttachment(ctx context.Context, idb bun.IDB, a *UploadedFile) error {
	a.CreatedAt = now()
	if _, err := idb.NewInsert().Model(a).Exec(ctx); err != nil {
		return mapErr("insert attachment", err)
	}
	return nil
}

// SelectAttachment reads one upload; ErrNotFound if there is none.
func SelectAttachment(ctx context.Context, idb bun.IDB, id string) (*UploadedFile, error) {
	a := new(UploadedFile)
	if err := idb.NewSelect().Model(a).Where("a.id = ?", id).Scan(ctx); err != nil {
		return nil, mapErr("select attachment", err)
	}
	return a, nil
}

// WithAttachment copies an upload's fields onto the message that sends it.
func (m *Message) WithAttachment(a *UploadedFile) {
	m.AttachmentID = &a.ID
	m.AttachmentKey = &a.FileKey
	m.AttachmentThumbKey = a.ThumbKey
	m.AttachmentWidth, m.AttachmentHeight = a.Width, a.Height
	name, ct, size := a.Name, a.ContentType, a.SizeBytes
	m.AttachmentFileName, m.AttachmentMimeType, m.AttachmentSizeBytes = &name, &ct, &size
	m.AttachmentURL = nil
}

// HasAttachment reports whether m carries an attachment, by URL or
// uploaded.
func (m *Message) HasAttachment() bool {
	return m.AttachmentURL != nil || m.AttachmentKey != nil
}

// lockForSend, on PostgreSQL, locks the conversation's row before a send
// that runs as a transaction of several statements (sendInTx), so that a
// close cannot commit between its status check and its insert; SQLite's
// transaction holds the one write lock already.
func lockForSend(ctx context.Context, tx bun.Tx, conversationID string) error {
	if tx.Dialect().Name() != dialect.PG {
		return nil
	}
	_, err := tx.ExecContext(ctx, "SELECT 1 FROM conversations WHERE id = ? FOR UPDATE", conversationID)
	return mapErr("lock conversation", err)
}

// linkAttachment marks m's upload as sent by m, in m's transaction. Only
// the sender's own unsent upload to m's conversation qualifies; anything
// else is ErrAttachmentTaken, and the transaction must roll back.
func linkAttachment(ctx context.Context, idb bun.IDB, m *Message) error {
	if m.AttachmentID == nil {
		return nil
	}
	res, err := idb.NewUpdate().Model((*UploadedFile)(nil)).
		Set("message_id = ?", m.ID).
		Where("id = ?", *m.AttachmentID).
		Where("conversation_id = ?", m.ConversationID).
		Where("uploader_id = ?", *m.SenderID).
		Where("message_id IS NULL").
		Exec(ctx)
	changed, err := oneRowChanged("link attachment", res, err)
	if err != nil {
		return err
	}
	if !changed {
		return fmt.Errorf("link attachment %s: %w", *m.AttachmentID, ErrAttachmentTaken)
	}
	return nil
}

// SelectUnsentAttachments lists up to limit uploads made before cutoff
// and never sent, oldest first: the sweeper's work.
func SelectUnsentAttachments(ctx context.Context, idb bun.IDB, cutoff time.Time, limit int) ([]*UploadedFile, error) {
	var as []*UploadedFile
	err := idb.NewSelect().Model(&as).
		Where("a.message_id IS NULL").
		Where("a.created_at < ?", cutoff.UTC()).
		OrderExpr("a.created_at ASC").
		Limit(int64(limit)).
		Scan(ctx)
	if err != nil {
		return nil, mapErr("select unsent attachments", err)
	}
	return as, nil
}

// DeleteSentAttachment deletes the row of upload id, sent by message
// messageID, in the message's deletion's transaction, and returns it (nil
// if there is none), so that the caller deletes its files once the
// deletion commits. It looks the row up by its key: message_id has no
// index of its own.
func DeleteSentAttachment(ctx context.Context, idb bun.IDB, id, messageID string) (*UploadedFile, error) {
	var as []*UploadedFile
	_, err := idb.NewDelete().Model(&as).
		Where("id = ?", id).
		Where("message_id = ?", messageID).
		Returning("*").
		Exec(ctx)
	if err != nil {
		return nil, mapErr("delete sent attachment", err)
	}
	if len(as) == 0 {
		return nil, nil
	}
	return as[0], nil
}

// DeleteUnsentAttachment deletes an upload's row unless it has been sent
// meanwhile, and reports whether it did: only then may its files go.
func DeleteUnsentAttachment(ctx context.Context, idb bun.IDB, id string) (bool, error) {
	res, err := idb.NewDelete().Model((*UploadedFile)(nil)).
		Where("id = ?", id).
		Where("message_id IS NULL").
		Exec(ctx)
	return oneRowChanged("delete unsent attachment", res, err)
}
