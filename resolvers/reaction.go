package resolvers

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph/model"
	"github.com/jobchat/jobchat/internal/auth"
	"github.com/jobchat/jobchat/internal/emoji"
)

// maxReactionsPerUser caps the distinct emoji one user puts on one message,
// so that a message's reactions stay a short list to load and broadcast.
const maxReactionsPerUser = 20

// checkEmoji accepts exactly one fully-qualified emoji sequence.
func checkEmoji(field, s string) error {
	if !emoji.Valid(s) {
		return badInput(field, "must be exactly one fully-qualified emoji (Unicode Emoji %s)", emoji.Version)
	}
	return nil
}

// checkReactable refuses reactions on messages that take none.
func checkReactable(m *db.Message) error {
	switch {
	case m.DeletedAt != nil:
		return failedPrecondition("message %q was deleted: it takes no reactions", m.ID)
	case m.MessageType == db.MessageSystem:
		return failedPrecondition("message %q is a SYSTEM message: it takes no reactions", m.ID)
	}
	return nil
}

// checkReactionLimit applies the per-user cap to a new reaction, given the
// message's reactions. present means the user already reacted with e, which
// is no change and always allowed.
func checkReactionLimit(rs []*db.Reaction, profileID, e string) (present bool, err error) {
	mine := 0
	for _, r := range rs {
		if r.ProfileID != profileID {
			continue
		}
		if r.Emoji == e {
			return true, nil
		}
		mine++
	}
	if mine >= maxReactionsPerUser {
		return false, badInput("emoji", "a user can put at most %d different reactions on one message: remove one first", maxReactionsPerUser)
	}
	return false, nil
}

// groupReactions groups rs (oldest first) by emoji, in the order of each
// group's earliest reaction, marking the groups viewerID is in. An empty
// viewerID (the job-service) is in none.
func groupReactions(rs []*db.Reaction, viewerID string) []*model.ReactionGroup {
	groups := make([]*model.ReactionGroup, 0, len(rs))
	byEmoji := make(map[string]*model.ReactionGroup, len(rs))
	for _, r := range rs {
		g := byEmoji[r.Emoji]
		if g == nil {
			g = &model.ReactionGroup{Emoji: r.Emoji}
			byEmoji[r.Emoji] = g
			groups = append(groups, g)
		}
		g.Count++
		if viewerID != "" && r.ProfileID == viewerID {
			g.ReactedByMe = true
		}
	}
	return groups
}

// reactionGroups resolves Message.reactions for the viewer in ctx, through
// the response's cache, which pages and the subscription engine seed.
func (r *Resolver) reactionGroups(ctx context.Context, m *db.Message) ([]*model.ReactionGroup, error) {
	if m.DeletedAt != nil {
		// A deletion removes the reactions in its own transaction.
		return []*model.ReactionGroup{}, nil
	}
	rs, err := cacheFrom(ctx).loadReactions(ctx, r.db, m.ID)
	if err != nil {
		return nil, fmt.Errorf("load reactions: %w", err)
	}
	return groupReactions(rs, viewerOf(ctx)), nil
}

// visibleMessage loads a message c may see: services see all, users those
// of their conversations. Absent and not-yours give the same NOT_FOUND.
// With lock, inside a transaction, it also locks the message (see
// db.LockMessage) so that the checks made on it hold until the commit.
func visibleMessage(ctx context.Context, idb bun.IDB, c auth.Caller, id string, lock bool) (*db.Message, error) {
	load := db.SelectMessage
	if lock {
		load = db.LockMessage
	}
	m, err := load(ctx, idb, id)
	if err != nil {
		return nil, orNotFound(err, "message", id, "load message")
	}
	if c.Service {
		return m, nil
	}
	if _, err := db.SelectParticipant(ctx, idb, m.ConversationID, c.ID); err != nil {
		return nil, orNotFound(err, "message", id, "check access")
	}
	return m, nil
}

func (r *Resolver) addReaction(ctx context.Context, messageID, e string) (*db.Message, error) {
	return r.react(ctx, "addReaction", messageID, e, true)
}

func (r *Resolver) removeReaction(ctx context.Context, messageID, e string) (*db.Message, error) {
	return r.react(ctx, "removeReaction", messageID, e, false)
}

// react adds or removes the caller's reaction and broadcasts the message's
// reactions if they changed. The count check and the insert share one
// transaction under the message's lock, so concurrent adds cannot pass the
// cap together.
func (r *Resolver) react(ctx context.Context, op, messageID, e string, add bool) (*db.Message, error) {
	c, err := userCaller(ctx, op)
	if err != nil {
		return nil, err
	}
	if err := checkID("messageId", messageID); err != nil {
		return nil, err
	}
	if err := checkEmoji("emoji", e); err != nil {
		return nil, err
	}
	var (
		m       *db.Message
		rs      []*db.Reaction
		changed bool
	)
	err = r.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if m, err = visibleMessage(ctx, tx, c, messageID, true); err != nil {
			return err
		}
		cur, err := db.SelectReactions(ctx, tx, []string{m.ID})
		if err != nil {
			return err
		}
		rs = cur[m.ID]
		if add {
			if err := checkReactable(m); err != nil {
				return err
			}
			present, err := checkReactionLimit(rs, c.ID, e)
			if present || err != nil {
				return err
			}
			changed, err = db.InsertReaction(ctx, tx, &db.Reaction{MessageID: m.ID, ProfileID: c.ID, Emoji: e})
		} else {
			// Removing from a SYSTEM or deleted message finds nothing:
			// a no-op, like any reaction that is not there.
			changed, err = db.DeleteReaction(ctx, tx, m.ID, c.ID, e)
		}
		if err != nil || !changed {
			return err
		}
		after, err := db.SelectReactions(ctx, tx, []string{m.ID})
		rs = after[m.ID]
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	cacheFrom(ctx).putReactions([]string{m.ID}, map[string][]*db.Reaction{m.ID: rs})
	if changed {
		r.publishActivity(ctx, activity{Kind: model.ActivityKindReactionsChanged, ConversationID: m.ConversationID,
			ActorID: c.ID, Message: m, Reactions: rs})
	}
	return m, nil
}
