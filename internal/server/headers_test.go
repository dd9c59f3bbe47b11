package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSecurityHeaders: every answer carries the security headers, whatever
// answers it; the playground keeps its own Content-Security-Policy.
func TestSecurityHeaders(t *testing.T) {
	srv := newTestServer(t, Config{
		Playground:   true,
		MaxBodyBytes: 64,
		Handlers: map[string]http.Handler{"GET /own": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", "sandbox")
			_, _ = io.WriteString(w, "own")
		})},
	})
	type request struct {
		method, path, body string
		status             int
	}
	for _, rq := range []request{
		{"POST", "/query", `{"query":"{ hello }"}`, 200},
		{"GET", "/query?query=%7B+hello+%7D", "", 200},
		{"POST", "/query", `{"query":"{"}`, 200},
		{"POST", "/query", `{"query":"{ hello }","variables":{"pad":"` + strings.Repeat("x", 100) + `"}}`, 413},
		{"PUT", "/query", "", 405},
		{"GET", "/healthz", "", 200},
		{"GET", "/readyz", "", 200},
		{"GET", "/nowhere", "", 404},
		{"GET", "/", "", 200},
		{"GET", "/own", "", 200},
	} {
		t.Run(rq.method+" "+rq.path, func(t *testing.T) {
			req, err := http.NewRequest(rq.method, srv.URL+rq.path, strings.NewReader(rq.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, _ := srv.do(t, req)
			if resp.StatusCode != rq.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, rq.status)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if got := resp.Header.Get("Referrer-Policy"); got != "no-referrer" {
				t.Errorf("Referrer-Policy %q", got)
			}
			csp := resp.Header.Get("Content-Security-Policy")
			switch rq.path {
			case "/":
				if !strings.Contains(csp, "script-src 'self'") {
					t.Errorf("playground CSP %q", csp)
				}
			case "/own":
				if csp != "sandbox" {
					t.Errorf("a handler's own CSP replaced: %q", csp)
				}
			default:
				if csp != "default-src 'none'; frame-ancestors 'none'" {
					t.Errorf("CSP %q", csp)
				}
			}
		})
	}
}

// TestBodyOverLimitGets413: a client that sends the whole of a body over
// the limit before it reads the answer, as most do, gets its 413 and no
// reset, run after run, with the length given and chunked. It sends at
// the pace of a slow network, over a second in all: net/http waits half a
// second after an answer before it closes a connection with unread data,
// and on loopback a fast client would be done by then anyway.
func TestBodyOverLimitGets413(t *testing.T) {
	srv := newTestServer(t, Config{})
	junk := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/32) // 1.5 MiB
	for _, chunked := range []bool{false, true} {
		for run := range 3 {
			t.Run(fmt.Sprintf("chunked=%v/run%d", chunked, run), func(t *testing.T) {
				conn, err := net.Dial("tcp", srv.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
				var head bytes.Buffer
				head.WriteString("POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
				if chunked {
					head.WriteString("Transfer-Encoding: chunked\r\n\r\n")
				} else {
					fmt.Fprintf(&head, "Content-Length: %d\r\n\r\n", len(junk))
				}
				if _, err := conn.Write(head.Bytes()); err != nil {
					t.Fatal(err)
				}
				// The whole body, in pieces, before reading anything.
				for off := 0; off < len(junk); off += 64 << 10 {
					time.Sleep(40 * time.Millisecond)
					piece := junk[off:min(off+64<<10, len(junk))]
					if chunked {
						_, err = fmt.Fprintf(conn, "%x\r\n%s\r\n", len(piece), piece)
					} else {
						_, err = conn.Write(piece)
					}
					if err != nil {
						t.Fatalf("writing the body at %d: %v", off, err)
					}
				}
				if chunked {
					if _, err := io.WriteString(conn, "0\r\n\r\n"); err != nil {
						t.Fatalf("writing the last chunk: %v", err)
					}
				}
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatalf("reading the answer: %v", err)
				}
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatalf("reading the answer's body: %v", err)
				}
				if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "request body too large") {
					t.Fatalf("got %d %s", resp.StatusCode, body)
				}
			})
		}
	}
}
