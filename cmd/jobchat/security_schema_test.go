package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/internal/config"
)

// secIntrospectionQuery is GraphiQL 4's introspection query (graphql-js's
// getIntrospectionQuery with every option on), which must run within the
// document limits.
const secIntrospectionQuery = `query IntrospectionQuery {
  __schema {
    description queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description isRepeatable locations args(includeDeprecated: true) { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL isOneOf
  fields(includeDeprecated: true) { name description args(includeDeprecated: true) { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue isDeprecated deprecationReason }
fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType {
  kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } } }`

// specDirectiveLocations are the GraphQL spec's (October 2021) directive
// locations, written out here rather than taken from the code under test.
var specDirectiveLocations = map[string]bool{
	"QUERY": true, "MUTATION": true, "SUBSCRIPTION": true, "FIELD": true, "FRAGMENT_DEFINITION": true,
	"FRAGMENT_SPREAD": true, "INLINE_FRAGMENT": true, "VARIABLE_DEFINITION": true,
	"SCHEMA": true, "SCALAR": true, "OBJECT": true, "FIELD_DEFINITION": true, "ARGUMENT_DEFINITION": true,
	"INTERFACE": true, "UNION": true, "ENUM": true, "ENUM_VALUE": true, "INPUT_OBJECT": true, "INPUT_FIELD_DEFINITION": true,
}

// TestSecurityIntrospectionLocations: the full introspection query runs,
// and every directive location it returns is one the spec lists, in
// __DirectiveLocation and on every directive.
func TestSecurityIntrospectionLocations(t *testing.T) {
	e := newEnv(t, "sqlite", nil)
	var out struct {
		Schema struct {
			Types []struct {
				Name       string
				EnumValues []struct{ Name string } `json:"enumValues"`
			}
			Directives []struct {
				Name      string
				Locations []string
			}
		} `json:"__schema"`
	}
	e.do(t, userToken(t, "ana", "Ana"), secIntrospectionQuery, nil).ok(t, &out)
	found := 0
	for _, ty := range out.Schema.Types {
		if ty.Name != "__DirectiveLocation" {
			continue
		}
		found++
		for _, v := range ty.EnumValues {
			if !specDirectiveLocations[v.Name] {
				t.Errorf("__DirectiveLocation has %s", v.Name)
			}
		}
		if len(ty.EnumValues) != len(specDirectiveLocations) {
			t.Errorf("__DirectiveLocation has %d values, want %d", len(ty.EnumValues), len(specDirectiveLocations))
		}
	}
	if found != 1 || len(out.Schema.Directives) == 0 {
		t.Fatalf("introspection without __DirectiveLocation or directives: %+v", out.Schema.Directives)
	}
	for _, d := range out.Schema.Directives {
		for _, l := range d.Locations {
			if !specDirectiveLocations[l] {
				t.Errorf("@%s has location %s", d.Name, l)
			}
		}
	}
}

// TestSecurityIntrospectionSetting: introspection follows the playground
// unless JOBCHAT_INTROSPECTION says otherwise; off, it is refused and no
// validation error suggests a name.
func TestSecurityIntrospectionSetting(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		on   bool
	}{
		{"default, with the playground", nil, true},
		{"playground off", map[string]string{"JOBCHAT_PLAYGROUND": "false"}, false},
		{"playground off, introspection on", map[string]string{"JOBCHAT_PLAYGROUND": "false", "JOBCHAT_INTROSPECTION": "true"}, true},
		{"playground on, introspection off", map[string]string{"JOBCHAT_INTROSPECTION": "false"}, false},
	}
	misspelt := []string{
		`{ conversatons { edges { cursor } } }`,                                          // a field
		`{ conversations(frist: 1) { edges { cursor } } }`,                               // an argument
		`mutation { setContactPolicy(conversationId: "c", policy: ALOW) { id } }`,        // an enum value
		`mutation { sendMessage(input: {conversationId: "c", messageTxt: "x"}) { id } }`, // an input field
		`query($x: SendMessageInpt) { me { id } }`,                                       // a type
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "sqlite", tt.vars)
			ana := userToken(t, "ana", "Ana")
			r := e.do(t, ana, `{ __schema { queryType { name } } }`, nil)
			if tt.on {
				r.ok(t, nil)
			} else {
				r.fails(t, "GRAPHQL_VALIDATION_FAILED", "introspection is disabled")
				e.do(t, ana, `{ __type(name: "Conversation") { name } }`, nil).fails(t, "GRAPHQL_VALIDATION_FAILED", "introspection is disabled")
			}
			e.do(t, ana, `{ __typename }`, nil).ok(t, nil)
			suggested := 0
			for _, q := range misspelt {
				r := e.do(t, ana, q, nil)
				if len(r.Errors) == 0 {
					t.Fatalf("%s accepted", q)
				}
				for _, er := range r.Errors {
					if strings.Contains(er.Message, "Did you mean") {
						suggested++
						if !tt.on {
							t.Errorf("%s: suggestion with introspection off: %q", q, er.Message)
						}
					}
				}
			}
			if tt.on && suggested == 0 {
				t.Errorf("no suggestion with introspection on: the test shows nothing")
			}
		})
	}
}

func secHash(q string) string {
	sum := sha256.Sum256([]byte(q))
	return hex.EncodeToString(sum[:])
}

// TestSecurityPersistedQueries: Automatic Persisted Queries as Apollo's
// link sends them, over POST and GET.
func TestSecurityPersistedQueries(t *testing.T) {
	e := newEnv(t, "sqlite", nil)
	ana := userToken(t, "ana", "Ana")
	q := `query Unread { unreadTotal }`
	ext := `{"persistedQuery":{"version":1,"sha256Hash":"` + secHash(q) + `"}}`
	e.secPost(t, ana, `{"extensions":`+ext+`}`).fails(t, "PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")
	e.secPost(t, ana, `{"query":`+string(mustJSON(t, q))+`,"extensions":`+ext+`}`).ok(t, nil)
	e.secPost(t, ana, `{"extensions":`+ext+`}`).ok(t, nil)

	get := func(params url.Values) gqlResponse {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/query?"+params.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+ana)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var r gqlResponse
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return r
	}
	var out struct {
		UnreadTotal int `json:"unreadTotal"`
	}
	get(url.Values{"extensions": {ext}}).ok(t, &out)
	q2 := `query Me { me { id } }`
	ext2 := `{"persistedQuery":{"version":1,"sha256Hash":"` + secHash(q2) + `"}}`
	get(url.Values{"extensions": {ext2}}).fails(t, "PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")
	get(url.Values{"query": {q2}, "extensions": {ext2}}).ok(t, nil)
	get(url.Values{"extensions": {ext2}}).ok(t, nil)
}

// TestSecurityPersistedOverSockets: a subscription sent by hash alone over
// either subprotocol runs once its text is known, and is answered
// PersistedQueryNotFound before, as over HTTP; the socket stays open.
func TestSecurityPersistedOverSockets(t *testing.T) {
	e := newEnv(t, "sqlite", nil)
	ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
	for i, proto := range []string{"graphql-transport-ws", "graphql-ws"} {
		t.Run(proto, func(t *testing.T) {
			conv := e.openJob(t, "job-"+proto, "ana", "ben", "")
			// Each protocol has an operation of its own, so that the first
			// try is unknown to the server. afterSeq 0 replays from the
			// start, so the send below cannot beat the subscriptions.
			q := `subscription Added` + strconv.Itoa(i) + `($c: ID!, $a: Int) { messageAdded(conversationId: $c, afterSeq: $a) { messageText } }`
			ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": secHash(q)}}
			vars := map[string]any{"c": conv.ID, "a": 0}
			typ := "subscribe"
			if proto == "graphql-ws" {
				typ = "start"
			}
			c := e.dial(t, proto, map[string]any{"authorization": "Bearer " + ana})

			c.send(wsMessage{ID: "h1", Type: typ, Payload: mustJSON(t, map[string]any{"variables": vars, "extensions": ext})})
			errs := apiOperationError(t, c, "h1")
			if apiCode(errs[0]) != "PERSISTED_QUERY_NOT_FOUND" || errs[0].Message != "PersistedQueryNotFound" {
				t.Fatalf("unknown hash: %+v", errs)
			}
			// The client registers the text with the hash, as Apollo's
			// link does on a retry; then the hash alone does.
			c.send(wsMessage{ID: "h2", Type: typ, Payload: mustJSON(t, map[string]any{"query": q, "variables": vars, "extensions": ext})})
			c.send(wsMessage{ID: "h3", Type: typ, Payload: mustJSON(t, map[string]any{"variables": vars, "extensions": ext})})
			text := "by hash over " + proto
			e.do(t, ben, sendMessage, map[string]any{"input": map[string]any{"conversationId": conv.ID, "messageText": text}}).ok(t, nil)
			for _, id := range []string{"h2", "h3"} {
				m := c.nextFor(id)
				if m.Type != "next" && m.Type != "data" || !strings.Contains(string(m.Payload), text) {
					t.Fatalf("operation %s: %+v %s", id, m, m.Payload)
				}
			}
		})
	}
}

// TestSecurityPersistedOnly: with JOBCHAT_PERSISTED_ONLY only the listed
// operations run, for users; the job-service runs anything.
func TestSecurityPersistedOnly(t *testing.T) {
	known := `query Unread { unreadTotal }`
	file := filepath.Join(t.TempDir(), "persisted-documents.json")
	if err := os.WriteFile(file, []byte(`{"`+secHash(known)+`":`+string(mustJSON(t, known))+`}`), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "sqlite", map[string]string{
		"JOBCHAT_PERSISTED_ONLY": "true", "JOBCHAT_PERSISTED_OPERATIONS": file, "JOBCHAT_PLAYGROUND": "false"})
	ana := userToken(t, "ana", "Ana")
	ext := `{"persistedQuery":{"version":1,"sha256Hash":"` + secHash(known) + `"}}`
	e.secPost(t, ana, `{"extensions":`+ext+`}`).ok(t, nil)
	e.do(t, ana, known, nil).ok(t, nil)
	e.do(t, ana, `{ unreadTotal }`, nil).fails(t, "OPERATION_NOT_ALLOWED", "only known operations")
	e.do(t, ana, `{ __schema { queryType { name } } }`, nil).fails(t, "OPERATION_NOT_ALLOWED", "only known operations")
	// The job-service opens conversations with operations of its own.
	e.openJob(t, "job-1", "ana", "ben", "hello")
	// And over a socket the same holds.
	c := e.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + ana})
	id := c.subscribe(`{ me { id } }`, nil)
	if m := c.nextFor(id); m.Type != "error" || !strings.Contains(string(m.Payload), "OPERATION_NOT_ALLOWED") {
		t.Fatalf("over a socket: %+v %s", m, m.Payload)
	}
}

// TestSecurityConfig: settings that cannot work together are refused at
// start, saying why.
func TestSecurityConfig(t *testing.T) {
	tests := []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"JOBCHAT_PERSISTED_ONLY": "true", "JOBCHAT_PLAYGROUND": "false"}, "JOBCHAT_PERSISTED_ONLY needs JOBCHAT_PERSISTED_OPERATIONS"},
		{map[string]string{"JOBCHAT_PERSISTED_ONLY": "true", "JOBCHAT_PERSISTED_OPERATIONS": "x.json"}, "needs JOBCHAT_PLAYGROUND=false"},
		{map[string]string{"JOBCHAT_INTROSPECTION": "maybe"}, "JOBCHAT_INTROSPECTION must be true, false or empty"},
		{map[string]string{"JOBCHAT_MAX_DEPTH": "0"}, "must be positive"},
	}
	for _, tt := range tests {
		_, _, err := config.Load("test", nil, func(k string) string { return tt.vars[k] }, io.Discard, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err %v, want %q", tt.vars, err, tt.want)
		}
	}
	// A list whose hash does not match stops the start.
	file := filepath.Join(t.TempDir(), "ops.json")
	if err := os.WriteFile(file, []byte(`{"`+secHash("x")+`":"{ me { id } }"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load("test", nil, func(k string) string {
		return map[string]string{"JOBCHAT_PERSISTED_OPERATIONS": file, "JOBCHAT_DATA_DIR": t.TempDir(), "JOBCHAT_JWT_SECRET": testSecret}[k]
	}, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newApp(t.Context(), cfg, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "is not the SHA-256 of its operation") {
		t.Fatalf("start with a bad list: %v", err)
	}
}
