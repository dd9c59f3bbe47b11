package coerce

import (
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/jobchat/jobchat/internal/jsontext"
)

var testSchema = gqlparser.MustLoadSchema(&ast.Source{Name: "test.graphqls", Input: `
	enum Kind { TEXT IMAGE }
	scalar Time
	input Loc { lat: Float! lng: Float! label: String }
	input In { id: ID! kind: Kind = TEXT text: String n: Int loc: Loc tags: [String!] at: Time }
	type Query { f(in: In, ids: [ID!], n: Int, x: Float, b: Boolean, s: String, k: Kind, id: ID, t: Time): Int }
`})

const query = `query($in: In, $ids: [ID!], $n: Int, $x: Float, $b: Boolean, $s: String, $k: Kind, $id: ID, $t: Time, $req: Int!, $dflt: Int = 3) {
	f(in: $in, ids: $ids, n: $n, x: $x, b: $b, s: $s, k: $k, id: $id, t: $t) a: f(n: $req) b: f(n: $dflt)
}`

// TestVariables: one row per rule of the spec's input coercion, each given
// as the JSON a client sends; the error names the variable path.
func TestVariables(t *testing.T) {
	doc, err := parser.ParseQuery(&ast.Source{Input: query})
	if err != nil {
		t.Fatal(err)
	}
	op := doc.Operations[0]
	c := New(testSchema, Config{MaxIDLength: 8})
	tests := []struct {
		name, vars string
		path, want string // "" path: accepted
	}{
		{"all fit", `{"req":1,"in":{"id":"a","kind":"IMAGE","text":"hi","n":-2147483648,"loc":{"lat":1,"lng":2.5},"tags":["x"]},"ids":["a",7],"n":2147483647,"x":1e3,"b":true,"s":"s","k":"TEXT","id":12,"t":"2026-01-01T00:00:00Z"}`, "", ""},
		{"nulls where nullable", `{"req":1,"in":null,"n":null,"s":null}`, "", ""},
		{"a whole float is an Int", `{"req":1.0,"n":1e3}`, "", ""},
		{"a single value is a list of one", `{"req":1,"ids":"a"}`, "", ""},
		{"required variable missing", `{}`, "variable.req", "must be defined"},
		{"required variable null", `{"req":null}`, "variable.req", "cannot be null"},
		{"enum of the wrong case", `{"req":1,"k":"text"}`, "variable.k", "text is not a valid Kind"},
		{"enum nested, wrong case", `{"req":1,"in":{"id":"a","kind":"Image"}}`, "variable.in.kind", "Image is not a valid Kind"},
		{"enum as a number", `{"req":1,"k":1}`, "variable.k", "must be a Kind value given as a string, not a number"},
		{"enum value odd", `{"req":1,"k":"TE XT"}`, "variable.k", `"TE XT" is not a valid Kind`},
		{"string for an Int", `{"req":"12"}`, "variable.req", "must be an Int, not a string"},
		{"string for a Float", `{"req":1,"x":"12.5"}`, "variable.x", "must be a Float, not a string"},
		{"string for a nested Float", `{"req":1,"in":{"id":"a","loc":{"lat":"1","lng":2}}}`, "variable.in.loc.lat", "must be a Float, not a string"},
		{"number for a String", `{"req":1,"s":12}`, "variable.s", "must be a String, not a number"},
		{"number for a nested String", `{"req":1,"in":{"id":"a","text":12}}`, "variable.in.text", "must be a String, not a number"},
		{"object for a String", `{"req":1,"s":{"a":1}}`, "variable.s", "must be a String, not an object"},
		{"object for an ID", `{"req":1,"id":{}}`, "variable.id", "must be an ID"},
		{"object for a custom scalar", `{"req":1,"t":{"a":1}}`, "variable.t", "must be a Time, not an object"},
		{"list for a String", `{"req":1,"s":["a"]}`, "variable.s", "must be a String, not a list"},
		{"string for a Boolean", `{"req":1,"b":"true"}`, "variable.b", "must be a Boolean, not a string"},
		{"Int too large", `{"req":2147483648}`, "variable.req", "Int cannot represent non 32-bit signed integer value: 2147483648"},
		{"Int too small", `{"req":-2147483649}`, "variable.req", "non 32-bit"},
		{"Int far too large", `{"req":1e30}`, "variable.req", "non 32-bit"},
		{"Int fractional", `{"req":1.5}`, "variable.req", "must be an Int, not a number"},
		{"Float out of range", `{"req":1,"x":1e400}`, "variable.x", "non-finite"},
		{"float for an ID", `{"req":1,"id":1.5}`, "variable.id", "must be an ID"},
		{"ID too long", `{"req":1,"id":"123456789"}`, "variable.id", "must be at most 8 characters (got 9)"},
		{"ID in a list too long", `{"req":1,"ids":["a","123456789"]}`, "variable.ids[1]", "at most 8"},
		{"null in a list of non-null", `{"req":1,"ids":["a",null]}`, "variable.ids[1]", "cannot be null"},
		{"unknown input field", `{"req":1,"in":{"id":"a","bogus":1}}`, "variable.in.bogus", "is not a field of In"},
		{"__typename in an input object, as Apollo leaves it", `{"req":1,"in":{"id":"a","__typename":"In"}}`, "", ""},
		{"required input field missing", `{"req":1,"in":{"text":"x"}}`, "variable.in.id", "must be defined"},
		{"required input field null", `{"req":1,"in":{"id":null}}`, "variable.in.id", "cannot be null"},
		{"scalar for an input object", `{"req":1,"in":"x"}`, "variable.in", "must be a In object, not a string"},
		{"lone surrogate", `{"req":1,"s":"a\ud800b"}`, "variable.s", `is not Unicode text: it holds a lone surrogate escape \ud800`},
		{"lone low surrogate nested", `{"req":1,"in":{"id":"a","text":"\udc00"}}`, "variable.in.text", `lone surrogate escape \udc00`},
		{"surrogate pair is text", `{"req":1,"s":"\ud83d\ude00"}`, "", ""},
		{"invalid UTF-8", "{\"req\":1,\"s\":\"a\xffb\"}", "variable.s", "is not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars, err := jsontext.DecodeObject([]byte(tt.vars))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			gerr := c.Variables(op, vars)
			if tt.path == "" {
				if gerr != nil {
					t.Fatalf("refused: %v", gerr)
				}
				return
			}
			if gerr == nil {
				t.Fatal("accepted")
			}
			if got := gerr.Path.String(); got != tt.path {
				t.Errorf("path %s, want %s", got, tt.path)
			}
			if !strings.Contains(gerr.Message, tt.want) {
				t.Errorf("message %q, want it to contain %q", gerr.Message, tt.want)
			}
			if gerr.Extensions["code"] != CodeBadUserInput {
				t.Errorf("code %v", gerr.Extensions["code"])
			}
			if strings.Contains(gerr.Message, "Did you mean") {
				t.Errorf("message %q suggests", gerr.Message)
			}
		})
	}
}

// TestVariablesGoValues: transports that put Go values in (a multipart
// upload, numbers decoded as float64) pass where the spec would.
func TestVariablesGoValues(t *testing.T) {
	doc, err := parser.ParseQuery(&ast.Source{Input: query})
	if err != nil {
		t.Fatal(err)
	}
	c := New(testSchema, Config{})
	type upload struct{ name string }
	ok := map[string]any{"req": float64(3), "x": 2, "t": upload{"f"}, "ids": []any{float64(4)}}
	if gerr := c.Variables(doc.Operations[0], ok); gerr != nil {
		t.Fatalf("refused: %v", gerr)
	}
	if gerr := c.Variables(doc.Operations[0], map[string]any{"req": 2.5}); gerr == nil {
		t.Fatal("2.5 as Int accepted")
	}
}

func TestLiterals(t *testing.T) {
	c := New(testSchema, Config{MaxIDLength: 8})
	tests := []struct {
		name, query, field string
		want               string // "" for the ID error
	}{
		{"Int too large", `{ f(n: 2147483648) }`, "n", "Int cannot represent non 32-bit signed integer value: 2147483648"},
		{"Int too small in an input object", `{ f(in: {id: "a", n: -2147483649}) }`, "in.n", "Int cannot represent non 32-bit"},
		{"short ids", `{ f(id: "12345678", ids: ["a", 7], in: {id: "x"}) }`, "", ""},
		{"long id", `{ f(id: "123456789") }`, "id", ""},
		{"long integer id", `{ f(id: 123456789) }`, "id", ""},
		{"long id in a list", `{ f(ids: ["a", "123456789"]) }`, "ids[1]", ""},
		{"long id in an input object", `{ f(in: {id: "123456789"}) }`, "in.id", ""},
		{"long id in a fragment", `{ ...F } fragment F on Query { f(id: "123456789") }`, "id", ""},
		{"long id in an inline fragment", `{ ... on Query { f(id: "123456789") } }`, "id", ""},
		{"a long String is no ID", `{ f(s: "123456789") }`, "", ""},
		{"Int at the edges", `{ f(n: 2147483647) a: f(n: -2147483648) }`, "", ""},
		{"long id as a block string", `{ f(id: """123456789""") }`, "id", ""},
		{"Int default too large", `query($n: Int = 2147483648) { f(n: $n) }`, "$n", "Int cannot represent non 32-bit"},
		{"long id default", `query($i: ID = "123456789") { f(id: $i) }`, "$i", ""},
		{"long id in an object default", `query($in: In = {id: "123456789"}) { f(in: $in) }`, "$in.id", ""},
		{"short defaults", `query($n: Int = 7, $i: ID = "a") { f(n: $n, id: $i) }`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, errs := gqlparser.LoadQuery(testSchema, tt.query)
			if errs != nil {
				t.Fatal(errs)
			}
			err := c.Literals(doc)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			want := tt.field + ": must be at most 8 characters (got 9)"
			if tt.want != "" {
				want = tt.field + ": " + tt.want
			}
			if err.Extensions["field"] != tt.field || !strings.HasPrefix(err.Message, want) {
				t.Errorf("got %q, field %v; want field %s", err.Message, err.Extensions["field"], tt.field)
			}
		})
	}
}
