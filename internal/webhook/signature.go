// Package webhook signs, sends and verifies webhooks as the Standard
// Webhooks specification (https://www.standardwebhooks.com) says:
//
//   - three headers: webhook-id (the same on every retry of one message),
//     webhook-timestamp (Unix seconds of this attempt) and
//     webhook-signature ("v1,<base64 signature>", several separated by
//     spaces);
//   - the signature is HMAC-SHA256 over "<id>.<timestamp>.<body>", keyed
//     with the base64-decoded part of a "whsec_..." secret;
//   - a receiver refuses a timestamp more than five minutes from its clock,
//     so that a captured request cannot be replayed later.
//
// Secret signs and verifies; Sender POSTs one message to one endpoint with
// a bounded client. What a message says, when to send it and how often to
// retry are the caller's (package notify). It imports the standard library
// only.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers of a signed message.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every secret in its text form.
const SecretPrefix = "whsec_"

// minKeyBytes is the shortest key ParseSecret accepts: the specification
// asks for 24 to 64 random bytes.
const minKeyBytes = 24

// DefaultTolerance is how far a message's timestamp may be from the
// receiver's clock, either way: the specification's five minutes.
const DefaultTolerance = 5 * time.Minute

// Verification errors; Verify wraps one of them.
var (
	// ErrMissingHeader: one of the three headers is absent or empty.
	ErrMissingHeader = errors.New("webhook: missing header")
	// ErrTimestamp: webhook-timestamp is not a number of seconds, or is
	// too far from the receiver's clock.
	ErrTimestamp = errors.New("webhook: bad timestamp")
	// ErrSignature: no v1 signature in webhook-signature matches.
	ErrSignature = errors.New("webhook: no matching signature")
)

// Secret is a signing key. Its zero value is no key: Sign and Verify
// refuse it. It never prints its key.
type Secret struct {
	key []byte
}

// ParseSecret reads a secret in its text form: "whsec_" followed by the
// key in standard base64 (24 to 64 random bytes, as the specification
// asks). One can be made with
//
//	echo "whsec_$(openssl rand -base64 32)"
func ParseSecret(s string) (Secret, error) {
	rest, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return Secret{}, fmt.Errorf("webhook secret must start with %q", SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		// Some tools drop the padding.
		if key, err = base64.RawStdEncoding.DecodeString(rest); err != nil {
			return Secret{}, fmt.Errorf("webhook secret: what follows %q must be base64", SecretPrefix)
		}
	}
	if len(key) < minKeyBytes {
		return Secret{}, fmt.Errorf("webhook secret: the key is %d bytes, want at least %d (echo \"whsec_$(openssl rand -base64 32)\" makes one)", len(key), minKeyBytes)
	}
	return Secret{key: key}, nil
}

// String hides the key, so that a secret logged by mistake says nothing.
func (s Secret) String() string {
	if len(s.key) == 0 {
		return "(no secret)"
	}
	return SecretPrefix + "…"
}

// GoString hides the key from %#v as String does from %v.
func (s Secret) GoString() string { return s.String() }

// Sign returns the webhook-signature value of one attempt: "v1," and the
// base64 HMAC-SHA256 of "<id>.<timestamp>.<body>".
func (s Secret) Sign(id string, timestamp time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(s.mac(id, strconv.FormatInt(timestamp.Unix(), 10), body))
}

func (s Secret) mac(id, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, s.key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Headers sets the three headers of a message signed at timestamp on h.
func (s Secret) Headers(h http.Header, id string, timestamp time.Time, body []byte) {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(timestamp.Unix(), 10))
	h.Set(HeaderSignature, s.Sign(id, timestamp, body))
}

// Verify checks a received message: its headers are present, its
// timestamp is within tolerance of now (zero tolerance: DefaultTolerance),
// and one of its v1 signatures is body's under s. It compares in constant
// time. body must be the raw bytes received, not a re-encoding.
func (s Secret) Verify(h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if len(s.key) == 0 {
		return errors.New("webhook: verify without a secret")
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	id, ts, sig := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	for _, hv := range [...]struct{ name, value string }{{HeaderID, id}, {HeaderTimestamp, ts}, {HeaderSignature, sig}} {
		if hv.value == "" {
			return fmt.Errorf("%w: %s", ErrMissingHeader, hv.name)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q is not Unix seconds", ErrTimestamp, ts)
	}
	at := time.Unix(sec, 0)
	if d := now.Sub(at); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %s is %s from now, more than %s", ErrTimestamp, ts, d.Round(time.Second), tolerance)
	}
	want := s.mac(id, ts, body)
	for _, got := range Signatures(sig) {
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrSignature
}

// Signatures returns the v1 signatures of a webhook-signature value,
// decoded. Entries are "version,base64" separated by spaces; entries of
// other versions (such as v1a, asymmetric signatures) and malformed ones
// are skipped, as the specification asks of receivers.
func Signatures(header string) [][]byte {
	var out [][]byte
	for _, entry := range strings.Fields(header) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(sig)
		if err != nil || len(b) != sha256.Size {
			continue
		}
		out = append(out, b)
	}
	return out
}
