package files

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// PathPrefix is where Handler is mounted and where signed URLs point.
const PathPrefix = "/files/"

// Errors of Signer.Verify, wrapped.
var (
	ErrBadSignature = errors.New("files: bad signature")
	ErrExpired      = errors.New("files: URL expired")
)

// Signer makes and checks expiring HMAC-SHA256-signed URLs for
// /files/{key}. Its key is its own, never the JWT secret: a leaked URL key
// must not mint tokens. Every instance behind one domain needs the same
// key, or a URL made by one is refused by another.
type Signer struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// NewSigner returns a Signer whose URLs are valid for ttl after they are
// made.
func NewSigner(key []byte, ttl time.Duration) *Signer {
	return &Signer{key: append([]byte(nil), key...), ttl: ttl, now: time.Now}
}

// WithClock returns a copy of s that reads the time from now, so that
// tests can move past expiry without sleeping.
func (s *Signer) WithClock(now func() time.Time) *Signer {
	c := *s
	c.now = now
	return &c
}

// URL returns "/files/<key>?exp=...&sig=...", relative to the server's
// origin, valid for the signer's TTL from now. It signs afresh on each
// call, so store keys, never URLs.
func (s *Signer) URL(key string) string {
	exp := strconv.FormatInt(s.now().Add(s.ttl).Unix(), 10)
	q := url.Values{"exp": {exp}, "sig": {s.sign(key, exp)}}
	return PathPrefix + escapeKey(key) + "?" + q.Encode()
}

// Verify checks the exp and sig parameters of a URL made by URL for key:
// a signature that does not match key and exp (forged or tampered) is
// ErrBadSignature, a matching one past exp is ErrExpired.
func (s *Signer) Verify(key string, q url.Values) error {
	exp, sig := q.Get("exp"), q.Get("sig")
	if len(q["exp"]) != 1 || len(q["sig"]) != 1 || exp == "" || sig == "" {
		return fmt.Errorf("%w: exp and sig must each be given once", ErrBadSignature)
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || strconv.FormatInt(e, 10) != exp {
		return fmt.Errorf("%w: exp is not a number", ErrBadSignature)
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: sig is not base64url", ErrBadSignature)
	}
	want, _ := base64.RawURLEncoding.DecodeString(s.sign(key, exp))
	if !hmac.Equal(got, want) {
		return ErrBadSignature
	}
	if !s.now().Before(time.Unix(e, 0)) {
		return fmt.Errorf("%w at %s", ErrExpired, time.Unix(e, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// expiry returns the exp of a verified URL's query.
func expiry(q url.Values) time.Time {
	e, _ := strconv.ParseInt(q.Get("exp"), 10, 64)
	return time.Unix(e, 0)
}

// sign MACs the expiry and the key; exp is plain digits (Verify checks
// that first), so the NUL after it fixes where the key starts and no two
// pairs share a message.
func (s *Signer) sign(key, exp string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("jobchat-file-v1\x00"))
	m.Write([]byte(exp))
	m.Write([]byte{0})
	m.Write([]byte(key))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
