package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
)

func TestHealthz(t *testing.T) {
	srv := newTestServer(t, Config{Ready: func(context.Context) error { return errors.New("db down") }})

	resp, body := srv.get(t, "/healthz")
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Fatalf("healthz = %d %q, want 200 {\"status\":\"ok\"} even when not ready", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
}

func TestReadyz(t *testing.T) {
	tests := []struct {
		name       string
		ready      func(context.Context) error
		wantStatus int
		wantBody   string
	}{
		{"nil check", nil, http.StatusOK, `{"status":"ok"}`},
		{"ready", func(context.Context) error { return nil }, http.StatusOK, `{"status":"ok"}`},
		{
			"not ready",
			func(context.Context) error { return errors.New("dial postgres://secret@db: refused") },
			http.StatusServiceUnavailable,
			`{"status":"unavailable"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t, Config{Ready: tt.ready})
			resp, body := srv.get(t, "/readyz")
			if resp.StatusCode != tt.wantStatus || strings.TrimSpace(body) != tt.wantBody {
				t.Fatalf("readyz = %d %q, want %d %s", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if tt.wantStatus != http.StatusOK {
				if strings.Contains(body, "secret") {
					t.Errorf("readiness error leaked to client: %s", body)
				}
				lines := srv.logs.waitLines(t, "not ready", 1)
				if !strings.Contains(lines[0]["error"].(string), "refused") {
					t.Errorf("readiness error not logged: %v", lines[0])
				}
			}
		})
	}
}

func TestPlayground(t *testing.T) {
	tests := []struct {
		name       string
		playground bool
		path       string
		wantStatus int
	}{
		{"enabled root", true, "/", http.StatusOK},
		{"enabled other path", true, "/other", http.StatusNotFound},
		{"disabled root", false, "/", http.StatusNotFound},
		{"disabled other path", false, "/other", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t, Config{Playground: tt.playground})
			resp, body := srv.get(t, tt.path)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("GET %s = %d, want %d", tt.path, resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusOK {
				if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
					t.Errorf("Content-Type = %q", resp.Header.Get("Content-Type"))
				}
				if !strings.Contains(body, "graphiql") || !strings.Contains(body, `"/query"`) {
					t.Errorf("playground page lacks GraphiQL or the /query endpoint")
				}
			}
		})
	}
}

func TestQuery(t *testing.T) {
	srv := newTestServer(t, Config{})

	tests := []struct {
		name          string
		method        string
		query         string
		wantStatus    int
		wantData      map[string]any
		wantErr       string
		wantMutations int32
	}{
		{"POST query", http.MethodPost, `{ hello }`, http.StatusOK, map[string]any{"hello": "world"}, "", 0},
		{"GET query", http.MethodGet, `{ hello }`, http.StatusOK, map[string]any{"hello": "world"}, "", 0},
		{"GET mutation refused", http.MethodGet, `mutation { bump }`, http.StatusMethodNotAllowed, nil, "mutations need POST", 0},
		{"GET subscription refused", http.MethodGet, `subscription { ticks }`, http.StatusOK, nil, "subscriptions need", 0},
		{"POST mutation", http.MethodPost, `mutation { bump }`, http.StatusOK, map[string]any{"bump": float64(1)}, "", 1},
		{"invalid query", http.MethodPost, `{ nope }`, http.StatusOK, nil, "Cannot query field", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp *http.Response
			var body string
			if tt.method == http.MethodGet {
				resp, body = srv.get(t, "/query?query="+url.QueryEscape(tt.query))
			} else {
				resp, body = srv.post(t, `{"query":`+jsonString(tt.query)+`}`)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
			}
			got := decodeGQL(t, body)
			for k, v := range tt.wantData {
				if got.Data[k] != v {
					t.Errorf("data.%s = %v, want %v; body %s", k, got.Data[k], v, body)
				}
			}
			if tt.wantErr != "" && (len(got.Errors) == 0 || !strings.Contains(got.Errors[0].Message, tt.wantErr)) {
				t.Errorf("errors = %+v, want one containing %q", got.Errors, tt.wantErr)
			}
			if n := srv.schema.mutations.Load(); n != tt.wantMutations {
				t.Errorf("mutations executed = %d, want %d", n, tt.wantMutations)
			}
		})
	}
}

func TestUnsupportedMethod(t *testing.T) {
	srv := newTestServer(t, Config{})
	req, err := http.NewRequest(http.MethodOptions, srv.URL+"/query", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := srv.do(t, req)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Allow"), "POST") {
		t.Errorf("OPTIONS = %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	req, err = http.NewRequest(http.MethodPut, srv.URL+"/query", strings.NewReader(`{"query":"{hello}"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if resp, body := srv.do(t, req); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") == "" {
		t.Errorf("PUT = %d %s Allow %q, want 405 with Allow", resp.StatusCode, body, resp.Header.Get("Allow"))
	}
}

func TestBodyLimit(t *testing.T) {
	srv := newTestServer(t, Config{MaxBodyBytes: 128})
	small := `{"query":"{ hello }"}`
	large := `{"query":"{ hello }","variables":{"pad":"` + strings.Repeat("x", 200) + `"}}`

	tests := []struct {
		name       string
		body       string
		chunked    bool
		wantStatus int
	}{
		{"small", small, false, http.StatusOK},
		{"small chunked", small, true, http.StatusOK},
		{"large", large, false, http.StatusRequestEntityTooLarge},
		{"large chunked", large, true, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				// Hiding the length makes the client send chunked encoding.
				body = io.MultiReader(body)
			}
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/query", body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, got := srv.do(t, req)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.wantStatus, got)
			}
			if tt.wantStatus == http.StatusOK && decodeGQL(t, got).Data["hello"] != "world" {
				t.Errorf("body = %s", got)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	srv := newTestServer(t, Config{})
	tests := []struct {
		name     string
		incoming string
		wantEcho bool
	}{
		{"echoed", "abc-123_DEF.4:5", true},
		{"echoed at 64 chars", strings.Repeat("a", 64), true},
		{"absent", "", false},
		{"too long", strings.Repeat("a", 65), false},
		{"unsafe characters", "abc def\"", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/healthz", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.incoming != "" {
				req.Header.Set("X-Request-Id", tt.incoming)
			}
			resp, _ := srv.do(t, req)
			got := resp.Header.Get("X-Request-Id")
			if tt.wantEcho {
				if got != tt.incoming {
					t.Errorf("X-Request-Id = %q, want %q", got, tt.incoming)
				}
				return
			}
			if _, err := uuid.Parse(got); err != nil {
				t.Errorf("X-Request-Id = %q, want a fresh uuid", got)
			}
		})
	}
}

func TestAccessLog(t *testing.T) {
	srv := newTestServer(t, Config{})
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/query", strings.NewReader(`{"query":"{ hello }"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "req-1")
	_, body := srv.do(t, req)
	srv.get(t, "/healthz")

	lines := srv.logs.waitLines(t, "request", 2)
	byPath := map[string]map[string]any{}
	for _, l := range lines {
		byPath[l["path"].(string)] = l
	}
	q := byPath["/query"]
	if q == nil {
		t.Fatalf("no access log line for /query: %v", lines)
	}
	want := map[string]any{"level": "info", "method": "POST", "status": float64(200), "bytes": float64(len(body)), "req_id": "req-1"}
	for k, v := range want {
		if q[k] != v {
			t.Errorf("access log %s = %v, want %v", k, q[k], v)
		}
	}
	if _, ok := q["duration_ms"].(float64); !ok {
		t.Errorf("access log lacks duration_ms: %v", q)
	}
	if h := byPath["/healthz"]; h == nil || h["level"] != "debug" {
		t.Errorf("healthz access log = %v, want level debug", h)
	}
}

func TestRecover(t *testing.T) {
	srv := newTestServer(t, Config{})
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/query", strings.NewReader(`{"query":"{ hello boom }"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "panic-1")
	resp, body := srv.do(t, req)

	got := decodeGQL(t, body)
	if resp.StatusCode != http.StatusOK || got.Data["hello"] != "world" {
		t.Fatalf("status %d body %s: a panicking field must not take the others down", resp.StatusCode, body)
	}
	if len(got.Errors) != 1 || got.Errors[0].Message != "internal error" {
		t.Errorf("errors = %+v, want one \"internal error\"", got.Errors)
	}
	if strings.Contains(body, "kaboom") || strings.Contains(body, "goroutine") {
		t.Errorf("panic detail leaked to client: %s", body)
	}
	lines := srv.logs.waitLines(t, "panic while resolving", 1)
	l := lines[0]
	if l["level"] != "error" || l["req_id"] != "panic-1" || !strings.Contains(l["panic"].(string), "kaboom") ||
		!strings.Contains(l["stack"].(string), "runtime/debug.Stack") {
		t.Errorf("panic log line = %v", l)
	}
}

func TestAuthenticate(t *testing.T) {
	var calls atomic.Int32
	auth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			ctx := context.WithValue(r.Context(), callerKey{}, r.Header.Get("X-Test-Caller"))
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
	srv := newTestServer(t, Config{Authenticate: auth, Ready: func(context.Context) error { return nil }})

	req, err := http.NewRequest(http.MethodPost, srv.URL+"/query", strings.NewReader(`{"query":"{ caller }"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Test-Caller", "alice")
	_, body := srv.do(t, req)
	if got := decodeGQL(t, body).Data["caller"]; got != "alice" {
		t.Errorf("caller = %v, want alice; body %s", got, body)
	}

	srv.get(t, "/healthz")
	srv.get(t, "/readyz")
	if n := calls.Load(); n != 1 {
		t.Errorf("Authenticate ran %d times, want once: only /query is authenticated", n)
	}
}

func TestComplexityLimit(t *testing.T) {
	srv := newTestServer(t, Config{ComplexityLimit: 2})
	tests := []struct {
		name    string
		query   string
		wantErr bool
	}{
		{"within limit", `{ a: hello b: hello }`, false},
		{"over limit", `{ a: hello b: hello c: hello }`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, body := srv.post(t, `{"query":`+jsonString(tt.query)+`}`)
			got := decodeGQL(t, body)
			if gotErr := len(got.Errors) > 0 && strings.Contains(got.Errors[0].Message, "complexity"); gotErr != tt.wantErr {
				t.Errorf("complexity error = %v, want %v; body %s", gotErr, tt.wantErr, body)
			}
		})
	}
}

func TestPersistedQuery(t *testing.T) {
	srv := newTestServer(t, Config{})
	query := `{ hello }`
	sum := sha256.Sum256([]byte(query))
	ext := `{"persistedQuery":{"version":1,"sha256Hash":"` + hex.EncodeToString(sum[:]) + `"}}`

	steps := []struct {
		name    string
		body    string
		wantErr string
	}{
		{"hash unknown", `{"extensions":` + ext + `}`, "PersistedQueryNotFound"},
		{"register", `{"query":` + jsonString(query) + `,"extensions":` + ext + `}`, ""},
		{"hash known", `{"extensions":` + ext + `}`, ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			_, body := srv.post(t, st.body)
			got := decodeGQL(t, body)
			if st.wantErr != "" {
				if len(got.Errors) == 0 || got.Errors[0].Message != st.wantErr {
					t.Errorf("body %s, want error %s", body, st.wantErr)
				}
				return
			}
			if got.Data["hello"] != "world" {
				t.Errorf("body %s", body)
			}
		})
	}
}

func TestNewPanicsWithoutSchema(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New without a schema did not panic")
		}
	}()
	New(Config{})
}

func jsonString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}
