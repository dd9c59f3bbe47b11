package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// JWKSConfig configures the identity provider's key set. The zero value
// of each field but URL gives the default it notes.
type JWKSConfig struct {
	// URL is the key set's address, http:// or https://.
	URL string
	// Refresh is how often the key set is fetched again, to learn of new
	// keys and withdrawn ones. Zero: 15 minutes.
	Refresh time.Duration
	// MinRefresh is the least time between two fetches caused by tokens
	// whose kid is not in the set (a key the provider just started using,
	// or a forgery): one such token fetches the set again, and tokens
	// that arrive while that fetch runs wait for it; within MinRefresh of
	// it, a token with an unknown kid is refused at once. Zero: 30 s.
	MinRefresh time.Duration
	// Client fetches the key set. Nil: a client with a 10 s timeout.
	Client *http.Client
	// OnError is told of each failed fetch, for the log. May be nil.
	OnError func(ctx context.Context, err error)
}

const (
	defaultJWKSRefresh    = 15 * time.Minute
	defaultJWKSMinRefresh = 30 * time.Second
)

// keySet is the identity provider's keys, as jwkset fetched, checked and
// cached them. jwkset refreshes them on a timer; keySet decides when a
// token with an unknown kid may cause a fetch, rather than jwkset's own
// rate limiter, which makes every such request wait for its turn (up to a
// minute) instead of refusing it.
type keySet struct {
	// store holds the keys as last fetched.
	store jwkset.Storage
	// fetcher is store behind jwkset's client: reading an unknown kid
	// from it fetches the set again first.
	fetcher    jwkset.Storage
	ctx        context.Context
	cancel     context.CancelFunc
	minRefresh time.Duration

	mu sync.Mutex
	// last is when a token with an unknown kid last caused a fetch.
	last time.Time
	// inflight, while such a fetch runs, is closed when it ends.
	inflight chan struct{}
}

func newKeySet(ctx context.Context, cfg JWKSConfig) (*keySet, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("auth: JWKS URL %q is not an http:// or https:// URL", cfg.URL)
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = defaultJWKSRefresh
	}
	if cfg.MinRefresh <= 0 {
		cfg.MinRefresh = defaultJWKSMinRefresh
	}
	client := cfg.Client
	if client == nil {
		client = defaultJWKSClient()
	}
	// A copy, so as not to change the caller's client.
	limited := *client
	limited.Transport = limitBody{next: client.Transport}
	onError := cfg.OnError
	if onError == nil {
		onError = func(context.Context, error) {}
	}
	ctx, cancel := context.WithCancel(ctx)
	ks := &keySet{ctx: ctx, cancel: cancel, minRefresh: cfg.MinRefresh}
	ks.store, err = jwkset.NewStorageFromHTTP(cfg.URL, jwkset.HTTPClientStorageOptions{
		Client:      &limited,
		Ctx:         ctx,
		HTTPTimeout: jwksHTTPTimeout,
		// A provider that is down when jobchat starts must not keep it
		// down: the keys come with the next fetch.
		NoErrorReturnFirstHTTPReq: true,
		RefreshErrorHandler: func(ctx context.Context, err error) {
			onError(ctx, fmt.Errorf("fetch JWKS %s: %w", cfg.URL, err))
		},
		RefreshInterval: cfg.Refresh,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("auth: JWKS: %w", err)
	}
	ks.fetcher, err = jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs: map[string]jwkset.Storage{cfg.URL: ks.store},
		// Never waits: refresh has decided that a fetch may happen.
		RefreshUnknownKID: rate.NewLimiter(rate.Inf, 1),
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("auth: JWKS: %w", err)
	}
	return ks, nil
}

func (ks *keySet) close() { ks.cancel() }

// key returns the public key kid names, for a token signed with alg.
func (ks *keySet) key(ctx context.Context, kid, alg string) (any, error) {
	jwk, err := ks.store.KeyRead(ctx, kid)
	if errors.Is(err, jwkset.ErrKeyNotFound) {
		ks.refresh(ctx, kid)
		// Again, whether refresh fetched, waited for a fetch or did
		// neither: a fetch may have ended since the first look.
		jwk, err = ks.store.KeyRead(ctx, kid)
	}
	switch {
	case errors.Is(err, jwkset.ErrKeyNotFound):
		return nil, errUnknownKey
	case err != nil:
		return nil, fmt.Errorf("read JWKS key: %w", err)
	}
	return verificationKey(jwk, alg)
}

// refresh fetches the key set again for a token with the unknown kid, if
// no such fetch happened within minRefresh, or waits for the one running
// (or for ctx to end).
func (ks *keySet) refresh(ctx context.Context, kid string) {
	ks.mu.Lock()
	if ch := ks.inflight; ch != nil {
		ks.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		return
	}
	if !ks.last.IsZero() && time.Since(ks.last) < ks.minRefresh {
		ks.mu.Unlock()
		return
	}
	ks.last = time.Now()
	ch := make(chan struct{})
	ks.inflight = ch
	ks.mu.Unlock()
	defer func() {
		ks.mu.Lock()
		ks.inflight = nil
		ks.mu.Unlock()
		close(ch)
	}()
	// Not the caller's context: others wait for this fetch, and must not
	// lose it to a caller that gives up. Failures go to OnError.
	fctx, cancel := context.WithTimeout(ks.ctx, jwksHTTPTimeout)
	defer cancel()
	_, _ = ks.fetcher.KeyRead(fctx, kid)
}

// verificationKey is the public key of jwk, for a token signed with alg.
// The algorithm comes from the key, never from the token: an RSA key of
// at least 2048 bits verifies RS256 only, a P-256 key ES256 only, and a
// key whose "alg" says otherwise, or whose "use" is not "sig", nothing.
// Symmetric ("oct") and other keys verify nothing: the shared secret is
// the only HMAC key.
func verificationKey(jwk jwkset.JWK, alg string) (any, error) {
	m := jwk.Marshal()
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, errKeyUnfit
	}
	var pub any
	switch k := jwk.Key().(type) {
	case *rsa.PublicKey:
		pub = k
	case *rsa.PrivateKey:
		pub = &k.PublicKey
	case *ecdsa.PublicKey:
		pub = k
	case *ecdsa.PrivateKey:
		pub = &k.PublicKey
	default:
		return nil, errKeyUnfit
	}
	var keyAlg string
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N.BitLen() < 2048 {
			return nil, errKeyUnfit
		}
		keyAlg = jwt.SigningMethodRS256.Alg()
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return nil, errKeyUnfit
		}
		keyAlg = jwt.SigningMethodES256.Alg()
	}
	if m.ALG != "" && m.ALG.String() != keyAlg {
		return nil, errKeyUnfit
	}
	if alg != keyAlg {
		return nil, errKeyAlg
	}
	return pub, nil
}

// limitBody cuts a key set's body at maxJWKSBytes: a set that big is not
// one, and decoding it must not take the server's memory.
type limitBody struct{ next http.RoundTripper }

func (l limitBody) RoundTrip(r *http.Request) (*http.Response, error) {
	next := l.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, maxJWKSBytes), resp.Body}
	return resp, nil
}
