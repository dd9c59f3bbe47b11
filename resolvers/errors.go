package resolvers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/rs/zerolog"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/internal/auth"
)

// The extensions.code values clients can rely on.
const (
	CodeBadUserInput    = "BAD_USER_INPUT"
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
	CodeNotFound        = "NOT_FOUND"
	CodeInternal        = "INTERNAL_SERVER_ERROR"
	CodeRateLimited     = "RATE_LIMITED"
	CodeFailedPrecond   = "FAILED_PRECONDITION"
	CodeContactBlocked  = "CONTACT_DETAILS_BLOCKED"
)

// inputError is a rejected argument; Field is its path in the operation's
// arguments, such as "input.messageText".
type inputError struct {
	Field string
	Msg   string
}

func (e *inputError) Error() string { return e.Field + ": " + e.Msg }

func badInput(field, format string, args ...any) error {
	return &inputError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// forbiddenError is an operation the caller may not perform at all.
type forbiddenError struct{ Msg string }

func (e *forbiddenError) Error() string { return e.Msg }

func forbidden(format string, args ...any) error {
	return &forbiddenError{Msg: fmt.Sprintf(format, args...)}
}

// preconditionError is an operation that the thing's state does not allow
// now (a closed conversation, a deleted message), though the caller may.
type preconditionError struct{ Msg string }

func (e *preconditionError) Error() string { return e.Msg }

func failedPrecondition(format string, args ...any) error {
	return &preconditionError{Msg: fmt.Sprintf(format, args...)}
}

// rateLimitedError asks the caller to slow down and says for how long.
// Doing names what is too fast ("uploading"); empty means sending.
type rateLimitedError struct {
	RetryAfter time.Duration
	Doing      string
}

func (e *rateLimitedError) Error() string {
	doing := e.Doing
	if doing == "" {
		doing = "sending"
	}
	return fmt.Sprintf("%s too fast: retry in %d ms", doing, e.retryAfterMs())
}

// retryAfterMs rounds up, so that a retry after that many milliseconds
// goes through.
func (e *rateLimitedError) retryAfterMs() int64 {
	return int64((e.RetryAfter + time.Millisecond - 1) / time.Millisecond)
}

// contactBlockedError refuses a text with contact details in a
// conversation whose contact policy is BLOCK; Field is the text's path in
// the arguments ("input.messageText", "messageText").
type contactBlockedError struct{ Field string }

func (e *contactBlockedError) Error() string {
	return e.Field + ": contact details are not allowed in this conversation"
}

// notFoundError hides whether a thing is missing or merely not the caller's.
type notFoundError struct{ What, ID string }

func (e *notFoundError) Error() string { return fmt.Sprintf("%s %q not found", e.What, e.ID) }

func notFound(what, id string) error { return &notFoundError{What: what, ID: id} }

// orNotFound turns db.ErrNotFound into a client-facing NOT_FOUND for the
// thing named and wraps anything else with op.
func orNotFound(err error, what, id, op string) error {
	if errors.Is(err, db.ErrNotFound) {
		return notFound(what, id)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// ErrorPresenter gives every error a code. Errors the API made on purpose
// keep their message; anything else is logged with its cause and reaches the
// client as "internal error", so no SQL or stack ever leaves the server.
func ErrorPresenter(ctx context.Context, err error) *gqlerror.Error {
	gqlErr := graphql.DefaultErrorPresenter(ctx, err)
	var (
		in  *inputError
		fb  *forbiddenError
		nf  *notFoundError
		rl  *rateLimitedError
		pc  *preconditionError
		cb  *contactBlockedError
		src *gqlerror.Error
	)
	switch {
	case errors.As(err, &in):
		gqlErr.Message = in.Error()
		setCode(gqlErr, CodeBadUserInput)
		gqlErr.Extensions["field"] = in.Field
	case errors.As(err, &fb):
		gqlErr.Message = fb.Error()
		setCode(gqlErr, CodeForbidden)
	case errors.As(err, &nf):
		gqlErr.Message = nf.Error()
		setCode(gqlErr, CodeNotFound)
	case errors.As(err, &pc):
		gqlErr.Message = pc.Error()
		setCode(gqlErr, CodeFailedPrecond)
	case errors.As(err, &cb):
		gqlErr.Message = cb.Error()
		setCode(gqlErr, CodeContactBlocked)
		gqlErr.Extensions["field"] = cb.Field
	case errors.As(err, &rl):
		gqlErr.Message = rl.Error()
		setCode(gqlErr, CodeRateLimited)
		gqlErr.Extensions["retryAfterMs"] = rl.retryAfterMs()
	case errors.Is(err, auth.ErrUnauthenticated):
		// The auth error's own words ("unauthenticated: <why>"), not
		// err.Error(): err is usually gqlgen's wrapper, whose Error()
		// prefixes the field's location and name ("input:1:3: me ...").
		gqlErr.Message = resolverMessage(err)
		setCode(gqlErr, CodeUnauthenticated)
	case errors.As(err, &src) && src.Err == nil:
		// gqlgen's own errors (parsing, validation, coercion) are safe to show
		// as they are and carry their code. A variable that does not fit its
		// type is the caller's input, though: say which one, as for fields.
		if name, ok := variableName(gqlErr); ok {
			gqlErr.Message = "variable $" + name + ": " + gqlErr.Message
			setCode(gqlErr, CodeBadUserInput)
			gqlErr.Extensions["field"] = "$" + name
		} else if _, ok := gqlErr.Extensions["code"]; !ok {
			setCode(gqlErr, CodeInternal)
		}
	case errors.Is(err, context.Canceled):
		// The client went away mid-operation; nobody reads the answer and
		// nothing is wrong with the server.
		zerolog.Ctx(ctx).Debug().Err(err).Str("path", gqlErr.Path.String()).Msg("operation cancelled")
		gqlErr.Message = "operation cancelled"
		gqlErr.Err = nil
		setCode(gqlErr, CodeInternal)
	default:
		zerolog.Ctx(ctx).Error().Err(err).Str("path", gqlErr.Path.String()).Msg("internal error")
		gqlErr.Message = "internal error"
		gqlErr.Err = nil
		setCode(gqlErr, CodeInternal)
	}
	return gqlErr
}

// variableName reports the variable a coercion error is about, with the
// path inside it ("i.conversationId"); gqlgen gives those errors the path
// ["variable", name, ...].
func variableName(e *gqlerror.Error) (string, bool) {
	if len(e.Path) < 2 {
		return "", false
	}
	if first, ok := e.Path[0].(ast.PathName); !ok || first != "variable" {
		return "", false
	}
	var b strings.Builder
	for i, el := range e.Path[1:] {
		switch el := el.(type) {
		case ast.PathName:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(string(el))
		case ast.PathIndex:
			fmt.Fprintf(&b, "[%d]", int(el))
		}
	}
	return b.String(), true
}

// resolverMessage is the text of the error a resolver returned, without the
// location and path that gqlgen's wrapper adds to its Error().
func resolverMessage(err error) string {
	var wrapper *gqlerror.Error
	if errors.As(err, &wrapper) && wrapper.Err != nil {
		return wrapper.Err.Error()
	}
	return err.Error()
}

func setCode(e *gqlerror.Error, code string) {
	if e.Extensions == nil {
		e.Extensions = map[string]any{}
	}
	e.Extensions["code"] = code
}
