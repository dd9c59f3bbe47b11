package resolvers

import (
	"context"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/jobchat/jobchat/graph"
)

// TestPlansShared: operations with the same text share one compiled plan,
// which is what lets a conversation's subscribers share one encoding per
// message; operations with directives get plans of their own, since their
// selection depends on variables.
func TestPlansShared(t *testing.T) {
	r := New(nil, nil, Config{})
	exec := executor.New(graph.NewExecutableSchema(r.Schema()))
	// The server caches parsed documents by text, as here.
	exec.SetQueryCache(lru.New[*ast.QueryDocument](10))
	plan := func(query string, vars map[string]any) *plan {
		t.Helper()
		ctx := graphql.StartOperationTrace(context.Background())
		rc, errs := exec.CreateOperationContext(ctx, &graphql.RawParams{Query: query, Variables: vars})
		if errs != nil {
			t.Fatal(errs)
		}
		fields := graphql.CollectFields(rc, rc.Operation.SelectionSet, []string{"Subscription"})
		p, ok := r.plans.get(r, rc, fields[0]).(*plan)
		if !ok {
			t.Fatalf("not hand-encoded: %s", query)
		}
		return p
	}
	const q = `subscription($c: ID!) { messageAdded(conversationId: $c) { seq messageText } }`
	if a, b := plan(q, map[string]any{"c": "a"}), plan(q, map[string]any{"c": "b"}); a != b {
		t.Error("two operations with the same text got different plans")
	}
	const d = `subscription($c: ID!, $i: Boolean!) { messageAdded(conversationId: $c) { seq messageText @include(if: $i) } }`
	with, without := plan(d, map[string]any{"c": "a", "i": true}), plan(d, map[string]any{"c": "a", "i": false})
	if with == without || len(with.fields) != 2 || len(without.fields) != 1 {
		t.Errorf("plans with directives: %d and %d fields, shared %v", len(with.fields), len(without.fields), with == without)
	}
}
