package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/jobchat/jobchat/internal/auth/authtest"
)

// reasons are every refusal a client may read: nothing else, and never a
// library's or the key set's own words, may reach it.
var reasons = []string{
	"token is malformed", "token signature is invalid", errAlg.Error(), errNoKID.Error(),
	errUnknownKey.Error(), errKeyAlg.Error(), errKeyUnfit.Error(), errNoSub.Error(),
	"token could not be verified", "token has no exp claim", "token has no iss claim",
	"token has no aud claim", "token lacks a required claim", "token has expired",
	"token is not valid yet (nbf)", "token is issued in the future (iat)",
	"token has the wrong issuer (iss)", "token is not for this audience (aud)", "token is invalid",
}

// FuzzVerify: no token makes the parser panic; a refusal says one of the
// known reasons; what passes names a subject, expires, and was signed by
// one of the keys (checked again by the JWT library on its own, with the
// key the algorithm calls for). The verifier takes HS256 with the secret
// and RS256 and ES256 from a JWKS on loopback; the seeds are a token of
// each and the attacks TestJWKSAlgFromKey tries, and run as part of go
// test; go test -fuzz=FuzzVerify explores further.
func FuzzVerify(f *testing.F) {
	k := testKeys()
	p := authtest.NewIDP(f)
	p.Set(authtest.JWK(f, k.rsa1, "r1", jwkset.AlgRS256, jwkset.UseSig), authtest.JWK(f, k.ec1, "e1", "", ""))
	v := verifier(f, p, JWKSConfig{})
	scoped, err := New(context.Background(), Config{Secret: secret, Issuer: "iss", Audience: "aud"})
	if err != nil {
		f.Fatal(err)
	}
	hs, _ := Issue(secret, Caller{ID: "u1", Name: "Ana"}, time.Hour)
	svc, _ := IssueScoped(secret, Caller{ID: "svc", Service: true}, time.Hour, Scope{Issuer: "iss", Audience: "aud"})
	for _, s := range []string{
		hs, svc,
		signKID(f, jwt.SigningMethodRS256, k.rsa1, "r1", nil),
		signKID(f, jwt.SigningMethodES256, k.ec1, "e1", jwt.MapClaims{"aud": []string{"a", "b"}, "nbf": 1, "iat": 2}),
		signKID(f, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), "r1", nil),
		signKID(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", nil),
		signKID(f, jwt.SigningMethodRS512, k.rsa1, "r1", nil),
		signKID(f, jwt.SigningMethodES256, k.ec1, "r1", nil),
		signKID(f, jwt.SigningMethodHS256, secret, "", jwt.MapClaims{"exp": "soon", "sub": 5}),
		"", ".", "..", "a.b.c", "e30.e30.", strings.Repeat("A", 300),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		for _, v := range []*Verifier{v, scoped} {
			c, jwks, err := v.verify(context.Background(), token)
			if err != nil {
				msg, ok := strings.CutPrefix(err.Error(), ErrUnauthenticated.Error()+": ")
				if !errors.Is(err, ErrUnauthenticated) || !ok || !known(msg) {
					t.Fatalf("%q: refused with %q", token, err)
				}
				continue
			}
			if c.ID == "" || c.ExpiresAt.IsZero() {
				t.Fatalf("%q: accepted as %+v", token, c)
			}
			keyOf := func(tok *jwt.Token) (any, error) {
				switch tok.Method.Alg() {
				case "HS256":
					return secret, nil
				case "RS256":
					return &k.rsa1.PublicKey, nil
				case "ES256":
					return &k.ec1.PublicKey, nil
				}
				return nil, errAlg
			}
			tok, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256", "RS256", "ES256"}), jwt.WithoutClaimsValidation()).Parse(token, keyOf)
			if err != nil || (tok.Method.Alg() != "HS256") != jwks {
				t.Fatalf("%q: accepted, but the library alone says %v (jwks %v)", token, err, jwks)
			}
		}
	})
}

func known(reason string) bool {
	for _, r := range reasons {
		if reason == r {
			return true
		}
	}
	return false
}

// FuzzWebsocketInit: whatever connection_init payload a client sends (as
// the transport decodes it), the credentials found are a string the
// payload holds in one of the places clients use, and a payload with a
// credential of another type, or two that disagree, is refused; nothing
// panics.
func FuzzWebsocketInit(f *testing.F) {
	tok, _ := Issue(secret, Caller{ID: "u1"}, time.Hour)
	for _, s := range []string{
		`{}`, `{"authorization":"Bearer ` + tok + `"}`, `{"Authorization":"Bearer x"}`,
		`{"headers":{"Authorization":"Bearer ` + tok + `"}}`, `{"authorization":5}`, `{"authorization":null}`,
		`{"headers":"x"}`, `{"headers":[]}`, `{"authorization":"a","Authorization":"b"}`,
		`{"authorization":{"authorization":"Bearer x"}}`, `{"headers":{"authorization":1.5e300}}`,
		`{"authorization":"Bearer ` + tok + `","headers":{"authorization":"Bearer ` + tok + `"}}`,
	} {
		f.Add([]byte(s))
	}
	v := NewVerifier(secret)
	f.Fuzz(func(t *testing.T, data []byte) {
		// As package wsgql decodes a payload.
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var payload map[string]any
		if dec.Decode(&payload) != nil {
			return
		}
		got, err := initAuthorization(payload)
		var places []any
		for _, m := range []map[string]any{payload, nested(payload)} {
			for _, k := range initKeys {
				if x, ok := m[k]; ok && x != nil {
					places = append(places, x)
				}
			}
		}
		if h, ok := payload["headers"]; ok && h != nil {
			if _, isMap := h.(map[string]any); !isMap && err == nil {
				t.Fatalf("%s: headers of type %T accepted", data, h)
			}
		}
		distinct := map[string]bool{}
		for _, x := range places {
			s, ok := x.(string)
			if !ok {
				if err == nil {
					t.Fatalf("%s: a credential of type %T accepted", data, x)
				}
				return
			}
			if s = strings.TrimSpace(s); s != "" {
				distinct[s] = true
			}
		}
		switch {
		case err != nil && !errors.Is(err, ErrUnauthenticated):
			t.Fatalf("%s: %v", data, err)
		case err == nil && len(distinct) > 1:
			t.Fatalf("%s: two credentials accepted as %q", data, got)
		case err == nil && got != "" && !distinct[got]:
			t.Fatalf("%s: found %q, which the payload does not hold", data, got)
		case err == nil && got == "" && len(distinct) > 0:
			t.Fatalf("%s: credentials missed", data)
		}
		ctx, _, err := v.WebsocketInit(context.Background(), payload)
		if c, cerr := CallerFrom(ctx); err == nil && got != "" && (cerr != nil || c.ID == "") {
			t.Fatalf("%s: init passed with credentials, but no caller", data)
		}
	})
}

func nested(payload map[string]any) map[string]any {
	m, _ := payload["headers"].(map[string]any)
	return m
}
