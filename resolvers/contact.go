package resolvers

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"
	"github.com/uptrace/bun"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph/model"
	"github.com/jobchat/jobchat/internal/auth"
	"github.com/jobchat/jobchat/internal/contact"
)

// Contact details stay on the platform: a user's TEXT message (sent, over
// any transport, or edited) is screened for contact details, and its
// conversation's contact policy decides what is stored. decideContact is
// the rule; everything else applies it.

// contactOutcome is how a screened text is stored.
type contactOutcome struct {
	// text is message_text: what the recipient reads.
	text string
	// original is the text as written when text is masked; nil otherwise.
	original *string
	flags    db.MessageFlags
}

// decideContact applies policy to text, in which spans are the contact
// details found: ALLOW and texts without any store it as written; FLAG
// flags it; MASK flags it and gives the recipient the text with the
// details replaced, keeping the original; BLOCK refuses it, naming field.
func decideContact(policy db.ContactPolicy, text string, spans []contact.Span, field string) (contactOutcome, error) {
	if len(spans) == 0 || policy == db.ContactAllow {
		return contactOutcome{text: text}, nil
	}
	flags := db.MessageFlags{db.FlagContactDetails}
	switch policy {
	case db.ContactMask:
		original := text
		return contactOutcome{text: contact.Mask(text, spans, contact.Hidden), original: &original, flags: flags}, nil
	case db.ContactBlock:
		return contactOutcome{}, &contactBlockedError{Field: field}
	}
	return contactOutcome{text: text, flags: flags}, nil
}

// policy is a conversation's contact policy: its own, or the default.
func (r *Resolver) policy(stored *db.ContactPolicy) db.ContactPolicy {
	if stored != nil && stored.Valid() {
		return *stored
	}
	return r.cfg.ContactPolicy
}

// maxPolicyRaces bounds how often a send decides again because the
// conversation's policy changed under it.
const maxPolicyRaces = 3

// sendScreened stores m, a user's TEXT message in which spans are the
// contact details found, under its conversation's policy. first is the
// message c already sent with in's clientMessageId, answered whatever the
// policy says now. The send statement checks that the policy it was
// decided under is still the stored one.
func (r *Resolver) sendScreened(ctx context.Context, c auth.Caller, m *db.Message, in model.SendMessageInput, spans []contact.Span) (first *db.Message, sender *db.Profile, err error) {
	if in.ClientMessageID != nil {
		if first, err := r.sentBefore(ctx, c, in); first != nil || err != nil {
			return first, nil, err
		}
	}
	text := m.MessageText
	for range maxPolicyRaces {
		// Who may send comes first, then the status, then the policy: a
		// stranger learns nothing, and a closed conversation says so.
		status, stored, err := db.SelectSendState(ctx, r.db, m.ConversationID, c.ID)
		if err != nil {
			return nil, nil, fmt.Errorf("send message: %w", err)
		}
		if status != db.ConversationOpen {
			return nil, nil, fmt.Errorf("send message: %w", db.ErrClosed)
		}
		out, err := decideContact(r.policy(stored), text, spans, "input.messageText")
		if err != nil {
			return nil, nil, err
		}
		m.MessageText, m.OriginalText, m.Flags = out.text, out.original, out.flags
		sender, err = db.SendUserMessageUnder(ctx, r.db, m, stored)
		if !errors.Is(err, db.ErrPolicyChanged) {
			return nil, sender, err
		}
	}
	return nil, nil, fmt.Errorf("send message: the contact policy of %s changed %d times during the send", m.ConversationID, maxPolicyRaces)
}

// screenEdit decides how an edit's text is stored, inside the edit's
// transaction: the policy is read there, and held until it commits.
func (r *Resolver) screenEdit(ctx context.Context, tx bun.Tx, conversationID, text string, spans []contact.Span) (contactOutcome, error) {
	if len(spans) == 0 {
		return contactOutcome{text: text}, nil
	}
	stored, err := db.LockContactPolicy(ctx, tx, conversationID)
	if err != nil {
		return contactOutcome{}, err
	}
	return decideContact(r.policy(stored), text, spans, "messageText")
}

// seesOriginal reports whether c reads m as its sender wrote it: the
// sender and the job-service (moderation) do; the recipient reads the
// masked text.
func seesOriginal(c auth.Caller, m *db.Message) bool {
	return c.Service || m.SenderID != nil && *m.SenderID == c.ID
}

// textFor is Message.messageText for the caller in ctx. Without a caller
// it is the masked text, the one anybody may read.
func textFor(ctx context.Context, m *db.Message) string {
	if m.OriginalText == nil {
		return m.MessageText
	}
	if c, err := caller(ctx); err == nil && seesOriginal(c, m) {
		return *m.OriginalText
	}
	return m.MessageText
}

// textView names the text of m that the caller in ctx reads, so that
// encodings of m can be shared by everyone who reads the same one: ""
// when m has one text for all, else "original" or "masked".
func textView(ctx context.Context, m *db.Message) string {
	if m.OriginalText == nil {
		return ""
	}
	if c, err := caller(ctx); err == nil && seesOriginal(c, m) {
		return "original"
	}
	return "masked"
}

// flagsOf is Message.flags: never null.
func flagsOf(m *db.Message) []db.MessageFlag {
	if len(m.Flags) == 0 {
		return []db.MessageFlag{}
	}
	return m.Flags
}

// setContactPolicy sets a conversation's policy for the messages stored
// from now on. Repeating it changes nothing; a change of the policy in
// force tells both inboxes (CONVERSATION_UPDATED). Every call is logged,
// for the audit.
func (r *Resolver) setContactPolicy(ctx context.Context, conversationID string, policy db.ContactPolicy) (*db.Conversation, error) {
	c, err := serviceCaller(ctx, "setContactPolicy")
	if err != nil {
		return nil, err
	}
	if err := checkID("conversationId", conversationID); err != nil {
		return nil, err
	}
	var before db.ContactPolicy
	err = r.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		stored, err := db.LockContactPolicyForUpdate(ctx, tx, conversationID)
		if err != nil {
			return err
		}
		before = r.policy(stored)
		if stored != nil && *stored == policy {
			return nil
		}
		// Stored even when it equals the default, so that a later change
		// of the default leaves this conversation as the service set it.
		return db.UpdateContactPolicy(ctx, tx, conversationID, policy)
	})
	if err != nil {
		return nil, orNotFound(err, "conversation", conversationID, "set contact policy")
	}
	changed := before != policy
	zerolog.Ctx(ctx).Info().Str("op", "setContactPolicy").Str("user_id", c.ID).
		Str("conversation_id", conversationID).Str("policy", string(policy)).
		Str("previous", string(before)).Bool("changed", changed).Msg("contact policy set")
	if changed {
		r.publishInboxAll(ctx, model.InboxEventKindConversationUpdated, conversationID)
	}
	return r.loadConversation(ctx, c, conversationID)
}
