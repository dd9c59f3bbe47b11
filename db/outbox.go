package db

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// The outbox of notices for offline users (issue 9, section 2): one row
// per notice that a recipient has not received a conversation's messages,
// written in the transaction (on PostgreSQL, the statement) that stores
// the message, and sent by package notify. See migration
// 20261207000003_notify_outbox for the life of a row.
//
// Locks, on PostgreSQL: a send folds into a recipient's open row with ON
// CONFLICT DO UPDATE, which locks that row until the send commits; an
// attempt locks the row (LockNotice) before it reads what the recipient
// has not received. So either the attempt waits for the send and sees its
// message, or the send waits for the attempt, finds the row frozen (no
// longer open) and opens a new one. No message falls between the two.
// Neither takes the other's locks in the opposite order: a send locks the
// conversation, then the outbox row; an attempt only the outbox row.

// Notice is one row of the outbox.
type Notice struct {
	bun.BaseModel `bun:"table:notify_outbox,alias:n"`

	// ID is the webhook-id of every attempt.
	ID             string `bun:"id,pk"`
	RecipientID    string `bun:"recipient_id,notnull"`
	ConversationID string `bun:"conversation_id,notnull"`
	// UptoSeq is the newest message folded into the notice.
	UptoSeq   int64     `bun:"upto_seq,notnull"`
	DueAt     time.Time `bun:"due_at,notnull"`
	Attempts  int       `bun:"attempts,notnull"`
	ClaimedBy *string   `bun:"claimed_by"`
	// ClaimedUntil is the end of ClaimedBy's lease.
	ClaimedUntil *time.Time `bun:"claimed_until"`
	// LatestSeq, Payload and ExpiresAt are set by the first attempt,
	// which freezes the notice: the newest message it tells of, the body
	// every attempt sends, and when the retries stop. Nil before.
	LatestSeq *int64     `bun:"latest_seq"`
	Payload   *string    `bun:"payload"`
	ExpiresAt *time.Time `bun:"expires_at"`
	// CreatedAt is when the notice's first message was sent.
	CreatedAt time.Time `bun:"created_at,notnull"`
}

// Frozen reports whether the notice has had its first attempt.
func (n *Notice) Frozen() bool { return n.LatestSeq != nil }

// noticeUpsert folds a message into each recipient's open notice of its
// conversation, or opens one due at the message's due time; the open
// row's earliest due time stays. The PostgreSQL send statement has the
// same clause (sendSQLNotices); TestNoticesOnEverySendPath holds the two
// together.
const noticeUpsert = `
ON CONFLICT (recipient_id, conversation_id) WHERE latest_seq IS NULL
DO UPDATE SET upto_seq = excluded.upto_seq,
	due_at = CASE WHEN excluded.due_at < notify_outbox.due_at THEN excluded.due_at ELSE notify_outbox.due_at END`

// queueNotices writes m's notices, when m.NotifyAfter asks for them: one
// for every participant but its sender (both, for a SYSTEM message),
// folded into their open notices of the conversation. Call it in m's
// transaction, after m is stored.
func queueNotices(ctx context.Context, idb bun.IDB, m *Message) error {
	if m.NotifyAfter <= 0 {
		return nil
	}
	newID := "lower(hex(randomblob(16)))"
	if idb.Dialect().Name() == dialect.PG {
		newID = "gen_random_uuid()::text"
	}
	// The WHERE is needed on SQLite too: without it, ON CONFLICT would be
	// read as part of the SELECT's join.
	q := `INSERT INTO notify_outbox (id, recipient_id, conversation_id, upto_seq, due_at, created_at)
SELECT ` + newID + `, p.profile_id, p.conversation_id, ?, ?, ?
FROM participants AS p
WHERE p.conversation_id = ?`
	args := []any{m.Seq, m.CreatedAt.Add(m.NotifyAfter), m.CreatedAt, m.ConversationID}
	if m.SenderID != nil {
		q += " AND p.profile_id <> ?"
		args = append(args, *m.SenderID)
	}
	_, err := idb.NewRaw(q+noticeUpsert, args...).Exec(ctx)
	return mapErr("queue notices", err)
}

// ClaimNotices takes up to limit due notices nobody holds (or whose
// holder's lease ran out) for the instance by, until until, and returns
// their ids, the earliest due first. On PostgreSQL several instances claim
// at once without waiting for each other or taking the same row (SKIP
// LOCKED).
func ClaimNotices(ctx context.Context, idb bun.IDB, by string, now, until time.Time, limit int) ([]string, error) {
	lock := ""
	if idb.Dialect().Name() == dialect.PG {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var rows []struct {
		ID    string    `bun:"id"`
		DueAt time.Time `bun:"due_at"`
	}
	err := idb.NewRaw(`UPDATE notify_outbox SET claimed_by = ?, claimed_until = ?
WHERE id IN (
	SELECT id FROM notify_outbox
	WHERE due_at <= ? AND (claimed_until IS NULL OR claimed_until < ?)
	ORDER BY due_at LIMIT ?`+lock+`
)
RETURNING id, due_at`, by, until, now, now, limit).Scan(ctx, &rows)
	if err != nil {
		return nil, mapErr("claim notices", err)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].DueAt.Before(rows[j].DueAt) })
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	return ids, nil
}

// LockNotice loads notice id if the instance by still holds it and, on
// PostgreSQL, locks it until the transaction ends (see the top of this
// file). ErrNotFound: it is gone, or another instance took it over. Call
// it inside a transaction.
func LockNotice(ctx context.Context, idb bun.IDB, id, by string) (*Notice, error) {
	n := new(Notice)
	q := idb.NewSelect().Model(n).Where("n.id = ?", id).Where("n.claimed_by = ?", by)
	if idb.Dialect().Name() == dialect.PG {
		q = q.For("UPDATE")
	}
	if err := q.Scan(ctx); err != nil {
		return nil, mapErr("lock notice", err)
	}
	return n, nil
}

// UpdateNoticeAttempt records an attempt about to be made on n, held by
// its ClaimedBy: its Attempts, ClaimedUntil and, on the first attempt,
// what freezes it. A notice frozen now supersedes the older frozen ones of
// its recipient and conversation, which are still retrying: it tells of
// everything they did, so they are deleted.
func UpdateNoticeAttempt(ctx context.Context, idb bun.IDB, n *Notice) error {
	if n.ClaimedBy == nil {
		return fmt.Errorf("update notice attempt: notice %s is not claimed", n.ID)
	}
	_, err := idb.NewUpdate().Model(n).
		Column("attempts", "claimed_until", "latest_seq", "payload", "expires_at").
		WherePK().
		Where("claimed_by = ?", *n.ClaimedBy).
		Exec(ctx)
	if err != nil {
		return mapErr("update notice attempt", err)
	}
	if n.LatestSeq == nil {
		return nil
	}
	_, err = idb.NewDelete().Model((*Notice)(nil)).
		Where("conversation_id = ?", n.ConversationID).
		Where("recipient_id = ?", n.RecipientID).
		Where("latest_seq < ?", *n.LatestSeq).
		Where("id <> ?", n.ID).
		Exec(ctx)
	return mapErr("delete superseded notices", err)
}

// RetryNotice gives notice id back, due again at due, if by still holds
// it.
func RetryNotice(ctx context.Context, idb bun.IDB, id, by string, due time.Time) error {
	_, err := idb.NewUpdate().Model((*Notice)(nil)).
		Set("due_at = ?", due.UTC()).
		Set("claimed_by = NULL").
		Set("claimed_until = NULL").
		Where("id = ?", id).
		Where("claimed_by = ?", by).
		Exec(ctx)
	return mapErr("retry notice", err)
}

// ReleaseNotices gives back the notices the instance by holds, due as they
// were: ids, or every one it holds when ids is empty.
func ReleaseNotices(ctx context.Context, idb bun.IDB, by string, ids []string) error {
	q := idb.NewUpdate().Model((*Notice)(nil)).
		Set("claimed_by = NULL").
		Set("claimed_until = NULL").
		Where("claimed_by = ?", by)
	if len(ids) > 0 {
		q = q.Where("id IN (?)", bun.In(ids))
	}
	_, err := q.Exec(ctx)
	return mapErr("release notices", err)
}

// DeleteNotice deletes notice id if the instance by holds it: it was sent,
// or will never be. deleted is false when it was gone or taken over.
func DeleteNotice(ctx context.Context, idb bun.IDB, id, by string) (deleted bool, err error) {
	res, err := idb.NewDelete().Model((*Notice)(nil)).
		Where("id = ?", id).
		Where("claimed_by = ?", by).
		Exec(ctx)
	if err != nil {
		return false, mapErr("delete notice", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, mapErr("delete notice", err)
	}
	return n > 0, nil
}

// PurgeNotices deletes up to limit notices, whoever holds them, and says
// how many: for when the receiver wants no more.
func PurgeNotices(ctx context.Context, idb bun.IDB, limit int) (int64, error) {
	res, err := idb.NewRaw(`DELETE FROM notify_outbox WHERE id IN (SELECT id FROM notify_outbox ORDER BY due_at LIMIT ?)`, limit).Exec(ctx)
	if err != nil {
		return 0, mapErr("purge notices", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, mapErr("purge notices", err)
	}
	return n, nil
}

// SelectNotices lists a conversation's notices, oldest first; for tests
// and operators.
func SelectNotices(ctx context.Context, idb bun.IDB, conversationID string) ([]*Notice, error) {
	var ns []*Notice
	err := idb.NewSelect().Model(&ns).Where("n.conversation_id = ?", conversationID).
		OrderExpr("n.created_at, n.recipient_id, n.id").Scan(ctx)
	if err != nil {
		return nil, mapErr("select notices", err)
	}
	return ns, nil
}

// Undelivered is what a recipient has not received of a conversation.
type Undelivered struct {
	// Pointer is how far the recipient has received: the further of
	// their delivered and read pointers.
	Pointer int64
	// Count is how many messages after Pointer others sent (deleted ones
	// left out), Latest the newest of them; nil when Count is zero.
	Count  int64
	Latest *Message
	// The conversation's job.
	JobID, JobTitle string
}

// SelectUndelivered reads what recipientID has not received of a
// conversation. ErrNotFound: they are not in it (or it does not exist).
func SelectUndelivered(ctx context.Context, idb bun.IDB, conversationID, recipientID string) (*Undelivered, error) {
	var u Undelivered
	err := idb.NewSelect().
		TableExpr("participants AS p").
		Join("JOIN conversations AS c ON c.id = p.conversation_id").
		Join("JOIN jobs AS j ON j.id = c.job_id").
		ColumnExpr("CASE WHEN p.last_delivered_seq > p.last_read_seq THEN p.last_delivered_seq ELSE p.last_read_seq END").
		ColumnExpr("j.id, j.title").
		Where("p.conversation_id = ?", conversationID).
		Where("p.profile_id = ?", recipientID).
		Scan(ctx, &u.Pointer, &u.JobID, &u.JobTitle)
	if err != nil {
		return nil, mapErr("select undelivered", err)
	}
	undelivered := func(q *bun.SelectQuery) *bun.SelectQuery {
		return q.Where("m.conversation_id = ?", conversationID).
			Where("m.seq > ?", u.Pointer).
			Where("m.deleted_at IS NULL").
			Where("(m.sender_id IS NULL OR m.sender_id <> ?)", recipientID)
	}
	n, err := undelivered(idb.NewSelect().Model((*Message)(nil))).Count(ctx)
	if err != nil {
		return nil, mapErr("count undelivered", err)
	}
	u.Count = int64(n)
	if n == 0 {
		return &u, nil
	}
	latest := new(Message)
	if err := undelivered(idb.NewSelect().Model(latest)).OrderExpr("m.seq DESC").Limit(1).Scan(ctx); err != nil {
		return nil, mapErr("select latest undelivered", err)
	}
	u.Latest = latest
	return &u, nil
}

// WebhookOff records that a receiver answered 410 Gone: no instance sends
// it anything until the row is deleted.
type WebhookOff struct {
	bun.BaseModel `bun:"table:notify_webhook_off,alias:w"`

	// EndpointKey identifies the receiver's URL (a hash of it, since the
	// URL may carry a token); Endpoint is the URL without credentials or
	// query, for people.
	EndpointKey string    `bun:"endpoint_key,pk"`
	Endpoint    string    `bun:"endpoint,notnull"`
	Status      int       `bun:"status,notnull"`
	OffAt       time.Time `bun:"off_at,notnull"`
}

// InsertWebhookOff turns a receiver off; one already off stays as it was.
func InsertWebhookOff(ctx context.Context, idb bun.IDB, w *WebhookOff) error {
	w.OffAt = now()
	_, err := idb.NewInsert().Model(w).On("CONFLICT (endpoint_key) DO NOTHING").Exec(ctx)
	return mapErr("insert webhook off", err)
}

// SelectWebhookOff reads whether a receiver is off. ErrNotFound: it is on.
func SelectWebhookOff(ctx context.Context, idb bun.IDB, endpointKey string) (*WebhookOff, error) {
	w := new(WebhookOff)
	if err := idb.NewSelect().Model(w).Where("w.endpoint_key = ?", endpointKey).Scan(ctx); err != nil {
		return nil, mapErr("select webhook off", err)
	}
	return w, nil
}
