package db

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// Role is a participant's part in a conversation. Its values are the
// GraphQL ParticipantRole enum's.
type Role string

// The roles of a job conversation.
const (
	RoleClient Role = "CLIENT"
	RoleWorker Role = "WORKER"
)

// UnmarshalGQL lets gqlgen bind the ParticipantRole enum to this type.
func (r *Role) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("ParticipantRole must be a string, got %T", v)
	}
	switch Role(s) {
	case RoleClient, RoleWorker:
		*r = Role(s)
		return nil
	}
	return fmt.Errorf("%q is not a valid ParticipantRole", s)
}

// MarshalGQL writes the enum value as a JSON string.
func (r Role) MarshalGQL(w io.Writer) {
	_, _ = io.WriteString(w, strconv.Quote(string(r)))
}

// ConversationStatus says whether participants may still write. Its values
// are the GraphQL enum's.
type ConversationStatus string

// The states of a conversation.
const (
	ConversationOpen   ConversationStatus = "OPEN"
	ConversationClosed ConversationStatus = "CLOSED"
)

// UnmarshalGQL lets gqlgen bind the ConversationStatus enum to this type.
func (s *ConversationStatus) UnmarshalGQL(v any) error {
	str, ok := v.(string)
	if !ok {
		return fmt.Errorf("ConversationStatus must be a string, got %T", v)
	}
	switch ConversationStatus(str) {
	case ConversationOpen, ConversationClosed:
		*s = ConversationStatus(str)
		return nil
	}
	return fmt.Errorf("%q is not a valid ConversationStatus", str)
}

// MarshalGQL writes the enum value as a JSON string.
func (s ConversationStatus) MarshalGQL(w io.Writer) {
	_, _ = io.WriteString(w, strconv.Quote(string(s)))
}

// Conversation is one job's chat. Who takes part, and how far each has read,
// lives in Participants, so that more people can join later.
type Conversation struct {
	bun.BaseModel `bun:"table:conversations,alias:c"`

	ID            string     `bun:"id,pk"`
	JobID         string     `bun:"job_id,notnull"`
	JobKey        string     `bun:"job_key,notnull"`
	LastSeq       int64      `bun:"last_seq,notnull"`
	LastMessageID *string    `bun:"last_message_id"`
	LastMessageAt *time.Time `bun:"last_message_at"`
	// Status is OPEN or CLOSED; a closed conversation is read-only for
	// its participants.
	Status      ConversationStatus `bun:"status,notnull,default:'OPEN'"`
	ClosedAt    *time.Time         `bun:"closed_at"`
	CloseReason *string            `bun:"close_reason"`
	// ContactPolicy is the conversation's own contact policy; nil follows
	// the server's default.
	ContactPolicy *ContactPolicy `bun:"contact_policy"`
	CreatedAt     time.Time      `bun:"created_at,notnull"`
	UpdatedAt     time.Time      `bun:"updated_at,notnull"`

	Job          *Job           `bun:"rel:belongs-to,join:job_id=id"`
	LastMessage  *Message       `bun:"rel:belongs-to,join:last_message_id=id"`
	Participants []*Participant `bun:"rel:has-many,join:id=conversation_id"`

	// ActivityAt is the sort key of the list it was selected in.
	ActivityAt time.Time `bun:"activity_at,scanonly"`
}

// Participant is a profile's membership of a conversation with its read
// pointer. Unread counts are LastSeq - LastReadSeq: derived, never counted.
type Participant struct {
	bun.BaseModel `bun:"table:participants,alias:p"`

	ConversationID string `bun:"conversation_id,pk"`
	ProfileID      string `bun:"profile_id,pk"`
	Role           Role   `bun:"role,notnull"`
	LastReadSeq    int64  `bun:"last_read_seq,notnull"`
	// LastDeliveredSeq is how far the participant's apps have received
	// messages; never behind LastReadSeq.
	LastDeliveredSeq int64     `bun:"last_delivered_seq,notnull"`
	JoinedAt         time.Time `bun:"joined_at,notnull"`

	Profile *Profile `bun:"rel:belongs-to,join:profile_id=id"`
}

// Member returns the participant with the given profile id, or nil.
func (c *Conversation) Member(profileID string) *Participant {
	for _, p := range c.Participants {
		if p.ProfileID == profileID {
			return p
		}
	}
	return nil
}

// WithRole returns the first participant in role, or nil.
func (c *Conversation) WithRole(role Role) *Participant {
	for _, p := range c.Participants {
		if p.Role == role {
			return p
		}
	}
	return nil
}

// JobKey is the natural key of a job conversation: the job and its two
// parties, escaped so that no choice of ids can collide.
func JobKey(jobID, clientID, workerID string) string {
	return url.PathEscape(jobID) + "/" + url.PathEscape(clientID) + "/" + url.PathEscape(workerID)
}

// InsertConversationIfAbsent inserts c unless a conversation with its JobKey
// exists, and then loads the stored one into c. created says which happened.
func InsertConversationIfAbsent(ctx context.Context, idb bun.IDB, c *Conversation) (created bool, err error) {
	t := now()
	c.ID, c.CreatedAt, c.UpdatedAt = NewID(), t, t
	if c.Status == "" {
		c.Status = ConversationOpen
	}
	res, err := idb.NewInsert().Model(c).On("CONFLICT (job_key) DO NOTHING").Exec(ctx)
	if err != nil {
		return false, mapErr("insert conversation", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, mapErr("insert conversation", err)
	}
	if err := idb.NewSelect().Model(c).Where("c.job_key = ?", c.JobKey).Scan(ctx); err != nil {
		return false, mapErr("select conversation by job key", err)
	}
	return n == 1, nil
}

// InsertParticipant adds p to its conversation unless it is already there.
func InsertParticipant(ctx context.Context, idb bun.IDB, p *Participant) error {
	p.JoinedAt = now()
	_, err := idb.NewInsert().Model(p).On("CONFLICT (conversation_id, profile_id) DO NOTHING").Exec(ctx)
	return mapErr("insert participant", err)
}

// withDetails loads what a Conversation resolves to: its job, last message
// and participants with their profiles, in a fixed number of queries however
// many conversations q selects.
func withDetails(q *bun.SelectQuery) *bun.SelectQuery {
	return q.Relation("Job").
		Relation("LastMessage").
		Relation("Participants", func(q *bun.SelectQuery) *bun.SelectQuery {
			return q.Relation("Profile").OrderExpr("p.joined_at, p.profile_id")
		})
}

// SelectConversation loads one conversation with its details.
func SelectConversation(ctx context.Context, idb bun.IDB, id string) (*Conversation, error) {
	c := new(Conversation)
	err := withDetails(idb.NewSelect().Model(c)).Where("c.id = ?", id).Scan(ctx)
	if err != nil {
		return nil, mapErr("select conversation", err)
	}
	return c, nil
}

// SelectParticipant loads a profile's membership of a conversation;
// ErrNotFound when the profile is not in it (or it does not exist).
func SelectParticipant(ctx context.Context, idb bun.IDB, conversationID, profileID string) (*Participant, error) {
	p := new(Participant)
	err := idb.NewSelect().Model(p).
		Where("p.conversation_id = ?", conversationID).
		Where("p.profile_id = ?", profileID).
		Scan(ctx)
	if err != nil {
		return nil, mapErr("select participant", err)
	}
	return p, nil
}

// SelectParticipants loads a conversation's participants with their
// profiles; an unknown conversation has none.
func SelectParticipants(ctx context.Context, idb bun.IDB, conversationID string) ([]*Participant, error) {
	var ps []*Participant
	err := idb.NewSelect().Model(&ps).Relation("Profile").
		Where("p.conversation_id = ?", conversationID).
		OrderExpr("p.joined_at, p.profile_id").
		Scan(ctx)
	if err != nil {
		return nil, mapErr("select participants", err)
	}
	return ps, nil
}

// SelectParticipantsOf loads the participants of every conversation in
// conversationIDs, with their profiles, in one query.
func SelectParticipantsOf(ctx context.Context, idb bun.IDB, conversationIDs []string) ([]*Participant, error) {
	if len(conversationIDs) == 0 {
		return nil, nil
	}
	var ps []*Participant
	err := idb.NewSelect().Model(&ps).Relation("Profile").
		Where("p.conversation_id IN (?)", bun.List(conversationIDs)).
		Scan(ctx)
	if err != nil {
		return nil, mapErr("select participants of conversations", err)
	}
	return ps, nil
}

// SelectLastSeq reads a conversation's newest seq.
func SelectLastSeq(ctx context.Context, idb bun.IDB, conversationID string) (int64, error) {
	var seq int64
	err := idb.NewSelect().Model((*Conversation)(nil)).Column("last_seq").
		Where("id = ?", conversationID).Scan(ctx, &seq)
	if err != nil {
		return 0, mapErr("select last seq", err)
	}
	return seq, nil
}

// SeqPosition is how far a reader has got in a conversation's messages.
type SeqPosition struct {
	ConversationID string
	Seq            int64
}

// ConversationSeq is a conversation's newest seq.
type ConversationSeq struct {
	ID      string `bun:"id"`
	LastSeq int64  `bun:"last_seq"`
}

// SelectConversationsBehind compares positions with the conversations'
// newest seqs, in one query however many there are (the feeds' sweep asks
// for every conversation with local subscribers at once), and returns the
// conversations that have messages after their position and that last
// changed before `before`. The database does the comparing, so the answer
// is usually empty: nothing to scan. The positions go as one value, not a
// list of thousands, so the statement stays short to format and parse.
func SelectConversationsBehind(ctx context.Context, idb bun.IDB, at []SeqPosition, before time.Time) ([]ConversationSeq, error) {
	if len(at) == 0 {
		return nil, nil
	}
	var out []ConversationSeq
	var q *bun.SelectQuery
	if idb.Dialect().Name() == dialect.PG {
		ids, seqs := make([]string, len(at)), make([]int64, len(at))
		for i, p := range at {
			ids[i], seqs[i] = p.ConversationID, p.Seq
		}
		q = idb.NewSelect().
			TableExpr("unnest(?::text[], ?::bigint[]) AS f (id, seq)", pgdialect.Array(ids), pgdialect.Array(seqs)).
			Join("JOIN conversations AS c ON c.id = f.id")
	} else {
		pairs := make([][2]any, len(at))
		for i, p := range at {
			pairs[i] = [2]any{p.ConversationID, p.Seq}
		}
		list, err := json.Marshal(pairs)
		if err != nil {
			return nil, fmt.Errorf("select conversations behind: %w", err)
		}
		q = idb.NewSelect().
			TableExpr("(SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS seq FROM json_each(?)) AS f", string(list)).
			Join("JOIN conversations AS c ON c.id = f.id")
	}
	err := q.ColumnExpr("c.id, c.last_seq").
		Where("c.last_seq > f.seq").
		Where("c.updated_at < ?", before).
		Scan(ctx, &out)
	if err != nil {
		return nil, mapErr("select conversations behind", err)
	}
	return out, nil
}

// ProfileConversation is one conversation of one profile.
type ProfileConversation struct {
	ProfileID      string `bun:"profile_id"`
	ConversationID string `bun:"conversation_id"`
}

// SelectConversationsChangedSince lists, for each of profileIDs, the
// conversations they take part in that changed at or after since, in one
// query: what a broker outage may have kept from their inboxes.
func SelectConversationsChangedSince(ctx context.Context, idb bun.IDB, profileIDs []string, since time.Time) ([]ProfileConversation, error) {
	if len(profileIDs) == 0 {
		return nil, nil
	}
	var out []ProfileConversation
	err := idb.NewSelect().TableExpr("participants AS p").
		Join("JOIN conversations AS c ON c.id = p.conversation_id").
		ColumnExpr("p.profile_id, p.conversation_id").
		Where("p.profile_id IN (?)", bun.List(profileIDs)).
		Where("c.updated_at >= ?", since).
		Scan(ctx, &out)
	if err != nil {
		return nil, mapErr("select conversations changed since", err)
	}
	return out, nil
}

// ConversationCursor is a position in an activity-ordered conversation list.
type ConversationCursor struct {
	ActivityAt time.Time
	ID         string
}

// ConversationFilter selects a page of a conversation list, newest activity
// first.
type ConversationFilter struct {
	// ProfileID limits the list to that profile's conversations; empty
	// lists every conversation.
	ProfileID string
	JobID     string
	// UnreadOnly keeps conversations with messages after ProfileID's pointer.
	UnreadOnly bool
	After      *ConversationCursor
	Limit      int
}

// SelectConversations returns a page of conversations with their details.
func SelectConversations(ctx context.Context, idb bun.IDB, f ConversationFilter) ([]*Conversation, error) {
	var cs []*Conversation
	q := withDetails(idb.NewSelect().Model(&cs))
	// A conversation's activity is its own, the same for both participants
	// (see migration 20261125000002).
	activity := "c.updated_at"
	if f.ProfileID != "" {
		q = q.Join("JOIN participants AS me ON me.conversation_id = c.id AND me.profile_id = ?", f.ProfileID)
		if f.UnreadOnly {
			q = q.Where("c.last_seq > me.last_read_seq")
		}
	}
	q = q.ColumnExpr("c.*").ColumnExpr(activity + " AS activity_at")
	if f.JobID != "" {
		q = q.Where("c.job_id = ?", f.JobID)
	}
	if f.After != nil {
		q = q.Where("("+activity+" < ? OR ("+activity+" = ? AND c.id < ?))", f.After.ActivityAt, f.After.ActivityAt, f.After.ID)
	}
	q = q.OrderExpr(activity + " DESC").OrderExpr("c.id DESC")
	if f.Limit > 0 {
		q = q.Limit(int64(f.Limit))
	}
	if err := q.Scan(ctx); err != nil {
		return nil, mapErr("select conversations", err)
	}
	return cs, nil
}

// UnreadTotal counts a profile's unread messages over all its conversations.
func UnreadTotal(ctx context.Context, idb bun.IDB, profileID string) (int64, error) {
	var total int64
	err := idb.NewSelect().
		TableExpr("participants AS p").
		Join("JOIN conversations AS c ON c.id = p.conversation_id").
		ColumnExpr("COALESCE(SUM(c.last_seq - p.last_read_seq), 0)").
		Where("p.profile_id = ?", profileID).
		Scan(ctx, &total)
	if err != nil {
		return 0, mapErr("unread total", err)
	}
	return total, nil
}

// SelectConversationStatus reads whether a conversation is open or closed.
func SelectConversationStatus(ctx context.Context, idb bun.IDB, conversationID string) (ConversationStatus, error) {
	var status ConversationStatus
	err := idb.NewSelect().Model((*Conversation)(nil)).Column("status").
		Where("id = ?", conversationID).Scan(ctx, &status)
	if err != nil {
		return "", mapErr("select conversation status", err)
	}
	return status, nil
}
