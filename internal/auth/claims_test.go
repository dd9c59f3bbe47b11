package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestVerifyClaims: exp is required; nbf and iat are checked, iat in the
// future refused, each with the leeway and no more; iss and aud are
// checked when configured.
func TestVerifyClaims(t *testing.T) {
	now := time.Now()
	hour := now.Add(time.Hour).Unix()
	scoped := Config{Secret: secret, Leeway: DefaultLeeway, Issuer: "https://id.example", Audience: "jobchat"}
	tests := []struct {
		name    string
		cfg     Config
		claims  jwt.MapClaims
		wantErr string
	}{
		{name: "plain", claims: jwt.MapClaims{"sub": "u1", "exp": hour}},
		{name: "no exp", claims: jwt.MapClaims{"sub": "u1", "iat": now.Unix()}, wantErr: "no exp claim"},
		{name: "exp not a number", claims: jwt.MapClaims{"sub": "u1", "exp": "tomorrow"}, wantErr: "malformed"},
		{name: "expired within the leeway", claims: jwt.MapClaims{"sub": "u1", "exp": now.Add(-2 * time.Second).Unix()}},
		{name: "expired past the leeway", claims: jwt.MapClaims{"sub": "u1", "exp": now.Add(-DefaultLeeway - 2*time.Second).Unix()}, wantErr: "expired"},
		{name: "iat in the past", claims: jwt.MapClaims{"sub": "u1", "exp": hour, "iat": now.Add(-time.Hour).Unix()}},
		{name: "iat an hour in the future", claims: jwt.MapClaims{"sub": "u1", "exp": hour, "iat": now.Add(time.Hour).Unix()}, wantErr: "issued in the future"},
		{name: "iat just past the leeway", claims: jwt.MapClaims{"sub": "u1", "exp": hour, "iat": now.Add(DefaultLeeway + 2*time.Second).Unix()}, wantErr: "issued in the future"},
		{name: "iat within the leeway", claims: jwt.MapClaims{"sub": "u1", "exp": hour, "iat": now.Add(2 * time.Second).Unix()}},
		{name: "nbf in the future", claims: jwt.MapClaims{"sub": "u1", "exp": hour, "nbf": now.Add(time.Minute).Unix()}, wantErr: "not valid yet"},
		{name: "nbf within the leeway", claims: jwt.MapClaims{"sub": "u1", "exp": hour, "nbf": now.Add(2 * time.Second).Unix()}},
		{name: "a larger leeway", cfg: Config{Secret: secret, Leeway: MaxLeeway},
			claims: jwt.MapClaims{"sub": "u1", "exp": hour, "iat": now.Add(50 * time.Second).Unix()}},
		{name: "the largest leeway, exceeded", cfg: Config{Secret: secret, Leeway: MaxLeeway},
			claims: jwt.MapClaims{"sub": "u1", "exp": hour, "iat": now.Add(2 * MaxLeeway).Unix()}, wantErr: "issued in the future"},
		{name: "no leeway", cfg: Config{Secret: secret, Leeway: -1},
			claims: jwt.MapClaims{"sub": "u1", "exp": hour, "iat": now.Add(2 * time.Second).Unix()}, wantErr: "issued in the future"},
		{name: "iss and aud unchecked when not configured", claims: jwt.MapClaims{"sub": "u1", "exp": hour, "iss": "anyone", "aud": "anything"}},
		{name: "iss and aud right", cfg: scoped, claims: jwt.MapClaims{"sub": "u1", "exp": hour, "iss": "https://id.example", "aud": "jobchat"}},
		{name: "aud among several", cfg: scoped, claims: jwt.MapClaims{"sub": "u1", "exp": hour, "iss": "https://id.example", "aud": []string{"billing", "jobchat"}}},
		{name: "wrong iss", cfg: scoped, claims: jwt.MapClaims{"sub": "u1", "exp": hour, "iss": "https://evil.example", "aud": "jobchat"}, wantErr: "wrong issuer"},
		{name: "no iss", cfg: scoped, claims: jwt.MapClaims{"sub": "u1", "exp": hour, "aud": "jobchat"}, wantErr: "no iss claim"},
		{name: "wrong aud", cfg: scoped, claims: jwt.MapClaims{"sub": "u1", "exp": hour, "iss": "https://id.example", "aud": "billing"}, wantErr: "audience"},
		{name: "no aud", cfg: scoped, claims: jwt.MapClaims{"sub": "u1", "exp": hour, "iss": "https://id.example"}, wantErr: "no aud claim"},
		{name: "aud a number", cfg: scoped, claims: jwt.MapClaims{"sub": "u1", "exp": hour, "iss": "https://id.example", "aud": 5}, wantErr: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if cfg.Secret == nil {
				cfg.Secret = secret
			}
			switch cfg.Leeway {
			case 0:
				cfg.Leeway = DefaultLeeway
			case -1:
				cfg.Leeway = 0
			}
			v, err := New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(context.Background(), sign(t, jwt.SigningMethodHS256, secret, tt.claims))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("want ErrUnauthenticated mentioning %q, got %v", tt.wantErr, err)
			}
		})
	}
}

func TestNewRefusesConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"leeway over a minute": {Secret: secret, Leeway: MaxLeeway + time.Second},
		"negative leeway":      {Secret: secret, Leeway: -time.Second},
		"no key at all":        {},
		"JWKS URL not http":    {Secret: secret, JWKS: JWKSConfig{URL: "file:///etc/passwd"}},
		"JWKS URL no host":     {Secret: secret, JWKS: JWKSConfig{URL: "https:///jwks"}},
	} {
		t.Run(name, func(t *testing.T) {
			if v, err := New(context.Background(), cfg); err == nil {
				v.Close()
				t.Fatal("accepted")
			}
		})
	}
}

// TestIssueScoped: `jobchat token`'s tokens carry iat and exp, and the
// issuer and audience a server checks, so that they pass it.
func TestIssueScoped(t *testing.T) {
	s := Scope{Issuer: "https://id.example", Audience: "jobchat"}
	tok, err := IssueScoped(secret, Caller{ID: "u1", Name: "Ana"}, time.Hour, s)
	if err != nil {
		t.Fatal(err)
	}
	var cl claims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &cl); err != nil {
		t.Fatal(err)
	}
	if cl.IssuedAt == nil || cl.ExpiresAt == nil || cl.Issuer != s.Issuer || len(cl.Audience) != 1 || cl.Audience[0] != s.Audience {
		t.Fatalf("claims %+v", cl)
	}
	v, err := New(context.Background(), Config{Secret: secret, Issuer: s.Issuer, Audience: s.Audience})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := v.Verify(context.Background(), tok); err != nil || c.ID != "u1" {
		t.Fatalf("got %+v, %v", c, err)
	}
	plain, _ := Issue(secret, Caller{ID: "u1"}, time.Hour)
	if _, err := v.Verify(context.Background(), plain); err == nil {
		t.Fatal("a token without iss and aud passed a server that checks them")
	}
}

// TestInitAuthorization: credentials in a connection_init payload are a
// string or absent; anything else refuses the socket rather than open it
// anonymously.
func TestInitAuthorization(t *testing.T) {
	tests := []struct {
		name    string
		payload map[string]any
		want    string
		wantErr string
	}{
		{name: "none", payload: nil},
		{name: "empty", payload: map[string]any{}},
		{name: "top level", payload: map[string]any{"authorization": "Bearer a"}, want: "Bearer a"},
		{name: "capitalised", payload: map[string]any{"Authorization": "Bearer a"}, want: "Bearer a"},
		{name: "in headers", payload: map[string]any{"headers": map[string]any{"Authorization": "Bearer a"}}, want: "Bearer a"},
		{name: "the same twice", payload: map[string]any{"authorization": "Bearer a", "headers": map[string]any{"authorization": "Bearer a"}}, want: "Bearer a"},
		{name: "null counts as absent", payload: map[string]any{"authorization": nil, "headers": nil}},
		{name: "empty counts as absent", payload: map[string]any{"authorization": "", "Authorization": "Bearer a"}, want: "Bearer a"},
		{name: "blank counts as absent", payload: map[string]any{"Authorization": " \t"}},
		{name: "the same but for spaces", payload: map[string]any{"authorization": " Bearer a", "headers": map[string]any{"authorization": "Bearer a "}}, want: "Bearer a"},
		{name: "a number", payload: map[string]any{"authorization": 5}, wantErr: "payload.authorization must be a string"},
		{name: "an object", payload: map[string]any{"Authorization": map[string]any{"token": "a"}}, wantErr: "payload.Authorization must be a string"},
		{name: "an array", payload: map[string]any{"authorization": []any{"Bearer a"}}, wantErr: "must be a string"},
		{name: "a bool in headers", payload: map[string]any{"headers": map[string]any{"authorization": true}}, wantErr: "must be a string"},
		{name: "headers a string", payload: map[string]any{"headers": "Authorization: Bearer a"}, wantErr: "headers must be an object"},
		{name: "two different", payload: map[string]any{"authorization": "Bearer a", "Authorization": "Bearer b"}, wantErr: "two different credentials"},
		{name: "two different, one nested", payload: map[string]any{"authorization": "Bearer a", "headers": map[string]any{"Authorization": "Bearer b"}}, wantErr: "two different credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := initAuthorization(tt.payload)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want ErrUnauthenticated mentioning %q, got %q, %v", tt.wantErr, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	// Through WebsocketInit: refused, even with a good token in the
	// upgrade request's header.
	v := NewVerifier(secret)
	ctx := WithCaller(context.Background(), Caller{ID: "u2"})
	if _, _, err := v.WebsocketInit(ctx, map[string]any{"authorization": 42}); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("WebsocketInit: %v, want ErrUnauthenticated", err)
	}
}
