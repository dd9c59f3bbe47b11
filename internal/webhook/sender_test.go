package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// receiver is a real HTTP receiver on loopback that verifies every request
// and answers with handle.
func receiver(tb testing.TB, secret Secret, handle func(w http.ResponseWriter, r *http.Request, body []byte)) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			tb.Errorf("read body: %v", err)
			return
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			tb.Errorf("%s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
		}
		if err := secret.Verify(r.Header, body, time.Now(), 0); err != nil {
			tb.Errorf("receiver: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		handle(w, r, body)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

func newSender(tb testing.TB, url string, secret Secret, timeout time.Duration) *Sender {
	tb.Helper()
	s, err := NewSender(Config{URL: url, Secret: secret, Timeout: timeout})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestSend(t *testing.T) {
	secret := mustSecret(t, vectorSecret)
	body := []byte(`{"type":"message.undelivered","data":{}}`)
	tests := []struct {
		name   string
		handle func(w http.ResponseWriter, r *http.Request, got []byte)
		check  func(t *testing.T, err error)
	}{
		{"accepted", func(w http.ResponseWriter, r *http.Request, got []byte) {
			if string(got) != string(body) || r.Header.Get(HeaderID) != "n-1" {
				t.Errorf("received %s as %q", got, r.Header.Get(HeaderID))
			}
			w.WriteHeader(http.StatusNoContent)
		}, func(t *testing.T, err error) {
			if err != nil {
				t.Fatal(err)
			}
		}},
		{"a long answer is read only so far", func(w http.ResponseWriter, r *http.Request, got []byte) {
			_, _ = w.Write([]byte(strings.Repeat("x", 1<<20)))
		}, func(t *testing.T, err error) {
			if err != nil {
				t.Fatal(err)
			}
		}},
		{"server error", func(w http.ResponseWriter, r *http.Request, got []byte) {
			w.Header().Set("Retry-After", "30")
			http.Error(w, strings.Repeat("boom ", 1000), http.StatusServiceUnavailable)
		}, func(t *testing.T, err error) {
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != 503 || se.RetryAfter != 30*time.Second || errors.Is(err, ErrGone) {
				t.Fatalf("got %v", err)
			}
			if len(se.Body) > errorBodyBytes {
				t.Fatalf("kept %d bytes of the body", len(se.Body))
			}
		}},
		{"gone", func(w http.ResponseWriter, r *http.Request, got []byte) {
			w.WriteHeader(http.StatusGone)
		}, func(t *testing.T, err error) {
			if !errors.Is(err, ErrGone) {
				t.Fatalf("got %v", err)
			}
		}},
		{"too slow", func(w http.ResponseWriter, r *http.Request, got []byte) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}, func(t *testing.T, err error) {
			var se *StatusError
			if err == nil || errors.As(err, &se) {
				t.Fatalf("got %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := receiver(t, secret, tt.handle)
			start := time.Now()
			err := newSender(t, srv.URL+"/hook", secret, 300*time.Millisecond).Send(context.Background(), "n-1", body)
			if d := time.Since(start); d > 4*time.Second {
				t.Fatalf("Send took %s", d)
			}
			tt.check(t, err)
		})
	}
}

// TestSendRedirects: a redirect is followed only on the receiver's own
// origin and only when it keeps the method and body; a redirect elsewhere
// reaches nobody and fails the attempt.
func TestSendRedirects(t *testing.T) {
	secret := mustSecret(t, vectorSecret)
	var elsewhere atomic.Int32
	other := receiver(t, secret, func(w http.ResponseWriter, r *http.Request, got []byte) { elsewhere.Add(1) })
	var final atomic.Int32
	srv := receiver(t, secret, func(w http.ResponseWriter, r *http.Request, got []byte) {
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, "/final", http.StatusTemporaryRedirect)
		case "/found":
			http.Redirect(w, r, "/final", http.StatusFound)
		case "/away":
			http.Redirect(w, r, other.URL+"/final", http.StatusPermanentRedirect)
		case "/final":
			if string(got) != "{}" {
				t.Errorf("redirected body %q", got)
			}
			final.Add(1)
		}
	})
	send := func(path string) error {
		return newSender(t, srv.URL+path, secret, time.Second).Send(context.Background(), "n-1", []byte("{}"))
	}
	if err := send("/same"); err != nil || final.Load() != 1 {
		t.Fatalf("same-origin 307: %v, %d at the end", err, final.Load())
	}
	var se *StatusError
	if err := send("/found"); !errors.As(err, &se) || se.StatusCode != http.StatusFound || final.Load() != 1 {
		t.Fatalf("302: %v", err)
	}
	if err := send("/away"); !errors.As(err, &se) || se.StatusCode != http.StatusPermanentRedirect || elsewhere.Load() != 0 {
		t.Fatalf("redirect to another host: %v, %d requests there", err, elsewhere.Load())
	}
}

func TestNewSender(t *testing.T) {
	secret := mustSecret(t, vectorSecret)
	for _, u := range []string{"", "ftp://example.com/x", "/relative", "http://"} {
		if _, err := NewSender(Config{URL: u, Secret: secret}); err == nil {
			t.Errorf("URL %q accepted", u)
		}
	}
	if _, err := NewSender(Config{URL: "https://example.com/hook"}); err == nil {
		t.Error("accepted without a secret")
	}
	s := newSender(t, "https://user:pw@example.com/hook?token=t0p#x", secret, 0)
	if s.Endpoint() != "https://example.com/hook" {
		t.Fatalf("endpoint %q", s.Endpoint())
	}
	// An error names the endpoint, never its credentials or query.
	s = newSender(t, "http://user:pw@127.0.0.1:1/hook?token=t0p", secret, time.Second)
	err := s.Send(context.Background(), "n-1", []byte("{}"))
	if err == nil || strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), "t0p") {
		t.Fatalf("error %v", err)
	}
}
