package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/rs/zerolog"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// testSchema is a hand-written graphql.ExecutableSchema, standing in for
// generated code so this package's tests do not depend on jobchat's schema.
// Resolution mimics what gqlgen generates closely enough for the transports:
// a field context per field, and panics turned into errors through the
// configured RecoverFunc.
type testSchema struct {
	schema    *ast.Schema
	tick      time.Duration
	mutations atomic.Int32
}

var _ graphql.ExecutableSchema = (*testSchema)(nil)

type callerKey struct{}

func newTestSchema() *testSchema {
	return &testSchema{
		tick: 10 * time.Millisecond,
		schema: gqlparser.MustLoadSchema(&ast.Source{Name: "test.graphqls", Input: `
			type Query {
				hello: String!
				boom: String
				caller: String
			}
			scalar Upload
			type Mutation {
				bump: Int!
				upload(file: Upload!): String
			}
			type Subscription {
				ticks: Int!
				blobs: String!
			}
		`}),
	}
}

func (s *testSchema) Schema() *ast.Schema { return s.schema }

func (s *testSchema) Complexity(context.Context, string, string, int, map[string]any) (int, bool) {
	return 0, false
}

func (s *testSchema) Exec(ctx context.Context) graphql.ResponseHandler {
	opCtx := graphql.GetOperationContext(ctx)
	switch opCtx.Operation.Operation {
	case ast.Query:
		// Resolve inside the handler, as generated code does: errors added
		// during Exec itself would replace the whole response.
		done := false
		return func(ctx context.Context) *graphql.Response {
			if done {
				return nil
			}
			done = true
			return s.query(ctx, opCtx)
		}
	case ast.Mutation:
		fields := graphql.CollectFields(opCtx, opCtx.Operation.SelectionSet, []string{"Mutation"})
		if len(fields) > 0 && fields[0].Name == "upload" {
			return uploadResponse(ctx, fields[0])
		}
		n := s.mutations.Add(1)
		return graphql.OneShot(&graphql.Response{Data: fmt.Appendf(nil, `{"bump":%d}`, n)})
	case ast.Subscription:
		fields := graphql.CollectFields(opCtx, opCtx.Operation.SelectionSet, []string{"Subscription"})
		if len(fields) > 0 && fields[0].Name == "blobs" {
			return blobs()
		}
		return s.ticks(fields)
	default:
		return graphql.OneShot(graphql.ErrorResponse(ctx, "unsupported operation"))
	}
}

func (s *testSchema) query(ctx context.Context, opCtx *graphql.OperationContext) *graphql.Response {
	data := map[string]any{}
	for _, f := range graphql.CollectFields(opCtx, opCtx.Operation.SelectionSet, []string{"Query"}) {
		data[f.Alias] = s.resolve(ctx, f)
	}
	b, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	return &graphql.Response{Data: b}
}

func (s *testSchema) resolve(ctx context.Context, f graphql.CollectedField) (v any) {
	ctx = graphql.WithFieldContext(ctx, &graphql.FieldContext{Object: "Query", Field: f})
	defer func() {
		if r := recover(); r != nil {
			graphql.AddError(ctx, graphql.Recover(ctx, r))
			v = nil
		}
	}()
	switch f.Name {
	case "hello":
		return "world"
	case "boom":
		panic("kaboom: secret detail")
	case "caller":
		caller, _ := ctx.Value(callerKey{}).(string)
		return caller
	case "__typename":
		return "Query"
	}
	return nil
}

// ticks counts up every s.tick until the subscription is cancelled.
func (s *testSchema) ticks(fields []graphql.CollectedField) graphql.ResponseHandler {
	alias := "ticks"
	if len(fields) > 0 {
		alias = fields[0].Alias
	}
	n := 0
	return func(ctx context.Context) *graphql.Response {
		t := time.NewTimer(s.tick)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n++
		b, _ := json.Marshal(map[string]int{alias: n})
		return &graphql.Response{Data: b}
	}
}

// blobs sends 32 KiB strings as fast as the consumer takes them, to fill a
// socket that is not being read.
func blobs() graphql.ResponseHandler {
	data := []byte(`{"blobs":"` + strings.Repeat("x", 32<<10) + `"}`)
	return func(ctx context.Context) *graphql.Response {
		if ctx.Err() != nil {
			return nil
		}
		time.Sleep(time.Millisecond)
		return &graphql.Response{Data: data}
	}
}

// logBuffer collects log output from handlers running on other goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the JSON log lines whose message is msg.
func (b *logBuffer) lines(tb testing.TB, msg string) []map[string]any {
	tb.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			tb.Fatalf("log line is not JSON: %q", sc.Text())
		}
		if line["message"] == msg {
			out = append(out, line)
		}
	}
	return out
}

// waitLines polls for log lines that are written after the response, such as
// access log lines, which land after the client has read its answer.
func (b *logBuffer) waitLines(tb testing.TB, msg string, n int) []map[string]any {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines := b.lines(tb, msg)
		if len(lines) >= n || time.Now().After(deadline) {
			if len(lines) < n {
				tb.Fatalf("want %d %q log lines, got %d; log:\n%s", n, msg, len(lines), b.String())
			}
			return lines
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type testServer struct {
	*httptest.Server
	schema *testSchema
	logs   *logBuffer
}

// newTestServer serves New(cfg) on a real loopback socket, filling in the
// schema and a debug-level logger that the test can inspect.
func newTestServer(tb testing.TB, cfg Config) *testServer {
	tb.Helper()
	schema := newTestSchema()
	logs := &logBuffer{}
	if cfg.Schema == nil {
		cfg.Schema = schema
	}
	cfg.Log = zerolog.New(logs).Level(zerolog.DebugLevel)
	srv := httptest.NewServer(New(cfg))
	tb.Cleanup(srv.Close)
	return &testServer{Server: srv, schema: schema, logs: logs}
}

// do sends a request and returns the response with its body read.
func (s *testServer) do(tb testing.TB, req *http.Request) (*http.Response, string) {
	tb.Helper()
	resp, err := s.Client().Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		tb.Fatalf("read body: %v", err)
	}
	return resp, body.String()
}

func (s *testServer) get(tb testing.TB, path string) (*http.Response, string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return s.do(tb, req)
}

func (s *testServer) post(tb testing.TB, body string) (*http.Response, string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return s.do(tb, req)
}

// gqlResponse decodes a GraphQL response body.
type gqlResponse struct {
	Data   map[string]any `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

func decodeGQL(tb testing.TB, body string) gqlResponse {
	tb.Helper()
	var r gqlResponse
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		tb.Fatalf("decode %q: %v", body, err)
	}
	return r
}
