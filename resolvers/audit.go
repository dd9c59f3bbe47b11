package resolvers

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph/model"
	"github.com/jobchat/jobchat/internal/auth"
)

// AuditExtension writes one log line for every root field a service
// caller runs (every mutation the job-service makes, and its reads): who
// (user_id, the service token's subject), what (op, the field), which
// conversation (conversation_id; message_id and job_id where the call
// names them), and how it ended (ok, with the error when it failed). The
// line says "audit", at info level, so that a log pipeline can keep these
// lines apart and longer. Install it with handler.Server.Use.
//
// Users' calls are not audited here: they act only in their own
// conversations, and the access log has their requests.
type AuditExtension struct{}

var (
	_ graphql.HandlerExtension = AuditExtension{}
	_ graphql.FieldInterceptor = AuditExtension{}
)

// ExtensionName names the extension for gqlgen.
func (AuditExtension) ExtensionName() string { return "JobchatAudit" }

// Validate accepts any schema.
func (AuditExtension) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptField audits root fields run by service callers.
func (AuditExtension) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || (fc.Object != "Mutation" && fc.Object != "Query") {
		return next(ctx)
	}
	c, err := auth.CallerFrom(ctx)
	if err != nil || !c.Service {
		return next(ctx)
	}
	start := time.Now()
	res, err := next(ctx)
	ev := zerolog.Ctx(ctx).Info().
		Bool("audit", true).
		Str("op", fc.Field.Name).
		Str("role", "service").
		Str("user_id", c.ID)
	conv, msg, job := auditTargets(fc.Args, res)
	if conv != "" {
		ev = ev.Str("conversation_id", conv)
	}
	if msg != "" {
		ev = ev.Str("message_id", msg)
	}
	if job != "" {
		ev = ev.Str("job_id", job)
	}
	ev = ev.Bool("ok", err == nil)
	if err != nil {
		ev = ev.Str("error", resolverMessage(err))
	}
	ev.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000).Msg("audit")
	return res, err
}

// auditTargets finds what a root field acted on: from its result when it
// returns a conversation or a message, else from its arguments.
func auditTargets(args map[string]any, res any) (conversation, message, job string) {
	str := func(k string) string {
		s, _ := args[k].(string)
		return s
	}
	conversation = str("conversationId")
	if conversation == "" {
		conversation = str("id")
	}
	message = str("messageId")
	switch in := args["input"].(type) {
	case model.CreateConversationInput:
		job = in.JobID
	case *model.CreateConversationInput:
		if in != nil {
			job = in.JobID
		}
	}
	switch r := res.(type) {
	case *db.Conversation:
		if r != nil {
			conversation, job = r.ID, r.JobID
		}
	case *db.Message:
		if r != nil {
			conversation, message = r.ConversationID, r.ID
		}
	}
	return conversation, message, job
}
