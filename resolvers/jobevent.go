package resolvers

import (
	"context"

	"github.com/jobchat/jobchat/db"
)

// postJobEvent is the job-service announcing a step of the job's life as a
// SYSTEM message. It is postSystemMessage with an event and a required
// key, so it shares postSystem's idempotency and posts to closed
// conversations too: "the job is complete" comes around the close.
func (r *Resolver) postJobEvent(ctx context.Context, conversationID string, event db.JobEvent, text, key string) (*db.Message, error) {
	if _, err := serviceCaller(ctx, "postJobEvent"); err != nil {
		return nil, err
	}
	if err := r.checkJobEvent(conversationID, event, text, key); err != nil {
		return nil, err
	}
	return r.postSystem(ctx, conversationID, text, &key, &event)
}

// checkJobEvent validates postJobEvent's arguments as postSystemMessage's
// are validated, and the event, which gqlgen checks already for GraphQL
// callers but Go callers could get wrong.
func (r *Resolver) checkJobEvent(conversationID string, event db.JobEvent, text, key string) error {
	if err := checkID("conversationId", conversationID); err != nil {
		return err
	}
	if !event.Valid() {
		return badInput("event", "%q is not a JobEvent", string(event))
	}
	if err := checkText("messageText", text, r.cfg.MaxMessageChars, true); err != nil {
		return err
	}
	return checkKey("idempotencyKey", key)
}
