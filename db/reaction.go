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

// InsertReaction adds r, stamping its CreatedAt; adding one that is already
// there changes nothing. It reports whether a row was added.
func InsertReaction(ctx context.Context, idb bun.IDB, r *Reaction) (bool, error) {
	r.CreatedAt = now()
	res, err := idb.NewInsert().Model(r).On("CONFLICT DO NOTHING").Exec(ctx)
	return oneRowChanged("insert reaction", res, err)
}

// DeleteReaction removes one user's emoji from a message and reports
// whether it was there.
func DeleteReaction(ctx context.Context, idb bun.IDB, messageID, profileID, emoji string) (bool, error) {
	res, err := idb.NewDelete().Model((*Reaction)(nil)).
		Where("message_id = ?", messageID).
		Where("profile_id = ?", profileID).
		Where("emoji = ?", emoji).
		Exec(ctx)
	return oneRowChanged("delete reaction", res, err)
}

// DeleteReactions removes every reaction on a message.
func DeleteReactions(ctx context.Context, idb bun.IDB, messageID string) error {
	_, err := idb.NewDelete().Model((*Reaction)(nil)).Where("message_id = ?", messageID).Exec(ctx)
	return mapErr("delete reactions", err)
}
