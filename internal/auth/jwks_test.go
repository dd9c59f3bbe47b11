package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/jobchat/jobchat/internal/auth/authtest"
)

// testKeys are made once: RSA keys take a while.
var testKeys = sync.OnceValue(func() (k struct {
	rsa1, rsa2, rsaSmall *rsa.PrivateKey
	ec1, ec2             *ecdsa.PrivateKey
	ec384                *ecdsa.PrivateKey
}) {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	var err error
	k.rsa1, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsaSmall, err = rsa.GenerateKey(rand.Reader, 1024)
	must(err)
	k.ec1, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ec2, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	return k
})

// verifier is a Verifier with the shared secret and p's keys; a token with
// an unknown kid fetches the set at most once an hour, unless cfg says.
func verifier(tb testing.TB, p *authtest.IDP, cfg JWKSConfig) *Verifier {
	tb.Helper()
	cfg.URL = p.URL()
	if cfg.MinRefresh == 0 {
		cfg.MinRefresh = time.Hour
	}
	v, err := New(context.Background(), Config{Secret: secret, Leeway: DefaultLeeway, JWKS: cfg})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(v.Close)
	return v
}

// signKID signs claims (sub u1, an hour's exp unless given) with kid in
// the header, if not empty.
func signKID(tb testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	tb.Helper()
	return authtest.Sign(tb, method, key, kid, "u1", claims)
}

func wantRefused(tb testing.TB, v *Verifier, token, reason string) {
	tb.Helper()
	c, err := v.Verify(context.Background(), token)
	if !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), reason) {
		tb.Fatalf("got %+v, %v; want refused mentioning %q", c, err, reason)
	}
}

func wantAccepted(tb testing.TB, v *Verifier, token string) Caller {
	tb.Helper()
	c, err := v.Verify(context.Background(), token)
	if err != nil || c.ID != "u1" || c.ExpiresAt.IsZero() {
		tb.Fatalf("got %+v, %v; want u1", c, err)
	}
	return c
}

func TestJWKSVerifies(t *testing.T) {
	k := testKeys()
	p := authtest.NewIDP(t)
	p.Set(authtest.JWK(t, k.rsa1, "r1", jwkset.AlgRS256, jwkset.UseSig), authtest.JWK(t, k.ec1, "e1", "", ""))
	v := verifier(t, p, JWKSConfig{})

	wantAccepted(t, v, signKID(t, jwt.SigningMethodRS256, k.rsa1, "r1", nil))
	// A key without alg or use: its type says ES256.
	c := wantAccepted(t, v, signKID(t, jwt.SigningMethodES256, k.ec1, "e1", jwt.MapClaims{"name": "Ana", "role": RoleService}))
	if c.Name != "Ana" || !c.Service {
		t.Fatalf("claims not carried: %+v", c)
	}
	// The shared secret still works beside the JWKS.
	tok, _ := Issue(secret, Caller{ID: "u1"}, time.Hour)
	wantAccepted(t, v, tok)
	// The claims rules are the same for every key.
	wantRefused(t, v, signKID(t, jwt.SigningMethodRS256, k.rsa1, "r1", jwt.MapClaims{"iat": time.Now().Add(time.Hour).Unix()}), "issued in the future")
	wantRefused(t, v, signKID(t, jwt.SigningMethodES256, k.ec1, "e1", jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()}), "expired")
	if n := p.Fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want the one at start", n)
	}
}

// TestJWKSRotation: a token signed with a key the provider just added
// fetches the set once; another unknown kid soon after is refused without
// a fetch; a withdrawn key verifies no new token.
func TestJWKSRotation(t *testing.T) {
	k := testKeys()
	p := authtest.NewIDP(t)
	p.Set(authtest.JWK(t, k.rsa1, "r1", jwkset.AlgRS256, jwkset.UseSig))
	v := verifier(t, p, JWKSConfig{})
	old := signKID(t, jwt.SigningMethodRS256, k.rsa1, "r1", nil)
	wantAccepted(t, v, old)

	p.Set(authtest.JWK(t, k.rsa2, "r2", jwkset.AlgRS256, jwkset.UseSig), authtest.JWK(t, k.ec2, "e2", jwkset.AlgES256, jwkset.UseSig))
	wantAccepted(t, v, signKID(t, jwt.SigningMethodRS256, k.rsa2, "r2", nil))
	if n := p.Fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2: the start and the new kid", n)
	}
	// The second fetch brought e2 as well.
	wantAccepted(t, v, signKID(t, jwt.SigningMethodES256, k.ec2, "e2", nil))
	// Unknown kids (forgeries, or a key not yet published) fetch no more
	// within MinRefresh: each is refused at once.
	for i := range 20 {
		wantRefused(t, v, signKID(t, jwt.SigningMethodRS256, k.rsa2, "forged-"+string(rune('a'+i)), nil), "unknown key")
	}
	// r1 was withdrawn: a token not seen before is refused...
	wantRefused(t, v, signKID(t, jwt.SigningMethodRS256, k.rsa1, "r1", jwt.MapClaims{"name": "new"}), "unknown key")
	if n := p.Fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want still 2", n)
	}
	// ...while one verified before its withdrawal passes from the cache,
	// for jwksCacheLimit at most.
	wantAccepted(t, v, old)
	v.mu.Lock()
	until := v.verified[old].until
	v.mu.Unlock()
	if time.Until(until) > jwksCacheLimit {
		t.Fatalf("cached until %s from now, beyond %s", time.Until(until), jwksCacheLimit)
	}
}

// TestJWKSOneFetchForMany: tokens with a new kid that arrive together wait
// for one fetch; none is refused, none fetches again.
func TestJWKSOneFetchForMany(t *testing.T) {
	k := testKeys()
	p := authtest.NewIDP(t)
	p.Set(authtest.JWK(t, k.rsa1, "r1", jwkset.AlgRS256, jwkset.UseSig))
	v := verifier(t, p, JWKSConfig{})
	p.Set(authtest.JWK(t, k.rsa1, "r1", jwkset.AlgRS256, jwkset.UseSig), authtest.JWK(t, k.ec1, "e1", jwkset.AlgES256, jwkset.UseSig))
	hold := make(chan struct{})
	p.Hold(hold)

	const n = 10
	errs := make(chan error, n)
	for i := range n {
		tok := signKID(t, jwt.SigningMethodES256, k.ec1, "e1", jwt.MapClaims{"sub": "u1", "name": string(rune('a' + i))})
		go func() {
			_, err := v.Verify(context.Background(), tok)
			errs <- err
		}()
	}
	select {
	case <-p.Entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no fetch for the unknown kid")
	}
	close(hold)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := p.Fetches.Load(); got != 2 {
		t.Fatalf("%d fetches, want 2: the start and one for all", got)
	}
}

// TestJWKSAlgFromKey: the algorithm comes from the key, never from the
// token. HS/RS confusion, `none`, keys of the wrong kind or size, and
// keys whose alg or use says otherwise are refused.
func TestJWKSAlgFromKey(t *testing.T) {
	k := testKeys()
	p := authtest.NewIDP(t)
	other := []byte("another-secret-another-secret-xx")
	oct, err := jwkset.NewJWKFromKey(other, jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{KID: "oct", ALG: jwkset.AlgHS256},
		Marshal:  jwkset.JWKMarshalOptions{Private: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Set(
		authtest.JWK(t, k.rsa1, "r1", jwkset.AlgRS256, jwkset.UseSig),
		authtest.JWK(t, k.ec1, "e1", jwkset.AlgES256, jwkset.UseSig),
		authtest.JWK(t, k.rsa2, "r512", jwkset.AlgRS512, jwkset.UseSig),
		authtest.JWK(t, k.rsa2, "renc", "", jwkset.UseEnc),
		authtest.JWK(t, k.rsaSmall, "rsmall", "", ""),
		authtest.JWK(t, k.ec384, "e384", "", ""),
		oct.Marshal(),
	)
	v := verifier(t, p, JWKSConfig{})
	der, err := x509.MarshalPKIXPublicKey(&k.rsa1.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hour := time.Now().Add(time.Hour).Unix()

	tests := []struct {
		name, token, reason string
	}{
		{"HS256 with the RSA key's PEM as the secret", signKID(t, jwt.SigningMethodHS256, pemKey, "r1", nil), "signature is invalid"},
		{"HS256 with the RSA key's DER as the secret", signKID(t, jwt.SigningMethodHS256, der, "r1", nil), "signature is invalid"},
		{"HS256 with a symmetric key from the JWKS", signKID(t, jwt.SigningMethodHS256, other, "oct", nil), "signature is invalid"},
		{"RS256 naming the symmetric key", signKID(t, jwt.SigningMethodRS256, k.rsa1, "oct", nil), "cannot verify tokens"},
		{"RS256 naming an EC key", signKID(t, jwt.SigningMethodRS256, k.rsa1, "e1", nil), "does not match its key"},
		{"ES256 naming an RSA key", signKID(t, jwt.SigningMethodES256, k.ec1, "r1", nil), "does not match its key"},
		{"RS256 naming a key for RS512", signKID(t, jwt.SigningMethodRS256, k.rsa2, "r512", nil), "cannot verify tokens"},
		{"RS512 with its own key", signKID(t, jwt.SigningMethodRS512, k.rsa2, "r512", nil), "alg is not accepted"},
		{"PS256", signKID(t, jwt.SigningMethodPS256, k.rsa1, "r1", nil), "alg is not accepted"},
		{"ES384", signKID(t, jwt.SigningMethodES384, k.ec384, "e384", nil), "alg is not accepted"},
		{"ES256 naming a P-384 key", signKID(t, jwt.SigningMethodES256, k.ec1, "e384", nil), "cannot verify tokens"},
		{"an encryption key", signKID(t, jwt.SigningMethodRS256, k.rsa2, "renc", nil), "cannot verify tokens"},
		{"a 1024-bit RSA key", signKID(t, jwt.SigningMethodRS256, k.rsaSmall, "rsmall", nil), "cannot verify tokens"},
		{"alg none", signKID(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "r1", nil), "alg is not accepted"},
		{"no kid", signKID(t, jwt.SigningMethodRS256, k.rsa1, "", nil), "no kid"},
		{"signed by another key under r1's kid", signKID(t, jwt.SigningMethodRS256, k.rsa2, "r1", nil), "signature is invalid"},
		{"an alg header forged onto an RS256 token", forgeAlg(t, signKID(t, jwt.SigningMethodRS256, k.rsa1, "r1", jwt.MapClaims{"exp": hour}), "HS256"), "signature is invalid"},
		{"an unknown alg", forgeAlg(t, signKID(t, jwt.SigningMethodRS256, k.rsa1, "r1", nil), "XS999"), "alg is not accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantRefused(t, v, tt.token, tt.reason)
		})
	}

	t.Run("RS256 without a JWKS", func(t *testing.T) {
		wantRefused(t, NewVerifier(secret), signKID(t, jwt.SigningMethodRS256, k.rsa1, "r1", nil), "alg is not accepted")
	})
	t.Run("HS256 without a secret", func(t *testing.T) {
		v, err := New(context.Background(), Config{JWKS: JWKSConfig{URL: p.URL()}})
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		tok, _ := Issue(secret, Caller{ID: "u1"}, time.Hour)
		wantRefused(t, v, tok, "alg is not accepted")
		wantAccepted(t, v, signKID(t, jwt.SigningMethodRS256, k.rsa1, "r1", nil))
	})
}

// forgeAlg replaces the alg of token's header, keeping its signature.
func forgeAlg(tb testing.TB, token, alg string) string {
	tb.Helper()
	parts := strings.Split(token, ".")
	head := map[string]any{}
	raw, err := jwt.NewParser().DecodeSegment(parts[0])
	if err != nil || json.Unmarshal(raw, &head) != nil {
		tb.Fatal("bad header")
	}
	head["alg"] = alg
	b, _ := json.Marshal(head)
	parts[0] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// TestJWKSRefresh: the set is fetched again on a timer, so that a
// withdrawn key stops verifying even without unknown kids; a provider
// that is down, or answers with something too big to be a key set, is
// reported and does not stop the server.
func TestJWKSRefresh(t *testing.T) {
	k := testKeys()
	t.Run("withdrawn on the timer", func(t *testing.T) {
		p := authtest.NewIDP(t)
		p.Set(authtest.JWK(t, k.rsa1, "r1", jwkset.AlgRS256, jwkset.UseSig))
		v := verifier(t, p, JWKSConfig{Refresh: 20 * time.Millisecond})
		wantAccepted(t, v, signKID(t, jwt.SigningMethodRS256, k.rsa1, "r1", nil))
		p.Set()
		for i := 0; ; i++ {
			_, err := v.Verify(context.Background(), signKID(t, jwt.SigningMethodRS256, k.rsa1, "r1", jwt.MapClaims{"n": i}))
			if err != nil {
				break
			}
			if i > 10000 {
				t.Fatal("the withdrawn key still verifies")
			}
			time.Sleep(time.Millisecond)
		}
	})
	t.Run("provider down at start", func(t *testing.T) {
		p := authtest.NewIDP(t)
		url := p.URL()
		p.Close()
		var failures atomic.Int32
		v, err := New(context.Background(), Config{Secret: secret, JWKS: JWKSConfig{URL: url, OnError: func(context.Context, error) { failures.Add(1) }}})
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		if failures.Load() == 0 {
			t.Fatal("the failed fetch was not reported")
		}
		wantRefused(t, v, signKID(t, jwt.SigningMethodRS256, k.rsa1, "r1", nil), "unknown key")
		tok, _ := Issue(secret, Caller{ID: "u1"}, time.Hour)
		wantAccepted(t, v, tok)
	})
	t.Run("a body over the limit", func(t *testing.T) {
		p := authtest.NewIDP(t)
		set, _ := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{authtest.JWK(t, k.rsa1, "r1", jwkset.AlgRS256, jwkset.UseSig)}})
		p.ServeBody(append([]byte(strings.Repeat(" ", maxJWKSBytes)), set...))
		var failures atomic.Int32
		v := verifier(t, p, JWKSConfig{OnError: func(context.Context, error) { failures.Add(1) }})
		if failures.Load() == 0 {
			t.Fatal("the oversized set was not reported")
		}
		wantRefused(t, v, signKID(t, jwt.SigningMethodRS256, k.rsa1, "r1", nil), "unknown key")
	})
}
