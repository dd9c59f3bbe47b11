package metrics

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// GraphQL returns the gqlgen extension that counts operations by root
// field, type and outcome (jobchat_graphql_operations_total), times
// queries and mutations, and counts RATE_LIMITED answers. Add it to the
// GraphQL handler (server.Config.Extensions).
//
// Queries and mutations are counted when they answer, with the first
// error's code as the outcome ("ok" without errors). Subscriptions are
// counted once, when they start ("started"), whichever path then serves
// them (pushed, or gqlgen's executor): their events are not operations.
// An operation that does not parse or validate is counted as op "invalid".
func (m *Metrics) GraphQL() graphql.HandlerExtension { return &gqlExtension{m: m} }

type gqlExtension struct {
	m *Metrics
	// roots is the schema's root field names, per operation type: the
	// only values the op label takes, besides "other" and "invalid".
	roots map[ast.Operation]map[string]bool
}

var (
	_ graphql.HandlerExtension        = (*gqlExtension)(nil)
	_ graphql.OperationContextMutator = (*gqlExtension)(nil)
	_ graphql.ResponseInterceptor     = (*gqlExtension)(nil)
)

func (e *gqlExtension) ExtensionName() string { return "Metrics" }

// Validate learns the schema's root fields, which bound the op label.
func (e *gqlExtension) Validate(es graphql.ExecutableSchema) error {
	s := es.Schema()
	e.roots = make(map[ast.Operation]map[string]bool, 3)
	for op, def := range map[ast.Operation]*ast.Definition{ast.Query: s.Query, ast.Mutation: s.Mutation, ast.Subscription: s.Subscription} {
		names := map[string]bool{}
		if def != nil {
			for _, f := range def.Fields {
				names[f.Name] = true
			}
		}
		e.roots[op] = names
	}
	return nil
}

// MutateOperationContext counts a subscription as it starts: it runs for
// every valid operation, pushed subscriptions included, which never reach
// the response interceptors.
func (e *gqlExtension) MutateOperationContext(_ context.Context, rc *graphql.OperationContext) *gqlerror.Error {
	if rc.Operation != nil && rc.Operation.Operation == ast.Subscription {
		e.m.ops.WithLabelValues(e.rootField(rc.Operation), string(ast.Subscription), "started").Inc()
	}
	return nil
}

// InterceptResponse counts queries and mutations, and any response that
// reports an invalid operation.
func (e *gqlExtension) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp == nil {
		return nil
	}
	var rc *graphql.OperationContext
	if graphql.HasOperationContext(ctx) {
		rc = graphql.GetOperationContext(ctx)
	}
	op, typ := "invalid", "unknown"
	if rc != nil && rc.Operation != nil {
		if rc.Operation.Operation == ast.Subscription {
			return resp // an event, not an operation: counted at its start
		}
		op, typ = e.rootField(rc.Operation), string(rc.Operation.Operation)
	}
	outcome := "ok"
	limited := false
	for i, err := range resp.Errors {
		code, _ := err.Extensions["code"].(string)
		if code == "RATE_LIMITED" {
			limited = true
		}
		if i == 0 {
			outcome = boundedCode(code)
		}
	}
	e.m.ops.WithLabelValues(op, typ, outcome).Inc()
	if limited {
		e.m.rateLimited.WithLabelValues("graphql").Inc()
	}
	if rc != nil && !rc.Stats.OperationStart.IsZero() && typ != "unknown" {
		e.m.opDuration.WithLabelValues(typ).Observe(time.Since(rc.Stats.OperationStart).Seconds())
	}
	return resp
}

// rootField is the operation's first root field as the schema names it
// (aliases do not count), or "other" for anything outside the schema's
// root fields (__typename, introspection, a fragment at the root).
func (e *gqlExtension) rootField(op *ast.OperationDefinition) string {
	for _, sel := range op.SelectionSet {
		f, ok := sel.(*ast.Field)
		if !ok {
			return "other"
		}
		if e.roots[op.Operation][f.Name] {
			return f.Name
		}
		return "other"
	}
	return "other"
}

// codes are the extensions.code values worth a label of their own: the
// resolvers' (resolvers/errors.go), the server's (limits, persisted
// operations) and gqlgen's. Anything else is "error".
var codes = map[string]bool{
	"BAD_USER_INPUT": true, "UNAUTHENTICATED": true, "FORBIDDEN": true, "NOT_FOUND": true,
	"INTERNAL_SERVER_ERROR": true, "RATE_LIMITED": true, "FAILED_PRECONDITION": true,
	"CONTACT_DETAILS_BLOCKED": true, "GRAPHQL_PARSE_FAILED": true, "GRAPHQL_VALIDATION_FAILED": true,
	"COMPLEXITY_LIMIT_EXCEEDED": true, "PERSISTED_QUERY_NOT_FOUND": true, "OPERATION_NOT_ALLOWED": true,
}

func boundedCode(code string) string {
	if codes[code] {
		return code
	}
	return "error"
}
