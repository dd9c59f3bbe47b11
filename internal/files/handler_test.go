package files

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// pngBytes is a real 1×1 PNG.
var pngBytes = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89" +
	"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")

const htmlBytes = `<!doctype html><script>fetch("/query",{method:"POST"})</script>`

// fileServer serves store through Handler on a real listener, with a
// signer on a clock the test moves.
type fileServer struct {
	srv    *httptest.Server
	signer *Signer
	clock  *clock
}

func newFileServer(tb testing.TB, store Store, cfg HandlerConfig) *fileServer {
	tb.Helper()
	c := &clock{t: time.Now()}
	signer := NewSigner([]byte("test-key-0123456789abcdef01234567"), time.Hour).WithClock(c.now)
	mux := http.NewServeMux()
	mux.Handle(Pattern, NewHandler(store, signer, cfg))
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return &fileServer{srv: srv, signer: signer, clock: c}
}

func (f *fileServer) get(tb testing.TB, path string, header http.Header) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, body
}

// stores are the stores the handler tests run on: the disk always, S3
// when the test server is configured (and, under CI, always).
func handlerStores(t *testing.T) map[string]func(testing.TB) Store {
	return map[string]func(testing.TB) Store{
		"disk": func(tb testing.TB) Store {
			s, err := NewDiskStore(tb.TempDir())
			if err != nil {
				tb.Fatal(err)
			}
			return s
		},
		"s3": func(tb testing.TB) Store { return newTestS3Store(tb) },
	}
}

func TestHandler(t *testing.T) {
	for name, newStore := range handlerStores(t) {
		t.Run(name, func(t *testing.T) {
			store := newStore(t)
			f := newFileServer(t, store, HandlerConfig{})
			data := randomBytes(2, 50_000)
			mustPut(t, store, "c1/doc.pdf", data, "application/pdf")
			mustPut(t, store, "c1/page.html", []byte(htmlBytes), "text/html; charset=utf-8")
			mustPut(t, store, "c1/pic", pngBytes, "image/png")
			mustPut(t, store, "c1/pic.thumb.jpg", []byte("\xff\xd8\xff\xe0jpeg"), "image/jpeg")
			mustPut(t, store, "c1/draw.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`), "image/svg+xml")

			t.Run("whole file", func(t *testing.T) {
				resp, body := f.get(t, f.signer.URL("c1/doc.pdf"), nil)
				if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
					t.Fatalf("%s, %d bytes", resp.Status, len(body))
				}
				checkHeaders(t, resp, "application/pdf", `attachment; filename=doc.pdf`)
				if resp.Header.Get("Accept-Ranges") != "bytes" {
					t.Errorf("Accept-Ranges %q", resp.Header.Get("Accept-Ranges"))
				}
			})

			t.Run("range", func(t *testing.T) {
				resp, body := f.get(t, f.signer.URL("c1/doc.pdf"), http.Header{"Range": {"bytes=1000-1999"}})
				if resp.StatusCode != http.StatusPartialContent {
					t.Fatalf("status %s; want 206", resp.Status)
				}
				if !bytes.Equal(body, data[1000:2000]) {
					t.Errorf("range body: %d bytes, not bytes 1000-1999", len(body))
				}
				if cr := resp.Header.Get("Content-Range"); cr != "bytes 1000-1999/50000" {
					t.Errorf("Content-Range %q", cr)
				}
				resp, body = f.get(t, f.signer.URL("c1/doc.pdf"), http.Header{"Range": {"bytes=-100"}})
				if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[len(data)-100:]) {
					t.Errorf("suffix range: %s, %d bytes", resp.Status, len(body))
				}
				resp, _ = f.get(t, f.signer.URL("c1/doc.pdf"), http.Header{"Range": {"bytes=60000-"}})
				if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
					t.Errorf("range past the end: %s; want 416", resp.Status)
				}
			})

			t.Run("html cannot run", func(t *testing.T) {
				resp, body := f.get(t, f.signer.URL("c1/page.html"), nil)
				if resp.StatusCode != http.StatusOK || string(body) != htmlBytes {
					t.Fatalf("%s %q", resp.Status, body)
				}
				checkHeaders(t, resp, "text/html; charset=utf-8", `attachment; filename=page.html`)
				resp, _ = f.get(t, f.signer.URL("c1/draw.svg"), nil)
				checkHeaders(t, resp, "image/svg+xml", `attachment; filename=draw.svg`)
			})

			t.Run("raster images inline", func(t *testing.T) {
				resp, body := f.get(t, f.signer.URL("c1/pic"), nil)
				if resp.StatusCode != http.StatusOK || !bytes.Equal(body, pngBytes) {
					t.Fatalf("%s, %d bytes", resp.Status, len(body))
				}
				checkHeaders(t, resp, "image/png", "inline")
				resp, _ = f.get(t, f.signer.URL("c1/pic.thumb.jpg"), nil)
				checkHeaders(t, resp, "image/jpeg", "inline")
			})

			t.Run("head", func(t *testing.T) {
				resp, err := f.srv.Client().Head(f.srv.URL + f.signer.URL("c1/doc.pdf"))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(data)) {
					t.Errorf("HEAD: %s, length %d", resp.Status, resp.ContentLength)
				}
			})

			t.Run("refused", func(t *testing.T) {
				good := f.signer.URL("c1/doc.pdf")
				u, _ := url.Parse(good)
				q := u.Query()
				tampered := func(k, v string) string {
					q2 := url.Values{}
					for kk, vv := range q {
						q2[kk] = vv
					}
					q2.Set(k, v)
					return u.Path + "?" + q2.Encode()
				}
				for _, c := range []struct {
					name, path string
					want       int
				}{
					{"no signature", "/files/c1/doc.pdf", http.StatusForbidden},
					{"forged", "/files/c1/doc.pdf?exp=9999999999&sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", http.StatusForbidden},
					{"other key, same signature", "/files/c1/page.html?" + u.RawQuery, http.StatusForbidden},
					{"exp tampered", tampered("exp", "9999999999"), http.StatusForbidden},
					{"sig tampered", tampered("sig", strings.ToUpper(q.Get("sig"))), http.StatusForbidden},
					// ServeMux redirects to the cleaned /files/secret, whose
					// signature is not this one.
					{"traversal", "/files/c1/../secret?" + u.RawQuery, http.StatusForbidden},
					{"signed but absent", f.signer.URL("c1/absent"), http.StatusNotFound},
				} {
					resp, body := f.get(t, c.path, nil)
					if resp.StatusCode != c.want {
						t.Errorf("%s: %s; want %d", c.name, resp.Status, c.want)
					}
					if bytes.Contains(body, data[:64]) {
						t.Errorf("%s: the body holds the file", c.name)
					}
					if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
						t.Errorf("%s: no nosniff", c.name)
					}
				}
				// Expired: the same URL, an hour and a second later.
				f.clock.t = f.clock.t.Add(time.Hour + time.Second)
				defer func() { f.clock.t = f.clock.t.Add(-time.Hour - time.Second) }()
				if resp, _ := f.get(t, good, nil); resp.StatusCode != http.StatusForbidden {
					t.Errorf("expired: %s; want 403", resp.Status)
				}
			})

			t.Run("methods", func(t *testing.T) {
				resp, err := f.srv.Client().Post(f.srv.URL+f.signer.URL("c1/doc.pdf"), "text/plain", strings.NewReader("x"))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
					t.Errorf("POST: %s, Allow %q", resp.Status, resp.Header.Get("Allow"))
				}
			})
		})
	}
}

// TestHandlerRedirect: with S3 and Redirect, jobchat answers 302 to a
// presigned URL, and a real client that follows it gets the bytes, with
// the disposition jobchat chose; the disk store, which cannot presign,
// streams as before.
func TestHandlerRedirect(t *testing.T) {
	for name, newStore := range handlerStores(t) {
		t.Run(name, func(t *testing.T) {
			store := newStore(t)
			f := newFileServer(t, store, HandlerConfig{Redirect: true})
			data := randomBytes(3, 20_000)
			mustPut(t, store, "c1/report.pdf", data, "application/pdf")
			mustPut(t, store, "c1/pic", pngBytes, "image/png")

			noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := noFollow.Get(f.srv.URL + f.signer.URL("c1/report.pdf"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if name == "disk" {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("disk with Redirect: %s; want 200", resp.Status)
				}
				return
			}
			loc := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusFound || loc == "" || strings.HasPrefix(loc, f.srv.URL) {
				t.Fatalf("s3 with Redirect: %s to %q; want 302 to the object store", resp.Status, loc)
			}

			resp, body := f.get(t, f.signer.URL("c1/report.pdf"), nil) // follows
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
				t.Fatalf("followed: %s, %d bytes", resp.Status, len(body))
			}
			if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename=report.pdf` {
				t.Errorf("followed PDF: Content-Disposition %q; want attachment with its name", cd)
			}
			resp, body = f.get(t, f.signer.URL("c1/pic"), http.Header{"Range": {"bytes=0-7"}})
			if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, pngBytes[:8]) {
				t.Errorf("followed range: %s, %q", resp.Status, body)
			}
			if resp, _ := f.get(t, "/files/c1/report.pdf?exp=9999999999&sig=AAAA", nil); resp.StatusCode != http.StatusForbidden {
				t.Errorf("forged with Redirect: %s; want 403", resp.Status)
			}
		})
	}
}

// TestHandlerOutlastsWriteTimeout: a download is not cut by the server's
// write timeout, which is sized for API answers (here it has passed
// before the handler runs).
func TestHandlerOutlastsWriteTimeout(t *testing.T) {
	store, err := NewDiskStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(4, 1<<20)
	mustPut(t, store, "c1/big", data, "application/pdf")
	signer := NewSigner([]byte("test-key-0123456789abcdef01234567"), time.Hour)
	srv := httptest.NewUnstartedServer(NewHandler(store, signer, HandlerConfig{}))
	srv.Config.WriteTimeout = time.Nanosecond
	srv.Start()
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + signer.URL("c1/big"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(body, data) {
		t.Fatalf("%s: %d of %d bytes, %v", resp.Status, len(body), len(data), err)
	}
}

func checkHeaders(tb testing.TB, resp *http.Response, ctype, disposition string) {
	tb.Helper()
	h := resp.Header
	if h.Get("Content-Type") != ctype {
		tb.Errorf("Content-Type %q; want %q", h.Get("Content-Type"), ctype)
	}
	if h.Get("Content-Disposition") != disposition {
		tb.Errorf("Content-Disposition %q; want %q", h.Get("Content-Disposition"), disposition)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" {
		tb.Errorf("X-Content-Type-Options %q; want nosniff", h.Get("X-Content-Type-Options"))
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "sandbox") || !strings.Contains(csp, "default-src 'none'") {
		tb.Errorf("Content-Security-Policy %q; want a sandbox", csp)
	}
}

func TestDisposition(t *testing.T) {
	const att = `attachment; filename=plan.pdf`
	for ctype, want := range map[string]string{
		"image/jpeg": "inline", "image/png": "inline", "image/gif": "inline", "image/webp": "inline",
		"IMAGE/PNG": "inline", "image/png; x=y": "inline",
		"image/svg+xml": att, "text/html": att, "application/pdf": att,
		"text/plain": att, "": att, "garbage;;": att, "image/bmp": att,
	} {
		if got := Disposition(ctype, "c1/a1/plan.pdf"); got != want {
			t.Errorf("Disposition(%q) = %q; want %q", ctype, got, want)
		}
	}
	// A name that needs quoting is quoted; one that cannot be said
	// plainly is left out rather than mangled.
	for key, want := range map[string]string{
		"c1/a1/site visit.pdf": `attachment; filename="site visit.pdf"`,
		"c1/a1/x.txt":          `attachment; filename=x.txt`,
		"":                     "attachment",
	} {
		if got := Disposition("application/pdf", key); got != want {
			t.Errorf("Disposition(pdf, %q) = %q; want %q", key, got, want)
		}
	}
}
