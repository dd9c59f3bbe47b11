package server

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"github.com/jobchat/jobchat/internal/coerce"
	"github.com/jobchat/jobchat/internal/limits"
)

// guard is the gate every operation passes before gqlgen's executor sees
// it, on every transport: the document limits (package limits) before the
// validator's quadratic rules run, then validation itself, the checks the
// spec leaves to the server (introspection turned off, long ids written
// into the document), and the spec's coercion of variables (package
// coerce), stricter than gqlgen's.
//
// It parses and validates a document the query cache does not hold and,
// if it passes, puts it there, so that the executor parses nothing twice.
// Only documents that passed every check are cached: the executor adds
// documents only after it validated them itself, which it does only for
// those this guard let through without caching (the invalid ones, whose
// errors it reports in full).
type guard struct {
	schema *ast.Schema
	limits *limits.Checker
	coerce *coerce.Checker
	cache  graphql.Cache[*ast.QueryDocument]
	// rules are validationRules', made once.
	rules         *rules.Rules
	introspection bool
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = (*guard)(nil)

func (*guard) ExtensionName() string                   { return "Guard" }
func (*guard) Validate(graphql.ExecutableSchema) error { return nil }

func (g *guard) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	doc, ok := g.cache.Get(ctx, params.Query)
	if !ok {
		var gqlErr *gqlerror.Error
		if doc, gqlErr = g.limits.Parse(params.Query); gqlErr != nil {
			return gqlErr
		}
		if errs := validator.ValidateWithRules(g.schema, doc, g.rules); len(errs) > 0 {
			// The executor parses and validates it again and reports
			// every error, as it always has; only invalid documents pay
			// twice, and the limits have bounded what that costs.
			return nil
		}
		if !g.introspection {
			if pos := introspects(doc); pos != nil {
				err := gqlerror.ErrorPosf(pos, "introspection is disabled on this server")
				err.Extensions = map[string]any{"code": limits.CodeValidationFailed}
				return err
			}
		}
		if gqlErr = g.coerce.Literals(doc); gqlErr != nil {
			return gqlErr
		}
		g.cache.Add(ctx, params.Query, doc)
	}
	op := doc.Operations.ForName(params.OperationName)
	if op == nil {
		// The executor says which operation is missing.
		return nil
	}
	return g.coerce.Variables(op, params.Variables)
}

// introspects returns where the document asks for __schema or __type, or
// nil. __typename is no introspection: clients add it everywhere.
func introspects(doc *ast.QueryDocument) *ast.Position {
	var walk func(set ast.SelectionSet) *ast.Position
	walk = func(set ast.SelectionSet) *ast.Position {
		for _, sel := range set {
			switch sel := sel.(type) {
			case *ast.Field:
				if sel.Name == "__schema" || sel.Name == "__type" {
					return sel.Position
				}
				if pos := walk(sel.SelectionSet); pos != nil {
					return pos
				}
			case *ast.InlineFragment:
				if pos := walk(sel.SelectionSet); pos != nil {
					return pos
				}
			}
		}
		return nil
	}
	for _, op := range doc.Operations {
		if pos := walk(op.SelectionSet); pos != nil {
			return pos
		}
	}
	for _, f := range doc.Fragments {
		if pos := walk(f.SelectionSet); pos != nil {
			return pos
		}
	}
	return nil
}

// validationRules are the rules gqlgen's executor validates with, made the
// way it makes them: its default rules, with the two rules that have a
// variant without suggestions swapped for it when suggestions are off
// (executor.SetDisableSuggestion). The guard must validate exactly as the
// executor would, since a document it caches is never validated again.
func validationRules(noSuggest bool) *rules.Rules {
	r := rules.NewDefaultRules()
	if noSuggest {
		r.RemoveRule(rules.FieldsOnCorrectTypeRule.Name)
		r.AddRule(rules.FieldsOnCorrectTypeRuleWithoutSuggestions.Name, rules.FieldsOnCorrectTypeRuleWithoutSuggestions.RuleFunc)
		r.RemoveRule(rules.ScalarLeafsRule.Name)
		r.AddRule(rules.ScalarLeafsRuleWithoutSuggestions.Name, rules.ScalarLeafsRuleWithoutSuggestions.RuleFunc)
	}
	return r
}

// withoutSuggestions wraps an error presenter so that no message suggests
// a name of the schema ("Did you mean ...?"): gqlparser's rules append one
// as the message's last sentence, and the executor can turn off only some
// of them. With introspection off, the schema is not for strangers to
// learn one guess at a time.
func withoutSuggestions(present graphql.ErrorPresenterFunc) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		e := present(ctx, err)
		if i := strings.Index(e.Message, " Did you mean"); i >= 0 {
			e.Message = e.Message[:i]
		}
		return e
	}
}
