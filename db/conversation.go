package db

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/uptrace/bun"
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
