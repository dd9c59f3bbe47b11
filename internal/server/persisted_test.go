package server

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jobchat/jobchat/internal/coerce"
	"github.com/jobchat/jobchat/internal/limits"
)

func apqExtension(query string) string {
	return `{"persistedQuery":{"version":1,"sha256Hash":"` + hashOf(query) + `"}}`
}

// gqlCode is the first error's code, or "" for none.
func gqlCode(r gqlResponse) string {
	if len(r.Errors) == 0 {
		return ""
	}
	code, _ := r.Errors[0].Extensions["code"].(string)
	return code
}

// TestPersistedQueryGET: Apollo's link with useGETForHashedQueries sends
// the hash alone as a GET, and the query with it when the server does not
// know it yet.
func TestPersistedQueryGET(t *testing.T) {
	srv := newTestServer(t, Config{})
	query := `{ hello }`
	get := func(params url.Values) gqlResponse {
		_, body := srv.getQuery(t, "", params)
		return decodeGQL(t, body)
	}
	if got := get(url.Values{"extensions": {apqExtension(query)}}); gqlCode(got) != codePersistedNotFound || got.Errors[0].Message != errPersistedNotFound {
		t.Fatalf("unknown hash: %+v", got)
	}
	if got := get(url.Values{"query": {query}, "extensions": {apqExtension(query)}}); got.Data["hello"] != "world" {
		t.Fatalf("register over GET: %+v", got)
	}
	if got := get(url.Values{"extensions": {apqExtension(query)}}); got.Data["hello"] != "world" {
		t.Fatalf("known hash over GET: %+v", got)
	}
	// An uppercase hash is the same hash.
	upper := `{"persistedQuery":{"version":1,"sha256Hash":"` + strings.ToUpper(hashOf(query)) + `"}}`
	if got := get(url.Values{"extensions": {upper}}); got.Data["hello"] != "world" {
		t.Fatalf("uppercase hash: %+v", got)
	}
}

func TestPersistedQueryMalformed(t *testing.T) {
	srv := newTestServer(t, Config{})
	query := `{ hello }`
	tests := []struct{ name, ext, field string }{
		{"not an object", `{"persistedQuery":1}`, "extensions.persistedQuery"},
		{"version 2", `{"persistedQuery":{"version":2,"sha256Hash":"` + hashOf(query) + `"}}`, "extensions.persistedQuery.version"},
		{"short hash", `{"persistedQuery":{"version":1,"sha256Hash":"abc"}}`, "extensions.persistedQuery.sha256Hash"},
		{"hash of something else", apqExtension(`{ caller }`), "extensions.persistedQuery.sha256Hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, body := srv.post(t, `{"query":`+jsonString(query)+`,"extensions":`+tt.ext+`}`)
			got := decodeGQL(t, body)
			if gqlCode(got) != coerce.CodeBadUserInput || got.Errors[0].Extensions["field"] != tt.field {
				t.Fatalf("got %s, want BAD_USER_INPUT on %s", body, tt.field)
			}
		})
	}
}

// TestPersistedOperationsKnown: a listed operation runs by its hash on a
// server that has never seen its text.
func TestPersistedOperationsKnown(t *testing.T) {
	query := `query Hello { hello }`
	srv := newTestServer(t, Config{PersistedOperations: map[string]string{hashOf(query): query}})
	_, body := srv.post(t, `{"extensions":`+apqExtension(query)+`}`)
	if got := decodeGQL(t, body); got.Data["hello"] != "world" {
		t.Fatalf("got %s", body)
	}
}

// TestPersistedOnly: only listed operations run, by hash or in full;
// nothing is registered; a bypassed caller runs anything.
func TestPersistedOnly(t *testing.T) {
	known := `query Hello { hello }`
	srv := newTestServer(t, Config{
		PersistedOperations: map[string]string{hashOf(known): known},
		PersistedOnly:       true,
		Authenticate: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, r.Header.Get("X-Test-Caller"))))
			})
		},
		PersistedBypass: func(ctx context.Context) bool { return ctx.Value(callerKey{}) == "service" },
	})
	post := func(caller, body string) gqlResponse {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/query", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Test-Caller", caller)
		_, b := srv.do(t, req)
		return decodeGQL(t, b)
	}
	other := `{ caller }`
	tests := []struct {
		name, caller, body, code string
	}{
		{"known by hash", "user", `{"extensions":` + apqExtension(known) + `}`, ""},
		{"known in full", "user", `{"query":` + jsonString(known) + `}`, ""},
		{"known in full with its hash", "user", `{"query":` + jsonString(known) + `,"extensions":` + apqExtension(known) + `}`, ""},
		{"unknown in full", "user", `{"query":` + jsonString(other) + `}`, codeNotAllowed},
		{"unknown by hash", "user", `{"extensions":` + apqExtension(other) + `}`, codePersistedNotFound},
		{"unknown registered", "user", `{"query":` + jsonString(other) + `,"extensions":` + apqExtension(other) + `}`, codeNotAllowed},
		{"still unknown by hash", "user", `{"extensions":` + apqExtension(other) + `}`, codePersistedNotFound},
		{"introspection", "user", `{"query":"{ __schema { queryType { name } } }"}`, codeNotAllowed},
		{"the bypassed caller", "service", `{"query":` + jsonString(other) + `}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := post(tt.caller, tt.body)
			if gqlCode(got) != tt.code {
				t.Fatalf("got %+v, want code %q", got, tt.code)
			}
		})
	}
}

func TestLoadPersistedOperations(t *testing.T) {
	hello := `query Hello { hello }`
	write := func(content string) string {
		p := filepath.Join(t.TempDir(), "ops.json")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, content, wantErr string
	}{
		{"codegen map", `{"` + hashOf(hello) + `":` + jsonString(hello) + `}`, ""},
		{"apollo manifest", `{"format":"apollo-persisted-query-manifest","version":1,"operations":[{"id":"` + hashOf(hello) + `","name":"Hello","type":"query","body":` + jsonString(hello) + `}]}`, ""},
		{"wrong hash", `{"` + hashOf("x") + `":` + jsonString(hello) + `}`, "is not the SHA-256 of its operation"},
		{"not hex", `{"sha1:abc":` + jsonString(hello) + `}`, "is not a SHA-256 in hex"},
		{"over the limits", `{"` + hashOf("{ a: hello b: hello }") + `":"{ a: hello b: hello }"}`, "2 aliased fields; the limit is 1"},
		{"other manifest", `{"format":"relay","version":1,"operations":[]}`, "is not an apollo-persisted-query-manifest"},
		{"not JSON", `[1]`, "want a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, err := LoadPersistedOperations(write(tt.content), limits.Config{Aliases: 1})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ops[hashOf(hello)] != hello || len(ops) != 1 {
				t.Fatalf("got %v", ops)
			}
		})
	}
	if _, err := LoadPersistedOperations(filepath.Join(t.TempDir(), "none.json"), limits.Config{}); err == nil {
		t.Fatal("a missing file loaded")
	}
}
