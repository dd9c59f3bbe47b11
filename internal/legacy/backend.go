package legacy

import (
	"context"
	"errors"
	"time"

	"github.com/jobchat/jobchat/internal/auth"
)

// Message is a message as the old frames show it.
type Message struct {
	ID             string
	ConversationID string
	// SenderID and SenderName are nil for SYSTEM messages.
	SenderID   *string
	SenderName *string
	// Text is the text as it reads now: empty once deleted.
	Text      string
	Type      string
	Timestamp time.Time
	IsRead    bool
}

// Event is a change to a conversation's messages: a new message, or
// (Updated) an edited or deleted one.
type Event struct {
	Updated bool
	Message Message
}

// Backend is what the socket needs of jobchat.
type Backend interface {
	// Authenticate verifies a bare token.
	Authenticate(ctx context.Context, token string) (auth.Caller, error)
	// Authorize reports whether c may use the conversation. A refusal is
	// an error whose Code is NOT_FOUND (a stranger and an unknown
	// conversation alike), FORBIDDEN or UNAUTHENTICATED; any other error
	// is a failure of the server.
	Authorize(ctx context.Context, c auth.Caller, conversationID string) error
	// Send stores a message from c through the same path as GraphQL's
	// sendMessage, rate limit and validation included, and broadcasts it.
	// msgType is what the client asked for (TEXT unless it said otherwise),
	// for the send path to judge. An error with a Code goes to the client
	// as it is, having been logged by the backend if it needed to be.
	Send(ctx context.Context, c auth.Caller, conversationID, text, msgType string) error
	// Follow delivers the conversation's events committed from now on, as
	// c may see them, in order, to fn, until stop is called. fn does not
	// block; when it returns false the socket cannot take more, and the
	// follower must stop delivering (the socket closes itself). end, if
	// the follower cannot go on by itself (the database failed), closes
	// the socket, so that the client reconnects rather than wait for
	// messages that will not come. stop may be called more than once, and
	// after the follower has stopped.
	Follow(ctx context.Context, c auth.Caller, conversationID string, fn func(Event) bool, end func()) (stop func(), err error)
}

// Coded is an error the client may see, with the code GraphQL gives it
// in extensions.code (RATE_LIMITED, BAD_USER_INPUT, ...). Errors without a
// code are failures of the server: the socket logs them and tells the
// client only "internal error".
type Coded interface {
	error
	Code() string
}

// refusal reports whether err from Authorize refuses the caller, rather
// than failing.
func refusal(err error) bool {
	coded, ok := errors.AsType[Coded](err)
	if !ok {
		return false
	}
	switch coded.Code() {
	case "NOT_FOUND", "FORBIDDEN", "UNAUTHENTICATED":
		return true
	}
	return false
}
