package server

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// These tests hold /query to the GraphQL-over-HTTP spec, one rule each, over
// a real socket.

// postQuery posts body to /query with the given headers ("" leaves one out).
func (s *testServer) postQuery(tb testing.TB, contentType, accept, body string) (*http.Response, string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return s.do(tb, req)
}

// getQuery sends a GET to /query with the URL parameters params.
func (s *testServer) getQuery(tb testing.TB, accept string, params url.Values) (*http.Response, string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+"/query?"+params.Encode(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return s.do(tb, req)
}

// TestHTTPAcceptNegotiation: the response media type follows Accept, with
// application/json when it is missing, and 406 when nothing fits.
func TestHTTPAcceptNegotiation(t *testing.T) {
	srv := newTestServer(t, Config{})
	const (
		jsonCT = "application/json; charset=utf-8"
		grCT   = "application/graphql-response+json; charset=utf-8"
	)
	tests := []struct {
		accept     string
		wantStatus int
		wantCT     string
	}{
		{"", http.StatusOK, jsonCT},
		{"*/*", http.StatusOK, jsonCT},
		{"application/*", http.StatusOK, jsonCT},
		{"application/json", http.StatusOK, jsonCT},
		{"application/graphql-response+json", http.StatusOK, grCT},
		// Apollo Client and urql.
		{"application/graphql-response+json,application/json;q=0.9", http.StatusOK, grCT},
		{"application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed", http.StatusOK, grCT},
		{"application/json;q=0.5, application/graphql-response+json;q=0.8", http.StatusOK, grCT},
		{"text/html,application/xhtml+xml,*/*;q=0.8", http.StatusOK, jsonCT},
		{"application/json; charset=utf-8", http.StatusOK, jsonCT},
		{"text/html", http.StatusNotAcceptable, jsonCT},
		{"application/json;q=0", http.StatusNotAcceptable, jsonCT},
		{"application/json; charset=iso-8859-1", http.StatusNotAcceptable, jsonCT},
	}
	for _, tt := range tests {
		t.Run(tt.accept, func(t *testing.T) {
			resp, body := srv.postQuery(t, "application/json", tt.accept, `{"query":"{ hello }"}`)
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("Content-Type") != tt.wantCT {
				t.Fatalf("got %d %q, want %d %q; body %s", resp.StatusCode, resp.Header.Get("Content-Type"), tt.wantStatus, tt.wantCT, body)
			}
			got := decodeGQL(t, body)
			if tt.wantStatus == http.StatusOK && got.Data["hello"] != "world" {
				t.Errorf("body %s", body)
			}
			if tt.wantStatus != http.StatusOK && len(got.Errors) == 0 {
				t.Errorf("refusal without errors: %s", body)
			}
		})
	}
}

// TestHTTPRequestErrorStatus: an operation that fails before execution
// (parse, validation, variable coercion) answers 200 under application/json
// and 400 under application/graphql-response+json, without a data entry.
func TestHTTPRequestErrorStatus(t *testing.T) {
	srv := newTestServer(t, Config{ComplexityLimit: 2})
	tests := []struct {
		name, body, wantCode string
	}{
		{"parse", `{"query":"{"}`, "GRAPHQL_PARSE_FAILED"},
		{"validation", `{"query":"{ nope }"}`, "GRAPHQL_VALIDATION_FAILED"},
		{"variable coercion", `{"query":"query($b: Boolean!) { hello @include(if: $b) }","variables":{"b":"yes"}}`, "BAD_USER_INPUT"},
		{"unknown operation name", `{"query":"query A { hello }","operationName":"B"}`, "GRAPHQL_VALIDATION_FAILED"},
		{"complexity", `{"query":"{ a: hello b: hello c: hello }"}`, "COMPLEXITY_LIMIT_EXCEEDED"},
	}
	for _, tt := range tests {
		for _, media := range []struct {
			accept string
			status int
		}{{"application/json", http.StatusOK}, {"application/graphql-response+json", http.StatusBadRequest}} {
			t.Run(tt.name+" "+media.accept, func(t *testing.T) {
				resp, body := srv.postQuery(t, "application/json", media.accept, tt.body)
				if resp.StatusCode != media.status {
					t.Fatalf("status %d, want %d; body %s", resp.StatusCode, media.status, body)
				}
				if strings.Contains(body, `"data"`) {
					t.Errorf("request error with a data entry: %s", body)
				}
				got := decodeGQL(t, body)
				if len(got.Errors) == 0 || got.Errors[0].Extensions["code"] != tt.wantCode {
					t.Errorf("errors %+v, want code %s", got.Errors, tt.wantCode)
				}
			})
		}
	}
}

// TestHTTPExecutionResultStatus: an executed operation answers 200 under
// application/graphql-response+json too, even with field errors.
func TestHTTPExecutionResultStatus(t *testing.T) {
	srv := newTestServer(t, Config{})
	resp, body := srv.postQuery(t, "application/json", "application/graphql-response+json", `{"query":"{ hello boom }"}`)
	got := decodeGQL(t, body)
	if resp.StatusCode != http.StatusOK || got.Data["hello"] != "world" || len(got.Errors) != 1 {
		t.Fatalf("got %d %s, want 200 with data and one field error", resp.StatusCode, body)
	}
}

// TestHTTPUnsupportedContentType: a POST body that is not UTF-8
// application/json gets 415.
func TestHTTPUnsupportedContentType(t *testing.T) {
	srv := newTestServer(t, Config{})
	tests := []struct {
		contentType string
		wantStatus  int
	}{
		{"application/json", http.StatusOK},
		{"application/json; charset=utf-8", http.StatusOK},
		{"application/json; charset=UTF-8", http.StatusOK},
		{"", http.StatusUnsupportedMediaType},
		{"text/plain", http.StatusUnsupportedMediaType},
		{"application/graphql", http.StatusUnsupportedMediaType},
		{"application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"application/json; charset=utf-16", http.StatusUnsupportedMediaType},
		{"application/json; charset", http.StatusUnsupportedMediaType},
	}
	for _, tt := range tests {
		t.Run(tt.contentType, func(t *testing.T) {
			resp, body := srv.postQuery(t, tt.contentType, "", `{"query":"{ hello }"}`)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantStatus != http.StatusOK && len(decodeGQL(t, body).Errors) == 0 {
				t.Errorf("refusal without errors: %s", body)
			}
		})
	}
}

// TestHTTPMalformedBody: a POST body that is not a GraphQL request (bad
// JSON, a missing query, parameters of the wrong type) gets 400 under either
// media type, and nothing runs.
func TestHTTPMalformedBody(t *testing.T) {
	srv := newTestServer(t, Config{})
	tests := []struct {
		name, body, wantErr string
	}{
		{"empty", ``, "request body is empty; send a JSON object"},
		{"not JSON", `{ "not a JSON`, "request body is malformed JSON: it ends early, at byte offset 13"},
		// The closing brace is missing: the JSON ends early, and the
		// error says where.
		{"truncated", `{"query": "{ hello }"`, "request body is malformed JSON: it ends early, at byte offset 21"},
		{"bad character", `{"query": "{ hello }",}`, "request body is malformed JSON at byte offset 22: invalid character '}'"},
		{"array", `[{"query":"{ hello }"}]`, "request body must be a JSON object, not an array"},
		{"null", `null`, "request body must be a JSON object, not null"},
		{"trailing data", `{"query":"{ hello }"} {}`, "request body has data after the JSON object, at byte offset 22"},
		{"missing query", `{"qeury":"{ hello }"}`, "query is required"},
		{"empty query", `{"query":""}`, "query is required"},
		{"query number", `{"query":1}`, "query must be a string"},
		{"query object", `{"query":{"obj":"ect"}}`, "query must be a string"},
		{"operationName array", `{"query":"{ hello }","operationName":["a"]}`, "operationName must be a string"},
		{"variables string", `{"query":"{ hello }","variables":"{}"}`, "variables must be a JSON object"},
		{"variables array", `{"query":"{ hello }","variables":[]}`, "variables must be a JSON object"},
		{"extensions false", `{"query":"{ hello }","extensions":false}`, "extensions must be a JSON object"},
		{"mutation with bad variables", `{"query":"mutation { bump }","variables":0}`, "variables must be a JSON object"},
	}
	for _, tt := range tests {
		for _, accept := range []string{"application/json", "application/graphql-response+json"} {
			t.Run(tt.name+" "+accept, func(t *testing.T) {
				resp, body := srv.postQuery(t, "application/json", accept, tt.body)
				if resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("status %d, want 400; body %s", resp.StatusCode, body)
				}
				got := decodeGQL(t, body)
				if len(got.Errors) == 0 || !strings.Contains(got.Errors[0].Message, tt.wantErr) {
					t.Errorf("errors %+v, want one containing %q", got.Errors, tt.wantErr)
				}
			})
		}
	}
	if n := srv.schema.mutations.Load(); n != 0 {
		t.Errorf("a malformed request ran %d mutations", n)
	}
}

// TestHTTPNullParameters: null operationName, variables and extensions mean
// "none", as the spec allows.
func TestHTTPNullParameters(t *testing.T) {
	srv := newTestServer(t, Config{})
	resp, body := srv.postQuery(t, "application/json", "", `{"query":"{ hello }","operationName":null,"variables":null,"extensions":null}`)
	if resp.StatusCode != http.StatusOK || decodeGQL(t, body).Data["hello"] != "world" {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
}

// TestHTTPGETParameters: GET takes query, operationName and JSON-encoded
// variables and extensions from the URL; malformed ones get 400.
func TestHTTPGETParameters(t *testing.T) {
	srv := newTestServer(t, Config{})
	tests := []struct {
		name       string
		params     url.Values
		wantStatus int
		wantErr    string
	}{
		{"query", url.Values{"query": {"{ hello }"}}, http.StatusOK, ""},
		{"variables", url.Values{"query": {"query($b: Boolean!) { hello @include(if: $b) }"}, "variables": {`{"b":true}`}}, http.StatusOK, ""},
		{"operationName", url.Values{"query": {"query A { a: hello } query B { hello }"}, "operationName": {"B"}}, http.StatusOK, ""},
		{"missing query", url.Values{"variables": {`{}`}}, http.StatusBadRequest, "query is required"},
		{"variables not JSON", url.Values{"query": {"{ hello }"}, "variables": {`{b`}}, http.StatusBadRequest, "variables is malformed JSON at byte offset 1"},
		{"variables truncated", url.Values{"query": {"{ hello }"}, "variables": {`{"b":true`}}, http.StatusBadRequest, "variables is malformed JSON: it ends early, at byte offset 9"},
		{"variables array", url.Values{"query": {"{ hello }"}, "variables": {`[1]`}}, http.StatusBadRequest, "variables must be a JSON object"},
		{"extensions string", url.Values{"query": {"{ hello }"}, "extensions": {`"x"`}}, http.StatusBadRequest, "extensions must be a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := srv.getQuery(t, "", tt.params)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
			}
			got := decodeGQL(t, body)
			if tt.wantErr == "" && got.Data["hello"] != "world" {
				t.Errorf("body %s", body)
			}
			if tt.wantErr != "" && (len(got.Errors) == 0 || !strings.Contains(got.Errors[0].Message, tt.wantErr)) {
				t.Errorf("errors %+v, want one containing %q", got.Errors, tt.wantErr)
			}
		})
	}
}

// TestHTTPGETMutation: a mutation over GET is refused with 405 and
// Allow: POST before it runs, under either media type.
func TestHTTPGETMutation(t *testing.T) {
	srv := newTestServer(t, Config{})
	for _, accept := range []string{"application/json", "application/graphql-response+json"} {
		t.Run(accept, func(t *testing.T) {
			resp, body := srv.getQuery(t, accept, url.Values{"query": {"mutation { bump }"}})
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
				t.Fatalf("got %d Allow %q; body %s, want 405 Allow POST", resp.StatusCode, resp.Header.Get("Allow"), body)
			}
		})
	}
	if n := srv.schema.mutations.Load(); n != 0 {
		t.Errorf("GET ran %d mutations", n)
	}
}

// TestHTTPSubscriptionNeedsStream: a subscription asked for as one JSON
// document is refused instead of answered with its first event.
func TestHTTPSubscriptionNeedsStream(t *testing.T) {
	srv := newTestServer(t, Config{})
	for _, tt := range []struct {
		accept string
		status int
	}{{"application/json", http.StatusOK}, {"application/graphql-response+json", http.StatusBadRequest}} {
		t.Run(tt.accept, func(t *testing.T) {
			resp, body := srv.postQuery(t, "application/json", tt.accept, `{"query":"subscription { ticks }"}`)
			got := decodeGQL(t, body)
			if resp.StatusCode != tt.status || got.Data != nil || len(got.Errors) == 0 || !strings.Contains(got.Errors[0].Message, "text/event-stream") {
				t.Fatalf("got %d %s, want %d and an error pointing to text/event-stream", resp.StatusCode, body, tt.status)
			}
		})
	}
}

// TestHTTPMethodNotAllowed: methods /query does not take get 405 with an
// Allow header listing those it does.
func TestHTTPMethodNotAllowed(t *testing.T) {
	srv := newTestServer(t, Config{})
	for _, method := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
		t.Run(method, func(t *testing.T) {
			req, err := http.NewRequest(method, srv.URL+"/query", strings.NewReader(`{"query":"{ hello }"}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, body := srv.do(t, req)
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != allowedMethods {
				t.Fatalf("got %d Allow %q; body %s", resp.StatusCode, resp.Header.Get("Allow"), body)
			}
		})
	}
}
