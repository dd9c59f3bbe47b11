package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func sign(tb testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestVerify(t *testing.T) {
	v := NewVerifier(secret)
	exp := time.Now().Add(time.Hour).Unix()
	user, err := Issue(secret, Caller{ID: "u1", Name: "Ana"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := Issue(secret, Caller{ID: "job-service", Service: true}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		token   string
		want    Caller
		wantErr string
	}{
		{name: "user", token: user, want: Caller{ID: "u1", Name: "Ana"}},
		{name: "service", token: svc, want: Caller{ID: "job-service", Service: true}},
		{name: "expired", token: sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(-time.Minute).Unix()}), wantErr: "expired"},
		{name: "no exp", token: sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "u1"}), wantErr: "exp"},
		{name: "no sub", token: sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"exp": exp}), wantErr: "sub"},
		{name: "other secret", token: sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), jwt.MapClaims{"sub": "u1", "exp": exp}), wantErr: "signature"},
		{name: "HS512", token: sign(t, jwt.SigningMethodHS512, secret, jwt.MapClaims{"sub": "u1", "exp": exp}), wantErr: "alg is not accepted"},
		{name: "alg none", token: sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "u1", "exp": exp}), wantErr: "alg is not accepted"},
		{name: "garbage", token: "not.a.token", wantErr: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(context.Background(), tt.token)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want ErrUnauthenticated mentioning %q, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tt.want.ID || got.Name != tt.want.Name || got.Service != tt.want.Service || got.ExpiresAt.IsZero() {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestVerifyCache: a verified token is answered from the cache, as the
// full check would answer, until it expires; failures are not cached; the
// cache stays bounded.
func TestVerifyCache(t *testing.T) {
	v := NewVerifier(secret)
	tok, err := Issue(secret, Caller{ID: "u1", Name: "Ana"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	first, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if second, err := v.Verify(context.Background(), tok); err != nil || second != first {
		t.Fatalf("second Verify = %+v, %v; want %+v", second, err, first)
	}
	if _, ok := v.verified[tok]; !ok {
		t.Fatal("verified token not cached")
	}
	if _, err := v.Verify(context.Background(), "not.a.token"); err == nil {
		t.Fatal("garbage verified")
	}
	if len(v.verified) != 1 {
		t.Fatalf("cache holds %d tokens, want 1: failures must not be cached", len(v.verified))
	}

	// Entries stand in for tokens that only the cache could accept: one
	// past its exp plus leeway must go through the full check again.
	v.verified["live"] = verifiedToken{caller: Caller{ID: "u2"}, until: time.Now().Add(time.Minute)}
	v.verified["stale"] = verifiedToken{caller: Caller{ID: "u3"}, until: time.Now().Add(-time.Second)}
	if c, err := v.Verify(context.Background(), "live"); err != nil || c.ID != "u2" {
		t.Fatalf("live entry: %+v, %v", c, err)
	}
	if _, err := v.Verify(context.Background(), "stale"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("expired entry accepted: %v", err)
	}

	for i := range maxVerified {
		v.verified[strings.Repeat("x", 8)+string(rune(i))] = verifiedToken{until: time.Now().Add(time.Hour)}
	}
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	other, _ := Issue(secret, Caller{ID: "u4"}, time.Hour)
	if _, err := v.Verify(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	if n := len(v.verified); n > maxVerified {
		t.Fatalf("cache holds %d tokens, cap is %d", n, maxVerified)
	}
}

func TestMiddleware(t *testing.T) {
	v := NewVerifier(secret)
	tok, _ := Issue(secret, Caller{ID: "u1", Name: "Ana"}, time.Hour)
	tests := []struct {
		header, wantID, wantErr string
	}{
		{header: "", wantErr: "send Authorization"},
		{header: "Bearer " + tok, wantID: "u1"},
		{header: "bearer " + tok, wantID: "u1"},
		{header: "Basic dXNlcjpwYXNz", wantErr: "Bearer <token>"},
		{header: "Bearer nope", wantErr: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			var got Caller
			var gotErr error
			h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, gotErr = CallerFrom(r.Context())
			}))
			req := httptest.NewRequest(http.MethodPost, "/query", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			if tt.wantErr != "" {
				if !errors.Is(gotErr, ErrUnauthenticated) || !strings.Contains(gotErr.Error(), tt.wantErr) {
					t.Fatalf("want error mentioning %q, got %v", tt.wantErr, gotErr)
				}
				return
			}
			if gotErr != nil || got.ID != tt.wantID {
				t.Fatalf("got %+v, %v", got, gotErr)
			}
		})
	}
}

func TestWebsocketInit(t *testing.T) {
	v := NewVerifier(secret)
	tok, _ := Issue(secret, Caller{ID: "u1"}, time.Hour)
	other, _ := Issue(secret, Caller{ID: "u2"}, time.Hour)

	t.Run("payload token", func(t *testing.T) {
		for _, key := range []string{"authorization", "Authorization"} {
			ctx, expires, err := v.WebsocketInit(context.Background(), map[string]any{key: "Bearer " + tok})
			if err != nil {
				t.Fatal(err)
			}
			if c, err := CallerFrom(ctx); err != nil || c.ID != "u1" {
				t.Fatalf("%s: got %+v %v", key, c, err)
			}
			if until := time.Until(expires); until < 59*time.Minute || until > time.Hour {
				t.Fatalf("expires in %s, want the token's hour", until)
			}
		}
	})
	t.Run("payload wins over header", func(t *testing.T) {
		ctx := WithCaller(context.Background(), Caller{ID: "u2"})
		ctx, _, err := v.WebsocketInit(ctx, map[string]any{"authorization": "Bearer " + tok})
		if c, _ := CallerFrom(ctx); err != nil || c.ID != "u1" {
			t.Fatalf("got %+v %v", c, err)
		}
	})
	t.Run("header only", func(t *testing.T) {
		exp := time.Now().Add(time.Hour)
		ctx := WithCaller(context.Background(), Caller{ID: "u2", ExpiresAt: exp})
		ctx, expires, err := v.WebsocketInit(ctx, map[string]any{})
		if c, _ := CallerFrom(ctx); err != nil || c.ID != "u2" || !expires.Equal(exp) {
			t.Fatalf("got %+v %v, expires %v", c, err, expires)
		}
	})
	t.Run("nested headers", func(t *testing.T) {
		ctx, _, err := v.WebsocketInit(context.Background(), map[string]any{"headers": map[string]any{"Authorization": "Bearer " + tok}})
		if c, _ := CallerFrom(ctx); err != nil || c.ID != "u1" {
			t.Fatalf("got %+v %v", c, err)
		}
	})
	t.Run("bad payload token refuses", func(t *testing.T) {
		if _, _, err := v.WebsocketInit(context.Background(), map[string]any{"authorization": "Bearer x" + other}); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("want ErrUnauthenticated, got %v", err)
		}
	})
	t.Run("no token opens anonymously", func(t *testing.T) {
		ctx, _, err := v.WebsocketInit(context.Background(), map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := CallerFrom(ctx); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("want no caller, got %v", err)
		}
	})
	t.Run("no token, no expiry", func(t *testing.T) {
		if _, expires, err := v.WebsocketInit(context.Background(), nil); err != nil || !expires.IsZero() {
			t.Fatalf("expires %v, err %v", expires, err)
		}
	})
}

func TestLoadOrCreateSecret(t *testing.T) {
	dir := t.TempDir()
	s1, created, err := LoadOrCreateSecret(dir)
	if err != nil || !created || len(s1) < 32 {
		t.Fatalf("first: %q created=%v err=%v", s1, created, err)
	}
	s2, created, err := LoadOrCreateSecret(dir)
	if err != nil || created || string(s1) != string(s2) {
		t.Fatalf("second: %q created=%v err=%v", s2, created, err)
	}
}
