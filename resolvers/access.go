package resolvers

import (
	"context"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/internal/auth"
)

// caller returns whoever makes the request, or UNAUTHENTICATED.
func caller(ctx context.Context) (auth.Caller, error) {
	return auth.CallerFrom(ctx)
}

// userCaller returns the calling user; services get FORBIDDEN for op.
func userCaller(ctx context.Context, op string) (auth.Caller, error) {
	c, err := auth.CallerFrom(ctx)
	if err != nil {
		return c, err
	}
	if c.Service {
		return c, forbidden("%s is for users: service tokens cannot use it", op)
	}
	return c, nil
}

// serviceCaller returns the calling service; users get FORBIDDEN for op.
func serviceCaller(ctx context.Context, op string) (auth.Caller, error) {
	c, err := auth.CallerFrom(ctx)
	if err != nil {
		return c, err
	}
	if !c.Service {
		return c, forbidden("%s is for service callers only", op)
	}
	return c, nil
}

// checkAccess lets c at the conversation: users must take part in it,
// services may see all. Absent and not-yours give the same NOT_FOUND.
func (r *Resolver) checkAccess(ctx context.Context, c auth.Caller, conversationID string) error {
	var err error
	if c.Service {
		_, err = db.SelectLastSeq(ctx, r.db, conversationID)
	} else {
		_, err = db.SelectParticipant(ctx, r.db, conversationID, c.ID)
	}
	if err != nil {
		return orNotFound(err, "conversation", conversationID, "check access")
	}
	return nil
}

// loadConversation loads a conversation c may see, with its details.
func (r *Resolver) loadConversation(ctx context.Context, c auth.Caller, id string) (*db.Conversation, error) {
	conv, err := db.SelectConversation(ctx, r.db, id)
	if err != nil {
		return nil, orNotFound(err, "conversation", id, "load conversation")
	}
	if !c.Service && conv.Member(c.ID) == nil {
		return nil, notFound("conversation", id)
	}
	cacheFrom(ctx).putParticipants(conv.ID, conv.Participants)
	return conv, nil
}
