package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxLeeway is the most clock skew Config.Leeway may allow: more would let
// an expired token live on, or one issued "later" pass now.
const MaxLeeway = time.Minute

// DefaultLeeway is the clock skew NewVerifier allows, and
// JOBCHAT_JWT_LEEWAY's default.
const DefaultLeeway = 5 * time.Second

// Config configures a Verifier. The zero value of each field gives the
// default it notes.
type Config struct {
	// Secret verifies HS256 tokens. Empty: HS256 tokens are refused.
	Secret []byte
	// Leeway is the clock skew allowed on exp, nbf and iat, at most
	// MaxLeeway. Zero allows none (DefaultLeeway is a sensible one).
	Leeway time.Duration
	// Issuer, if set, is the `iss` every token must carry.
	Issuer string
	// Audience, if set, must be one of every token's `aud`.
	Audience string
	// JWKS, if its URL is set, verifies RS256 and ES256 tokens against the
	// identity provider's keys.
	JWKS JWKSConfig
}

// Verifier checks bearer tokens. Its methods are safe for concurrent use.
// Close it to stop refreshing the JWKS.
type Verifier struct {
	secret []byte
	leeway time.Duration
	parser *jwt.Parser
	// keys is nil without a JWKS URL.
	keys *keySet

	// verified remembers the tokens that passed, by their exact text, with
	// their caller. Clients send the same token with every request until it
	// expires, and decoding it and checking its signature again each time
	// was a noticeable share of a send's CPU. A token that passed once
	// passes again until its entry's until: its exp (plus leeway) for
	// HS256, whose secret is fixed; sooner for JWKS tokens, so that a key
	// the identity provider withdraws stops working within
	// jwksCacheLimit. Failures are not remembered.
	mu       sync.Mutex
	verified map[string]verifiedToken
}

type verifiedToken struct {
	caller Caller
	until  time.Time
}

// maxVerified bounds the verified-token cache: a few MB of tokens at most,
// far more than the users active on one instance within a token's lifetime.
const maxVerified = 10000

// jwksCacheLimit bounds how long a JWKS token is answered from the cache.
const jwksCacheLimit = 5 * time.Minute

// Token errors beyond the JWT library's, in words safe to send to the
// client.
var (
	errAlg        = errors.New("token alg is not accepted")
	errNoKID      = errors.New("token has no kid header")
	errUnknownKey = errors.New("token is signed with an unknown key")
	errKeyAlg     = errors.New("token alg does not match its key")
	errKeyUnfit   = errors.New("the key the token names cannot verify tokens")
	errNoSub      = errors.New("token has no sub claim")
)

// New returns a Verifier configured by cfg. With a JWKS URL it fetches the
// key set once (a failure is reported to JWKSConfig.OnError, not
// returned: the server starts, and the keys come with the next refresh),
// and refreshes it until Close.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.Leeway < 0 || cfg.Leeway > MaxLeeway {
		return nil, fmt.Errorf("auth: leeway %s is outside 0 to %s", cfg.Leeway, MaxLeeway)
	}
	v := &Verifier{secret: cfg.Secret, leeway: cfg.Leeway, verified: make(map[string]verifiedToken)}
	var methods []string
	if len(cfg.Secret) > 0 {
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if cfg.JWKS.URL != "" {
		keys, err := newKeySet(ctx, cfg.JWKS)
		if err != nil {
			return nil, err
		}
		v.keys = keys
		methods = append(methods, jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg())
	}
	if len(methods) == 0 {
		return nil, errors.New("auth: neither a secret nor a JWKS URL: no token could pass")
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		// Refuses base64 with stray trailing bits: one signature, one text.
		jwt.WithStrictDecoding(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// NewVerifier returns a Verifier for HS256 tokens signed with secret, with
// the default leeway and no issuer or audience.
func NewVerifier(secret []byte) *Verifier {
	v, err := New(context.Background(), Config{Secret: secret, Leeway: DefaultLeeway})
	if err != nil {
		panic(err) // only an empty secret fails, a wiring mistake
	}
	return v
}

// Close stops the JWKS refresh. The Verifier still verifies, with the keys
// it has.
func (v *Verifier) Close() {
	if v.keys != nil {
		v.keys.close()
	}
}

// Verify parses and checks a bare token (no "Bearer " prefix). ctx bounds
// the one JWKS refresh a token with an unknown kid may cause.
func (v *Verifier) Verify(ctx context.Context, token string) (Caller, error) {
	now := time.Now()
	v.mu.Lock()
	e, ok := v.verified[token]
	v.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.caller, nil
	}
	c, jwks, err := v.verify(ctx, token)
	if err != nil {
		return Caller{}, err
	}
	until := c.ExpiresAt.Add(v.leeway) // as the JWT library checks exp
	if limit := now.Add(jwksCacheLimit); jwks && limit.Before(until) {
		until = limit
	}
	v.remember(token, verifiedToken{caller: c, until: until}, now)
	return c, nil
}

// remember caches a verified token. When the cache is full it first drops
// the entries past their time, and if that is not enough, all of them:
// the cost of a miss is only a full check.
func (v *Verifier) remember(token string, e verifiedToken, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.verified) >= maxVerified {
		for t, old := range v.verified {
			if !now.Before(old.until) {
				delete(v.verified, t)
			}
		}
		if len(v.verified) >= maxVerified {
			clear(v.verified)
		}
	}
	v.verified[token] = e
}

type claims struct {
	Name string `json:"name,omitempty"`
	Role string `json:"role,omitempty"`
	jwt.RegisteredClaims
}

// verify is Verify without the cache. jwks reports a token verified with
// the identity provider's keys.
func (v *Verifier) verify(ctx context.Context, token string) (c Caller, jwks bool, err error) {
	var cl claims
	tok, err := v.parser.ParseWithClaims(token, &cl, func(t *jwt.Token) (any, error) {
		return v.key(ctx, t)
	})
	if err != nil {
		return Caller{}, false, fmt.Errorf("%w: %s", ErrUnauthenticated, reason(tok, err))
	}
	if cl.Subject == "" {
		return Caller{}, false, fmt.Errorf("%w: %s", ErrUnauthenticated, errNoSub)
	}
	c = Caller{ID: cl.Subject, Name: cl.Name, Service: cl.Role == RoleService}
	if cl.ExpiresAt != nil { // required: the parser refused it otherwise
		c.ExpiresAt = cl.ExpiresAt.Time
	}
	return c, tok.Method.Alg() != jwt.SigningMethodHS256.Alg(), nil
}

// key is the parser's key function. The algorithm decides where the key
// comes from, and each kind of key works with its own algorithm only: the
// shared secret for HS256, and for RS256 and ES256 the JWKS key the kid
// names, whose own algorithm must be the token's (see keySet.key). So an
// RSA public key can never serve as an HMAC secret, and `none` never gets
// this far (the parser's valid methods refuse it).
func (v *Verifier) key(ctx context.Context, t *jwt.Token) (any, error) {
	switch alg := t.Method.Alg(); alg {
	case jwt.SigningMethodHS256.Alg():
		if len(v.secret) == 0 {
			return nil, errAlg
		}
		return v.secret, nil
	case jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg():
		if v.keys == nil {
			return nil, errAlg
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errNoKID
		}
		return v.keys.key(ctx, kid, alg)
	default:
		return nil, errAlg
	}
}

// reason turns a JWT library error into words safe to send to the client.
// tok is what the parser made of the token, possibly nil.
func reason(tok *jwt.Token, err error) string {
	for _, e := range []error{errAlg, errNoKID, errUnknownKey, errKeyAlg, errKeyUnfit} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "token is malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if tok != nil && tok.Method != nil && strings.Contains(err.Error(), "signing method") {
			// The parser's own list refused the algorithm.
			return errAlg.Error()
		}
		return "token signature is invalid"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		if tok != nil && tok.Method == nil {
			// No such algorithm at all.
			return errAlg.Error()
		}
		return "token could not be verified"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		for _, name := range []string{"exp", "iss", "aud"} {
			if strings.Contains(err.Error(), name+" claim is required") {
				return "token has no " + name + " claim"
			}
		}
		return "token lacks a required claim"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token is not valid yet (nbf)"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token is issued in the future (iat)"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "token has the wrong issuer (iss)"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "token is not for this audience (aud)"
	}
	return "token is invalid"
}

// VerifyHeader checks an Authorization header value ("Bearer <token>").
// ok is false when the header is empty: no credentials, rather than bad ones.
func (v *Verifier) VerifyHeader(ctx context.Context, header string) (c Caller, ok bool, err error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return Caller{}, false, nil
	}
	scheme, token, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return Caller{}, true, fmt.Errorf("%w: Authorization must be \"Bearer <token>\"", ErrUnauthenticated)
	}
	c, err = v.Verify(ctx, strings.TrimSpace(token))
	return c, true, err
}

// Scope is what `jobchat token` writes beside the caller, so that its
// tokens pass a server that checks them: Config's Issuer and Audience.
type Scope struct {
	Issuer, Audience string
}

// Issue signs an HS256 token for c that lasts ttl, with iat and exp.
func Issue(secret []byte, c Caller, ttl time.Duration) (string, error) {
	return IssueScoped(secret, c, ttl, Scope{})
}

// IssueScoped is Issue with an issuer and an audience, when set.
func IssueScoped(secret []byte, c Caller, ttl time.Duration, s Scope) (string, error) {
	t := time.Now()
	cl := claims{
		Name: c.Name,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.ID,
			Issuer:    s.Issuer,
			IssuedAt:  jwt.NewNumericDate(t),
			ExpiresAt: jwt.NewNumericDate(t.Add(ttl)),
		},
	}
	if s.Audience != "" {
		cl.Audience = jwt.ClaimStrings{s.Audience}
	}
	if c.Service {
		cl.Role = RoleService
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, cl).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return tok, nil
}

// jwksHTTPTimeout bounds one fetch of the key set.
const jwksHTTPTimeout = 10 * time.Second

// maxJWKSBytes bounds a key set's size: a few keys are a few KB.
const maxJWKSBytes = 1 << 20

func defaultJWKSClient() *http.Client {
	return &http.Client{Timeout: jwksHTTPTimeout}
}
