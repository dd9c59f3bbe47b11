package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
)

// uploadResponse is the test schema's upload mutation: it reads the file
// to its end and says how much it read, or why it could not.
func uploadResponse(ctx context.Context, f graphql.CollectedField) graphql.ResponseHandler {
	args := f.ArgumentMap(graphql.GetOperationContext(ctx).Variables)
	up, ok := args["file"].(graphql.Upload)
	if !ok {
		return graphql.OneShot(graphql.ErrorResponse(ctx, "file is %T", args["file"]))
	}
	n, err := io.Copy(io.Discard, up.File)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return graphql.OneShot(graphql.ErrorResponse(ctx, "file too large after %d bytes", n))
	}
	if err != nil {
		return graphql.OneShot(graphql.ErrorResponse(ctx, "read file: %v", err))
	}
	b, _ := json.Marshal(map[string]string{f.Alias: fmt.Sprintf("%d bytes of %s (%s)", n, up.Filename, up.ContentType)})
	return graphql.OneShot(&graphql.Response{Data: b})
}

const uploadQuery = `{"query":"mutation($f: Upload!) { upload(file: $f) }","variables":{"f":null}}`

// part is one part of a multipart body: a field, or a file when filename
// is set.
type part struct{ name, filename, body string }

func multipartBody(tb testing.TB, parts ...part) (string, *bytes.Buffer) {
	tb.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range parts {
		var w io.Writer
		var err error
		if p.filename != "" {
			w, err = mw.CreateFormFile(p.name, p.filename)
		} else {
			w, err = mw.CreateFormField(p.name)
		}
		if err != nil {
			tb.Fatal(err)
		}
		_, _ = io.WriteString(w, p.body)
	}
	if err := mw.Close(); err != nil {
		tb.Fatal(err)
	}
	return mw.FormDataContentType(), &b
}

func (s *testServer) postMultipart(tb testing.TB, headers map[string]string, parts ...part) (*http.Response, string) {
	tb.Helper()
	ct, body := multipartBody(tb, parts...)
	req, err := http.NewRequest(http.MethodPost, s.URL+"/query", body)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return s.do(tb, req)
}

// TestMultipartUpload: the GraphQL multipart request spec, its order of
// fields, the CSRF header and the size limits.
func TestMultipartUpload(t *testing.T) {
	srv := newTestServer(t, Config{MaxBodyBytes: 4096, MaxUploadBytes: 10_000})
	preflight := map[string]string{"Apollo-Require-Preflight": "true"}
	file := part{"0", "note.txt", strings.Repeat("x", 9_000)}
	tests := []struct {
		name    string
		headers map[string]string
		parts   []part
		status  int
		want    string
	}{
		{"upload", preflight, []part{{"operations", "", uploadQuery}, {"map", "", `{"0":["variables.f"]}`}, file},
			200, `{"data":{"upload":"9000 bytes of note.txt (application/octet-stream)"}}`},
		{"x-jobchat-upload header", map[string]string{"X-Jobchat-Upload": "1"},
			[]part{{"operations", "", uploadQuery}, {"map", "", `{"0":["variables.f"]}`}, file}, 200, "9000 bytes"},
		{"nested path", preflight, []part{{"operations", "", `{"query":"mutation($i: [Upload]) { upload(file: $i) }","variables":{"i":[null]}}`},
			{"map", "", `{"0":["variables.i.0"]}`}, file}, 200, "Upload"},
		{"no CSRF header", nil, []part{{"operations", "", uploadQuery}, {"map", "", `{"0":["variables.f"]}`}, file},
			400, "Apollo-Require-Preflight or X-Jobchat-Upload"},
		{"empty CSRF header", map[string]string{"Apollo-Require-Preflight": ""},
			[]part{{"operations", "", uploadQuery}, {"map", "", `{"0":["variables.f"]}`}, file}, 400, "X-Jobchat-Upload"},
		{"file over the limit, found while reading", preflight,
			[]part{{"operations", "", uploadQuery}, {"map", "", `{"0":["variables.f"]}`}, {"0", "big.bin", strings.Repeat("x", 10_001)}},
			200, "file too large after 10000 bytes"},
		{"map first", preflight, []part{{"map", "", `{"0":["variables.f"]}`}, {"operations", "", uploadQuery}, file}, 400, "operations, then map"},
		{"file missing", preflight, []part{{"operations", "", uploadQuery}, {"map", "", `{"0":["variables.f"]}`}}, 400, "missing"},
		{"wrong file", preflight, []part{{"operations", "", uploadQuery}, {"map", "", `{"0":["variables.f"]}`}, {"1", "a.txt", "a"}}, 400, "expected the file"},
		{"two files", preflight, []part{{"operations", "", uploadQuery}, {"map", "", `{"0":["variables.f"],"1":["variables.g"]}`}, file}, 400, "one file per request"},
		{"batched", preflight, []part{{"operations", "", "[" + uploadQuery + "]"}, {"map", "", `{}`}}, 400, "batched"},
		{"path not null", preflight, []part{{"operations", "", `{"query":"mutation($f: Upload!) { upload(file: $f) }","variables":{"f":"x"}}`},
			{"map", "", `{"0":["variables.f"]}`}, file}, 400, "must be null"},
		{"path outside variables", preflight, []part{{"operations", "", uploadQuery}, {"map", "", `{"0":["query"]}`}, file}, 400, "not a path into variables"},
		{"fields too large", preflight, []part{{"operations", "", uploadQuery[:len(uploadQuery)-1] + `,"extensions":{"pad":"` + strings.Repeat("p", 5000) + `"}}`}}, 413, "too large"},
		{"no files", preflight, []part{{"operations", "", `{"query":"{ hello }"}`}, {"map", "", `{}`}}, 200, `{"data":{"hello":"world"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := srv.postMultipart(t, tc.headers, tc.parts...)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("%d %s, want %d with %q", resp.StatusCode, body, tc.status, tc.want)
			}
		})
	}
}

// TestMultipartContentLength: a body whose Content-Length is over the
// limits is refused with 413 before anything is read; a JSON body keeps
// its own, smaller limit.
func TestMultipartContentLength(t *testing.T) {
	srv := newTestServer(t, Config{MaxBodyBytes: 4096, MaxUploadBytes: 10_000})
	ct, body := multipartBody(t, part{"operations", "", uploadQuery}, part{"map", "", `{"0":["variables.f"]}`},
		part{"0", "big.bin", strings.Repeat("x", 20_000)})
	read := &countingReader{r: body}
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/query", read)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(body.Len())
	req.Header.Set("Content-Type", ct)
	req.Header.Set("X-Jobchat-Upload", "1")
	resp, got := srv.do(t, req)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("%d %s, want 413", resp.StatusCode, got)
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestSetVariable(t *testing.T) {
	for _, tc := range []struct {
		vars map[string]any
		path string
		ok   bool
	}{
		{map[string]any{"f": nil}, "variables.f", true},
		{map[string]any{}, "variables.f", true},
		{map[string]any{"in": map[string]any{"file": nil}}, "variables.in.file", true},
		{map[string]any{"fs": []any{nil, nil}}, "variables.fs.1", true},
		{map[string]any{"fs": []any{nil}}, "variables.fs.1", false},
		{map[string]any{"fs": []any{nil}}, "variables.fs.x", false},
		{map[string]any{"f": "x"}, "variables.f", false},
		{map[string]any{"f": "x"}, "variables.f.g", false},
		{nil, "operationName", false},
		{nil, "variables", false},
	} {
		p := &graphql.RawParams{Variables: tc.vars}
		err := setVariable(p, tc.path, "FILE")
		if (err == nil) != tc.ok {
			t.Errorf("%s in %v: err = %v, want ok %v", tc.path, tc.vars, err, tc.ok)
		}
	}
}
