package db

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// ContactPolicy is what a conversation does with a message whose text
// carries contact details. Its values are the GraphQL enum's.
type ContactPolicy string

// The contact policies.
const (
	// ContactAllow stores and delivers messages as written.
	ContactAllow ContactPolicy = "ALLOW"
	// ContactFlag stores and delivers them as written, flagged.
	ContactFlag ContactPolicy = "FLAG"
	// ContactMask hides the details from the recipient, flagged.
	ContactMask ContactPolicy = "MASK"
	// ContactBlock refuses them.
	ContactBlock ContactPolicy = "BLOCK"
)

// Valid reports whether p is one of the policies.
func (p ContactPolicy) Valid() bool {
	switch p {
	case ContactAllow, ContactFlag, ContactMask, ContactBlock:
		return true
	}
	return false
}

// UnmarshalGQL lets gqlgen bind the ContactPolicy enum to this type.
func (p *ContactPolicy) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("ContactPolicy must be a string, got %T", v)
	}
	*p = ContactPolicy(s)
	if !p.Valid() {
		return fmt.Errorf("%q is not a valid ContactPolicy", s)
	}
	return nil
}

// MarshalGQL writes the enum value as a JSON string.
func (p ContactPolicy) MarshalGQL(w io.Writer) {
	_, _ = io.WriteString(w, strconv.Quote(string(p)))
}

// MessageFlag marks a message for moderation. Its values are the GraphQL
// enum's.
type MessageFlag string

// FlagContactDetails: the text carried contact details when it was sent
// or last edited (under the FLAG or MASK policy).
const FlagContactDetails MessageFlag = "CONTACT_DETAILS"

// UnmarshalGQL lets gqlgen bind the MessageFlag enum to this type.
func (f *MessageFlag) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("MessageFlag must be a string, got %T", v)
	}
	if MessageFlag(s) != FlagContactDetails {
		return fmt.Errorf("%q is not a valid MessageFlag", s)
	}
	*f = MessageFlag(s)
	return nil
}

// MarshalGQL writes the enum value as a JSON string.
func (f MessageFlag) MarshalGQL(w io.Writer) {
	_, _ = io.WriteString(w, strconv.Quote(string(f)))
}

// MessageFlags are a message's flags, stored as one comma-separated text
// column, NULL for none.
type MessageFlags []MessageFlag

var _ driver.Valuer = MessageFlags(nil)

// Value stores the flags: NULL for none.
func (f MessageFlags) Value() (driver.Value, error) {
	if len(f) == 0 {
		return nil, nil
	}
	parts := make([]string, len(f))
	for i, x := range f {
		parts[i] = string(x)
	}
	return strings.Join(parts, ","), nil
}

// Scan reads the stored flags.
func (f *MessageFlags) Scan(src any) error {
	var s string
	switch v := src.(type) {
	case nil:
		*f = nil
		return nil
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return fmt.Errorf("scan message flags: unsupported type %T", src)
	}
	*f = nil
	for _, part := range strings.Split(s, ",") {
		if part != "" {
			*f = append(*f, MessageFlag(part))
		}
	}
	return nil
}

// Has reports whether flag is among f.
func (f MessageFlags) Has(flag MessageFlag) bool {
	for _, x := range f {
		if x == flag {
			return true
		}
	}
	return false
}

// AsWritten is the text as its sender wrote it: the original of a masked
// message, else its text.
func (m *Message) AsWritten() string {
	if m.OriginalText != nil {
		return *m.OriginalText
	}
	return m.MessageText
}

// ErrPolicyChanged means the conversation's contact policy changed after
// it was read for a message: read it again and decide again.
var ErrPolicyChanged = errors.New("contact policy changed")

// SelectSendState reads what screening a user's message needs: whether
// the conversation is open and its stored contact policy (nil: the
// server's default). ErrNotFound when the sender does not take part in it
// (or it does not exist), so that strangers learn nothing.
func SelectSendState(ctx context.Context, idb bun.IDB, conversationID, profileID string) (ConversationStatus, *ContactPolicy, error) {
	var (
		status ConversationStatus
		policy *ContactPolicy
	)
	err := idb.NewSelect().TableExpr("conversations AS c").
		ColumnExpr("c.status, c.contact_policy").
		Join("JOIN participants AS p ON p.conversation_id = c.id AND p.profile_id = ?", profileID).
		Where("c.id = ?", conversationID).
		Scan(ctx, &status, &policy)
	if err != nil {
		return "", nil, mapErr("select send state", err)
	}
	return status, policy, nil
}

// LockContactPolicy reads a conversation's stored contact policy (nil:
// the server's default) and, on PostgreSQL, holds a share lock on the
// conversation's row until the transaction ends, so that a policy change
// waits for the write that was decided under the old one (SQLite's
// transactions hold the write lock from their start). Call it inside a
// transaction.
func LockContactPolicy(ctx context.Context, idb bun.IDB, conversationID string) (*ContactPolicy, error) {
	return lockPolicy(ctx, idb, conversationID, "SHARE")
}

// LockContactPolicyForUpdate is LockContactPolicy for the transaction that
// changes the policy: the row is locked for update.
func LockContactPolicyForUpdate(ctx context.Context, idb bun.IDB, conversationID string) (*ContactPolicy, error) {
	return lockPolicy(ctx, idb, conversationID, "UPDATE")
}

func lockPolicy(ctx context.Context, idb bun.IDB, conversationID, mode string) (*ContactPolicy, error) {
	var policy *ContactPolicy
	q := idb.NewSelect().Model((*Conversation)(nil)).Column("contact_policy").Where("id = ?", conversationID)
	if idb.Dialect().Name() == dialect.PG {
		q = q.For(mode)
	}
	if err := q.Scan(ctx, &policy); err != nil {
		return nil, mapErr("lock contact policy", err)
	}
	return policy, nil
}

// UpdateContactPolicy stores a conversation's contact policy. It leaves
// updated_at alone, like the status changes: that is the inbox's order,
// the time of the last message. ErrNotFound: no such conversation.
func UpdateContactPolicy(ctx context.Context, idb bun.IDB, conversationID string, policy ContactPolicy) error {
	res, err := idb.NewUpdate().Model((*Conversation)(nil)).
		Set("contact_policy = ?", policy).
		Where("id = ?", conversationID).
		Exec(ctx)
	changed, err := oneRowChanged("update contact policy", res, err)
	if err == nil && !changed {
		err = fmt.Errorf("update contact policy: %w", ErrNotFound)
	}
	return err
}

// selectStatusAndPolicy reads a conversation's status and stored policy.
func selectStatusAndPolicy(ctx context.Context, idb bun.IDB, conversationID string) (ConversationStatus, *ContactPolicy, error) {
	var (
		status ConversationStatus
		policy *ContactPolicy
	)
	err := idb.NewSelect().Model((*Conversation)(nil)).Column("status", "contact_policy").
		Where("id = ?", conversationID).Scan(ctx, &status, &policy)
	if err != nil {
		return "", nil, mapErr("select conversation status and policy", err)
	}
	return status, policy, nil
}

// samePolicy compares stored policies, nil being the default.
func samePolicy(a, b *ContactPolicy) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
