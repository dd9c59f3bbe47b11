package playground

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

func TestPage(t *testing.T) {
	srv := httptest.NewServer(New(Config{}))
	t.Cleanup(srv.Close)

	resp, body := get(t, srv, "/", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d", resp.StatusCode)
	}
	settings := pageSettings(t, body)
	wantHeaders := map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Cache-Control":           "no-store",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": cspFor(settings.StyleNonce),
		"ETag":                    "",
	}
	for name, want := range wantHeaders {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, banned := range []string{"unsafe-eval", "unsafe-inline", "unsafe-hashes", "*", "http:", "https:"} {
		if strings.Contains(csp, banned) {
			t.Errorf("CSP allows %s: %s", banned, csp)
		}
	}
	directives := cspDirectives(csp)
	if got := directives["script-src"]; got != "'self'" {
		t.Errorf("script-src = %q, want 'self' only", got)
	}
	if got, want := directives["style-src"], "'self' 'nonce-"+settings.StyleNonce+"'"; got != want {
		t.Errorf("style-src = %q, want %q", got, want)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`).MatchString(settings.StyleNonce) {
		t.Errorf("style nonce %q is not 128 bits of base64url", settings.StyleNonce)
	}

	// Everything the page loads comes from this origin: no absolute URL
	// anywhere, and every src and href a path under AssetsPath (or the
	// empty data: icon, which keeps browsers from asking for /favicon.ico).
	if strings.Contains(body, "://") || strings.Contains(body, `"//`) {
		t.Errorf("page mentions another origin:\n%s", body)
	}
	refs := references(t, body)
	if len(refs) != 7 {
		t.Errorf("page references %d files, want 7 (React, ReactDOM, GraphiQL js and css, graphql-ws, page js and css): %q", len(refs), refs)
	}

	if settings.Endpoint != "/query" || settings.DefaultQuery != DefaultQuery || settings.DefaultHeaders != DefaultHeaders {
		t.Errorf("settings = %+v", settings)
	}
	var headers map[string]string
	if err := json.Unmarshal([]byte(settings.DefaultHeaders), &headers); err != nil || !strings.HasPrefix(headers["Authorization"], "Bearer ") {
		t.Errorf("default headers %q are not {\"Authorization\": \"Bearer …\"}: %v", settings.DefaultHeaders, err)
	}
	// fetch() refuses header values outside Latin-1, so a placeholder with
	// such a character would break every request until replaced.
	for _, r := range settings.DefaultHeaders {
		if r > 0x7e {
			t.Errorf("default headers contain %q, which fetch cannot send", r)
		}
	}
}

// TestPageNonce: every response has a nonce of its own, in its CSP and in the
// settings the page's script reads, and no cache may keep it.
func TestPageNonce(t *testing.T) {
	srv := httptest.NewServer(New(Config{}))
	t.Cleanup(srv.Close)

	seen := map[string]bool{}
	for range 5 {
		resp, body := get(t, srv, "/", nil)
		nonce := pageSettings(t, body).StyleNonce
		if seen[nonce] {
			t.Fatalf("nonce %q served twice", nonce)
		}
		seen[nonce] = true
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "'nonce-"+nonce+"'") {
			t.Errorf("CSP %q does not carry the page's nonce %q", csp, nonce)
		}
		if strings.Count(body, nonce) != 1 {
			t.Errorf("the nonce appears %d times in the page, want once (in the settings)", strings.Count(body, nonce))
		}
	}
	// A conditional request cannot get a 304: there is nothing to match.
	resp, body := get(t, srv, "/", http.Header{"If-None-Match": {"*"}})
	if resp.StatusCode != http.StatusOK || body == "" {
		t.Errorf("conditional GET / = %d with %d bytes, want 200 and the page", resp.StatusCode, len(body))
	}
}

// cspDirectives splits a policy into its directives' values by name.
func cspDirectives(csp string) map[string]string {
	out := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		out[name] = strings.TrimSpace(value)
	}
	return out
}

func TestPageConfig(t *testing.T) {
	h := New(Config{Title: "chat <dev>", Endpoint: "/graphql", DefaultQuery: "{ me { id } }", DefaultHeaders: "{}"})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	_, body := get(t, srv, "/", nil)
	if !strings.Contains(body, "<title>chat &lt;dev&gt;</title>") {
		t.Errorf("title not set and escaped:\n%s", body)
	}
	want := settings{Endpoint: "/graphql", DefaultQuery: "{ me { id } }", DefaultHeaders: "{}"}
	got := pageSettings(t, body)
	got.StyleNonce = ""
	if got != want {
		t.Errorf("settings = %+v, want %+v", got, want)
	}

	for _, endpoint := range []string{"http://example.com/query", "//example.com/query", "query"} {
		t.Run("endpoint "+endpoint, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("New accepted Endpoint %q", endpoint)
				}
			}()
			New(Config{Endpoint: endpoint})
		})
	}
}

// TestReferencedAssets fetches every file the page references.
func TestReferencedAssets(t *testing.T) {
	srv := httptest.NewServer(New(Config{}))
	t.Cleanup(srv.Close)

	_, page := get(t, srv, "/", nil)
	for _, ref := range references(t, page) {
		t.Run(ref, func(t *testing.T) {
			resp, body := get(t, srv, ref, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d", ref, resp.StatusCode)
			}
			wantType := map[string]string{
				".js":  "text/javascript; charset=utf-8",
				".css": "text/css; charset=utf-8",
			}[path.Ext(ref)]
			if got := resp.Header.Get("Content-Type"); got != wantType {
				t.Errorf("Content-Type = %q, want %q", got, wantType)
			}
			if len(body) == 0 {
				t.Errorf("empty body")
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q", got)
			}
			wantCache := cacheImmutable
			if strings.HasPrefix(ref, AssetsPath+"jobchat/") {
				// Our own files change under the same URL.
				wantCache = cacheRevalidate
				if strings.Contains(body, "://") {
					t.Errorf("%s mentions another origin", ref)
				}
			}
			if got := resp.Header.Get("Cache-Control"); got != wantCache {
				t.Errorf("Cache-Control = %q, want %q", got, wantCache)
			}

			etag := resp.Header.Get("ETag")
			if etag == "" {
				t.Fatalf("no ETag")
			}
			resp, body = get(t, srv, ref, http.Header{"If-None-Match": {etag}})
			if resp.StatusCode != http.StatusNotModified || body != "" {
				t.Errorf("GET with If-None-Match = %d with %d bytes, want 304 and none", resp.StatusCode, len(body))
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	srv := httptest.NewServer(New(Config{}))
	t.Cleanup(srv.Close)

	for _, p := range []string{
		"/other",
		"/index.html",
		"/playground/",
		"/playground/assets/",
		"/playground/assets/nope.js",
		"/playground/assets/jobchat/",
		"/playground/assets/jobchat",
		"/playground/assets/jobchat/nope.js",
		"/playground/assets/graphiql-0.0.0/graphiql.min.js",
		"/playground/assets/jobchat/../../page.html",
		"/playground/assets/%2e%2e/page.html",
	} {
		t.Run(p, func(t *testing.T) {
			resp, _ := get(t, srv, p, nil)
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s = %d, want 404", p, resp.StatusCode)
			}
		})
	}
}

func TestMethods(t *testing.T) {
	srv := httptest.NewServer(New(Config{}))
	t.Cleanup(srv.Close)

	tests := []struct {
		method, path string
		wantStatus   int
	}{
		{http.MethodHead, "/", http.StatusOK},
		{http.MethodHead, AssetsPath + "jobchat/playground.js", http.StatusOK},
		{http.MethodPost, "/", http.StatusMethodNotAllowed},
		{http.MethodPut, AssetsPath + "jobchat/playground.js", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.wantStatus)
			}
		})
	}
}

// TestVendoredLicenses checks that every vendored package ships its license.
func TestVendoredLicenses(t *testing.T) {
	entries, err := fs.ReadDir(embedded, "assets")
	if err != nil {
		t.Fatal(err)
	}
	vendored := 0
	for _, e := range entries {
		if !e.IsDir() || !versionedDir.MatchString(e.Name()+"/") {
			continue
		}
		vendored++
		licenses, _ := fs.Glob(embedded, "assets/"+e.Name()+"/LICENSE*")
		if len(licenses) == 0 {
			t.Errorf("assets/%s has no LICENSE file", e.Name())
		}
	}
	if vendored != 4 {
		t.Errorf("%d vendored packages, want 4 (graphiql, react, react-dom, graphql-ws)", vendored)
	}
}

var refRE = regexp.MustCompile(`(?:src|href)="([^"]*)"`)

// references returns the paths of the files the page loads, failing the
// test on any reference that is not a path under AssetsPath.
func references(tb testing.TB, page string) []string {
	tb.Helper()
	var refs []string
	for _, m := range refRE.FindAllStringSubmatch(page, -1) {
		ref := m[1]
		if ref == "data:," {
			continue
		}
		if !strings.HasPrefix(ref, AssetsPath) {
			tb.Errorf("page references %q, outside %s", ref, AssetsPath)
			continue
		}
		refs = append(refs, ref)
	}
	return refs
}

var settingsRE = regexp.MustCompile(`(?s)<script id="playground-config" type="application/json">(.*?)</script>`)

func pageSettings(tb testing.TB, page string) settings {
	tb.Helper()
	m := settingsRE.FindStringSubmatch(page)
	if m == nil {
		tb.Fatalf("page has no settings block:\n%s", page)
	}
	var s settings
	if err := json.Unmarshal([]byte(m[1]), &s); err != nil {
		tb.Fatalf("settings block %q: %v", m[1], err)
	}
	return s
}

func get(tb testing.TB, srv *httptest.Server, p string, header http.Header) (*http.Response, string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+p, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, string(body)
}

// TestGzip: clients that accept gzip get large files compressed, with their
// own ETag and Vary; others, and small files, get them as they are.
func TestGzip(t *testing.T) {
	srv := httptest.NewServer(New(Config{}))
	t.Cleanup(srv.Close)
	_, page := get(t, srv, "/", nil)
	var big string
	for _, ref := range references(t, page) {
		if strings.HasSuffix(ref, "graphiql.min.js") {
			big = ref
		}
	}
	if big == "" {
		t.Fatal("page references no graphiql.min.js")
	}
	plainResp, plain := get(t, srv, big, http.Header{"Accept-Encoding": {"identity"}})
	gzResp, gz := get(t, srv, big, http.Header{"Accept-Encoding": {"br, gzip;q=0.8"}})
	if plainResp.Header.Get("Content-Encoding") != "" || gzResp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding: %q without gzip, %q with", plainResp.Header.Get("Content-Encoding"), gzResp.Header.Get("Content-Encoding"))
	}
	for _, r := range []*http.Response{plainResp, gzResp} {
		if r.Header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("Vary = %q", r.Header.Get("Vary"))
		}
	}
	if plainResp.Header.Get("ETag") == gzResp.Header.Get("ETag") {
		t.Error("the gzipped and the plain body share an ETag")
	}
	zr, err := gzip.NewReader(strings.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if string(unzipped) != plain || len(gz) >= len(plain)/2 {
		t.Errorf("gzip body: %d bytes, unzips to %d; plain %d", len(gz), len(unzipped), len(plain))
	}
	if r, _ := get(t, srv, big, http.Header{"Accept-Encoding": {"gzip;q=0"}}); r.Header.Get("Content-Encoding") != "" {
		t.Error("gzip sent to a client that refused it")
	}
	if r, _ := get(t, srv, big, http.Header{"Accept-Encoding": {"gzip"}, "If-None-Match": {gzResp.Header.Get("ETag")}}); r.StatusCode != http.StatusNotModified {
		t.Errorf("revalidating the gzipped body: %d, want 304", r.StatusCode)
	}
}
