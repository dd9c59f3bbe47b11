package db

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// MessageType is what a message carries. Its values are the GraphQL enum's.
type MessageType string

// The message types the old chat supported, kept as they were.
const (
	MessageText     MessageType = "TEXT"
	MessageSystem   MessageType = "SYSTEM"
	MessageLocation MessageType = "LOCATION"
	MessageImage    MessageType = "IMAGE"
	MessageFile     MessageType = "FILE"
)

// Valid reports whether t is one of the known types.
func (t MessageType) Valid() bool {
	switch t {
	case MessageText, MessageSystem, MessageLocation, MessageImage, MessageFile:
		return true
	}
	return false
}

// UnmarshalGQL lets gqlgen bind the MessageType enum to this type.
func (t *MessageType) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("MessageType must be a string, got %T", v)
	}
	*t = MessageType(s)
	if !t.Valid() {
		return fmt.Errorf("%q is not a valid MessageType", s)
	}
	return nil
}

// MarshalGQL writes the enum value as a JSON string.
func (t MessageType) MarshalGQL(w io.Writer) {
	_, _ = io.WriteString(w, strconv.Quote(string(t)))
}

// Message is one stored chat message. Its JSON form is what travels between
// instances on the broadcast bus, so the tags are part of the wire format.
type Message struct {
	bun.BaseModel `bun:"table:messages,alias:m"`

	ID                  string      `bun:"id,pk" json:"id"`
	ConversationID      string      `bun:"conversation_id,notnull" json:"conversationId"`
	Seq                 int64       `bun:"seq,notnull" json:"seq"`
	SenderID            *string     `bun:"sender_id" json:"senderId,omitempty"`
	SenderName          *string     `bun:"sender_name" json:"senderName,omitempty"`
	MessageText         string      `bun:"message_text,notnull" json:"messageText"`
	MessageType         MessageType `bun:"message_type,notnull" json:"messageType"`
	LocationLatitude    *float64    `bun:"location_latitude" json:"lat,omitempty"`
	LocationLongitude   *float64    `bun:"location_longitude" json:"lng,omitempty"`
	LocationLabel       *string     `bun:"location_label" json:"locLabel,omitempty"`
	AttachmentURL       *string     `bun:"attachment_url" json:"attUrl,omitempty"`
	AttachmentFileName  *string     `bun:"attachment_file_name" json:"attName,omitempty"`
	AttachmentMimeType  *string     `bun:"attachment_mime_type" json:"attMime,omitempty"`
	AttachmentSizeBytes *int64      `bun:"attachment_size_bytes" json:"attSize,omitempty"`
	ClientMessageID     *string     `bun:"client_message_id" json:"clientMessageId,omitempty"`
	IdempotencyKey      *string     `bun:"idempotency_key" json:"-"`
	CreatedAt           time.Time   `bun:"created_at,notnull" json:"createdAt"`
}

// NewID returns a UUIDv7: time-ordered, so inserts stay at the right edge of
// the primary-key index, yet it says nothing about volumes.
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// PostMessage appends m to its conversation: it takes the next seq under the
// conversation's row lock, inserts m, and moves the participants' activity
// time and the sender's read pointer. Call it inside a transaction, so that
// the seq lock is held until commit and seqs commit in order. It fills m's
// ID, Seq and CreatedAt.
func PostMessage(ctx context.Context, idb bun.IDB, m *Message) error {
	m.ID = NewID()
	m.CreatedAt = now()
	seq, err := advanceSeq(ctx, idb, m.ConversationID, m.ID, m.CreatedAt)
	if err != nil {
		return err
	}
	m.Seq = seq
	if _, err := idb.NewInsert().Model(m).Exec(ctx); err != nil {
		return mapErr("insert message", err)
	}
	q := idb.NewUpdate().Model((*Participant)(nil)).
		Set("last_activity_at = ?", m.CreatedAt).
		Where("conversation_id = ?", m.ConversationID)
	if m.SenderID != nil {
		q = q.Set("last_read_seq = CASE WHEN profile_id = ? THEN ? ELSE last_read_seq END", *m.SenderID, m.Seq)
	}
	if _, err := q.Exec(ctx); err != nil {
		return mapErr("update participants", err)
	}
	return nil
}

// advanceSeq bumps the conversation's seq and records its last message in one
// statement; the UPDATE's row lock is what orders concurrent senders.
func advanceSeq(ctx context.Context, idb bun.IDB, conversationID, messageID string, at time.Time) (int64, error) {
	var seq int64
	err := idb.NewUpdate().Model((*Conversation)(nil)).
		Set("last_seq = last_seq + 1").
		Set("last_message_id = ?", messageID).
		Set("last_message_at = ?", at).
		Set("updated_at = ?", at).
		Where("id = ?", conversationID).
		Returning("last_seq").
		Scan(ctx, &seq)
	if err != nil {
		return 0, mapErr("advance conversation seq", err)
	}
	return seq, nil
}

// SelectMessageByClientID finds the message a sender already sent with
// clientID, the key of sendMessage's idempotent retry.
func SelectMessageByClientID(ctx context.Context, idb bun.IDB, senderID, clientID string) (*Message, error) {
	m := new(Message)
	err := idb.NewSelect().Model(m).
		Where("m.sender_id = ?", senderID).
		Where("m.client_message_id = ?", clientID).
		Scan(ctx)
	if err != nil {
		return nil, mapErr("select message by client id", err)
	}
	return m, nil
}

// SelectMessageByIdempotencyKey finds the system message posted with key.
func SelectMessageByIdempotencyKey(ctx context.Context, idb bun.IDB, conversationID, key string) (*Message, error) {
	m := new(Message)
	err := idb.NewSelect().Model(m).
		Where("m.conversation_id = ?", conversationID).
		Where("m.idempotency_key = ?", key).
		Scan(ctx)
	if err != nil {
		return nil, mapErr("select message by idempotency key", err)
	}
	return m, nil
}

// MessageFilter selects a window of one conversation's history by seq.
type MessageFilter struct {
	ConversationID string
	// AfterSeq and BeforeSeq bound the window exclusively; zero means unbounded.
	AfterSeq  int64
	BeforeSeq int64
	// Limit caps the rows; zero means no cap.
	Limit int
	// Newest takes the rows nearest BeforeSeq (or the end) instead of those
	// nearest AfterSeq. The result is in ascending seq order either way.
	Newest bool
}

// SelectMessages returns the messages of f's window in ascending seq order.
func SelectMessages(ctx context.Context, idb bun.IDB, f MessageFilter) ([]*Message, error) {
	var ms []*Message
	q := idb.NewSelect().Model(&ms).Where("m.conversation_id = ?", f.ConversationID)
	if f.AfterSeq > 0 {
		q = q.Where("m.seq > ?", f.AfterSeq)
	}
	if f.BeforeSeq > 0 {
		q = q.Where("m.seq < ?", f.BeforeSeq)
	}
	if f.Newest {
		q = q.OrderExpr("m.seq DESC")
	} else {
		q = q.OrderExpr("m.seq ASC")
	}
	if f.Limit > 0 {
		q = q.Limit(int64(f.Limit))
	}
	if err := q.Scan(ctx); err != nil {
		return nil, mapErr("select messages", err)
	}
	if f.Newest {
		for i, j := 0, len(ms)-1; i < j; i, j = i+1, j-1 {
			ms[i], ms[j] = ms[j], ms[i]
		}
	}
	return ms, nil
}
