package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/rs/zerolog"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// This file implements the "distinct connections mode" of the GraphQL over
// Server-Sent Events protocol
// (https://github.com/enisdenjo/graphql-sse/blob/master/PROTOCOL.md): a GET
// or POST to /query that asks for text/event-stream runs one operation and
// streams its results as "next" events, then a "complete" event.
//
// gqlgen's transport.SSE is not used because it falls short of what a
// long-lived, authenticated stream needs here: it takes POST only, keeps no
// count of open streams, cannot end a stream when its token expires, lets
// the server's ReadTimeout and WriteTimeout cut every stream after 30s, has no
// write deadline for stalled clients, logs whole request bodies through the
// standard logger, and its keep-alive goroutine can write to the response
// after the handler has returned.

// SSEConfig configures subscriptions over Server-Sent Events. Its zero value
// gives the defaults documented on each field.
type SSEConfig struct {
	// KeepAlive is how long a stream may stay silent before the server
	// sends a comment line, so that proxies do not cut idle streams. Zero
	// means 15s.
	KeepAlive time.Duration
	// MaxPerCaller caps the streams one caller may hold open at once; more
	// are refused with 429. Zero means 16.
	MaxPerCaller int
	// MaxStreams caps the open streams of the whole process; more are
	// refused with 429. Zero means 10000.
	MaxStreams int
	// Caller identifies the caller of a request for MaxPerCaller and says
	// when its credentials expire; a stream ends then. It sees the context
	// Config.Authenticate made. May be nil: every request counts as one
	// anonymous caller whose credentials never expire.
	Caller func(ctx context.Context) (id string, expiresAt time.Time)
	// Expired is the error, passed through the error presenter, of the last
	// event of a stream whose caller's credentials expired. Nil means a
	// plain "credentials expired".
	Expired error
}

const (
	defaultSSEKeepAlive    = 15 * time.Second
	defaultSSEMaxPerCaller = 16
	defaultSSEMaxStreams   = 10000
)

func (c SSEConfig) withDefaults() SSEConfig {
	if c.KeepAlive == 0 {
		c.KeepAlive = defaultSSEKeepAlive
	}
	if c.MaxPerCaller == 0 {
		c.MaxPerCaller = defaultSSEMaxPerCaller
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = defaultSSEMaxStreams
	}
	if c.Caller == nil {
		c.Caller = func(context.Context) (string, time.Time) { return "", time.Time{} }
	}
	if c.Expired == nil {
		c.Expired = errors.New("credentials expired")
	}
	return c
}

// errStreamExpired is the cause of a stream context that ended because the
// caller's credentials expired, as opposed to a client that went away or a
// server that shuts down.
var errStreamExpired = errors.New("credentials expired")

// sseTransport serves GraphQL over SSE in distinct connections mode.
type sseTransport struct {
	cfg          SSEConfig
	writeTimeout time.Duration
	limiter      *streamLimiter
}

var _ graphql.Transport = (*sseTransport)(nil)

// newSSETransport returns the transport; writeTimeout bounds each event's
// write, so that a client that stops reading is cut off.
func newSSETransport(cfg SSEConfig, writeTimeout time.Duration) *sseTransport {
	cfg = cfg.withDefaults()
	return &sseTransport{
		cfg:          cfg,
		writeTimeout: writeTimeout,
		limiter:      &streamLimiter{perCaller: map[string]int{}, maxPerCaller: cfg.MaxPerCaller, maxTotal: cfg.MaxStreams},
	}
}

// Supports takes GETs and POSTs whose client prefers an event stream; it is
// added before httpTransport, which takes the rest.
func (t *sseTransport) Supports(r *http.Request) bool {
	return noUpgrade(r) && (r.Method == http.MethodGet || r.Method == http.MethodPost) &&
		negotiate(r.Header.Get("Accept")) == mediaEventStream
}

func (t *sseTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	// A request that is not a GraphQL request at all is refused with a
	// status, as GraphQL over HTTP says; the protocol asks for an event
	// stream only for what GraphQL validation finds.
	params, herr := readParams(r)
	if herr != nil {
		writeHTTPError(w, mediaJSON, herr)
		return
	}

	callerID, expiresAt := t.cfg.Caller(ctx)
	release, herr := t.limiter.acquire(callerID)
	if herr != nil {
		writeHTTPError(w, mediaJSON, herr)
		return
	}
	defer release()

	opCtx, errs := exec.CreateOperationContext(ctx, params)
	if len(errs) == 0 && r.Method == http.MethodGet && opCtx.Operation.Operation == ast.Mutation {
		writeHTTPError(w, mediaJSON, &httpError{status: http.StatusMethodNotAllowed, msg: "mutations need POST", allow: http.MethodPost})
		return
	}

	s := newEventWriter(w, t.writeTimeout)
	if err := s.open(); err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("event stream not opened")
		return
	}
	if len(errs) > 0 {
		// The protocol wants validation errors in an accepted stream:
		// EventSource drops the body of a non-200 answer.
		resp := exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), errs)
		if s.next(errorsOnly{Errors: resp.Errors, Extensions: resp.Extensions}) == nil {
			_ = s.complete()
		}
		return
	}

	streamCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if !expiresAt.IsZero() {
		// Authentication happened once, at the start; a stream must not
		// outlive the token that opened it, as a websocket does not.
		var stop context.CancelFunc
		streamCtx, stop = context.WithDeadlineCause(streamCtx, expiresAt, errStreamExpired)
		defer stop()
	}

	events, done := t.run(streamCtx, exec, opCtx)
	// Waiting here means the resolver's goroutine has stopped, and released
	// its subscription, by the time Do returns.
	defer func() {
		cancel(context.Canceled)
		<-done
	}()

	if err := t.pump(streamCtx, s, events); err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("event stream cut off")
		return
	}
	switch {
	case errors.Is(context.Cause(streamCtx), errStreamExpired):
		// Tell the client why, and complete: retrying with the same token
		// would fail; it needs a fresh one.
		resp := exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), gqlerror.List{{
			Message: t.cfg.Expired.Error(),
			Err:     t.cfg.Expired,
		}})
		if s.next(errorsOnly{Errors: resp.Errors, Extensions: resp.Extensions}) == nil {
			_ = s.complete()
		}
	case streamCtx.Err() != nil:
		// The client went away, or the server is shutting down (its base
		// context is cancelled). No "complete": a client still listening
		// must reconnect, to this server or another, and resume with
		// afterSeq.
	default:
		_ = s.complete()
	}
}

// run reads the operation's results on a goroutine of its own, so that the
// handler's goroutine, the only one that writes to the response, can send
// keep-alives while a subscription waits. events is closed when the
// operation has no more results or ctx ends; done when the goroutine exits.
func (t *sseTransport) run(ctx context.Context, exec graphql.GraphExecutor, opCtx *graphql.OperationContext) (events <-chan *graphql.Response, done <-chan struct{}) {
	ch := make(chan *graphql.Response)
	fin := make(chan struct{})
	responses, ctx := exec.DispatchOperation(ctx, opCtx)
	go func() {
		defer close(fin)
		defer close(ch)
		for {
			resp := responses(ctx)
			if resp == nil {
				return
			}
			// The generated code reuses its buffer for the next result,
			// which this goroutine asks for while the handler writes this
			// one.
			resp.Data = bytes.Clone(resp.Data)
			select {
			case ch <- resp:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, fin
}

// pump writes events as they come and a keep-alive comment whenever the
// stream has been silent for KeepAlive, until the operation ends or ctx
// does. It returns an error only when writing fails.
func (t *sseTransport) pump(ctx context.Context, s *eventWriter, events <-chan *graphql.Response) error {
	idle := time.NewTimer(t.cfg.KeepAlive)
	defer idle.Stop()
	for {
		select {
		case resp, ok := <-events:
			if !ok {
				return nil
			}
			if err := s.next(resp); err != nil {
				return err
			}
		case <-idle.C:
			if err := s.comment(); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
		idle.Reset(t.cfg.KeepAlive)
	}
}

// eventWriter writes the event stream of one response. Only the handler's
// goroutine uses it.
type eventWriter struct {
	w            http.ResponseWriter
	rc           *http.ResponseController
	writeTimeout time.Duration
}

func newEventWriter(w http.ResponseWriter, writeTimeout time.Duration) *eventWriter {
	return &eventWriter{w: w, rc: http.NewResponseController(w), writeTimeout: writeTimeout}
}

// open sends the headers at once, so the client knows the stream is
// accepted before the first event.
func (s *eventWriter) open() error {
	// The server's ReadTimeout and WriteTimeout bound a whole request and
	// would cut every stream after 30s; each write gets its own deadline
	// instead (write). HTTP/1 drops the read deadline by itself once the
	// body is read; HTTP/2 keeps a timer per stream, cleared here. Writers
	// that cannot have deadlines need none.
	if err := s.rc.SetReadDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("clear read deadline: %w", err)
	}
	h := s.w.Header()
	h.Set("Content-Type", mediaEventStream+"; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// nginx buffers responses unless told not to, which would hold events
	// back until its buffer fills.
	h.Set("X-Accel-Buffering", "no")
	s.w.WriteHeader(http.StatusOK)
	return s.flush()
}

// next writes a "next" event. JSON from encoding/json has no raw newlines,
// so the result fits on one data line.
func (s *eventWriter) next(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	buf := make([]byte, 0, len(b)+24)
	buf = append(buf, "event: next\ndata: "...)
	buf = append(buf, b...)
	buf = append(buf, "\n\n"...)
	return s.write(buf)
}

// complete writes the "complete" event. The empty data line is there
// because EventSource does not dispatch events without data.
func (s *eventWriter) complete() error {
	return s.write([]byte("event: complete\ndata:\n\n"))
}

// comment writes a line that event-stream parsers ignore: traffic for
// proxies and load balancers that cut connections idle for too long.
func (s *eventWriter) comment() error {
	return s.write([]byte(":\n\n"))
}

func (s *eventWriter) write(b []byte) error {
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.writeTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("write event: %w", err)
	}
	return s.flush()
}

func (s *eventWriter) flush() error {
	if err := s.rc.Flush(); err != nil {
		return fmt.Errorf("flush event: %w", err)
	}
	return nil
}

// streamLimiter counts the open streams of each caller and of the process.
type streamLimiter struct {
	mu           sync.Mutex
	perCaller    map[string]int
	total        int
	maxPerCaller int
	maxTotal     int
}

// acquire takes a slot for a stream of caller id, or says why there is
// none. release gives it back; call it once.
func (l *streamLimiter) acquire(id string) (release func(), err *httpError) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.maxTotal {
		return nil, &httpError{status: http.StatusTooManyRequests, msg: "too many open event streams on this server; retry later"}
	}
	if l.perCaller[id] >= l.maxPerCaller {
		return nil, &httpError{status: http.StatusTooManyRequests, msg: fmt.Sprintf("too many open event streams: at most %d per caller", l.maxPerCaller)}
	}
	l.total++
	l.perCaller[id]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.total--
			if l.perCaller[id]--; l.perCaller[id] == 0 {
				// Callers come and go; the map must not keep them all.
				delete(l.perCaller, id)
			}
		})
	}, nil
}
