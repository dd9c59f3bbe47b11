package server

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/rs/zerolog"
)

// logOperation writes one debug line per GraphQL operation, so that the many
// operations of one websocket (each with its own op) can be told apart, and
// a warn line for operations that end in errors. Subscriptions log when they
// start: their responses keep coming long after.
func logOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	kind := "unknown"
	if oc.Operation != nil {
		kind = string(oc.Operation.Operation)
	}
	log := zerolog.Ctx(ctx).With().Str("op", oc.OperationName).Str("op_type", kind).Logger()
	ctx = log.WithContext(ctx)
	start := time.Now()
	handler := next(ctx)
	first := true
	return func(ctx context.Context) *graphql.Response {
		resp := handler(ctx)
		if first {
			first = false
			ev := log.Debug()
			if resp != nil && len(resp.Errors) > 0 {
				ev = log.Info().Int("errors", len(resp.Errors)).Str("error", resp.Errors[0].Message)
			}
			ev.Float64("duration_ms", millis(time.Since(start))).Msg("graphql operation")
		}
		return resp
	}
}
