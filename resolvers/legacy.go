package resolvers

import (
	"context"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph/model"
	"github.com/jobchat/jobchat/internal/auth"
	"github.com/jobchat/jobchat/internal/legacy"
)

// LegacySocket is the backend of the old chat socket (package legacy): the
// bridge's doors into the resolvers (follow.go), with the old frames'
// view of a message and GraphQL's codes on refusals.
type LegacySocket struct {
	r *Resolver
	v *auth.Verifier
}

var _ legacy.Backend = (*LegacySocket)(nil)

// LegacySocket returns the old chat socket's backend, which verifies
// tokens with v.
func (r *Resolver) LegacySocket(v *auth.Verifier) *LegacySocket {
	return &LegacySocket{r: r, v: v}
}

// Authenticate verifies a token as the Authorization header's are.
func (b *LegacySocket) Authenticate(ctx context.Context, token string) (auth.Caller, error) {
	return b.v.Verify(ctx, token)
}

// Authorize refuses with NOT_FOUND a conversation c is not in.
func (b *LegacySocket) Authorize(ctx context.Context, c auth.Caller, conversationID string) error {
	return classified(ctx, b.r.Authorize(ctx, c, conversationID))
}

// Send sends as sendMessage does.
func (b *LegacySocket) Send(ctx context.Context, c auth.Caller, conversationID, text, msgType string) error {
	_, err := b.r.Send(auth.WithCaller(ctx, c), c, conversationID, text, msgType)
	return classified(ctx, err)
}

// Follow delivers new messages as "message" frames and edits and deletions
// as "message_updated"; the rest of the activity has no old frame.
func (b *LegacySocket) Follow(ctx context.Context, c auth.Caller, conversationID string, fn func(legacy.Event) bool, end func()) (func(), error) {
	return b.r.FollowConversation(auth.WithCaller(ctx, c), conversationID,
		func(m *db.Message) bool {
			return fn(legacy.Event{Message: legacyMessage(m, c)})
		},
		func(a *model.ConversationActivity) bool {
			switch a.Kind {
			case model.ActivityKindMessageEdited, model.ActivityKindMessageDeleted:
				if a.Message != nil {
					return fn(legacy.Event{Updated: true, Message: legacyMessage(a.Message, c)})
				}
			}
			return true
		},
		end)
}

// legacyMessage is m as the old frames show it to viewer: the stored
// sender name, as GraphQL's senderName, and the text as it reads now for
// viewer (empty once deleted; contact details masked for the recipient).
func legacyMessage(m *db.Message, viewer auth.Caller) legacy.Message {
	text := m.MessageText
	if m.OriginalText != nil && seesOriginal(viewer, m) {
		text = *m.OriginalText
	}
	out := legacy.Message{
		ID:             m.ID,
		ConversationID: m.ConversationID,
		SenderID:       m.SenderID,
		SenderName:     m.SenderName,
		Text:           text,
		Type:           string(m.MessageType),
		Timestamp:      m.CreatedAt,
	}
	if m.Known != nil {
		out.IsRead = m.Known.Read
	}
	return out
}

// legacyError is a refusal as GraphQL would answer it.
type legacyError struct{ code, msg string }

func (e *legacyError) Error() string { return e.msg }
func (e *legacyError) Code() string  { return e.code }

// classified gives err the code and message the error presenter gives it
// (which logs internal causes once), so that the old socket's error frames
// say what GraphQL says.
func classified(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	code, msg := Classify(ctx, err)
	return &legacyError{code: code, msg: msg}
}
