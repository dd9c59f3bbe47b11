// Package playground serves jobchat's GraphiQL playground: a page at "/" and
// everything it loads under AssetsPath, embedded in the binary and served
// from the same origin, so it works without internet access and under a
// Content-Security-Policy that allows nothing else.
//
// The page's own script (assets/jobchat/playground.js) gives GraphiQL a
// fetcher that sends the Headers tab with queries and mutations over HTTP
// and, for subscriptions, as the graphql-transport-ws connection_init
// payload, where jobchat's websocket authentication looks for the token. One
// {"Authorization": "Bearer <token>"} in the Headers tab therefore
// authenticates all three kinds of operation.
//
// Under GraphiQL's result pane the script lists every event a subscription
// received and shows the socket's state (connecting, live, closed with its
// code).
//
// The third-party files under assets/ (GraphiQL, React, ReactDOM, graphql-ws)
// are vendored from npm by update-assets.sh, one directory per package and
// version; the page finds them by file name.
package playground

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// AssetsPath is the URL path prefix under which the handler serves the
// embedded assets. Mount the handler on it as well as on "/".
const AssetsPath = "/playground/assets/"

// DefaultQuery is the query editor's content on a first visit.
const DefaultQuery = `# Welcome to the jobchat playground.
#
# 1. Get a token:
#      go run ./cmd/jobchat token --sub u1 --name Ana
#    or take one that "go run ./cmd/jobchat --demo"
#    printed.
# 2. Put it in the Headers tab below:
#      {"Authorization": "Bearer <token>"}
#    It authenticates queries, mutations and
#    subscriptions alike.
# 3. Run with the play button or Ctrl-Enter.

query Inbox {
  conversations(first: 10) {
    edges {
      node {
        id
        job { title }
        otherParticipant { displayName }
        unreadCount
        lastSeq
        lastMessage { senderName messageText timestamp }
      }
    }
  }
  unreadTotal
}
`

// DefaultHeaders is the Headers tab's content on a first visit: a
// placeholder saying where a token comes from.
const DefaultHeaders = `{
  "Authorization": "Bearer <paste a token from: go run ./cmd/jobchat token --sub u1 --name Ana>"
}`

// Config configures New. Its zero value gives the defaults documented on
// each field.
type Config struct {
	// Title is the page title. Empty means "jobchat playground".
	Title string
	// Endpoint is the GraphQL endpoint's path on this origin, for HTTP and
	// websockets alike. Empty means "/query".
	Endpoint string
	// DefaultQuery fills the query editor on a first visit. Empty means
	// DefaultQuery.
	DefaultQuery string
	// DefaultHeaders fills the Headers tab on a first visit. Empty means
	// DefaultHeaders.
	DefaultHeaders string
}

// contentSecurityPolicy lets the page load scripts, styles and fonts from its
// own origin only and talk to its own origin only (in CSP Level 3 'self'
// covers ws: and wss: to the same host). GraphiQL's stylesheet inlines its
// fonts and a few images as data: URLs. No 'unsafe-eval' and no
// 'unsafe-inline': GraphiQL, CodeMirror and React run without them, and the
// page's own script is a file and its settings a JSON data block.
//
// Styles also allow one <style> element per page load, by nonce (%s is the
// nonce). GraphiQL's menus and dialogs (the operation picker, settings) are
// Radix UI components that lock page scrolling while open: their
// react-remove-scroll-bar inserts a <style> element (".with-scroll-bars-hidden
// {…} body[data-scroll-locked] {…}", whose padding depends on the scrollbar's
// width), which style-src 'self' refuses. That is an element, not a style
// attribute, so style-src-attr 'unsafe-inline' would not help, and its text
// varies, so a hash would not fit every browser. The library stamps the
// element with the nonce in the global __webpack_nonce__ (the get-nonce
// convention), which playground.js sets from the page's settings. A nonce
// admits only elements that carry it, and only scripts of this origin can
// read it; scripts stay 'self' only. Style attributes set through the DOM
// (React's and CodeMirror's element.style) are not subject to CSP.
const contentSecurityPolicy = "default-src 'none'; " +
	"script-src 'self'; " +
	"style-src 'self' 'nonce-%s'; " +
	"img-src 'self' data:; " +
	"font-src 'self' data:; " +
	"connect-src 'self'; " +
	"base-uri 'none'; " +
	"form-action 'none'; " +
	"frame-ancestors 'none'"

// cspFor is the page's Content-Security-Policy with nonce as its style nonce.
func cspFor(nonce string) string {
	return fmt.Sprintf(contentSecurityPolicy, nonce)
}

// newNonce returns a fresh CSP nonce: 128 random bits, base64url.
func newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

const (
	// cacheImmutable is for files whose URL names their version.
	cacheImmutable = "public, max-age=31536000, immutable"
	// cacheRevalidate is for jobchat's own files, which change with the
	// binary under the same URL; the ETag makes revalidation cheap.
	cacheRevalidate = "no-cache"
	// cachePage is for the page: each response has a nonce of its own, which
	// a cached copy would reuse (or, revalidated, pair with another
	// response's Content-Security-Policy).
	cachePage = "no-store"
)

//go:embed assets
var embedded embed.FS

//go:embed page.html
var pageTemplate string

var page = template.Must(template.New("playground").Parse(pageTemplate))

// versionedDir matches the directories update-assets.sh makes,
// "<package>-<semver>/".
var versionedDir = regexp.MustCompile(`^[a-z0-9-]+-[0-9]+\.[0-9]+\.[0-9]+[0-9A-Za-z.+-]*/`)

// contentTypes maps the extensions under assets/ to their media types.
// Anything else is served as text/plain (the license files) — never sniffed.
var contentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
}

// Handler serves the playground page at "/" and the assets under AssetsPath.
type Handler struct {
	page   pageData
	assets map[string]*file // by path under AssetsPath
}

// pageData fills page.html; Settings.StyleNonce is set per response.
type pageData struct {
	Title                                             string
	GraphiQL, GraphiQLCSS, React, ReactDOM, GraphQLWS string
	PageJS, PageCSS                                   string
	Settings                                          settings
}

var _ http.Handler = (*Handler)(nil)

type file struct {
	body         []byte
	contentType  string
	cacheControl string
	etag         string

	// gzipped is body compressed, made on first request: GraphiQL's bundle
	// is 1 MB as is and a third of that compressed, and a server that never
	// serves the playground should not pay for it.
	gzipOnce sync.Once
	gzipped  []byte
}

// minGzip is the smallest body worth compressing.
const minGzip = 1024

func newFile(body []byte, contentType, cacheControl string) *file {
	sum := sha256.Sum256(body)
	return &file{
		body:         body,
		contentType:  contentType,
		cacheControl: cacheControl,
		etag:         `"` + hex.EncodeToString(sum[:12]) + `"`,
	}
}

// New returns the playground handler. It panics if cfg.Endpoint is not a
// path or if an asset the page needs is missing from the embedded files,
// both of which are build mistakes rather than runtime conditions.
func New(cfg Config) *Handler {
	if cfg.Title == "" {
		cfg.Title = "jobchat playground"
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = "/query"
	}
	if !strings.HasPrefix(cfg.Endpoint, "/") || strings.HasPrefix(cfg.Endpoint, "//") {
		panic(fmt.Sprintf("playground: Endpoint %q is not a path on this origin", cfg.Endpoint))
	}
	if cfg.DefaultQuery == "" {
		cfg.DefaultQuery = DefaultQuery
	}
	if cfg.DefaultHeaders == "" {
		cfg.DefaultHeaders = DefaultHeaders
	}

	assets, err := loadAssets()
	if err != nil {
		panic(fmt.Sprintf("playground: %v", err))
	}
	find := func(pattern string) string {
		var found []string
		for name := range assets {
			if ok, _ := path.Match(pattern, name); ok {
				found = append(found, name)
			}
		}
		if len(found) != 1 {
			panic(fmt.Sprintf("playground: want one embedded asset matching %q, have %q", pattern, found))
		}
		return AssetsPath + found[0]
	}
	data := pageData{
		Title:       cfg.Title,
		GraphiQL:    find("graphiql-*/graphiql.min.js"),
		GraphiQLCSS: find("graphiql-*/graphiql.min.css"),
		React:       find("react-[0-9]*/react.production.min.js"),
		ReactDOM:    find("react-dom-*/react-dom.production.min.js"),
		GraphQLWS:   find("graphql-ws-*/graphql-ws.min.js"),
		PageJS:      find("jobchat/playground.js"),
		PageCSS:     find("jobchat/playground.css"),
		Settings: settings{
			Endpoint:       cfg.Endpoint,
			DefaultQuery:   cfg.DefaultQuery,
			DefaultHeaders: cfg.DefaultHeaders,
		},
	}
	h := &Handler{page: data, assets: assets}
	if _, err := h.render(newNonce()); err != nil {
		panic(fmt.Sprintf("playground: %v", err))
	}
	return h
}

// render returns the page with nonce as its style nonce.
func (h *Handler) render(nonce string) ([]byte, error) {
	data := h.page
	data.Settings.StyleNonce = nonce
	var buf bytes.Buffer
	if err := page.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("render page: %w", err)
	}
	return buf.Bytes(), nil
}

// settings reach the page's script as JSON.
type settings struct {
	Endpoint       string `json:"endpoint"`
	DefaultQuery   string `json:"defaultQuery"`
	DefaultHeaders string `json:"defaultHeaders"`
	// StyleNonce is this response's CSP style nonce (see
	// contentSecurityPolicy).
	StyleNonce string `json:"styleNonce"`
}

func loadAssets() (map[string]*file, error) {
	root, err := fs.Sub(embedded, "assets")
	if err != nil {
		return nil, err
	}
	assets := make(map[string]*file)
	err = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		ctype, ok := contentTypes[path.Ext(name)]
		if !ok {
			ctype = "text/plain; charset=utf-8"
		}
		cache := cacheRevalidate
		if versionedDir.MatchString(name) {
			cache = cacheImmutable
		}
		assets[name] = newFile(body, ctype, cache)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load embedded assets: %w", err)
	}
	return assets, nil
}

// ServeHTTP serves the page at "/" and the assets under AssetsPath; anything
// else is 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.URL.Path == "/" {
		h.servePage(w, r)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, AssetsPath)
	if !ok {
		http.NotFound(w, r)
		return
	}
	f, ok := h.assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	f.serve(w, r)
}

// servePage serves the page with a nonce of its own.
func (h *Handler) servePage(w http.ResponseWriter, r *http.Request) {
	nonce := newNonce()
	body, err := h.render(nonce)
	if err != nil {
		// New rendered the same data, so this does not happen.
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", cspFor(nonce))
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Cache-Control", cachePage)
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func (f *file) serve(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Type", f.contentType)
	hdr.Set("Cache-Control", f.cacheControl)
	body, etag := f.body, f.etag
	if len(body) >= minGzip {
		hdr.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			body, etag = f.gzip(), strings.TrimSuffix(f.etag, `"`)+`-gzip"`
			hdr.Set("Content-Encoding", "gzip")
		}
	}
	hdr.Set("ETag", etag)
	// ServeContent answers conditional and range requests from the ETag; a
	// zero modification time leaves Last-Modified out.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

func (f *file) gzip() []byte {
	f.gzipOnce.Do(func() {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression) // the level is valid
		_, _ = zw.Write(f.body)                                // writes to memory do not fail
		_ = zw.Close()
		f.gzipped = b.Bytes()
	})
	return f.gzipped
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip
// (and does not refuse it with q=0).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
