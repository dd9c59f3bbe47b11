package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/jobchat/jobchat/internal/coerce"
	"github.com/jobchat/jobchat/internal/limits"
)

// costlyShapes are the documents an attacker sends to keep a core busy
// while the validator refuses them, each with what refuses it under the
// default limits.
var costlyShapes = []struct {
	name, query, code, want string
}{
	{"10,000 duplicate fields", "{" + strings.Repeat(" a", 10000) + " }",
		"GRAPHQL_PARSE_FAILED", "exceeded token limit of 2000"},
	{"900 duplicate fields", "{" + strings.Repeat(" hello", 900) + " }",
		"GRAPHQL_VALIDATION_FAILED", `fields answer as "hello" in one place; the limit is 20`},
	{"directive flood", "{ hello" + strings.Repeat(" @include(if: true)", 1000) + " }",
		"GRAPHQL_PARSE_FAILED", "exceeded token limit"},
	{"directives on one field", "{ hello" + strings.Repeat(" @include(if: true)", 200) + " }",
		"GRAPHQL_VALIDATION_FAILED", "field hello has 200 directives; the limit is 4"},
	{"deep nesting", "{" + strings.Repeat(" a {", 500) + " hello" + strings.Repeat(" }", 500) + " }",
		"GRAPHQL_VALIDATION_FAILED", "fields nest 21 deep; the limit is 20"},
	{"500 aliases", "{" + aliases(500) + " }",
		"GRAPHQL_VALIDATION_FAILED", "aliased fields; the limit is 30"},
	{"huge token count", "{ hello(" + strings.Repeat("a: 1 ", 4000) + ") }",
		"GRAPHQL_PARSE_FAILED", "exceeded token limit of 2000"},
	{"a document past the size limit", "{ hello(a: \"" + strings.Repeat("x", 40<<10) + "\") }",
		"GRAPHQL_PARSE_FAILED", "bytes long; the limit is 32768"},
	{"fragments spread exponentially", exponentialFragments(60),
		"GRAPHQL_VALIDATION_FAILED", "fragments; the limit is 50"},
	{"fragments spread exponentially, few", exponentialFragments(30),
		"GRAPHQL_VALIDATION_FAILED", "fields with fragments expanded; the limit is 1000"},
}

func aliases(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(" a")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(string(rune('a' + i%26)))
		b.WriteString(string(rune('a' + i/26%26)))
		b.WriteString(": hello")
	}
	return b.String()
}

// exponentialFragments nests n fragments that each spread the next twice:
// 2^n fields once expanded.
func exponentialFragments(n int) string {
	var b strings.Builder
	b.WriteString("{ ...F0 }")
	for i := range n {
		b.WriteString(" fragment F" + itoa(i) + " on Query { ...F" + itoa(i+1) + " ...F" + itoa(i+1) + " }")
	}
	b.WriteString(" fragment F" + itoa(n) + " on Query { hello }")
	return b.String()
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// TestCostlyShapesRefused: each costly shape is refused, over a real
// socket, with its code and a message saying which limit.
func TestCostlyShapesRefused(t *testing.T) {
	srv := newTestServer(t, Config{})
	for _, sh := range costlyShapes {
		t.Run(sh.name, func(t *testing.T) {
			resp, body := srv.postQuery(t, "application/json", "application/graphql-response+json", `{"query":`+jsonString(sh.query)+`}`)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
			got := decodeGQL(t, body)
			if len(got.Errors) != 1 || got.Errors[0].Extensions["code"] != sh.code || !strings.Contains(got.Errors[0].Message, sh.want) {
				t.Fatalf("errors %+v, want one %s saying %q", got.Errors, sh.code, sh.want)
			}
		})
	}
	// The same shapes within the limits still run.
	_, body := srv.post(t, `{"query":"{ a: hello b: hello hello hello @include(if: true) @skip(if: false) }"}`)
	if got := decodeGQL(t, body); len(got.Errors) > 0 || got.Data["a"] != "world" {
		t.Fatalf("within the limits: %s", body)
	}
}

// TestLimitsConfigurable: Config.Limits reaches the guard.
func TestLimitsConfigurable(t *testing.T) {
	srv := newTestServer(t, Config{Limits: limits.Config{Aliases: 1}})
	_, body := srv.post(t, `{"query":"{ a: hello b: hello }"}`)
	if got := decodeGQL(t, body); len(got.Errors) != 1 || !strings.Contains(got.Errors[0].Message, "2 aliased fields; the limit is 1") {
		t.Fatalf("got %s", body)
	}
}

// countingCache counts what the guard puts into its document cache.
type countingCache struct {
	docs map[string]*ast.QueryDocument
	adds int
}

func (c *countingCache) Get(_ context.Context, key string) (*ast.QueryDocument, bool) {
	d, ok := c.docs[key]
	return d, ok
}

func (c *countingCache) Add(_ context.Context, key string, d *ast.QueryDocument) {
	c.adds++
	c.docs[key] = d
}

// TestGuardCachesOnce: the guard parses and validates a document that
// passes once, and caches it; one that fails is never cached, so that the
// executor reports its errors in full every time.
func TestGuardCachesOnce(t *testing.T) {
	schema := newTestSchema().Schema()
	cache := &countingCache{docs: map[string]*ast.QueryDocument{}}
	g := &guard{schema: schema, limits: limits.New(limits.Config{}), coerce: coerce.New(schema, coerce.Config{}),
		cache: cache, rules: validationRules(false), introspection: true}
	ctx := context.Background()
	for range 3 {
		if err := g.MutateOperationParameters(ctx, &graphql.RawParams{Query: "{ hello }"}); err != nil {
			t.Fatal(err)
		}
		if err := g.MutateOperationParameters(ctx, &graphql.RawParams{Query: "{ nope }"}); err != nil {
			t.Fatalf("an invalid document is the executor's to report: %v", err)
		}
	}
	if cache.adds != 1 || cache.docs["{ hello }"] == nil || cache.docs["{ nope }"] != nil {
		t.Fatalf("%d adds, cached %v; want the valid document once", cache.adds, cache.docs)
	}
}

// TestGuardCachesOnlyWhatPasses: through the server, a valid document runs
// and an invalid one is reported in full by the executor, every time.
func TestGuardCachesOnlyWhatPasses(t *testing.T) {
	srv := newTestServer(t, Config{})
	for range 2 {
		_, body := srv.post(t, `{"query":"{ nope alsoNope }"}`)
		if got := decodeGQL(t, body); len(got.Errors) != 2 {
			t.Fatalf("want both validation errors, got %s", body)
		}
		_, body = srv.post(t, `{"query":"{ hello }"}`)
		if got := decodeGQL(t, body); got.Data["hello"] != "world" {
			t.Fatalf("got %s", body)
		}
	}
}

// TestVariablesCoercedStrictly: variables are held to the spec on every
// transport that reads JSON; one row per rule is in package coerce, these
// prove the guard applies it (a Boolean given as a string, a lone
// surrogate escape in the raw body).
func TestVariablesCoercedStrictly(t *testing.T) {
	srv := newTestServer(t, Config{Schema: idSchema()})
	tests := []struct {
		name, body, want string
	}{
		{"string for a Boolean", `{"query":"query($b: Boolean!) { hello @include(if: $b) }","variables":{"b":"true"}}`, "must be a Boolean, not a string"},
		{"lone surrogate", `{"query":"query($id: ID!) { byId(id: $id) }","variables":{"id":"\ud800"}}`, `lone surrogate escape \ud800`},
		{"invalid UTF-8", "{\"query\":\"query($id: ID!) { byId(id: $id) }\",\"variables\":{\"id\":\"\xff\"}}", "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, body := srv.post(t, tt.body)
			got := decodeGQL(t, body)
			if len(got.Errors) != 1 || got.Errors[0].Extensions["code"] != "BAD_USER_INPUT" || !strings.Contains(got.Errors[0].Message, tt.want) {
				t.Fatalf("got %s, want BAD_USER_INPUT saying %q", body, tt.want)
			}
		})
	}
}

// TestIntrospectionOff: __schema and __type are refused, __typename is
// not, and no validation error suggests a name.
func TestIntrospectionOff(t *testing.T) {
	on := newTestServer(t, Config{})
	off := newTestServer(t, Config{DisableIntrospection: true})

	_, body := on.post(t, `{"query":"{ __schema { queryType { name } } }"}`)
	if got := decodeGQL(t, body); len(got.Errors) > 0 {
		t.Fatalf("introspection on: %s", body)
	}
	for _, q := range []string{
		`{ __schema { queryType { name } } }`,
		`{ __type(name: \"Query\") { name } }`,
		`{ ...F } fragment F on Query { __schema { queryType { name } } }`,
		`{ ... on Query { __type(name: \"Query\") { name } } }`,
	} {
		_, body := off.post(t, `{"query":"`+q+`"}`)
		got := decodeGQL(t, body)
		if len(got.Errors) != 1 || !strings.Contains(got.Errors[0].Message, "introspection is disabled") || got.Errors[0].Extensions["code"] != "GRAPHQL_VALIDATION_FAILED" {
			t.Errorf("%s: got %s", q, body)
		}
	}
	_, body = off.post(t, `{"query":"{ __typename hello }"}`)
	if got := decodeGQL(t, body); len(got.Errors) > 0 || got.Data["__typename"] != "Query" {
		t.Fatalf("__typename: %s", body)
	}

	// Misspellings that gqlparser answers with a suggestion: a field, an
	// argument, a type, an enum value of a directive argument, a leaf.
	misspelt := []string{
		`{ helo }`,
		`{ hello @include(iff: true) }`,
		`{ __typenme }`,
	}
	for _, q := range misspelt {
		_, body := on.post(t, `{"query":`+jsonString(q)+`}`)
		if !strings.Contains(body, "Did you mean") {
			t.Errorf("%s with introspection on: no suggestion to take away in %s", q, body)
		}
		_, body = off.post(t, `{"query":`+jsonString(q)+`}`)
		got := decodeGQL(t, body)
		if len(got.Errors) == 0 {
			t.Errorf("%s: accepted", q)
		}
		if strings.Contains(body, "Did you mean") || strings.Contains(body, "hello") && q == `{ helo }` {
			t.Errorf("%s with introspection off suggests: %s", q, body)
		}
	}
}

// TestMaxIDLength: an ID over the cap, in a variable or written into the
// document, is refused before the operation runs.
func TestMaxIDLength(t *testing.T) {
	srv := newTestServer(t, Config{MaxIDLength: 4, Schema: idSchema()})
	for _, tt := range []struct{ body, want string }{
		{`{"query":"query($id: ID!) { byId(id: $id) }","variables":{"id":"12345"}}`, "must be at most 4 characters (got 5)"},
		{`{"query":"{ byId(id: \"12345\") }"}`, "id: must be at most 4 characters (got 5)"},
	} {
		_, body := srv.post(t, tt.body)
		got := decodeGQL(t, body)
		if len(got.Errors) != 1 || got.Errors[0].Extensions["code"] != "BAD_USER_INPUT" || !strings.Contains(got.Errors[0].Message, tt.want) {
			t.Errorf("%s: got %s", tt.body, body)
		}
	}
	_, body := srv.post(t, `{"query":"{ byId(id: \"1234\") }"}`)
	if got := decodeGQL(t, body); len(got.Errors) > 0 {
		t.Fatalf("4 characters refused: %s", body)
	}
}

// BenchmarkRefusal measures the server's CPU to refuse each costly shape,
// from the request to the written answer, in process. Each request is a
// document of its own (a comment numbers it), as an attacker's would be,
// so that no cache helps.
//
//	go test -run '^$' -bench Refusal ./internal/server/
func BenchmarkRefusal(b *testing.B) {
	h := New(Config{Schema: newTestSchema()})
	for _, sh := range costlyShapes {
		b.Run(strings.ReplaceAll(sh.name, " ", "_"), func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				b.StopTimer()
				n++
				body := `{"query":` + jsonString("#"+itoa(n)+"\n"+sh.query) + `}`
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				b.StartTimer()
				h.ServeHTTP(rec, req)
				b.StopTimer()
				if got := decodeGQL(b, rec.Body.String()); len(got.Errors) != 1 || !strings.Contains(got.Errors[0].Message, sh.want) {
					b.Fatalf("not refused: %.300s", rec.Body.String())
				}
				b.StartTimer()
			}
		})
	}
}

// idSchema is the test schema with a field that takes an ID.
func idSchema() *testSchema {
	s := newTestSchema()
	s.schema = gqlparser.MustLoadSchema(&ast.Source{Name: "id.graphqls", Input: `
		type Query { hello: String! byId(id: ID!): String }
	`})
	return s
}
