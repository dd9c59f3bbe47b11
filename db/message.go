package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
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

// Message is one stored chat message. It has no JSON form: what travels
// between instances is the versioned wire type of package resolvers.
type Message struct {
	bun.BaseModel `bun:"table:messages,alias:m"`

	ID                  string      `bun:"id,pk"`
	ConversationID      string      `bun:"conversation_id,notnull"`
	Seq                 int64       `bun:"seq,notnull"`
	SenderID            *string     `bun:"sender_id"`
	SenderName          *string     `bun:"sender_name"`
	MessageText         string      `bun:"message_text,notnull"`
	MessageType         MessageType `bun:"message_type,notnull"`
	LocationLatitude    *float64    `bun:"location_latitude"`
	LocationLongitude   *float64    `bun:"location_longitude"`
	LocationLabel       *string     `bun:"location_label"`
	AttachmentURL       *string     `bun:"attachment_url"`
	AttachmentFileName  *string     `bun:"attachment_file_name"`
	AttachmentMimeType  *string     `bun:"attachment_mime_type"`
	AttachmentSizeBytes *int64      `bun:"attachment_size_bytes"`
	ClientMessageID     *string     `bun:"client_message_id"`
	IdempotencyKey      *string     `bun:"idempotency_key"`
	JobEvent            *JobEvent   `bun:"job_event"`
	EditedAt            *time.Time  `bun:"edited_at"`
	DeletedAt           *time.Time  `bun:"deleted_at"`
	CreatedAt           time.Time   `bun:"created_at,notnull"`

	// An uploaded attachment (AttachmentURL nil): its id, the file store's
	// keys of its file and thumbnail, an image's pixels. See WithAttachment.
	AttachmentID       *string `bun:"attachment_id"`
	AttachmentKey      *string `bun:"attachment_key"`
	AttachmentThumbKey *string `bun:"attachment_thumb_key"`
	AttachmentWidth    *int    `bun:"attachment_width"`
	AttachmentHeight   *int    `bun:"attachment_height"`

	// OriginalText is the text as its sender wrote it when MessageText is
	// the recipient's, with contact details masked (the MASK contact
	// policy); nil when nothing was masked. See AsWritten.
	OriginalText *string `bun:"original_text"`
	// Flags mark the message for moderation; nil for none.
	Flags MessageFlags `bun:"flags"`

	// NotifyAfter, when positive, has the send queue a notice in the
	// outbox (outbox.go) for each recipient, in the same transaction: due
	// that long after the message unless they have received it by then.
	// Not stored on the message.
	NotifyAfter time.Duration `bun:"-"`

	// Known, when set, is the message's derived state as of one moment,
	// known to whoever loaded the message (a broadcast, a batch of
	// history), so that its fields resolve without a query and every
	// subscriber of one event sees the same state.
	Known *MessageState `bun:"-"`
}

// MessageState is what a message's derived fields read: its read and
// delivery state, its reactions and its sender's profile.
type MessageState struct {
	// Read: every participant but the sender (every one, for a SYSTEM
	// message) has read it; Delivered: likewise received it.
	Read, Delivered bool
	// Reactions, oldest first.
	Reactions []*Reaction
	// Sender is the sender's profile; nil for SYSTEM messages and senders
	// without one.
	Sender *Profile
}

// JobEvent is what a job-service SYSTEM message announces. Its values are
// the GraphQL enum's.
type JobEvent string

// The job events the marketplace announces.
const (
	JobApplicationAccepted JobEvent = "APPLICATION_ACCEPTED"
	JobStarted             JobEvent = "JOB_STARTED"
	JobCompleted           JobEvent = "JOB_COMPLETED"
	JobCancelled           JobEvent = "JOB_CANCELLED"
	JobPaymentReleased     JobEvent = "PAYMENT_RELEASED"
	JobDisputeOpened       JobEvent = "DISPUTE_OPENED"
	JobDisputeResolved     JobEvent = "DISPUTE_RESOLVED"
)

// Valid reports whether e is one of the known events.
func (e JobEvent) Valid() bool {
	switch e {
	case JobApplicationAccepted, JobStarted, JobCompleted, JobCancelled,
		JobPaymentReleased, JobDisputeOpened, JobDisputeResolved:
		return true
	}
	return false
}

// UnmarshalGQL lets gqlgen bind the JobEvent enum to this type.
func (e *JobEvent) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("JobEvent must be a string, got %T", v)
	}
	*e = JobEvent(s)
	if !e.Valid() {
		return fmt.Errorf("%q is not a valid JobEvent", s)
	}
	return nil
}

// MarshalGQL writes the enum value as a JSON string.
func (e JobEvent) MarshalGQL(w io.Writer) {
	_, _ = io.WriteString(w, strconv.Quote(string(e)))
}

// NewID returns a UUIDv7: time-ordered, so inserts stay at the right edge of
// the primary-key index, yet it says nothing about volumes.
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// PostMessage appends m to its conversation: it takes the next seq under the
// conversation's row lock (which also moves the conversation's activity
// time), inserts m, moves the sender's read pointer and, if m.NotifyAfter
// asks, queues its notices. Call it inside a transaction, so that the seq
// lock is held until commit and seqs commit in order. It fills m's ID, Seq
// and CreatedAt.
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
	if m.SenderID != nil {
		// The sender has read (and so received) what they sent. Nothing
		// else on the participant rows changes: activity is the
		// conversation's.
		_, err = idb.NewUpdate().Model((*Participant)(nil)).
			Set("last_read_seq = ?", m.Seq).
			Set("last_delivered_seq = ?", m.Seq).
			Where("conversation_id = ?", m.ConversationID).
			Where("profile_id = ?", *m.SenderID).
			Exec(ctx)
		if err != nil {
			return mapErr("update sender's read pointer", err)
		}
	}
	return queueNotices(ctx, idb, m)
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

// SendUserMessage stores a user's message m (ConversationID, SenderID and
// content set; SenderName is the fallback when the sender has no profile):
// it checks that the sender is a participant and has not already sent
// m.ClientMessageID, takes the next seq, inserts m with the sender's
// profile name, and moves the read pointers, atomically. It returns
// ErrNotFound when the conversation does not exist or the sender is not in
// it, and ErrConflict when the client id was used before; it fills m's ID,
// Seq, SenderName and CreatedAt. sender is the sender's profile as the send
// read it, or nil when the sender has none, so that the broadcast that
// follows need not look it up again.
//
// On PostgreSQL it is one statement, so a send costs one round trip and no
// explicit transaction: the conversation row's lock, held to the end of the
// statement, orders concurrent senders as PostMessage's transaction does.
func SendUserMessage(ctx context.Context, bdb *bun.DB, m *Message) (sender *Profile, err error) {
	return sendUserMessage(ctx, bdb, m, nil)
}

// SendUserMessageUnder is SendUserMessage for a message screened under
// the conversation's contact policy as it was stored (policy; nil: the
// server's default): it stores m only if the stored policy is still that,
// atomically with the send, and else returns ErrPolicyChanged, so that a
// policy change applies to every message stored after it.
func SendUserMessageUnder(ctx context.Context, bdb *bun.DB, m *Message, policy *ContactPolicy) (sender *Profile, err error) {
	return sendUserMessage(ctx, bdb, m, &policyGuard{policy: policy})
}

// policyGuard is the stored contact policy a send expects.
type policyGuard struct{ policy *ContactPolicy }

func sendUserMessage(ctx context.Context, bdb *bun.DB, m *Message, guard *policyGuard) (sender *Profile, err error) {
	if m.SenderID == nil {
		return nil, fmt.Errorf("send user message: no sender")
	}
	if bdb.Dialect().Name() != dialect.PG || m.AttachmentID != nil {
		// A send with an upload also links it (linkAttachment), which the
		// one statement below does not: those are rare enough to take
		// the transaction's extra round trips on PostgreSQL too.
		return sendInTx(ctx, bdb, m, guard)
	}
	m.ID = NewID()
	m.CreatedAt = now()
	query := sendSQL
	if m.ClientMessageID != nil {
		query = sendDedupeSQL
	}
	args := []any{
		m.ID, m.CreatedAt, m.ConversationID, *m.SenderID, m.SenderName,
		m.MessageText, string(m.MessageType), m.LocationLatitude, m.LocationLongitude, m.LocationLabel,
		m.AttachmentURL, m.AttachmentFileName, m.AttachmentMimeType, m.AttachmentSizeBytes,
		m.ClientMessageID, m.OriginalText, flagsParam(m.Flags), noticeDue(m),
	}
	if guard != nil {
		query = sendGuardSQL
		if m.ClientMessageID != nil {
			query = sendDedupeGuardSQL
		}
		var stored *string
		if guard.policy != nil {
			s := string(*guard.policy)
			stored = &s
		}
		args = append(args, stored)
	}
	// The statement goes to pgx with its arguments as bind parameters,
	// past bun, which would inline them: its text is then the same for
	// every send, so pgx prepares it once per connection and PostgreSQL
	// plans it once, where inlined values made every send a new statement
	// to prepare, plan and later deallocate (three round trips instead of
	// one, and most of a send's CPU on both sides). bun's hooks do not see
	// it, so it calls the package's query log itself.
	start := time.Now()
	var (
		name               *string
		pID, pName         *string
		pAvatar            *string
		pCreated, pUpdated *time.Time
	)
	err = queryRowPG(ctx, bdb.DB, query, args, &m.Seq, &name, &pID, &pName, &pAvatar, &pCreated, &pUpdated)
	queryLog{}.AfterQuery(ctx, &bun.QueryEvent{DB: bdb, Query: query, StartTime: start, Err: err})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sendRefused(ctx, bdb, m, guard)
	}
	if err != nil {
		return nil, mapErr("send message", err)
	}
	m.SenderName = name
	if pID != nil && pName != nil && pCreated != nil && pUpdated != nil {
		sender = &Profile{ID: *pID, DisplayName: *pName, AvatarURL: pAvatar, CreatedAt: pCreated.UTC(), UpdatedAt: pUpdated.UTC()}
	}
	return sender, nil
}

// sendSQL is SendUserMessage's statement on PostgreSQL. It returns the new
// seq, the stored sender name and the sender's profile (NULLs without
// one), and takes positional parameters: $1 id, $2 created_at, $3
// conversation, $4 sender, $5 the fallback sender name, $6 text, $7 type,
// $8 to $10 the location, $11 to $14 the attachment, $15 the client
// message id, $16 the original of a masked text, $17 the flags, $18 when
// the recipients' notices are due (NULL: queue none; see outbox.go).
// Every parameter is cast, because PostgreSQL cannot infer types in an
// INSERT's SELECT list, and so that a parameter's type never depends on
// where it is first used. sendDedupeSQL also refuses a client message id
// the sender used before; the Guard variants also refuse a conversation
// whose stored contact policy is no longer $19.
const (
	sendSQL            = sendSQLHead + sendSQLTail
	sendDedupeSQL      = sendSQLHead + sendSQLDedupe + sendSQLTail
	sendGuardSQL       = sendSQLHead + sendSQLGuard + sendSQLTail
	sendDedupeGuardSQL = sendSQLHead + sendSQLDedupe + sendSQLGuard + sendSQLTail

	sendSQLDedupe = `
	  AND NOT EXISTS (SELECT 1 FROM messages WHERE sender_id = $4::text AND client_message_id = $15::text)`
	sendSQLGuard = `
	  AND contact_policy IS NOT DISTINCT FROM $19::text`

	sendSQLHead = `WITH s AS (
	SELECT id, display_name, avatar_url, created_at, updated_at FROM profiles WHERE id = $4::text
), c AS (
	UPDATE conversations
	SET last_seq = last_seq + 1, last_message_id = $1::text, last_message_at = $2::timestamptz, updated_at = $2::timestamptz
	WHERE id = $3::text AND status = 'OPEN'
	  AND EXISTS (SELECT 1 FROM participants WHERE conversation_id = $3::text AND profile_id = $4::text)`
	sendSQLTail = `
	RETURNING last_seq
), m AS (
	INSERT INTO messages (id, conversation_id, seq, sender_id, sender_name, message_text, message_type,
		location_latitude, location_longitude, location_label,
		attachment_url, attachment_file_name, attachment_mime_type, attachment_size_bytes,
		client_message_id, original_text, flags, created_at)
	SELECT $1::text, $3::text, c.last_seq, $4::text,
		COALESCE((SELECT display_name FROM s), $5::text),
		$6::text, $7::text, $8::double precision, $9::double precision, $10::text,
		$11::text, $12::text, $13::text, $14::bigint, $15::text, $16::text, $17::text, $2::timestamptz
	FROM c
	RETURNING seq, sender_name
), p AS (
	UPDATE participants SET last_read_seq = (SELECT seq FROM m), last_delivered_seq = (SELECT seq FROM m)
	WHERE conversation_id = $3::text AND profile_id = $4::text AND EXISTS (SELECT 1 FROM m)
), n AS (` + sendSQLNotices + `
)
SELECT m.seq, m.sender_name, s.id, s.display_name, s.avatar_url, s.created_at, s.updated_at
FROM m LEFT JOIN s ON true`
)

// sendSQLNotices is queueNotices in the send statement: the message's
// notices, one per participant but the sender, folded into their open
// ones (noticeUpsert); none when $18 is NULL.
const sendSQLNotices = `
	INSERT INTO notify_outbox (id, recipient_id, conversation_id, upto_seq, due_at, created_at)
	SELECT gen_random_uuid()::text, r.profile_id, $3::text, m.seq, $18::timestamptz, $2::timestamptz
	FROM m JOIN participants AS r ON r.conversation_id = $3::text AND r.profile_id <> $4::text
	WHERE $18::timestamptz IS NOT NULL` + noticeUpsert

// noticeDue is when m's notices are due, or nil for none.
func noticeDue(m *Message) *time.Time {
	if m.NotifyAfter <= 0 {
		return nil
	}
	due := m.CreatedAt.Add(m.NotifyAfter)
	return &due
}

// sendInTx is SendUserMessage for SQLite: the reads first, then the
// writes in a transaction kept as short as possible, since SQLite has one
// writer at a time. A reused client id is refused by the unique index.
func sendInTx(ctx context.Context, bdb *bun.DB, m *Message, guard *policyGuard) (*Profile, error) {
	if _, err := SelectParticipant(ctx, bdb, m.ConversationID, *m.SenderID); err != nil {
		if errors.Is(err, ErrNotFound) && m.ClientMessageID != nil {
			// A retry elsewhere says more than "not found".
			return nil, sendRefused(ctx, bdb, m, nil)
		}
		return nil, fmt.Errorf("send message: %w", err)
	}
	p, err := SelectProfile(ctx, bdb, *m.SenderID)
	switch {
	case err == nil:
		m.SenderName = &p.DisplayName
	case errors.Is(err, ErrNotFound):
		p = nil
	default:
		return nil, err
	}
	err = bdb.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		// Inside the transaction, which holds SQLite's write lock from its
		// start (and on PostgreSQL the row lock of lockForSend), so that a
		// close cannot slip in between check and insert.
		if err := lockForSend(ctx, tx, m.ConversationID); err != nil {
			return err
		}
		status, policy, err := selectStatusAndPolicy(ctx, tx, m.ConversationID)
		if err != nil {
			return err
		}
		if status != ConversationOpen {
			return fmt.Errorf("send message: %w", ErrClosed)
		}
		if guard != nil && !samePolicy(policy, guard.policy) {
			return fmt.Errorf("send message: %w", ErrPolicyChanged)
		}
		if err := PostMessage(ctx, tx, m); err != nil {
			return err
		}
		return linkAttachment(ctx, tx, m)
	})
	if (errors.Is(err, ErrClosed) || errors.Is(err, ErrPolicyChanged)) && m.ClientMessageID != nil {
		// A retry of a message stored before the close (or the policy
		// change) is still answered.
		return nil, sendRefused(ctx, bdb, m, guard)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// sendRefused tells why the send statement stored nothing: ErrConflict
// for a client message id used before (checked first, so that a retry is
// answered even after a close), ErrNotFound when the sender is not in the
// conversation (or it does not exist), ErrPolicyChanged when a guarded
// send found the conversation open, and else ErrClosed. The participant
// check comes before the status so that strangers learn nothing.
func sendRefused(ctx context.Context, idb bun.IDB, m *Message, guard *policyGuard) error {
	if m.ClientMessageID != nil {
		_, err := SelectMessageByClientID(ctx, idb, *m.SenderID, *m.ClientMessageID)
		if err == nil {
			return fmt.Errorf("send message: %w: client message id used before", ErrConflict)
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	if _, err := SelectParticipant(ctx, idb, m.ConversationID, *m.SenderID); err != nil {
		return fmt.Errorf("send message: %w", err)
	}
	if guard != nil {
		status, policy, err := selectStatusAndPolicy(ctx, idb, m.ConversationID)
		if err != nil {
			return fmt.Errorf("send message: %w", err)
		}
		if status == ConversationOpen || !samePolicy(policy, guard.policy) {
			// Open (again): the policy is what refused it, or a close
			// undone since; deciding again sorts out either.
			return fmt.Errorf("send message: %w", ErrPolicyChanged)
		}
	}
	// The sender is in an existing conversation and reused no client id,
	// so the statement's only other condition refused it: the status it
	// saw was CLOSED, whatever it is now.
	return fmt.Errorf("send message: %w", ErrClosed)
}

// flagsParam is flags as the send statement's text parameter.
func flagsParam(f MessageFlags) *string {
	v, _ := f.Value()
	if v == nil {
		return nil
	}
	s := v.(string)
	return &s
}
