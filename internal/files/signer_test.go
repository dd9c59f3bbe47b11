package files

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clock is a settable time for signers under test.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func parseSigned(tb testing.TB, raw string) (string, url.Values) {
	tb.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		tb.Fatal(err)
	}
	key, ok := strings.CutPrefix(u.Path, PathPrefix)
	if !ok {
		tb.Fatalf("signed URL %q is not under %s", raw, PathPrefix)
	}
	return key, u.Query()
}

func TestSignerURLExpires(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	s := NewSigner([]byte("k-0123456789abcdef0123456789abcdef"), time.Hour).WithClock(c.now)
	key, q := parseSigned(t, s.URL("conv/file"))
	if key != "conv/file" {
		t.Fatalf("key %q", key)
	}
	for _, c2 := range []struct {
		at   time.Duration
		want error
	}{
		{0, nil},
		{59*time.Minute + 59*time.Second, nil},
		{time.Hour, ErrExpired},
		{25 * time.Hour, ErrExpired},
	} {
		at := c.t
		c.t = at.Add(c2.at)
		err := s.Verify(key, q)
		c.t = at
		if !errors.Is(err, c2.want) || (c2.want == nil && err != nil) {
			t.Errorf("verify %v after signing: %v; want %v", c2.at, err, c2.want)
		}
	}
}

// TestSignerURLIsFresh: each call signs anew, so a URL read later lasts
// longer.
func TestSignerURLIsFresh(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	s := NewSigner([]byte("k-0123456789abcdef0123456789abcdef"), time.Hour).WithClock(c.now)
	_, q1 := parseSigned(t, s.URL("a/b"))
	c.t = c.t.Add(30 * time.Minute)
	_, q2 := parseSigned(t, s.URL("a/b"))
	if q1.Get("exp") == q2.Get("exp") || q1.Get("sig") == q2.Get("sig") {
		t.Errorf("two URLs half an hour apart are the same: %v %v", q1, q2)
	}
	c.t = c.t.Add(45 * time.Minute) // past the first, within the second
	if err := s.Verify("a/b", q1); !errors.Is(err, ErrExpired) {
		t.Errorf("first URL: %v; want expired", err)
	}
	if err := s.Verify("a/b", q2); err != nil {
		t.Errorf("second URL: %v", err)
	}
}

func TestSignerRefusesTampering(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	s := NewSigner([]byte("k-0123456789abcdef0123456789abcdef"), time.Hour).WithClock(c.now)
	key, q := parseSigned(t, s.URL("conv/file"))
	exp, sig := q.Get("exp"), q.Get("sig")
	later := strconv.FormatInt(c.t.Add(100*time.Hour).Unix(), 10)
	flip := func(s string) string {
		b := []byte(s)
		if b[3] == 'A' {
			b[3] = 'B'
		} else {
			b[3] = 'A'
		}
		return string(b)
	}
	other := NewSigner([]byte("another-key-0123456789abcdef0123456"), time.Hour).WithClock(c.now)
	_, otherQ := parseSigned(t, other.URL("conv/file"))
	for _, tc := range []struct {
		name string
		key  string
		q    url.Values
	}{
		{"other key", "conv/other", q},
		{"key prefix", "conv", q},
		{"exp moved later", key, url.Values{"exp": {later}, "sig": {sig}}},
		{"exp with a plus", key, url.Values{"exp": {"+" + exp}, "sig": {sig}}},
		{"exp with a leading zero", key, url.Values{"exp": {"0" + exp}, "sig": {sig}}},
		{"sig changed", key, url.Values{"exp": {exp}, "sig": {flip(sig)}}},
		{"sig truncated", key, url.Values{"exp": {exp}, "sig": {sig[:20]}}},
		{"sig not base64", key, url.Values{"exp": {exp}, "sig": {"!!!"}}},
		{"no sig", key, url.Values{"exp": {exp}}},
		{"no exp", key, url.Values{"sig": {sig}}},
		{"sig twice", key, url.Values{"exp": {exp}, "sig": {sig, sig}}},
		{"signed with another key", key, otherQ},
		{"forged", key, url.Values{"exp": {later}, "sig": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}},
	} {
		if err := s.Verify(tc.key, tc.q); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v; want ErrBadSignature", tc.name, err)
		}
	}
	if err := s.Verify(key, q); err != nil {
		t.Errorf("the untouched URL: %v", err)
	}
}

// TestSignerEscapesKeys: a key with characters that mean something in a
// URL comes back intact from the URL's path.
func TestSignerEscapesKeys(t *testing.T) {
	s := NewSigner([]byte("k-0123456789abcdef0123456789abcdef"), time.Hour)
	for _, key := range []string{"c/plain", "c 1/a+b", "c/q?x=1#f", "c/%2F", "c/ümlaut.thumb.jpg"} {
		got, q := parseSigned(t, s.URL(key))
		if got != key {
			t.Errorf("key %q came back as %q", key, got)
		}
		if err := s.Verify(got, q); err != nil {
			t.Errorf("key %q: %v", key, err)
		}
	}
}

func TestLoadOrCreateURLKey(t *testing.T) {
	dir := t.TempDir()
	k1, created, err := LoadOrCreateURLKey(dir)
	if err != nil || !created || len(k1) < 32 {
		t.Fatalf("first: %d bytes, created %v, %v", len(k1), created, err)
	}
	k2, created, err := LoadOrCreateURLKey(dir)
	if err != nil || created || string(k2) != string(k1) {
		t.Fatalf("second: created %v, same %v, %v", created, string(k2) == string(k1), err)
	}
}
