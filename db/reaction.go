package db

import (
	"context"
	"time"

	"github.com/uptrace/bun"
)

// Reaction is one user's emoji on one message. The key (message, user,
// emoji) makes adding the same reaction twice a no-op.
type Reaction struct {
	bun.BaseModel `bun:"table:reactions,alias:r"`

	MessageID string    `bun:"message_id,pk"`
	ProfileID string    `bun:"profile_id,pk"`
	Emoji     string    `bun:"emoji,pk"`
	CreatedAt time.Time `bun:"created_at,notnull"`
}

// SelectReactions loads the reactions on the given messages, oldest first,
// keyed by message id; messages without reactions have no key.
func SelectReactions(ctx context.Context, idb bun.IDB, messageIDs []string) (map[string][]*Reaction, error) {
	out := make(map[string][]*Reaction)
	if len(messageIDs) == 0 {
		return out, nil
	}
	var rs []*Reaction
	err := idb.NewSelect().Model(&rs).
		Where("r.message_id IN (?)", bun.In(messageIDs)).
		OrderExpr("r.created_at, r.profile_id, r.emoji").
		Scan(ctx)
	if err != nil {
		return nil, mapErr("select reactions", err)
	}
	for _, r := range rs {
		out[r.MessageID] = append(out[r.MessageID], r)
	}
	return out, nil
}
