package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/jobchat/jobchat/internal/jsontext"
)

// This file holds jobchat's GraphQL over HTTP transports, written to the
// GraphQL-over-HTTP spec (https://graphql.github.io/graphql-over-http/draft/)
// rather than taken from gqlgen: gqlgen's GET and POST answer 422 where the
// spec asks for 200 or 400, send "data": null on requests that never
// executed, refuse GET mutations with 406 instead of 405, know no 415 or 406,
// and let any unsupported request fall through to a bare 400.

// The media types /query answers with.
const (
	mediaJSON            = "application/json"
	mediaGraphQLResponse = "application/graphql-response+json"
	mediaEventStream     = "text/event-stream"
)

// allowedMethods is the Allow header of a 405 from /query, as gqlgen's
// transport.Options answers OPTIONS; websockets arrive as GET.
const allowedMethods = "GET, POST, OPTIONS"

// negotiate picks the response media type for an Accept header, or "" when
// the client accepts none that /query can produce. Without an Accept header
// the spec says to assume application/json. The highest q wins; among equal
// q values an exact range beats a wildcard, then the range the client listed
// first wins, then the order of offers (plain JSON first, which every client
// understands). An event stream is offered only to clients that name it:
// "*/*" must not turn a query into a never-ending response.
func negotiate(accept string) string {
	if strings.TrimSpace(accept) == "" {
		return mediaJSON
	}
	ranges := parseAccept(accept)
	best, bestQ, bestSpec, bestPos := "", 0.0, -1, 0
	for _, offer := range []string{mediaJSON, mediaGraphQLResponse, mediaEventStream} {
		q, spec, pos := matchOffer(ranges, offer)
		if q <= 0 || (offer == mediaEventStream && spec < 2) {
			continue
		}
		if q > bestQ || (q == bestQ && (spec > bestSpec || (spec == bestSpec && pos < bestPos))) {
			best, bestQ, bestSpec, bestPos = offer, q, spec, pos
		}
	}
	return best
}

// acceptRange is one media range of an Accept header.
type acceptRange struct {
	typ, sub string
	q        float64
	charset  string
}

func parseAccept(accept string) []acceptRange {
	var out []acceptRange
	for part := range strings.SplitSeq(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			// One malformed range should not make the others unacceptable.
			continue
		}
		typ, sub, ok := strings.Cut(mt, "/")
		if !ok {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(s, 64); err != nil || q < 0 || q > 1 {
				continue
			}
		}
		out = append(out, acceptRange{typ: typ, sub: sub, q: q, charset: strings.ToLower(params["charset"])})
	}
	return out
}

// matchOffer finds the most specific range matching offer, as RFC 9110
// §12.5.1 asks, and returns its q, its specificity (2 exact, 1 type/*, 0
// */*) and its position in the header.
func matchOffer(ranges []acceptRange, offer string) (q float64, spec, pos int) {
	typ, sub, _ := strings.Cut(offer, "/")
	spec = -1
	for i, r := range ranges {
		s := -1
		switch {
		case r.typ == typ && r.sub == sub:
			s = 2
		case r.typ == typ && r.sub == "*":
			s = 1
		case r.typ == "*" && r.sub == "*":
			s = 0
		}
		// We answer in UTF-8 only, so a range asking for another charset
		// does not match.
		if s > spec && (r.charset == "" || r.charset == "utf-8") {
			q, spec, pos = r.q, s, i
		}
	}
	return q, spec, pos
}

// httpError is a request refused before GraphQL sees it: it gets an HTTP
// status of its own, whatever the negotiated media type.
type httpError struct {
	status int
	msg    string
	allow  string // the Allow header of a 405
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) *httpError {
	return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// writeHTTPError answers a refused request with a GraphQL-shaped body, so
// that clients read every failure the same way. application/json is used
// when the client's own choice is unknown or unacceptable (406).
func writeHTTPError(w http.ResponseWriter, media string, e *httpError) {
	if media == "" || media == mediaEventStream {
		media = mediaJSON
	}
	if e.allow != "" {
		w.Header().Set("Allow", e.allow)
	}
	writeBody(w, media, e.status, errorsOnly{Errors: gqlerror.List{{Message: e.msg}}})
}

// errorsOnly is a response to a request that never executed. The spec says
// it has no "data" entry, which graphql.Response cannot omit.
type errorsOnly struct {
	Errors     gqlerror.List  `json:"errors"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

func writeBody(w http.ResponseWriter, media string, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Responses are built from JSON the executor made; failing here is
		// a bug, and the client still deserves an answer it can parse.
		status = http.StatusInternalServerError
		b = []byte(`{"errors":[{"message":"internal error"}]}`)
	}
	h := w.Header()
	h.Set("Content-Type", media+"; charset=utf-8")
	// Answers depend on the caller and change with every message.
	h.Set("Cache-Control", "no-store")
	h.Add("Vary", "Accept")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// requestErrorStatus is the status of a request that failed before execution
// (parse, validation, variable coercion, complexity): under
// application/graphql-response+json the spec asks for 4xx, because the body
// has no data; under application/json it asks for 200, because legacy
// clients read GraphQL errors only from 2xx bodies.
func requestErrorStatus(media string) int {
	if media == mediaGraphQLResponse {
		return http.StatusBadRequest
	}
	return http.StatusOK
}

// readPOSTParams reads a POST body of Content-Type application/json, the only
// one the spec requires and the only one jobchat takes.
func readPOSTParams(r *http.Request) (*graphql.RawParams, *httpError) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil, &httpError{status: http.StatusUnsupportedMediaType, msg: "send Content-Type: application/json"}
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != mediaJSON {
		return nil, &httpError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("Content-Type %q is not supported; send application/json", ct)}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, &httpError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("charset %q is not supported; send UTF-8", cs)}
	}
	// limitBody has already bounded the body.
	body, err := readBody(r)
	if err != nil {
		return nil, badRequest("could not read request body")
	}
	return parseParams("request body", body)
}

// parseParams reads a GraphQL request from JSON text: a POST's body, or a
// multipart request's operations field (what names it in messages).
func parseParams(what string, body []byte) (*graphql.RawParams, *httpError) {
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&fields); err != nil {
		return nil, badRequest("%s", jsonProblem(what, body, err))
	}
	if fields == nil {
		return nil, badRequest("%s must be a JSON object, not null", what)
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		trail := body[end:]
		at := end + int64(len(trail)-len(bytes.TrimLeft(trail, " \t\r\n")))
		return nil, badRequest("%s has data after the JSON object, at byte offset %d", what, at)
	}
	p := &graphql.RawParams{}
	var e *httpError
	if p.Query, e = stringParam("query", fields["query"]); e != nil {
		return nil, e
	}
	if p.OperationName, e = stringParam("operationName", fields["operationName"]); e != nil {
		return nil, e
	}
	if p.Variables, e = objectParam("variables", fields["variables"]); e != nil {
		return nil, e
	}
	if p.Extensions, e = objectParam("extensions", fields["extensions"]); e != nil {
		return nil, e
	}
	return p, checkQuery(p)
}

// readGETParams reads the URL parameters of a GET, where variables and
// extensions are JSON text.
func readGETParams(r *http.Request) (*graphql.RawParams, *httpError) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("malformed URL query: %v", err)
	}
	p := &graphql.RawParams{Query: q.Get("query"), OperationName: q.Get("operationName")}
	var e *httpError
	if p.Variables, e = objectParam("variables", jsonText(q.Get("variables"))); e != nil {
		return nil, e
	}
	if p.Extensions, e = objectParam("extensions", jsonText(q.Get("extensions"))); e != nil {
		return nil, e
	}
	return p, checkQuery(p)
}

// readBody reads a body limitBody has bounded, in one allocation when its
// length is known (limitBody makes it known for chunked bodies too).
func readBody(r *http.Request) ([]byte, error) {
	n := r.ContentLength
	if n <= 0 {
		return io.ReadAll(r.Body)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r.Body, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// jsonText makes an absent or empty URL parameter read as JSON null.
func jsonText(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

// checkQuery insists on a query unless the request names a persisted one,
// which the persisted-query extension resolves (or asks the client for).
func checkQuery(p *graphql.RawParams) *httpError {
	if p.Query != "" {
		return nil
	}
	if _, ok := p.Extensions["persistedQuery"]; ok {
		return nil
	}
	return badRequest("query is required")
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

func stringParam(name string, raw json.RawMessage) (string, *httpError) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", badRequest("%s must be a string", name)
	}
	return s, nil
}

func objectParam(name string, raw json.RawMessage) (map[string]any, *httpError) {
	if isNull(raw) {
		return nil, nil
	}
	if bytes.TrimSpace(raw)[0] != '{' {
		return nil, badRequest("%s must be a JSON object", name)
	}
	// Numbers stay json.Number, as in gqlgen's transports, so that large
	// Int and ID values are not rounded through float64; strings that are
	// not text stay recognisable (jsontext.InvalidString), so that the
	// guard refuses them instead of storing U+FFFD.
	m, err := jsontext.DecodeObject(raw)
	if err != nil {
		return nil, badRequest("%s", jsonProblem(name, raw, err))
	}
	return m, nil
}

// jsonProblem says what is wrong with what, whose JSON text is data, when
// decoding it as an object failed with err: where the syntax breaks, or
// that it ends early, or what it is instead of an object. Offsets count
// bytes from 0, as editors' "go to byte" does.
func jsonProblem(what string, data []byte, err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return what + " is empty; send a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("%s is malformed JSON: it ends early, at byte offset %d (is a closing brace or quote missing?)", what, len(data))
	case errors.As(err, &syntax):
		// Offset counts the bytes read, the offending one included.
		return fmt.Sprintf("%s is malformed JSON at byte offset %d: %s", what, max(syntax.Offset-1, 0), syntax.Error())
	case errors.As(err, &typ) && typ.Field == "":
		return fmt.Sprintf("%s must be a JSON object, not %s", what, an(typ.Value))
	}
	return what + " must be a JSON object"
}

// an puts the article before a JSON kind ("an array", "a string").
func an(kind string) string {
	if kind != "" && strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}

// noUpgrade keeps the HTTP transports away from websocket handshakes, which
// the websocket transport answers (or refuses) itself.
func noUpgrade(r *http.Request) bool { return r.Header.Get("Upgrade") == "" }

// httpTransport runs queries and mutations over POST and queries over GET,
// answering one JSON document. It is added after the event-stream transport,
// which takes the requests that ask for text/event-stream.
type httpTransport struct{}

var _ graphql.Transport = httpTransport{}

func (httpTransport) Supports(r *http.Request) bool {
	return noUpgrade(r) && (r.Method == http.MethodGet || r.Method == http.MethodPost)
}

func (httpTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	media := negotiate(r.Header.Get("Accept"))
	if media == "" || media == mediaEventStream {
		writeHTTPError(w, "", &httpError{
			status: http.StatusNotAcceptable,
			msg:    "Accept must allow application/graphql-response+json or application/json",
		})
		return
	}
	params, herr := readParams(r)
	if herr != nil {
		writeHTTPError(w, media, herr)
		return
	}
	runOperation(w, r, exec, media, params)
}

// runOperation executes one operation read from an HTTP request and
// writes its answer as one JSON document of the media type.
func runOperation(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor, media string, params *graphql.RawParams) {
	ctx := r.Context()
	opCtx, errs := exec.CreateOperationContext(ctx, params)
	if len(errs) > 0 {
		resp := exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), errs)
		writeBody(w, media, requestErrorStatus(media), errorsOnly{Errors: resp.Errors, Extensions: resp.Extensions})
		return
	}
	switch op := opCtx.Operation.Operation; {
	case r.Method == http.MethodGet && op == ast.Mutation:
		// The spec's rule: a GET must not change state, so that links,
		// prefetchers and caches cannot send messages on a user's behalf.
		writeHTTPError(w, media, &httpError{
			status: http.StatusMethodNotAllowed,
			msg:    "mutations need POST",
			allow:  http.MethodPost,
		})
		return
	case op == ast.Subscription:
		// One JSON document cannot carry a stream; answering with the
		// first event only would look like success and lose the rest.
		resp := exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), gqlerror.List{{
			Message: "subscriptions need Accept: text/event-stream or a WebSocket",
		}})
		writeBody(w, media, requestErrorStatus(media), errorsOnly{Errors: resp.Errors, Extensions: resp.Extensions})
		return
	}

	responses, ctx := exec.DispatchOperation(ctx, opCtx)
	resp := responses(ctx)
	if resp == nil {
		// Only a cancelled request gets no response; its client is gone.
		return
	}
	// An executed operation is a 200 under both media types, even when its
	// data is null because a non-null field failed.
	writeBody(w, media, http.StatusOK, resp)
}

// methodTransport answers anything that no other transport took and that is
// not a websocket handshake (a PUT, a DELETE) with 405 and the methods /query
// takes, where gqlgen would say "transport not supported" with a 400. It is
// added last; OPTIONS and HEAD go to gqlgen's transport.Options before it.
type methodTransport struct{}

var _ graphql.Transport = methodTransport{}

func (methodTransport) Supports(r *http.Request) bool { return noUpgrade(r) }

func (methodTransport) Do(w http.ResponseWriter, r *http.Request, _ graphql.GraphExecutor) {
	writeHTTPError(w, negotiate(r.Header.Get("Accept")), &httpError{
		status: http.StatusMethodNotAllowed,
		msg:    r.Method + " is not supported; use GET or POST",
		allow:  allowedMethods,
	})
}

// readParams reads a GraphQL request from a GET's query string or a POST's
// body, with the headers and read timing the executor records.
func readParams(r *http.Request) (*graphql.RawParams, *httpError) {
	start := graphql.Now()
	read := readPOSTParams
	if r.Method == http.MethodGet {
		read = readGETParams
	}
	params, herr := read(r)
	if herr != nil {
		return nil, herr
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	return params, nil
}
