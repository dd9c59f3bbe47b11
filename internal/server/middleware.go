package server

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

const requestIDHeader = "X-Request-Id"

const maxRequestIDLen = 64

// withRequestID gives every request an id and a logger carrying it, so that
// anything below, resolvers included, logs through zerolog.Ctx(ctx) with the
// same req_id the client sees in the response header.
func withRequestID(root zerolog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(requestIDHeader)
		if !saneRequestID(id) {
			id = uuid.NewString()
		}
		w.Header().Set(requestIDHeader, id)
		log := root.Hook(requestIDHook(id))
		next.ServeHTTP(w, r.WithContext(log.WithContext(r.Context())))
	})
}

// requestIDHook adds req_id to every line. A hook, not zerolog's With: With
// allocates a 500-byte buffer per logger, which a websocket keeps for as
// long as it is open.
type requestIDHook string

func (h requestIDHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str("req_id", string(h))
}

// saneRequestID accepts ids from a proxy or client only if they cannot break
// log lines or headers, and are short enough not to bloat every log line.
func saneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// withAccessLog writes one line per request when it completes. A websocket
// request completes only when the connection ends, so it gets an "opened" line
// at the upgrade and a "closed" line with the connection's lifetime instead.
// sockets counts each hijacked connection until its closed line is written.
func withAccessLog(sockets *socketSet, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		log := zerolog.Ctx(r.Context())
		path := r.URL.Path
		rec := &responseRecorder{
			ResponseWriter: w,
			sockets:        sockets,
			onHijack: func() {
				log.Info().Str("method", r.Method).Str("path", path).Msg("websocket opened")
			},
			// Captures neither r nor w: a detached socket outlives both.
			onClose: func() {
				log.Info().Str("path", path).Float64("duration_ms", millis(time.Since(start))).Msg("websocket closed")
			},
		}

		next.ServeHTTP(rec, r)

		if rec.hijacked {
			if !rec.detached {
				rec.closer()()
			}
			return
		}
		level := zerolog.InfoLevel
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			// Probes arrive every few seconds and would drown the log.
			level = zerolog.DebugLevel
		}
		log.WithLevel(level).
			Str("method", r.Method).
			Str("path", r.URL.Path).
			Int("status", rec.statusCode()).
			Int64("bytes", rec.bytes).
			Float64("duration_ms", millis(time.Since(start))).
			Msg("request")
	})
}

func millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// responseRecorder notes status and size for the access log. It must keep
// http.Hijacker working: gorilla asserts it directly on the writer it is given.
type responseRecorder struct {
	http.ResponseWriter
	code     int
	bytes    int64
	hijacked bool
	detached bool
	onHijack func()
	onClose  func()
	// sockets counts the connection from its hijack to its close line;
	// socket is its entry there.
	sockets *socketSet
	socket  *socket
}

var (
	_ http.Hijacker = (*responseRecorder)(nil)
	_ http.Flusher  = (*responseRecorder)(nil)
)

func (r *responseRecorder) WriteHeader(code int) {
	// 1xx responses are interim; the status worth logging comes after.
	if r.code == 0 && code >= 200 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *responseRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *responseRecorder) statusCode() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

func (r *responseRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	k := r.sockets.add()
	conn, brw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err != nil {
		r.sockets.done(k)
		return nil, nil, err
	}
	r.sockets.hijacked(k, conn)
	r.socket = k
	r.hijacked = true
	r.code = http.StatusSwitchingProtocols
	if r.onHijack != nil {
		r.onHijack()
	}
	return conn, brw, nil
}

// Detach is for a handler that hijacked the connection and hands it to a
// goroutine of its own before returning, so that the request's goroutine,
// its buffers and the request itself are freed while the socket lives on
// (package wsgql does this for every websocket). The "websocket closed" line
// is then written when the returned function is called, once the socket has
// really closed.
func (r *responseRecorder) Detach() (closed func()) {
	r.detached = true
	return r.closer()
}

// closer returns what writes the close line of a hijacked connection and
// then lets a shutdown waiting for the sockets know. It must capture
// neither the recorder, the request nor the server's writer: a detached
// socket outlives them all, and the server's writer reaches net/http's
// per-connection buffers (8 KiB a socket; a method value r.closed once
// kept them alive, nearly doubling an idle socket's memory).
func (r *responseRecorder) closer() func() {
	onClose, sockets, socket := r.onClose, r.sockets, r.socket
	return func() {
		onClose()
		sockets.done(socket)
	}
}

// Flush keeps streaming responses streaming through the recorder; callers
// type-assert http.Flusher rather than use a ResponseController.
func (r *responseRecorder) Flush() {
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the server's writer for
// deadlines and the like.
func (r *responseRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// limitBody refuses request bodies over limit with 413. gqlgen's POST transport
// reads the whole body into memory and, when the read fails, still answers
// 200 with the error in the payload; checking here bounds the memory and
// gives clients a status they can act on. See tooLarge for how the 413
// reaches a client that is still sending.
//
// A multipart request (an upload) may carry a file of up to uploadLimit
// besides: one whose Content-Length says it is larger gets 413 before a
// byte is read; one of unknown length passes, streamed, never buffered,
// and the multipart transport bounds each of its parts as it reads them.
func limitBody(limit, uploadLimit int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && isMultipart(r) {
			total := limit + uploadLimit
			if r.ContentLength > total {
				tooLarge(w, r, r.Body, total+drainBytes)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, total)
			next.ServeHTTP(w, r)
			return
		}
		switch {
		case r.ContentLength > limit:
			tooLarge(w, r, r.Body, limit+drainBytes)
			return
		case r.ContentLength < 0:
			// Chunked: the size is known only after reading, so read here,
			// where exceeding the limit can still become a 413.
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
			if err != nil {
				if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
					// The limit's worth is read; the rest follows.
					tooLarge(w, r, r.Body, drainBytes)
				} else {
					writeError(w, http.StatusBadRequest, "could not read request body")
				}
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		// With a known Content-Length net/http already stops at that length.
		next.ServeHTTP(w, r)
	})
}

// How much of a body past the limit is read and thrown away, and for how
// long, before its 413 is written.
const (
	drainBytes   = 4 << 20
	drainTimeout = 5 * time.Second
)

// tooLarge answers 413 to a request whose body is over the limit; body is
// what is left of it, of which at most max bytes are read. A client that
// sends a body usually reads the answer only once it has sent it all; a
// server that answers and closes while the body is still arriving leaves
// unread data behind, and the kernel then resets the connection, so that
// the client sees ECONNRESET instead of the 413. So the rest of the body
// is read and discarded first, up to drainBytes past the limit within
// drainTimeout. A client that says it sends more, or sends more or
// slower, is answered anyway (with Connection: close) and may see the
// reset.
func tooLarge(w http.ResponseWriter, r *http.Request, body io.Reader, max int64) {
	drained := false
	if r.ContentLength <= max {
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(drainTimeout))
		_, err := io.CopyN(io.Discard, body, max+1)
		_ = rc.SetReadDeadline(time.Time{})
		drained = errors.Is(err, io.EOF)
	}
	if !drained {
		w.Header().Set("Connection", "close")
	}
	writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
}
