package resolvers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/uptrace/bun"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph/model"
	"github.com/jobchat/jobchat/internal/auth"
	"github.com/jobchat/jobchat/internal/contact"
)

// jobAcceptedKey is the idempotency key of the system message that
// createConversationForJob posts, so that retries post it only once.
const jobAcceptedKey = "jobchat:conversation-opened"

func roleProfile(conv *db.Conversation, role db.Role) (*db.Profile, error) {
	p := conv.WithRole(role)
	if p == nil || p.Profile == nil {
		return nil, fmt.Errorf("conversation %s has no %s profile", conv.ID, role)
	}
	return p.Profile, nil
}

// readByOthers reports whether every participant but the sender has read m.
func readByOthers(m *db.Message, ps []*db.Participant) bool {
	return stateOf(m, ps, nil).Read
}

// send stores a user's message and broadcasts it after the commit. A retry
// with the same clientMessageId returns the stored message unchanged.
func (r *Resolver) send(ctx context.Context, c auth.Caller, typ db.MessageType, in model.SendMessageInput) (*db.Message, error) {
	began := time.Now()
	ok, wait, refund := r.takeSend(ctx, c.ID)
	if !ok {
		// Retries of a stored message are free: only new messages count.
		if in.ClientMessageID != nil {
			if m, err := r.sentBefore(ctx, c, in); m != nil || err != nil {
				return m, err
			}
		}
		return nil, &rateLimitedError{RetryAfter: wait}
	}

	name := c.Name // used when the sender has no profile
	m := &db.Message{
		ConversationID:  in.ConversationID,
		SenderID:        &c.ID,
		SenderName:      &name,
		MessageType:     typ,
		ClientMessageID: in.ClientMessageID,
		NotifyAfter:     r.notifyAfter(),
	}
	if in.MessageText != nil {
		m.MessageText = *in.MessageText
	}
	if loc := in.Location; loc != nil {
		m.LocationLatitude, m.LocationLongitude, m.LocationLabel = &loc.Latitude, &loc.Longitude, loc.Label
	}
	if att := in.Attachment; att != nil && att.ID != nil {
		a, err := r.sendableUpload(ctx, c, in.ConversationID, *att.ID, typ)
		if err != nil {
			refund()
			if in.ClientMessageID != nil {
				// A retry of the send that took the upload gets that
				// message back.
				if first, err := r.sentBefore(ctx, c, in); first != nil || err != nil {
					return first, err
				}
			}
			return nil, err
		}
		m.WithAttachment(a)
	} else if att != nil {
		m.AttachmentURL, m.AttachmentFileName, m.AttachmentMimeType = att.URL, att.FileName, att.MimeType
		if att.SizeBytes != nil {
			n := int64(*att.SizeBytes)
			m.AttachmentSizeBytes = &n
		}
	}

	// One round trip on PostgreSQL: the participant check, the duplicate
	// check and the send are a single statement. A text with contact
	// details takes one more, for its conversation's policy.
	var spans []contact.Span
	if typ == db.MessageText {
		spans = r.cfg.Contact.Find(m.MessageText)
	}
	var (
		sender *db.Profile
		err    error
	)
	if len(spans) == 0 {
		sender, err = db.SendUserMessage(ctx, r.db, m)
	} else {
		var first *db.Message
		first, sender, err = r.sendScreened(ctx, c, m, in, spans)
		if first != nil {
			refund()
			return first, nil
		}
	}
	var (
		blocked *contactBlockedError
		reused  *inputError // a clientMessageId of another conversation
	)
	switch {
	case errors.As(err, &blocked), errors.As(err, &reused):
		refund()
		return nil, err
	case errors.Is(err, db.ErrConflict) && in.ClientMessageID != nil:
		refund()
		// A retry, possibly racing the first attempt: answer with the
		// stored message.
		first, err := r.sentBefore(ctx, c, in)
		if first == nil && err == nil {
			err = fmt.Errorf("send message: client message id %q conflicts but no message has it", *in.ClientMessageID)
		}
		return first, err
	case errors.Is(err, db.ErrNotFound):
		refund()
		return nil, orNotFound(err, "conversation", in.ConversationID, "send message")
	case errors.Is(err, db.ErrClosed):
		refund()
		return nil, closedError(in.ConversationID)
	case errors.Is(err, db.ErrAttachmentTaken):
		// Sent by a send that raced this one, or swept meanwhile.
		refund()
		return nil, badInput("input.attachment.id", "was already sent, or has expired")
	case err != nil:
		return nil, fmt.Errorf("send message: %w", err)
	}
	r.publishAs(ctx, m, sender)
	r.typingSent(ctx, m.ConversationID, c.ID)
	if o := r.cfg.Observer; o != nil {
		o.Send(time.Since(began))
	}
	return m, nil
}

// sentBefore finds the message c already sent with in's clientMessageId.
func (r *Resolver) sentBefore(ctx context.Context, c auth.Caller, in model.SendMessageInput) (*db.Message, error) {
	m, err := db.SelectMessageByClientID(ctx, r.db, c.ID, *in.ClientMessageID)
	if errors.Is(err, db.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("send message: %w", err)
	}
	if m.ConversationID != in.ConversationID {
		return nil, badInput("input.clientMessageId", "was already used for a message in another conversation")
	}
	return m, nil
}

// postSystem stores a SYSTEM message, announcing event when it is not nil
// (postJobEvent). A used idempotency key returns the message first posted
// with it, event or not: postSystemMessage and postJobEvent share one key
// space. The status is not checked: the job-service posts to closed
// conversations too.
func (r *Resolver) postSystem(ctx context.Context, conversationID, text string, key *string, event *db.JobEvent) (*db.Message, error) {
	op := "post system message"
	if event != nil {
		op = "post job event"
	}
	if _, err := db.SelectLastSeq(ctx, r.db, conversationID); err != nil {
		return nil, orNotFound(err, "conversation", conversationID, op)
	}
	if key != nil {
		m, err := db.SelectMessageByIdempotencyKey(ctx, r.db, conversationID, *key)
		if err == nil {
			return m, nil
		}
		if !errors.Is(err, db.ErrNotFound) {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	m := &db.Message{ConversationID: conversationID, MessageText: text, MessageType: db.MessageSystem, IdempotencyKey: key, JobEvent: event,
		NotifyAfter: r.notifyAfter()}
	err := r.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		return db.PostMessage(ctx, tx, m)
	})
	if errors.Is(err, db.ErrConflict) && key != nil {
		if first, err := db.SelectMessageByIdempotencyKey(ctx, r.db, conversationID, *key); err == nil {
			return first, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	r.publish(ctx, m)
	return m, nil
}

// openConversation does createConversationForJob's writes in one
// transaction. posted is the system message when this call posted it;
// created says whether this call inserted the conversation, which decides
// the inbox event. It never changes the status: a closed conversation
// stays closed.
func (r *Resolver) openConversation(ctx context.Context, in model.CreateConversationInput) (conv *db.Conversation, posted *db.Message, created bool, err error) {
	err = r.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		posted, created = nil, false
		for _, p := range []*model.ProfileInput{in.Client, in.Worker} {
			if err := db.UpsertProfile(ctx, tx, &db.Profile{ID: p.ID, DisplayName: p.DisplayName, AvatarURL: p.AvatarURL}); err != nil {
				return err
			}
		}
		if err := db.UpsertJob(ctx, tx, &db.Job{ID: in.JobID, Title: in.JobTitle}); err != nil {
			return err
		}
		conv = &db.Conversation{JobID: in.JobID, JobKey: db.JobKey(in.JobID, in.Client.ID, in.Worker.ID)}
		var err error
		if created, err = db.InsertConversationIfAbsent(ctx, tx, conv); err != nil {
			return err
		}
		for _, p := range []*db.Participant{
			{ConversationID: conv.ID, ProfileID: in.Client.ID, Role: db.RoleClient},
			{ConversationID: conv.ID, ProfileID: in.Worker.ID, Role: db.RoleWorker},
		} {
			if err := db.InsertParticipant(ctx, tx, p); err != nil {
				return err
			}
		}
		if in.SystemMessage == nil {
			return nil
		}
		key := jobAcceptedKey
		_, err = db.SelectMessageByIdempotencyKey(ctx, tx, conv.ID, key)
		if err == nil || !errors.Is(err, db.ErrNotFound) {
			return err
		}
		m := &db.Message{ConversationID: conv.ID, MessageText: *in.SystemMessage, MessageType: db.MessageSystem, IdempotencyKey: &key,
			NotifyAfter: r.notifyAfter()}
		if err := db.PostMessage(ctx, tx, m); err != nil {
			return err
		}
		posted = m
		return nil
	})
	return conv, posted, created, err
}

// publishOpened broadcasts createConversationForJob's outcome after its
// commit. A new conversation is one CONVERSATION_OPENED on both inboxes,
// whose conversation already shows the opening message, so that message
// must not add a MESSAGE_ADDED of its own. A repeat call refreshed the
// profiles and the title: CONVERSATION_UPDATED, on every repeat, since the
// upserts cannot tell whether anything changed and the event carries the
// conversation as it is, so a redundant one costs a refetch, no error.
func (r *Resolver) publishOpened(ctx context.Context, conversationID, clientID, workerID string, posted *db.Message, created bool) {
	if created {
		if posted != nil {
			r.publishMessage(ctx, posted, nil, false)
		}
		r.publishInbox(ctx, model.InboxEventKindConversationOpened, conversationID, clientID, workerID)
		return
	}
	if posted != nil {
		// A system message the first call did not bring: news of its own.
		r.publish(ctx, posted)
	}
	r.publishInbox(ctx, model.InboxEventKindConversationUpdated, conversationID, clientID, workerID)
}

// publish broadcasts a committed message. A failure loses no message:
// subscribers fill gaps from the database when the next one arrives, and
// clients resume with afterSeq; so it is logged, not returned.
func (r *Resolver) publish(ctx context.Context, m *db.Message) {
	r.publishMessage(ctx, m, nil, true)
}

// publishAs is publish with the sender's profile when the caller already
// has it (the send statement reads it). Senders mostly miss the cache,
// since most send less often than its TTL, and a miss costs a query, more
// than the rest of the broadcast. Without a profile, the cache supplies it.
func (r *Resolver) publishAs(ctx context.Context, m *db.Message, sender *db.Profile) {
	r.publishMessage(ctx, m, sender, true)
}

// publishMessage broadcasts m to its conversation's messageAdded
// subscribers and, with inbox, a MESSAGE_ADDED event to its participants'
// inboxes (the opening message of a conversation is news of the
// CONVERSATION_OPENED event instead).
func (r *Resolver) publishMessage(ctx context.Context, m *db.Message, sender *db.Profile, inbox bool) {
	if sender == nil && m.SenderID != nil {
		var err error
		if sender, err = r.senders.get(ctx, r, *m.SenderID); err != nil {
			// Subscribers then see sender: null for this one message.
			zerolog.Ctx(ctx).Warn().Err(err).Str("sender_id", *m.SenderID).Msg("broadcast without the sender's profile")
		}
	}
	r.publishJSON(ctx, messageTopic(m.ConversationID), toWireMessage(m, sender))
	if inbox {
		r.publishInboxAll(ctx, model.InboxEventKindMessageAdded, m.ConversationID)
	}
}
