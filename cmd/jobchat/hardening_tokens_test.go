package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/jobchat/jobchat/internal/auth/authtest"
)

const hardeningWho = `query { unreadTotal }`

// hardeningSign signs claims (sub ana and an hour's exp unless given)
// with method and key, kid in the header if set.
func hardeningSign(tb testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	tb.Helper()
	return authtest.Sign(tb, method, key, kid, "ana", claims)
}

// TestHardeningTokenClaims: through real HTTP and real sockets, a token
// is refused when its iat is in the future, it has no exp, or its iss or
// aud is not the configured one; `jobchat token` mints tokens the server
// takes, with iat and exp.
func TestHardeningTokenClaims(t *testing.T) {
	const iss, aud = "https://id.example", "jobchat"
	e := newEnv(t, "sqlite", map[string]string{"JOBCHAT_JWT_ISSUER": iss, "JOBCHAT_JWT_AUDIENCE": aud, "JOBCHAT_JWT_LEEWAY": "10s"})
	secret := []byte(testSecret)
	now := time.Now()
	good := jwt.MapClaims{"iss": iss, "aud": aud, "iat": now.Unix()}
	with := func(extra jwt.MapClaims) jwt.MapClaims {
		m := jwt.MapClaims{}
		for k, v := range good {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name   string
		claims jwt.MapClaims
		reason string // "" accepted
	}{
		{"iss, aud, iat", with(nil), ""},
		{"iat within the leeway", with(jwt.MapClaims{"iat": now.Add(5 * time.Second).Unix()}), ""},
		{"iat an hour ahead", with(jwt.MapClaims{"iat": now.Add(time.Hour).Unix()}), "issued in the future"},
		{"iat just past the leeway", with(jwt.MapClaims{"iat": now.Add(20 * time.Second).Unix()}), "issued in the future"},
		{"nbf ahead", with(jwt.MapClaims{"nbf": now.Add(time.Minute).Unix()}), "not valid yet"},
		{"no exp", with(jwt.MapClaims{"exp": nil}), "no exp claim"},
		{"wrong iss", with(jwt.MapClaims{"iss": "https://evil.example"}), "wrong issuer"},
		{"no aud", with(jwt.MapClaims{"aud": nil}), "no aud claim"},
		{"wrong aud", with(jwt.MapClaims{"aud": "billing"}), "audience"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims := tt.claims
			noExp := false
			if v, ok := claims["exp"]; ok && v == nil {
				noExp = true
				delete(claims, "exp")
			}
			for k, v := range claims {
				if v == nil {
					delete(claims, k)
				}
			}
			var tok string
			if noExp {
				claims["sub"] = "ana"
				s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
				if err != nil {
					t.Fatal(err)
				}
				tok = s
			} else {
				tok = hardeningSign(t, jwt.SigningMethodHS256, secret, "", claims)
			}
			r := e.do(t, tok, hardeningWho, nil)
			if tt.reason == "" {
				r.ok(t, nil)
				e.apiDial(t, "graphql-transport-ws", nil, map[string]any{"authorization": "Bearer " + tok})
				return
			}
			r.fails(t, "UNAUTHENTICATED", tt.reason)
			for _, proto := range []string{"graphql-transport-ws", "graphql-ws"} {
				if ce := e.apiInitRefused(t, proto, nil, map[string]any{"authorization": "Bearer " + tok}); ce.Code != 4403 || !strings.Contains(ce.Text, tt.reason) {
					t.Fatalf("%s: close %d %q, want 4403 saying %q", proto, ce.Code, ce.Text, tt.reason)
				}
			}
		})
	}

	t.Run("jobchat token", func(t *testing.T) {
		var out bytes.Buffer
		err := run(context.Background(), []string{"token", "--sub", "ana", "--name", "Ana", "--ttl", "2h"}, mainGetenv(map[string]string{
			"JOBCHAT_JWT_SECRET": testSecret, "JOBCHAT_JWT_ISSUER": iss, "JOBCHAT_JWT_AUDIENCE": aud,
		}), &out)
		if err != nil {
			t.Fatal(err)
		}
		tok := strings.TrimSpace(out.String())
		var cl jwt.RegisteredClaims
		if _, _, err := jwt.NewParser().ParseUnverified(tok, &cl); err != nil {
			t.Fatal(err)
		}
		if cl.IssuedAt == nil || cl.ExpiresAt == nil || cl.ExpiresAt.Sub(cl.IssuedAt.Time) != 2*time.Hour ||
			cl.Issuer != iss || len(cl.Audience) != 1 || cl.Audience[0] != aud || cl.Subject != "ana" {
			t.Fatalf("claims %+v", cl)
		}
		e.do(t, tok, hardeningWho, nil).ok(t, nil)
	})
}

// TestHardeningJWKS: a server with JOBCHAT_JWKS_URL takes RS256 and ES256
// tokens from the identity provider on HTTP, on both GraphQL socket
// protocols and on the old chat socket; a key the provider rotates in is
// taken on its first token; HS/RS confusion and `none` are refused; the
// shared secret's tokens still pass.
func TestHardeningJWKS(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecNext, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := authtest.NewIDP(t)
	p.Set(authtest.JWK(t, rsaKey, "rsa-1", "", jwkset.UseSig), authtest.JWK(t, ecKey, "ec-1", "", jwkset.UseSig))
	e := newEnv(t, "sqlite", map[string]string{"JOBCHAT_JWKS_URL": p.URL()})
	conv := e.openJob(t, "job-jwks", "ana", "ben", "")

	rs := hardeningSign(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", jwt.MapClaims{"name": "Ana"})
	es := hardeningSign(t, jwt.SigningMethodES256, ecKey, "ec-1", jwt.MapClaims{"sub": "ben", "name": "Ben"})
	e.do(t, rs, hardeningWho, nil).ok(t, nil)
	e.do(t, es, hardeningWho, nil).ok(t, nil)
	for _, proto := range []string{"graphql-transport-ws", "graphql-ws"} {
		e.apiDial(t, proto, nil, map[string]any{"authorization": "Bearer " + es})
	}
	ws := e.lsDial(t, conv.ID, "", lsBearer(rs))
	lsReady(t, ws, "signed by the identity provider")

	// Rotation: the provider adds a key and signs with it at once.
	p.Set(authtest.JWK(t, rsaKey, "rsa-1", "", jwkset.UseSig), authtest.JWK(t, ecNext, "ec-2", "", jwkset.UseSig))
	e.do(t, hardeningSign(t, jwt.SigningMethodES256, ecNext, "ec-2", jwt.MapClaims{}), hardeningWho, nil).ok(t, nil)

	// The shared secret's tokens pass beside the provider's.
	e.do(t, userToken(t, "ana", "Ana"), hardeningWho, nil).ok(t, nil)

	pub, err := jwkset.NewJWKFromKey(&rsaKey.PublicKey, jwkset.JWKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := []byte(pub.Marshal().N)
	for name, tok := range map[string]string{
		"HS256 keyed with the RSA key's modulus": hardeningSign(t, jwt.SigningMethodHS256, n, "rsa-1", jwt.MapClaims{}),
		"alg none":                               hardeningSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa-1", jwt.MapClaims{}),
		"RS256 naming the EC key":                hardeningSign(t, jwt.SigningMethodRS256, rsaKey, "ec-2", jwt.MapClaims{}),
		"an unknown kid":                         hardeningSign(t, jwt.SigningMethodRS256, rsaKey, "rsa-9", jwt.MapClaims{}),
		"a withdrawn key (ec-1)":                 hardeningSign(t, jwt.SigningMethodES256, ecKey, "ec-1", jwt.MapClaims{"n": 2}),
		"RS256 with the wrong key":               hardeningSign(t, jwt.SigningMethodRS256, mustRSA(t), "rsa-1", jwt.MapClaims{}),
		"RS256 with its iat too far":             hardeningSign(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", jwt.MapClaims{"iat": time.Now().Add(time.Hour).Unix()}),
	} {
		t.Run(name, func(t *testing.T) {
			if r := e.do(t, tok, hardeningWho, nil); r.code() != "UNAUTHENTICATED" {
				t.Fatalf("got %+v, want UNAUTHENTICATED", r.Errors)
			}
			if ce := e.apiInitRefused(t, "graphql-transport-ws", nil, map[string]any{"authorization": "Bearer " + tok}); ce.Code != 4403 {
				t.Fatalf("close %d %q, want 4403", ce.Code, ce.Text)
			}
			if _, status, _ := e.lsTryDial(conv.ID, "", lsBearer(tok)); status != http.StatusForbidden {
				t.Fatalf("old socket: status %d, want 403", status)
			}
		})
	}
}

func mustRSA(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
