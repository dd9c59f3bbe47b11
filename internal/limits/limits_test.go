package limits

import (
	"strconv"
	"strings"
	"testing"
)

// introspectionQuery is the query GraphiQL and Apollo's tooling send
// (graphql-js getIntrospectionQuery with descriptions, specifiedByURL,
// isRepeatable, schemaDescription and inputValueDeprecation on), with
// TypeRef nesting ofType nine times as graphql-js 17 does. It must pass
// the defaults.
const introspectionQuery = `
query IntrospectionQuery {
  __schema {
    description
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives {
      name
      description
      isRepeatable
      locations
      args(includeDeprecated: true) { ...InputValue }
    }
  }
}
fragment FullType on __Type {
  kind
  name
  description
  specifiedByURL
  isOneOf
  fields(includeDeprecated: true) {
    name
    description
    args(includeDeprecated: true) { ...InputValue }
    type { ...TypeRef }
    isDeprecated
    deprecationReason
  }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) {
    name
    description
    isDeprecated
    deprecationReason
  }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name
  description
  type { ...TypeRef }
  defaultValue
  isDeprecated
  deprecationReason
}
fragment TypeRef on __Type {
  kind name ofType { kind name ofType { kind name ofType { kind name ofType {
  kind name ofType { kind name ofType { kind name ofType { kind name ofType {
  kind name ofType { kind name } } } } } } } } }
}`

// inbox is the largest operation jobchat's own apps send (the README's
// inbox screen with previews).
const inbox = `query Inbox($after: String) {
  conversations(first: 20, after: $after) { edges { cursor node {
    id job { id title } client { id displayName avatarUrl } worker { id displayName avatarUrl }
    myRole otherParticipant { id displayName avatarUrl } lastMessageAt unreadCount lastSeq createdAt updatedAt
    lastMessage { id seq messageText messageType senderId senderName timestamp isRead sender { id displayName } }
    messages(last: 3) @include(if: true) { edges { node { id seq messageText ...M } } }
  } } pageInfo { hasNextPage endCursor } }
  unreadTotal
}
fragment M on Message { id seq status reactions { emoji count reactedByMe } }`

func TestRealDocumentsPass(t *testing.T) {
	c := New(Config{})
	for name, q := range map[string]string{"introspection": introspectionQuery, "inbox": inbox} {
		if _, err := c.Parse(q); err != nil {
			t.Errorf("%s refused: %v", name, err)
		}
	}
}

// TestRefusals: one table row per limit, each just over it and, where the
// shape allows, just under.
func TestRefusals(t *testing.T) {
	small := Config{Tokens: 100, Depth: 3, Aliases: 2, Directives: 2, Duplicates: 2, Fields: 8, Fragments: 2}
	tests := []struct {
		name, query string
		code        string // "" for accepted
		want        string
	}{
		{"within every limit", `query Q($a: Int @d @d) @d @d { a: f(x: $a) @d @d { b: g { h } } }`, "", ""},
		{"tokens", "{" + strings.Repeat(" f", 100) + "}", CodeParseFailed, "exceeded token limit of 100"},
		{"depth", `{ a { b { c { d } } } }`, CodeValidationFailed, "fields nest 4 deep; the limit is 3"},
		{"depth through a fragment", `{ a { ...F } } fragment F on T { b { c { d } } }`, CodeValidationFailed, "4 deep"},
		{"depth through an inline fragment", `{ a { ... on T { b { c { d } } } } }`, CodeValidationFailed, "4 deep"},
		{"aliases", `{ a: f b: f c: f }`, CodeValidationFailed, "3 aliased fields; the limit is 2"},
		{"aliases nested", `{ a: f { b: g { c: h } } }`, CodeValidationFailed, "3 aliased fields"},
		{"aliases through a fragment spread twice", `{ f { ...F } g { ...F } } fragment F on T { a: x b: y }`, CodeValidationFailed, "4 aliased fields"},
		{"an alias equal to the name is none", `{ f: f g: g h: h }`, "", ""},
		{"directives on a field", `{ f @a @b @c }`, CodeValidationFailed, "field f has 3 directives; the limit is 2"},
		{"directives on an operation", `query @a @b @c { f }`, CodeValidationFailed, "operation has 3 directives"},
		{"directives on a variable", `query($v: Int @a @b @c) { f }`, CodeValidationFailed, "variable $v has 3 directives"},
		{"directives on a spread", `{ ...F @a @b @c } fragment F on Q { f }`, CodeValidationFailed, "fragment spread ...F has 3 directives"},
		{"directives on an inline fragment", `{ ... @a @b @c { f } }`, CodeValidationFailed, "inline fragment has 3 directives"},
		{"directives on a fragment", `{ ...F } fragment F on Q @a @b @c { f }`, CodeValidationFailed, "fragment F has 3 directives"},
		{"duplicate fields", `{ f f f }`, CodeValidationFailed, `3 fields answer as "f" in one place; the limit is 2`},
		{"two of a name pass", `{ f f g g }`, "", ""},
		{"duplicates through fragments", `{ f ...F } fragment F on Q { f ... on Q { f } }`, CodeValidationFailed, `3 fields answer as "f"`},
		{"duplicates merged below same-named fields", `{ a { x } a { x } a: b { x } }`, CodeValidationFailed, `3 fields answer as "a"`},
		{"duplicates below merged fields", `{ a { x x } a { x } }`, CodeValidationFailed, `3 fields answer as "x"`},
		{"duplicates in an unused fragment", `{ f } fragment F on Q { a a a }`, CodeValidationFailed, `3 fields answer as "a"`},
		{"fields", `{ a b c d e f g h i }`, CodeValidationFailed, "9 fields with fragments expanded; the limit is 8"},
		{"fields nested", `{ a { b c d } e { f g h i } }`, CodeValidationFailed, "9 fields"},
		{"fields through fragments", `{ f { ...F } g { ...F } h } fragment F on T { a b c }`, CodeValidationFailed, "9 fields"},
		{"fragments", `{ ...A ...B ...C } fragment A on Q { a } fragment B on Q { b } fragment C on Q { c }`, CodeValidationFailed, "3 fragments; the limit is 2"},
		{"fragment cycle", `{ ...F } fragment F on Q { ...G } fragment G on Q { ...F }`, CodeValidationFailed, "spreads itself"},
		{"unknown fragment left to the validator", `{ ...Nope }`, "", ""},
	}
	c := New(small)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Parse(tt.query)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if got := err.Extensions["code"]; got != tt.code {
				t.Errorf("code %v, want %s", got, tt.code)
			}
			if !strings.Contains(err.Message, tt.want) {
				t.Errorf("message %q, want it to contain %q", err.Message, tt.want)
			}
		})
	}
}

// TestExponentialFragments: fragments that double at every level expand to
// 2^60 fields; the count saturates and the walk stays linear.
func TestExponentialFragments(t *testing.T) {
	var b strings.Builder
	b.WriteString("{ ...F0 }\n")
	for i := range 60 {
		b.WriteString("fragment F" + strconv.Itoa(i) + " on Q { ...F" + strconv.Itoa(i+1) + " ...F" + strconv.Itoa(i+1) + " }\n")
	}
	b.WriteString("fragment F60 on Q { a }\n")
	_, err := New(Config{Fields: -1, Tokens: -1, Duplicates: -1, Fragments: -1}).Parse(b.String())
	if err != nil {
		t.Fatalf("with no field limit: %v", err)
	}
	_, err = New(Config{Tokens: -1, Fragments: -1}).Parse(b.String())
	if err == nil || !strings.Contains(err.Message, "fields") {
		t.Fatalf("want a fields refusal, got %v", err)
	}
}

func TestNegativeTurnsOff(t *testing.T) {
	c := New(Config{Bytes: -1, Tokens: -1, Depth: -1, Aliases: -1, Directives: -1, Duplicates: -1, Fields: -1, Fragments: -1})
	q := "{" + strings.Repeat(" a: f @a @b @c @d @e", 2000) + strings.Repeat(" g {", 30) + "x" + strings.Repeat("}", 30) + "}"
	if _, err := c.Parse(q); err != nil {
		t.Fatalf("refused with every limit off: %v", err)
	}
}

func TestText(t *testing.T) {
	c := New(Config{Bytes: 200})
	tests := []struct {
		name, query, want string
	}{
		{"plain", `{ f(s: "héllo 😀 \u00e9 \ud83d\ude00") }`, ""},
		{"lone high surrogate", `{ f(s: "a\ud800b") }`, `lone surrogate escape \ud800`},
		{"lone low surrogate", `{ f(s: "\uDC00") }`, `lone surrogate escape \udc00`},
		{"high then non-low", `{ f(s: "\ud800\u0041") }`, `\ud800`},
		{"escaped backslash", `{ f(s: "\\ud800") }`, ""},
		{"in a block string it is text", `{ f(s: """\ud800""") }`, ""},
		{"after a block string", `{ f(s: """x\"""y""", t: "\ud800") }`, `\ud800`},
		{"in a comment", "{ f # \\ud800\n }", ""},
		{"invalid UTF-8", "{ f(s: \"a\xffb\") }", "not valid UTF-8 (at byte offset 9)"},
		{"too long", "{ f(s: \"" + strings.Repeat("x", 200) + "\") }", "the document is 212 bytes long; the limit is 200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Parse(tt.query)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Message, tt.want) || err.Extensions["code"] != CodeParseFailed {
				t.Fatalf("got %v, want a parse failure saying %q", err, tt.want)
			}
		})
	}
}

// FuzzParse: no document makes Parse panic, and whatever it accepts
// gqlparser parses too, with every limit respected.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{introspectionQuery, inbox, `{ f(s: "\ud800") }`, `{ a { ...F } } fragment F on T { ...F }`,
		`{ f(s: """\ud800""") }`, "{ f # \\ud800\n }", `{ a: f @a @b @c @d @e }`} {
		f.Add(seed)
	}
	c := New(Config{Tokens: 300, Depth: 6, Aliases: 4, Directives: 2, Duplicates: 3, Fields: 40, Fragments: 4})
	f.Fuzz(func(t *testing.T, q string) {
		doc, err := c.Parse(q)
		if err != nil {
			if err.Extensions["code"] != CodeParseFailed && err.Extensions["code"] != CodeValidationFailed {
				t.Fatalf("%q: refusal without a code: %v", q, err)
			}
			return
		}
		if doc == nil {
			t.Fatalf("%q: no document and no error", q)
		}
		if len(doc.Fragments) > 4 {
			t.Fatalf("%q: %d fragments accepted", q, len(doc.Fragments))
		}
	})
}
