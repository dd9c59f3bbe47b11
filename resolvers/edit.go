package resolvers

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph/model"
	"github.com/jobchat/jobchat/internal/auth"
)

// checkEditable applies the edit rules, in the order a client can act on:
// whose message it is, then its state, then the clock.
func checkEditable(m *db.Message, callerID string, now time.Time, window time.Duration) error {
	if m.SenderID == nil || *m.SenderID != callerID {
		return forbidden("message %q is not yours: only its sender can edit it", m.ID)
	}
	if m.DeletedAt != nil {
		return failedPrecondition("message %q was deleted: it cannot be edited", m.ID)
	}
	if m.MessageType != db.MessageText {
		return failedPrecondition("message %q is a %s message: only TEXT messages can be edited", m.ID, m.MessageType)
	}
	if now.Sub(m.CreatedAt) > window {
		return forbidden("message %q can no longer be edited: the edit window of %s after sending has passed", m.ID, window)
	}
	return nil
}

// checkDeletable lets senders delete their own messages and the job-service
// any message, for moderation.
func checkDeletable(m *db.Message, c auth.Caller) error {
	if c.Service {
		return nil
	}
	if m.SenderID == nil || *m.SenderID != c.ID {
		return forbidden("message %q is not yours: only its sender can delete it", m.ID)
	}
	return nil
}

// editMessage replaces the text of the caller's TEXT message and broadcasts
// it. The same text again changes nothing. The new text is screened for
// contact details as a send is, under the conversation's policy now.
func (r *Resolver) editMessage(ctx context.Context, messageID, text string) (*db.Message, error) {
	c, err := userCaller(ctx, "editMessage")
	if err != nil {
		return nil, err
	}
	if err := checkID("messageId", messageID); err != nil {
		return nil, err
	}
	if err := checkText("messageText", text, r.cfg.MaxMessageChars, true); err != nil {
		return nil, err
	}
	// The checks that need no lock run first, on the pool: requireOpen
	// must not run inside the transaction, which holds a connection of
	// its own. The transaction checks again what a race can change.
	m, err := visibleMessage(ctx, r.db, c, messageID, false)
	if err != nil {
		return nil, err
	}
	if err := checkEditable(m, c.ID, time.Now(), r.cfg.EditWindow); err != nil {
		return nil, err
	}
	if err := r.requireOpen(ctx, m.ConversationID); err != nil {
		return nil, err
	}
	if m.AsWritten() == text {
		return m, nil
	}
	spans := r.cfg.Contact.Find(text)
	var (
		rs        []*db.Reaction
		changed   bool
		wasLatest bool
	)
	err = r.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if m, err = visibleMessage(ctx, tx, c, messageID, true); err != nil {
			return err
		}
		if err := checkEditable(m, c.ID, time.Now(), r.cfg.EditWindow); err != nil {
			return err
		}
		if m.AsWritten() == text {
			return nil
		}
		out, err := r.screenEdit(ctx, tx, m.ConversationID, text, spans)
		if err != nil {
			return err
		}
		if changed, err = db.UpdateMessageText(ctx, tx, m, out.text, out.original, out.flags); err != nil || !changed {
			return err
		}
		rs, wasLatest, err = afterChange(ctx, tx, m)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("editMessage: %w", err)
	}
	if changed {
		cacheFrom(ctx).putReactions([]string{m.ID}, map[string][]*db.Reaction{m.ID: rs})
		r.publishChange(ctx, model.ActivityKindMessageEdited, c, m, rs, wasLatest)
	}
	return m, nil
}

// deleteMessage clears a message's content and reactions for everyone and
// broadcasts it. Deleting a deleted message changes nothing. An upload the
// message sent goes too: its row in the deletion's transaction, its files
// (a photo of someone's home, say) from the store once that has committed,
// so that URLs signed before the deletion find nothing.
func (r *Resolver) deleteMessage(ctx context.Context, messageID string) (*db.Message, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkID("messageId", messageID); err != nil {
		return nil, err
	}
	var (
		m         *db.Message
		changed   bool
		wasLatest bool
		upload    *db.UploadedFile
	)
	err = r.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if m, err = visibleMessage(ctx, tx, c, messageID, true); err != nil {
			return err
		}
		if err := checkDeletable(m, c); err != nil {
			return err
		}
		uploadID := m.AttachmentID // cleared by the deletion
		if changed, err = db.UpdateMessageDeleted(ctx, tx, m); err != nil || !changed {
			return err
		}
		if err := db.DeleteReactions(ctx, tx, m.ID); err != nil {
			return err
		}
		if uploadID != nil {
			if upload, err = db.DeleteSentAttachment(ctx, tx, *uploadID, m.ID); err != nil {
				return err
			}
		}
		_, wasLatest, err = afterChange(ctx, tx, m)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("deleteMessage: %w", err)
	}
	if upload != nil {
		r.deleteFiles(ctx, upload)
	}
	if changed {
		cacheFrom(ctx).putReactions([]string{m.ID}, nil)
		r.publishChange(ctx, model.ActivityKindMessageDeleted, c, m, nil, wasLatest)
	}
	return m, nil
}

// afterChange reads, in the changing transaction, what the broadcast needs:
// the message's reactions (none once deleted) and whether it is its
// conversation's last message, which inbox previews show.
func afterChange(ctx context.Context, tx bun.Tx, m *db.Message) (rs []*db.Reaction, wasLatest bool, err error) {
	if m.DeletedAt == nil {
		all, err := db.SelectReactions(ctx, tx, []string{m.ID})
		if err != nil {
			return nil, false, err
		}
		rs = all[m.ID]
	}
	last, err := db.SelectLastMessageID(ctx, tx, m.ConversationID)
	if err != nil {
		return nil, false, err
	}
	return rs, last == m.ID, nil
}

// publishChange broadcasts an edit or deletion after its commit, and tells
// the inboxes when the message is the one their previews show.
func (r *Resolver) publishChange(ctx context.Context, kind model.ActivityKind, c auth.Caller, m *db.Message, rs []*db.Reaction, wasLatest bool) {
	actor := c.ID
	if c.Service {
		actor = ""
	}
	r.publishActivity(ctx, activity{Kind: kind, ConversationID: m.ConversationID, ActorID: actor, Message: m, Reactions: rs})
	if wasLatest {
		r.publishInboxAll(ctx, model.InboxEventKindConversationUpdated, m.ConversationID)
	}
}
