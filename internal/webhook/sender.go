package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ErrGone is what Send's error matches (errors.Is) when the receiver
// answered 410 Gone: by the specification, it wants no more messages.
var ErrGone = errors.New("webhook: receiver answered 410 Gone")

// StatusError is a response other than 2xx.
type StatusError struct {
	StatusCode int
	// RetryAfter is the response's Retry-After in seconds, or zero.
	RetryAfter time.Duration
	// Body is the start of the response body, for the log.
	Body string
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("webhook: receiver answered %d", e.StatusCode)
	}
	return fmt.Sprintf("webhook: receiver answered %d: %q", e.StatusCode, e.Body)
}

// Is makes a 410 match ErrGone.
func (e *StatusError) Is(target error) bool {
	return target == ErrGone && e.StatusCode == http.StatusGone
}

// Config says where and how a Sender sends. Its zero values mean the
// defaults.
type Config struct {
	// URL is the receiver's http or https URL. Required.
	URL string
	// Secret signs every message. Required.
	Secret Secret
	// Timeout bounds one attempt, from dialling to the end of the
	// response. Zero: 10s.
	Timeout time.Duration
	// MaxResponseBytes is how much of a response body is read (and
	// discarded, so that the connection can be reused). Zero: 64 KiB.
	MaxResponseBytes int64
}

// Sender POSTs signed messages to one receiver. It is safe for concurrent
// use.
type Sender struct {
	url      string
	endpoint string
	secret   Secret
	client   *http.Client
	maxBody  int64
}

// maxRedirects bounds the redirects a Sender follows, all to its
// receiver's own origin.
const maxRedirects = 3

// errorBodyBytes is how much of an error response StatusError keeps.
const errorBodyBytes = 512

// NewSender checks cfg and returns a Sender.
func NewSender(cfg Config) (*Sender, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook URL must be an absolute http:// or https:// URL, not %q", Redact(cfg.URL))
	}
	if len(cfg.Secret.key) == 0 {
		return nil, errors.New("webhook: no secret")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = 64 << 10
	}
	origin := u.Scheme + "://" + u.Host
	client := &http.Client{
		Timeout: cfg.Timeout,
		// A redirect keeps the message on the receiver's own origin, and
		// only one that keeps the method and body (307, 308): a 301 or
		// 302 would turn the POST into a GET without the body. Any other
		// redirect is answered as it came, a failed attempt.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects || req.URL.Scheme+"://"+req.URL.Host != origin {
				return http.ErrUseLastResponse
			}
			if code := req.Response.StatusCode; code != http.StatusTemporaryRedirect && code != http.StatusPermanentRedirect {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	return &Sender{url: cfg.URL, endpoint: Redact(cfg.URL), secret: cfg.Secret, client: client, maxBody: cfg.MaxResponseBytes}, nil
}

// Endpoint is the receiver's URL without credentials, query or fragment:
// what may be logged.
func (s *Sender) Endpoint() string { return s.endpoint }

// URL is the receiver's URL as configured.
func (s *Sender) URL() string { return s.url }

// Send POSTs body as the message id, signed now, and returns nil when the
// receiver answered 2xx. Anything else is an error: a *StatusError for
// another status (matching ErrGone for 410), or the transport's error
// (including the timeout). Every attempt of one message must carry the
// same id; each is signed afresh, with its own timestamp.
func (s *Sender) Send(ctx context.Context, id string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "jobchat-webhook/1")
	s.secret.Headers(req.Header, id, time.Now(), body)
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: POST %s: %w", s.endpoint, redactErr(err))
	}
	defer resp.Body.Close()
	limited := io.LimitReader(resp.Body, s.maxBody)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, limited)
		return nil
	}
	head, _ := io.ReadAll(io.LimitReader(limited, errorBodyBytes))
	_, _ = io.Copy(io.Discard, limited)
	return &StatusError{StatusCode: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After")), Body: string(head)}
}

// retryAfter reads a Retry-After of whole seconds; a date, or nothing, is
// zero.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// Redact returns raw without credentials, query or fragment, which may
// hold secrets: what may be logged or stored of a receiver's URL.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(not a URL)"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

// redactErr keeps the URL in a *url.Error, which the client reports the
// full URL with, to its redacted form.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
