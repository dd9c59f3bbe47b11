package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
)

// This file holds the GraphQL multipart request transport
// (https://github.com/jaydenseric/graphql-multipart-request-spec), what
// Apollo's upload link and urql's multipart fetch exchange send: an
// "operations" field with the request's JSON, a "map" field saying which
// variable each file fills, then the files. gqlgen's MultipartForm parses
// the whole form first, into memory and temporary files; this one streams:
// the operation runs as soon as the two fields are read, and the file is
// read by the resolver straight from the request body, with the size limit
// enforced as it goes. So the file must come last, as the spec orders, and
// one request carries at most one file, which every client sends for an
// operation with one Upload variable.

// The headers that make a multipart request one a browser cannot send from
// a plain HTML form or another site without a CORS preflight: one of them,
// non-empty, is required (CSRF protection, as Apollo Server does it).
const (
	headerApolloPreflight = "Apollo-Require-Preflight"
	headerJobchatUpload   = "X-Jobchat-Upload"
)

// uploadTimeout bounds a multipart request from its headers to the end of
// its answer: 25 MiB in 10 minutes is about 45 KB/s, a poor mobile link.
const uploadTimeout = 10 * time.Minute

// multipartTransport runs operations sent as GraphQL multipart requests.
// It is added before the other HTTP transports, which refuse multipart
// bodies with 415.
type multipartTransport struct {
	// maxFieldBytes bounds the operations and map fields together;
	// maxFileBytes the file.
	maxFieldBytes int64
	maxFileBytes  int64
}

var _ graphql.Transport = multipartTransport{}

// isMultipart reports whether r's body is multipart/form-data.
func isMultipart(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "multipart/form-data"
}

func (multipartTransport) Supports(r *http.Request) bool {
	return noUpgrade(r) && r.Method == http.MethodPost && isMultipart(r)
}

func (t multipartTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	media := negotiate(r.Header.Get("Accept"))
	if media == "" || media == mediaEventStream {
		writeHTTPError(w, "", &httpError{
			status: http.StatusNotAcceptable,
			msg:    "Accept must allow application/graphql-response+json or application/json",
		})
		return
	}
	if r.Header.Get(headerApolloPreflight) == "" && r.Header.Get(headerJobchatUpload) == "" {
		writeHTTPError(w, media, badRequest("a multipart request needs a non-empty %s or %s header", headerApolloPreflight, headerJobchatUpload))
		return
	}
	// A large file on a slow link takes minutes: longer than the server's
	// read and write timeouts, which suit JSON requests. The file's own
	// reads have this deadline instead.
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(uploadTimeout)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)

	start := graphql.Now()
	params, herr := t.read(w, r)
	if herr != nil {
		writeHTTPError(w, media, herr)
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	runOperation(w, r, exec, media, params)
}

// read reads the operations and map fields and puts the file, unread, in
// the variable the map names.
func (t multipartTransport) read(w http.ResponseWriter, r *http.Request) (*graphql.RawParams, *httpError) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, badRequest("malformed multipart request: %v", err)
	}
	budget := t.maxFieldBytes
	field := func(name string) ([]byte, *httpError) {
		p, err := mr.NextPart()
		if err != nil {
			return nil, badRequest("malformed multipart request: %v", err)
		}
		if p.FormName() != name || p.FileName() != "" {
			return nil, badRequest("the multipart request's fields must be operations, then map, then the files: found %q where %s belongs", p.FormName(), name)
		}
		b, err := io.ReadAll(io.LimitReader(p, budget+1))
		if err != nil {
			return nil, badRequest("could not read the %s field: %v", name, err)
		}
		if int64(len(b)) > budget {
			return nil, &httpError{status: http.StatusRequestEntityTooLarge, msg: "the operations and map fields are too large"}
		}
		budget -= int64(len(b))
		return b, nil
	}

	ops, herr := field("operations")
	if herr != nil {
		return nil, herr
	}
	if trimmed := bytes.TrimSpace(ops); len(trimmed) > 0 && trimmed[0] == '[' {
		return nil, badRequest("batched operations are not supported: send one operation per request")
	}
	params, herr := parseParams("operations", ops)
	if herr != nil {
		return nil, herr
	}
	rawMap, herr := field("map")
	if herr != nil {
		return nil, herr
	}
	var fileMap map[string][]string
	if err := json.Unmarshal(rawMap, &fileMap); err != nil {
		return nil, badRequest("map must be a JSON object of file fields to arrays of variable paths: %v", err)
	}
	if len(fileMap) == 0 {
		return params, nil
	}
	if len(fileMap) > 1 {
		return nil, badRequest("one file per request: map names %d", len(fileMap))
	}
	var key string
	var paths []string
	for k, ps := range fileMap {
		key, paths = k, ps
	}
	if len(paths) != 1 {
		return nil, badRequest("map.%s must name exactly one variable path", key)
	}

	p, err := mr.NextPart()
	if err != nil {
		return nil, badRequest("the file %q that map names is missing: %v", key, err)
	}
	if p.FormName() != key {
		return nil, badRequest("expected the file %q after map, found the field %q", key, p.FormName())
	}
	up := graphql.Upload{
		File:        &streamedFile{r: http.MaxBytesReader(w, p, t.maxFileBytes)},
		Filename:    p.FileName(),
		Size:        -1, // unknown until read: the body is streamed
		ContentType: p.Header.Get("Content-Type"),
	}
	if err := setVariable(params, paths[0], up); err != nil {
		return nil, badRequest("map.%s: %v", key, err)
	}
	return params, nil
}

// setVariable puts v at a map path ("variables.file",
// "variables.input.files.0"), where operations must hold null.
func setVariable(params *graphql.RawParams, path string, v any) error {
	parts := strings.Split(path, ".")
	if len(parts) < 2 || parts[0] != "variables" {
		return fmt.Errorf("%q is not a path into variables", path)
	}
	if params.Variables == nil {
		params.Variables = map[string]any{}
	}
	var cur any = params.Variables
	for i, part := range parts[1:] {
		last := i == len(parts)-2
		switch c := cur.(type) {
		case map[string]any:
			if last {
				if c[part] != nil {
					return fmt.Errorf("%q must be null in operations", path)
				}
				c[part] = v
				return nil
			}
			cur = c[part]
		case []any:
			n, err := strconv.Atoi(part)
			if err != nil || n < 0 || n >= len(c) {
				return fmt.Errorf("%q: no index %s", path, part)
			}
			if last {
				if c[n] != nil {
					return fmt.Errorf("%q must be null in operations", path)
				}
				c[n] = v
				return nil
			}
			cur = c[n]
		default:
			return fmt.Errorf("%q does not lead to a null in operations", path)
		}
	}
	return fmt.Errorf("%q does not lead to a null in operations", path)
}

// streamedFile is an upload read straight from the request body:
// graphql.Upload asks for an io.ReadSeeker, but a stream only goes
// forward.
type streamedFile struct{ r io.Reader }

func (f *streamedFile) Read(p []byte) (int, error) { return f.r.Read(p) }

func (f *streamedFile) Seek(int64, int) (int64, error) {
	return 0, errors.New("an upload is streamed from the request: it cannot seek")
}
