// Package authtest serves the tests of token verification: an identity
// provider's JWKS endpoint on loopback, whose keys a test rotates, and a
// token signer. Package auth's own tests use it, and so do the server's
// end-to-end ones, so it must not import package auth. It imports the JWT
// and JWKS libraries and the standard library.
package authtest

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// IDP is an identity provider's JWKS endpoint on loopback. It serves the
// keys last Set, counts the fetches, and can hold fetches or serve a body
// of the test's own.
type IDP struct {
	srv *httptest.Server
	// Fetches counts the requests for the key set.
	Fetches atomic.Int32
	// Entered hears of each fetch that waits on Hold's channel.
	Entered chan struct{}

	mu   sync.Mutex
	keys []jwkset.JWKMarshal
	hold chan struct{}
	body []byte
}

// NewIDP starts an IDP with no keys, closed at the test's end.
func NewIDP(tb testing.TB) *IDP {
	tb.Helper()
	p := &IDP{Entered: make(chan struct{}, 100)}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.Fetches.Add(1)
		p.mu.Lock()
		hold, body := p.hold, p.body
		set := jwkset.JWKSMarshal{Keys: append([]jwkset.JWKMarshal(nil), p.keys...)}
		p.mu.Unlock()
		if hold != nil {
			p.Entered <- struct{}{}
			<-hold
		}
		w.Header().Set("Content-Type", "application/json")
		if body != nil {
			_, _ = w.Write(body)
			return
		}
		_ = json.NewEncoder(w).Encode(set)
	}))
	tb.Cleanup(p.srv.Close)
	return p
}

// URL is where the key set is served.
func (p *IDP) URL() string { return p.srv.URL }

// Close stops serving: fetches fail from then on.
func (p *IDP) Close() { p.srv.Close() }

// Set replaces the keys served: a rotation.
func (p *IDP) Set(keys ...jwkset.JWKMarshal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = keys
}

// Hold makes each fetch wait until ch is closed (nil: no waiting).
func (p *IDP) Hold(ch chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold = ch
}

// ServeBody makes fetches answer body instead of the keys (nil: the keys).
func (p *IDP) ServeBody(body []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.body = body
}

// JWK is the public JWK of key (an RSA or ECDSA private or public key)
// with kid and, if not empty, alg and use.
func JWK(tb testing.TB, key any, kid string, alg jwkset.ALG, use jwkset.USE) jwkset.JWKMarshal {
	tb.Helper()
	switch k := key.(type) {
	case *rsa.PrivateKey:
		key = &k.PublicKey
	case *ecdsa.PrivateKey:
		key = &k.PublicKey
	}
	j, err := jwkset.NewJWKFromKey(key, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: alg, USE: use}})
	if err != nil {
		tb.Fatal(err)
	}
	return j.Marshal()
}

// Sign signs claims with method and key, with kid in the header if not
// empty; sub is defaultSub and exp an hour from now unless claims say.
func Sign(tb testing.TB, method jwt.SigningMethod, key any, kid, defaultSub string, claims jwt.MapClaims) string {
	tb.Helper()
	if claims == nil {
		claims = jwt.MapClaims{}
	}
	if claims["sub"] == nil {
		claims["sub"] = defaultSub
	}
	if claims["exp"] == nil {
		claims["exp"] = time.Now().Add(time.Hour).Unix()
	}
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
