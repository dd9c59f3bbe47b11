package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/db/dbtest"
	"github.com/jobchat/jobchat/graph"
	"github.com/jobchat/jobchat/internal/limits"
	"github.com/jobchat/jobchat/internal/server"
	"github.com/jobchat/jobchat/resolvers"
)

// secShapes are the costly documents of README's Security section, on
// jobchat's own schema, each with what refuses it under the defaults.
func secShapes() []struct{ name, query, code, want string } {
	lookups := func(n int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, ` c%d: conversation(id: "c%d") { id }`, i, i)
		}
		b.WriteString(" }")
		return b.String()
	}
	return []struct{ name, query, code, want string }{
		{"10,000 duplicate fields", "{ me {" + strings.Repeat(" id", 10000) + " } }",
			"GRAPHQL_PARSE_FAILED", "exceeded token limit of 2000"},
		{"900 duplicate fields", "{ me {" + strings.Repeat(" id", 900) + " } }",
			"GRAPHQL_VALIDATION_FAILED", `900 fields answer as "id" in one place; the limit is 20`},
		{"10,000 directives", "{ me" + strings.Repeat(" @include(if: true)", 10000) + " { id } }",
			"GRAPHQL_PARSE_FAILED", "bytes long; the limit is 32768"},
		{"1,000 directives", "{ me" + strings.Repeat(" @include(if: true)", 1000) + " { id } }",
			"GRAPHQL_PARSE_FAILED", "exceeded token limit of 2000"},
		{"200 directives on a field", "{ me" + strings.Repeat(" @include(if: true)", 200) + " { id } }",
			"GRAPHQL_VALIDATION_FAILED", "field me has 200 directives; the limit is 4"},
		{"nesting 500 deep", "{ me {" + strings.Repeat(" a {", 500) + " id" + strings.Repeat(" }", 500) + " } }",
			"GRAPHQL_VALIDATION_FAILED", "fields nest 21 deep; the limit is 20"},
		{"introspection nested 25 deep", "{ __schema { types { fields { type {" + strings.Repeat(" ofType {", 21) +
			" name" + strings.Repeat(" }", 21) + " } } } } }",
			"GRAPHQL_VALIDATION_FAILED", "fields nest 21 deep; the limit is 20"},
		{"500 aliased conversation(id:) lookups", lookups(500),
			"GRAPHQL_PARSE_FAILED", "exceeded token limit of 2000"},
		{"100 aliased conversation(id:) lookups", lookups(100),
			"GRAPHQL_VALIDATION_FAILED", "31 aliased fields; the limit is 30"},
		{"huge token count", "{ conversations(" + strings.Repeat("first: 1 ", 3000) + ") { edges { cursor } } }",
			"GRAPHQL_PARSE_FAILED", "exceeded token limit of 2000"},
		{"200 KB of junk in the document", "{ me(x: \"" + strings.Repeat("x", 200000) + "\") { id } }",
			"GRAPHQL_PARSE_FAILED", "bytes long; the limit is 32768"},
		{"a megabyte of junk in the document", "{ me(x: \"" + strings.Repeat("x", 1000000) + "\") { id } }",
			"", "request body too large"},
	}
}

// TestSecurityCostlyShapesRefused: every costly shape is refused over real
// HTTP before it runs, with a message naming the limit.
func TestSecurityCostlyShapesRefused(t *testing.T) {
	e := newEnv(t, "sqlite", nil)
	ana := userToken(t, "ana", "Ana")
	for _, sh := range secShapes() {
		t.Run(sh.name, func(t *testing.T) {
			r := e.secPost(t, ana, `{"query":`+string(mustJSON(t, sh.query))+`}`)
			r.fails(t, sh.code, sh.want)
			if len(r.Errors) != 1 || len(r.Data) > 0 && string(r.Data) != "null" {
				t.Fatalf("want one error and no data, got %s %+v", r.Data, r.Errors)
			}
		})
	}
}

// TestSecurityAliasedLookupsCostAsAWhole: with the alias limit raised out
// of the way, 500 conversation(id:) lookups are refused as a whole by the
// complexity limit, before any is looked up; 30, the alias limit, run.
func TestSecurityAliasedLookupsCostAsAWhole(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) { secAliasedLookups(t, dialect) })
	}
}

func secAliasedLookups(t *testing.T, dialect string) {
	e := newEnv(t, dialect, nil)
	conv := e.openJob(t, "job-1", "ana", "ben", "hello")
	ana := userToken(t, "ana", "Ana")
	lookups := func(n int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, ` c%d: conversation(id: %q) { id lastSeq }`, i, conv.ID)
		}
		b.WriteString(" }")
		return b.String()
	}
	r := e.do(t, ana, lookups(30), nil)
	r.ok(t, nil)
	if !strings.Contains(string(r.Data), `"c29":{"id":"`+conv.ID+`","lastSeq":1}`) {
		t.Fatalf("30 lookups: %s", r.Data)
	}

	wide := newEnv(t, dialect, map[string]string{
		"JOBCHAT_MAX_ALIASES": "1000", "JOBCHAT_MAX_TOKENS": "100000", "JOBCHAT_MAX_QUERY_BYTES": "1000000", "JOBCHAT_MAX_FIELDS": "100000"})
	wideConv := wide.openJob(t, "job-1", "ana", "ben", "hello")
	r = wide.do(t, ana, lookups(500), nil)
	r.fails(t, "COMPLEXITY_LIMIT_EXCEEDED", "exceeds the limit of 5000")
	if len(r.Data) > 0 && string(r.Data) != "null" {
		t.Fatalf("answered piecemeal: %s", r.Data)
	}
	// 50 of them are already too many: each is a round trip.
	wide.do(t, ana, lookups(50), nil).fails(t, "COMPLEXITY_LIMIT_EXCEEDED", "exceeds the limit")
	// So are 50 sends in one mutation: none is stored.
	var sends strings.Builder
	sends.WriteString("mutation {")
	for i := range 50 {
		fmt.Fprintf(&sends, ` s%d: sendMessage(input: {conversationId: %q, messageText: "x"}) { id }`, i, wideConv.ID)
	}
	sends.WriteString(" }")
	wide.do(t, ana, sends.String(), nil).fails(t, "COMPLEXITY_LIMIT_EXCEEDED", "exceeds the limit")
	if got := wide.apiConversationAs(t, ana, wideConv.ID).LastSeq; got != 1 {
		t.Fatalf("lastSeq %d after a refused batch of sends, want 1", got)
	}
}

// BenchmarkSecurityRefusal measures the server's CPU to answer each costly
// shape on jobchat's schema, in process, from request to written answer:
// "guarded" as served, "unguarded" with every document limit off and the
// body limit at its old 1 MiB (what the validator alone would cost, as
// before the limits).
//
//	go test -run '^$' -bench 'SecurityRefusal/.*/^guarded$' ./cmd/jobchat/
//	go test -run '^$' -bench 'SecurityRefusal/.*/^unguarded$' -benchtime 3x ./cmd/jobchat/
func BenchmarkSecurityRefusal(b *testing.B) {
	r := resolvers.New(nil, nil, resolvers.Config{})
	off := limits.Config{Bytes: -1, Tokens: -1, Depth: -1, Aliases: -1, Directives: -1, Duplicates: -1, Fields: -1, Fragments: -1}
	for _, variant := range []struct {
		name string
		lim  limits.Config
		body int64
	}{{"guarded", limits.Config{}, 0}, {"unguarded", off, 1 << 20}} {
		h := server.New(server.Config{
			Schema:          graph.NewExecutableSchema(r.Schema()),
			Log:             zerolog.Nop(),
			ErrorPresenter:  resolvers.ErrorPresenter,
			ComplexityLimit: 5000,
			MaxBodyBytes:    variant.body, // before the limits: 1 MiB
			Limits:          variant.lim,
			MaxIDLength:     resolvers.MaxIDLength,
		})
		for _, sh := range secShapes() {
			b.Run(strings.ReplaceAll(sh.name, " ", "_")+"/"+variant.name, func(b *testing.B) {
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					// A document of its own each time (a comment
					// numbers it), as an attacker's would be, so that
					// the parsed-document cache does not help.
					b.StopTimer()
					n++
					body := `{"query":` + string(mustJSON(b, fmt.Sprintf("#%d\n%s", n, sh.query))) + `}`
					rec := httptest.NewRecorder()
					req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					b.StartTimer()
					h.ServeHTTP(rec, req)
					b.StopTimer()
					// Unguarded, a shape may even run (the deep
					// introspection query): its cost is the point.
					if variant.name == "guarded" && !strings.Contains(rec.Body.String(), `"errors"`) {
						b.Fatalf("not refused: %.200s", rec.Body.String())
					}
					b.StartTimer()
				}
			})
		}
	}
}

// BenchmarkSecurityBigValidDocument measures a document within every limit
// but near them (984 fields under 8 aliases, 20 fields under each name at
// each place), each request a new one: parsed, checked and validated, then
// executed as far as its missing token allows.
//
//	go test -run '^$' -bench SecurityBigValidDocument ./cmd/jobchat/
func BenchmarkSecurityBigValidDocument(b *testing.B) {
	r := resolvers.New(nil, nil, resolvers.Config{})
	h := server.New(server.Config{
		Schema:          graph.NewExecutableSchema(r.Schema()),
		Log:             zerolog.Nop(),
		ErrorPresenter:  resolvers.ErrorPresenter,
		ComplexityLimit: 5000,
		MaxIDLength:     resolvers.MaxIDLength,
	})
	var q strings.Builder
	q.WriteString("{")
	for i := range 8 {
		fmt.Fprintf(&q, " a%d: conversations(first: 1) { edges { node {", i)
		for _, f := range []string{"id", "lastSeq", "unreadCount", "status", "createdAt", "updatedAt"} {
			q.WriteString(strings.Repeat(" "+f, 20))
		}
		q.WriteString(" } } }")
	}
	q.WriteString(" }")
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		b.StopTimer()
		n++
		body := `{"query":` + string(mustJSON(b, fmt.Sprintf("#%d\n%s", n, q.String()))) + `}`
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		b.StartTimer()
		h.ServeHTTP(rec, req)
		b.StopTimer()
		if !strings.Contains(rec.Body.String(), "UNAUTHENTICATED") {
			b.Fatalf("not validated and run: %.300s", rec.Body.String())
		}
		b.StartTimer()
	}
}
