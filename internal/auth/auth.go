// Package auth verifies jobchat's bearer tokens and carries the caller in
// the request context: users, whose `sub` is their profile id, and services
// such as the job-service, whose tokens say `"role": "service"`. Tokens are
// JWTs: HS256 with jobchat's shared secret (those `jobchat token` mints),
// and RS256 or ES256 from the marketplace's identity provider, verified
// against its JWKS (verify.go, jwks.go).
//
// It may import the JWT library, the JWKS client (MicahParks/jwkset),
// golang.org/x/time/rate and the standard library.
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
	"time"
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
		c, ok, err := v.VerifyHeader(r.Context(), r.Header.Get("Authorization"))
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
// request's header. Bad credentials refuse the connection, and so do
// credentials in a shape nobody reads (see initAuthorization); none at all
// let it open, and operations that need a caller fail one by one. expires
// is the token's expiry: the transport closes the socket then, so that a
// client reconnects with a fresh token instead of living on a stale one.
func (v *Verifier) WebsocketInit(ctx context.Context, payload map[string]any) (next context.Context, expires time.Time, err error) {
	header, err := initAuthorization(payload)
	if err != nil {
		return ctx, time.Time{}, err
	}
	if header != "" {
		c, _, err := v.VerifyHeader(ctx, header)
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

// initKeys are where clients put the token in a connection_init payload:
// they disagree on the case, and some nest it under "headers".
var initKeys = [...]string{"authorization", "Authorization"}

// initAuthorization finds the credentials in a connection_init payload. A
// credential that is present but not a string (a number, an object), a
// "headers" that is not an object, or two places that disagree refuse the
// connection: a client that sent them meant to authenticate, and opening
// its socket anonymously would hide its mistake (or let a proxy's
// rewriting decide who it is). A null or blank value counts as absent, as
// a blank Authorization header does.
func initAuthorization(payload map[string]any) (string, error) {
	places := []map[string]any{payload}
	switch h := payload["headers"].(type) {
	case nil:
	case map[string]any:
		places = append(places, h)
	default:
		return "", fmt.Errorf("%w: connection_init payload.headers must be an object", ErrUnauthenticated)
	}
	var found string
	for _, m := range places {
		for _, k := range initKeys {
			v, present := m[k]
			if !present || v == nil {
				continue
			}
			s, ok := v.(string)
			if !ok {
				return "", fmt.Errorf("%w: connection_init payload.%s must be a string", ErrUnauthenticated, k)
			}
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			if found != "" && s != found {
				return "", fmt.Errorf("%w: connection_init payload carries two different credentials", ErrUnauthenticated)
			}
			found = s
		}
	}
	return found, nil
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
