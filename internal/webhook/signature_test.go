package webhook

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The Standard Webhooks specification's published test vector, which its
// reference libraries (and Svix's) test against: reproducing it is what
// says a receiver's off-the-shelf library accepts what jobchat signs.
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func mustSecret(tb testing.TB, s string) Secret {
	tb.Helper()
	sec, err := ParseSecret(s)
	if err != nil {
		tb.Fatal(err)
	}
	return sec
}

func TestSignVector(t *testing.T) {
	s := mustSecret(t, vectorSecret)
	if got := s.Sign(vectorID, time.Unix(vectorTimestamp, 0), []byte(vectorBody)); got != vectorSignature {
		t.Fatalf("Sign = %s, want %s", got, vectorSignature)
	}
}

func vectorHeader(id, ts, sig string) http.Header {
	h := http.Header{}
	for k, v := range map[string]string{HeaderID: id, HeaderTimestamp: ts, HeaderSignature: sig} {
		if v != "" {
			h.Set(k, v)
		}
	}
	return h
}

func TestVerify(t *testing.T) {
	s := mustSecret(t, vectorSecret)
	other := mustSecret(t, "whsec_"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	at := time.Unix(vectorTimestamp, 0)
	ts := strconv.Itoa(vectorTimestamp)
	body := []byte(vectorBody)
	otherSig := other.Sign(vectorID, at, body)
	tests := []struct {
		name   string
		secret Secret
		header http.Header
		body   string
		now    time.Time
		want   error
	}{
		{"the vector", s, vectorHeader(vectorID, ts, vectorSignature), vectorBody, at, nil},
		{"four minutes later", s, vectorHeader(vectorID, ts, vectorSignature), vectorBody, at.Add(4 * time.Minute), nil},
		{"four minutes early", s, vectorHeader(vectorID, ts, vectorSignature), vectorBody, at.Add(-4 * time.Minute), nil},
		{"one of several", s, vectorHeader(vectorID, ts, "v1a,c2lnbmF0dXJl "+otherSig+" "+vectorSignature), vectorBody, at, nil},
		{"rotated secret", other, vectorHeader(vectorID, ts, vectorSignature+" "+otherSig), vectorBody, at, nil},
		{"tampered body", s, vectorHeader(vectorID, ts, vectorSignature), `{"test": 2432232315}`, at, ErrSignature},
		{"tampered id", s, vectorHeader("msg_other", ts, vectorSignature), vectorBody, at, ErrSignature},
		{"tampered timestamp", s, vectorHeader(vectorID, strconv.Itoa(vectorTimestamp+1), vectorSignature), vectorBody, at, ErrSignature},
		{"wrong secret", other, vectorHeader(vectorID, ts, vectorSignature), vectorBody, at, ErrSignature},
		{"only another version", s, vectorHeader(vectorID, ts, "v2,"+strings.TrimPrefix(vectorSignature, "v1,")), vectorBody, at, ErrSignature},
		{"expired", s, vectorHeader(vectorID, ts, vectorSignature), vectorBody, at.Add(6 * time.Minute), ErrTimestamp},
		{"from the future", s, vectorHeader(vectorID, ts, vectorSignature), vectorBody, at.Add(-6 * time.Minute), ErrTimestamp},
		{"timestamp not a number", s, vectorHeader(vectorID, "2021-02-25T15:02:10Z", vectorSignature), vectorBody, at, ErrTimestamp},
		{"no id", s, vectorHeader("", ts, vectorSignature), vectorBody, at, ErrMissingHeader},
		{"no timestamp", s, vectorHeader(vectorID, "", vectorSignature), vectorBody, at, ErrMissingHeader},
		{"no signature", s, vectorHeader(vectorID, ts, ""), vectorBody, at, ErrMissingHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.secret.Verify(tt.header, []byte(tt.body), tt.now, 0)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestHeadersRoundTrip: what Headers sets, Verify accepts, with the
// timestamp of the attempt.
func TestHeadersRoundTrip(t *testing.T) {
	s := mustSecret(t, vectorSecret)
	h := http.Header{}
	now := time.Now()
	body := []byte(`{"type":"message.undelivered"}`)
	s.Headers(h, "n-1", now, body)
	if h.Get(HeaderID) != "n-1" || h.Get(HeaderTimestamp) != strconv.FormatInt(now.Unix(), 10) {
		t.Fatalf("headers %v", h)
	}
	if err := s.Verify(h, body, now, 0); err != nil {
		t.Fatal(err)
	}
}

func TestSignatures(t *testing.T) {
	sig := strings.TrimPrefix(vectorSignature, "v1,")
	tests := []struct {
		header string
		want   int
	}{
		{"", 0},
		{"   ", 0},
		{vectorSignature, 1},
		{"  " + vectorSignature + "  ", 1},
		{vectorSignature + " " + vectorSignature, 2},
		{"v1a,c2lnbmF0dXJl " + vectorSignature, 1},
		{"v2," + sig, 0},
		{"V1," + sig, 0},
		{"v1" + sig, 0},             // no comma
		{"v1," + sig[:20], 0},       // too short for HMAC-SHA256
		{"v1,not*base64*at*all", 0}, // not base64
		{"v1," + sig + ",extra", 0}, // the comma belongs to the base64 part
		{"v1, " + sig, 0},           // a space splits the entry
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.header), func(t *testing.T) {
			got := Signatures(tt.header)
			if len(got) != tt.want {
				t.Fatalf("%d signatures, want %d", len(got), tt.want)
			}
			for _, b := range got {
				if base64.StdEncoding.EncodeToString(b) != sig {
					t.Fatalf("decoded %x", b)
				}
			}
		})
	}
}

func TestParseSecret(t *testing.T) {
	key32 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	tests := []struct {
		in      string
		wantErr string
	}{
		{vectorSecret, ""},
		{"whsec_" + key32, ""},
		{"whsec_" + strings.TrimRight(key32, "="), ""},
		{key32, `start with "whsec_"`},
		{"", `start with "whsec_"`},
		{"whsec_", "at least 24"},
		{"whsec_c2hvcnQ=", "at least 24"},
		{"whsec_***", "base64"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := ParseSecret(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(fmt.Sprintf("%v %+v %#v %s", s, s, s, s), strings.TrimPrefix(tt.in, "whsec_")) {
					t.Fatal("the secret prints its key")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
			if len(tt.in) > 10 && strings.Contains(err.Error(), tt.in[6:]) {
				t.Fatalf("error %q shows the key", err)
			}
		})
	}
}
