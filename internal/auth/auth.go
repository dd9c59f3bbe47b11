// Package auth verifies jobchat's bearer tokens (HS256 JWTs) and carries the
// caller in the request context: users, whose `sub` is their profile id, and
// services such as the job-service, whose tokens say `"role": "service"`.
//
// It may import the JWT library and the standard library.
package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrUnauthenticated means the request carries no valid credentials.
var ErrUnauthenticated = errors.New("unauthenticated")

// RoleService is the `role` claim of service tokens.
const RoleService = "service"

// Caller is who makes a request.
type Caller struct {
	// ID is the profile id for users and the token subject for services.
	ID   string
	Name string
	// Service marks trusted backend callers (the job-service).
	Service   bool
	ExpiresAt time.Time
}

type claims struct {
	Name string `json:"name,omitempty"`
	Role string `json:"role,omitempty"`
	jwt.RegisteredClaims
}

// leeway is the clock skew allowed on exp and nbf.
const leeway = 5 * time.Second

// maxVerified bounds the verified-token cache: a few MB of tokens at most,
// far more than the users active on one instance within a token's lifetime.
const maxVerified = 10000

// Verifier checks tokens signed with one HS256 secret.
type Verifier struct {
	secret []byte
	parser *jwt.Parser

	// verified remembers the tokens that passed, by their exact text, with
	// their caller. Clients send the same token with every request until it
	// expires, and decoding it and checking its HMAC again each time was a
	// noticeable share of a send's CPU. A token that passed once passes
	// again until its exp (plus leeway), the secret being fixed, so a hit
	// answers as the full check would; failures are not remembered.
	mu       sync.Mutex
	verified map[string]Caller
}

// NewVerifier returns a Verifier for secret.
func NewVerifier(secret []byte) *Verifier {
	return &Verifier{
		secret: secret,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(leeway),
		),
		verified: make(map[string]Caller),
	}
}

// Verify parses and checks a bare token (no "Bearer " prefix).
func (v *Verifier) Verify(token string) (Caller, error) {
	now := time.Now()
	v.mu.Lock()
	c, ok := v.verified[token]
	v.mu.Unlock()
	if ok && now.Before(c.ExpiresAt.Add(leeway)) { // as jwt checks exp
		return c, nil
	}
	c, err := v.verify(token)
	if err == nil {
		v.remember(token, c, now)
	}
	return c, err
}

// remember caches a verified token. When the cache is full it first drops
// the expired entries, and if that is not enough, all of them: the cost of
// a miss is only a full check.
func (v *Verifier) remember(token string, c Caller, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.verified) >= maxVerified {
		for t, vc := range v.verified {
			if !now.Before(vc.ExpiresAt.Add(leeway)) {
				delete(v.verified, t)
			}
		}
		if len(v.verified) >= maxVerified {
			clear(v.verified)
		}
	}
	v.verified[token] = c
}

// verify is Verify without the cache.
func (v *Verifier) verify(token string) (Caller, error) {
	var c claims
	_, err := v.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return v.secret, nil })
	if err != nil {
		return Caller{}, fmt.Errorf("%w: %s", ErrUnauthenticated, reason(err))
	}
	if c.Subject == "" {
		return Caller{}, fmt.Errorf("%w: token has no sub claim", ErrUnauthenticated)
	}
	caller := Caller{ID: c.Subject, Name: c.Name, Service: c.Role == RoleService}
	if c.ExpiresAt != nil {
		caller.ExpiresAt = c.ExpiresAt.Time
	}
	return caller, nil
}

// reason turns a JWT library error into words safe to send to the client.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token has expired"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token has no exp claim"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "token signature is invalid"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "token is malformed"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token is not signed with HS256"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token is not valid yet"
	}
	return "token is invalid"
}

// VerifyHeader checks an Authorization header value ("Bearer <token>").
// ok is false when the header is empty: no credentials, rather than bad ones.
func (v *Verifier) VerifyHeader(header string) (c Caller, ok bool, err error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return Caller{}, false, nil
	}
	scheme, token, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return Caller{}, true, fmt.Errorf("%w: Authorization must be \"Bearer <token>\"", ErrUnauthenticated)
	}
	c, err = v.Verify(strings.TrimSpace(token))
	return c, true, err
}

// Issue signs a token for c that lasts ttl.
func Issue(secret []byte, c Caller, ttl time.Duration) (string, error) {
	t := time.Now()
	cl := claims{
		Name: c.Name,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.ID,
			IssuedAt:  jwt.NewNumericDate(t),
			ExpiresAt: jwt.NewNumericDate(t.Add(ttl)),
		},
	}
	if c.Service {
		cl.Role = RoleService
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, cl).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

type ctxKey int

const (
	callerKey ctxKey = iota
	failureKey
)

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey, c)
}

// withFailure records why the credentials offered were refused, so that the
// operation that needs a caller can say so.
func withFailure(ctx context.Context, err error) context.Context {
	return context.WithValue(ctx, failureKey, err)
}

// CallerFrom returns the caller in ctx, or an error wrapping
// ErrUnauthenticated that says why there is none.
func CallerFrom(ctx context.Context) (Caller, error) {
	if c, ok := ctx.Value(callerKey).(Caller); ok {
		return c, nil
	}
	if err, ok := ctx.Value(failureKey).(error); ok {
		return Caller{}, err
	}
	return Caller{}, fmt.Errorf("%w: send Authorization: Bearer <token>", ErrUnauthenticated)
}

// Middleware puts the caller of a request with an Authorization header in
// its context. A request without one, or with a bad one, still goes through:
// GraphQL answers UNAUTHENTICATED on the fields that need a caller, so that
// introspection and the playground work without a token.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok, err := v.VerifyHeader(r.Header.Get("Authorization"))
		switch {
		case !ok:
		case err != nil:
			r = r.WithContext(withFailure(r.Context(), err))
		default:
			r = r.WithContext(WithCaller(r.Context(), c))
		}
		next.ServeHTTP(w, r)
	})
}

// WebsocketInit authenticates a websocket's connection_init. A token in the
// payload ("authorization" or "Authorization") wins over one in the upgrade
// request's header. Bad credentials refuse the connection; none at all let
// it open, and operations that need a caller fail one by one. expires is
// the token's expiry: the transport closes the socket then, so that a
// client reconnects with a fresh token instead of living on a stale one.
func (v *Verifier) WebsocketInit(ctx context.Context, payload map[string]any) (next context.Context, expires time.Time, err error) {
	if header := initAuthorization(payload); header != "" {
		c, _, err := v.VerifyHeader(header)
		if err != nil {
			return ctx, time.Time{}, err
		}
		ctx = WithCaller(ctx, c)
	} else if _, err := CallerFrom(ctx); err != nil && ctx.Value(failureKey) != nil {
		return ctx, time.Time{}, err
	}
	if c, err := CallerFrom(ctx); err == nil {
		expires = c.ExpiresAt
	}
	return ctx, expires, nil
}

// initAuthorization finds the credentials in a connection_init payload.
// Clients disagree on the key's case, and some nest it under "headers".
func initAuthorization(payload map[string]any) string {
	for _, m := range []map[string]any{payload, nested(payload, "headers")} {
		for _, k := range []string{"authorization", "Authorization"} {
			if s, ok := m[k].(string); ok && s != "" {
				return s
			}
		}
	}
	return ""
}

func nested(m map[string]any, key string) map[string]any {
	n, _ := m[key].(map[string]any)
	return n
}

// secretFile is where a server without a configured secret keeps the one it
// made, so that restarts and `jobchat token` agree on it.
const secretFile = "jwt-secret"

// LoadOrCreateSecret reads the development secret from dir, creating a
// random one on first use. created reports that it was just made.
func LoadOrCreateSecret(dir string) (secret []byte, created bool, err error) {
	path := filepath.Join(dir, secretFile)
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < 32 {
			return nil, false, fmt.Errorf("dev secret %s is shorter than 32 characters", path)
		}
		return []byte(s), false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("read dev secret: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create data dir: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, false, fmt.Errorf("generate dev secret: %w", err)
	}
	s := hex.EncodeToString(raw[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		// Another process made it first: use theirs.
		return LoadOrCreateSecret(dir)
	}
	if err != nil {
		return nil, false, fmt.Errorf("write dev secret: %w", err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		_ = f.Close()
		return nil, false, fmt.Errorf("write dev secret: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("write dev secret: %w", err)
	}
	return []byte(s), true, nil
}
