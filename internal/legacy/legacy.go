// Package legacy serves the old marketplace chat socket, the Django Channels
// consumer's `ws/chat/{conversation_id}/`, on jobchat, so that the existing
// frontend keeps working unchanged while it moves to GraphQL. It is a
// bridge for the migration, deprecated from the day it ships: new clients
// use GraphQL subscriptions.
//
// The package speaks the old JSON frames and the socket's lifecycle
// (handshake, keep-alive, write queue, token expiry, shutdown). Everything
// about conversations and messages (who may see one, how a message is
// stored and broadcast, what a stored message looks like) reaches it
// through the Backend interface, which the resolvers implement with the
// same send path and the same per-conversation feed as GraphQL.
//
// It may import the standard library, gorilla/websocket, zerolog and
// jobchat's auth package (for the Caller type); never resolvers, db, graph
// or anything GraphQL.
package legacy

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/internal/auth"
)

// Pattern is the route the handler expects, for an http.ServeMux: the
// conversation id comes from its wildcard.
const Pattern = "GET /ws/chat/{conversationId}/{$}"

// Message is a message as the old frames show it.
type Message struct {
	ID             string
	ConversationID string
	// SenderID and SenderName are nil for SYSTEM messages.
	SenderID   *string
	SenderName *string
	// Text is the text as it reads now: empty once deleted.
	Text      string
	Type      string
	Timestamp time.Time
	IsRead    bool
}

// Event is a change to a conversation's messages: a new message, or
// (Updated) an edited or deleted one.
type Event struct {
	Updated bool
	Message Message
}

// Backend is what the socket needs of jobchat.
type Backend interface {
	// Authenticate verifies a bare token.
	Authenticate(token string) (auth.Caller, error)
	// Authorize reports whether c may use the conversation. A refusal is
	// an error whose Code is NOT_FOUND (a stranger and an unknown
	// conversation alike), FORBIDDEN or UNAUTHENTICATED; any other error
	// is a failure of the server.
	Authorize(ctx context.Context, c auth.Caller, conversationID string) error
	// Send stores a message from c through the same path as GraphQL's
	// sendMessage, rate limit and validation included, and broadcasts it.
	// msgType is what the client asked for (TEXT unless it said otherwise),
	// for the send path to judge. An error with a Code goes to the client
	// as it is, having been logged by the backend if it needed to be.
	Send(ctx context.Context, c auth.Caller, conversationID, text, msgType string) error
	// Follow delivers the conversation's events committed from now on, as
	// c may see them, in order, to fn, until stop is called. fn does not
	// block; when it returns false the socket cannot take more, and the
	// follower must stop delivering (the socket closes itself). end, if
	// the follower cannot go on by itself (the database failed), closes
	// the socket, so that the client reconnects rather than wait for
	// messages that will not come. stop may be called more than once, and
	// after the follower has stopped.
	Follow(ctx context.Context, c auth.Caller, conversationID string, fn func(Event) bool, end func()) (stop func(), err error)
}

// Coded is an error the client may see, with the code GraphQL gives it
// in extensions.code (RATE_LIMITED, BAD_USER_INPUT, ...). Errors without a
// code are failures of the server: the socket logs them and tells the
// client only "internal error".
type Coded interface {
	error
	Code() string
}

// refusal reports whether err from Authorize refuses the caller, rather
// than failing.
func refusal(err error) bool {
	coded, ok := errors.AsType[Coded](err)
	if !ok {
		return false
	}
	switch coded.Code() {
	case "NOT_FOUND", "FORBIDDEN", "UNAUTHENTICATED":
		return true
	}
	return false
}

// Config configures a Handler. Its zero value gives the defaults noted on
// each field.
type Config struct {
	// MaxFrameBytes limits messages from the client (close 1009). Zero
	// means 64 KiB.
	MaxFrameBytes int64
	// WriteTimeout bounds each frame written; a client that cannot take
	// one in that time is dropped. Zero means 10s.
	WriteTimeout time.Duration
	// KeepAlive is the interval of WebSocket pings; a peer that answers
	// nothing for two intervals is dropped. Zero means 15s.
	KeepAlive time.Duration
	// SendQueue is how many frames (up to 1 MiB in all) may wait for a
	// client; a client that lets more pile up is cut off with 1008. Zero
	// means 1024.
	SendQueue int
	// Cookie names the cookie that may carry the token, for browsers,
	// which cannot set headers on a WebSocket. Empty means jobchat_token.
	Cookie string
	// CheckOrigin decides whether the upgrade request's Origin may
	// connect. Nil allows same-origin requests and requests without an
	// Origin.
	CheckOrigin func(r *http.Request) bool
	// BufferPool shares write buffers between sockets. Nil gives the
	// Handler a pool of its own.
	BufferPool websocket.BufferPool
}

const (
	defaultMaxFrameBytes = 64 << 10
	defaultWriteTimeout  = 10 * time.Second
	defaultKeepAlive     = 15 * time.Second
	defaultSendQueue     = 1024
	defaultCookie        = "jobchat_token"
)

func (c Config) withDefaults() Config {
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = defaultMaxFrameBytes
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = defaultWriteTimeout
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = defaultKeepAlive
	}
	if c.SendQueue <= 0 {
		c.SendQueue = defaultSendQueue
	}
	if c.Cookie == "" {
		c.Cookie = defaultCookie
	}
	if c.CheckOrigin == nil {
		c.CheckOrigin = sameOrigin
	}
	if c.BufferPool == nil {
		c.BufferPool = &sync.Pool{}
	}
	return c
}

// Handler serves the old chat socket. Mount it at Pattern.
type Handler struct {
	cfg      Config
	backend  Backend
	upgrader websocket.Upgrader

	// mu guards the sockets and servers seen, for Shutdown.
	mu      sync.Mutex
	conns   map[*conn]struct{}
	servers map[*http.Server]struct{}
	down    bool
}

var _ http.Handler = (*Handler)(nil)

// New returns a Handler serving backend's conversations.
func New(backend Backend, cfg Config) *Handler {
	cfg = cfg.withDefaults()
	return &Handler{
		cfg:     cfg,
		backend: backend,
		upgrader: websocket.Upgrader{
			HandshakeTimeout: cfg.WriteTimeout,
			// As on the GraphQL socket: short JSON frames, mostly idle
			// sockets, so small read buffers and pooled write buffers.
			ReadBufferSize:  512,
			WriteBufferSize: 1024,
			WriteBufferPool: cfg.BufferPool,
			// ServeHTTP has checked the origin already, with a status of
			// its own.
			CheckOrigin: func(*http.Request) bool { return true },
			Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
				http.Error(w, reason.Error(), status)
			},
		},
		conns:   make(map[*conn]struct{}),
		servers: make(map[*http.Server]struct{}),
	}
}

// ServeHTTP refuses, before the upgrade and with 403 as Channels does when
// a consumer closes during connect, a request without valid credentials or
// for a conversation the caller is not in; then it follows the
// conversation and serves the socket. The following starts before the
// upgrade answers, so that every message committed after the client sees
// the socket open reaches it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.watchShutdown(r)
	log := zerolog.Ctx(r.Context())
	if !websocket.IsWebSocketUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "this endpoint serves WebSocket upgrades only", http.StatusUpgradeRequired)
		return
	}
	if !h.cfg.CheckOrigin(r) {
		log.Debug().Str("origin", r.Header.Get("Origin")).Msg("legacy socket origin refused")
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	convID := r.PathValue("conversationId")
	caller, err := h.authenticate(r)
	if err != nil {
		log.Debug().Err(err).Msg("legacy socket authentication refused")
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	log = withSocketLog(log, caller.ID, convID)
	ctx, cancel := context.WithCancel(context.WithoutCancel(log.WithContext(r.Context())))
	if err := h.backend.Authorize(ctx, caller, convID); err != nil {
		cancel()
		if refusal(err) {
			log.Debug().Err(err).Msg("legacy socket refused")
			http.Error(w, "Forbidden", http.StatusForbidden)
			return
		}
		if _, ok := errors.AsType[Coded](err); !ok {
			log.Error().Err(err).Msg("legacy socket: check access")
		}
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}

	c := newConn(ctx, cancel, h, caller, convID)
	stop, err := h.backend.Follow(ctx, caller, convID, c.deliver, c.followEnded)
	if err != nil {
		cancel()
		log.Error().Err(err).Msg("legacy socket: follow conversation")
		http.Error(w, "could not follow the conversation; retry", http.StatusServiceUnavailable)
		return
	}
	c.stopFollow = stop
	if !h.add(c) {
		c.teardown()
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	ws, err := h.upgrader.Upgrade(w, r, responseHeader(w))
	if err != nil {
		// The upgrader has answered the request.
		h.remove(c)
		c.teardown()
		return
	}
	c.start(ws)
	run := func() {
		c.serve()
		h.remove(c)
	}
	if d, ok := w.(detacher); ok {
		// Frees the request (its goroutine, net/http's buffers) for the
		// socket's lifetime, as the GraphQL socket does.
		closed := d.Detach()
		go func() {
			run()
			closed()
		}()
		return
	}
	run()
}

// detacher is implemented by jobchat's access log writer; see package
// server.
type detacher interface {
	Detach() (closed func())
}

var (
	errNoCredentials = errors.New("no token: send Authorization: Bearer <token>, a token query parameter or the cookie")
	errService       = errors.New("service tokens cannot use the chat socket")
	errBadHeader     = errors.New(`authorization must be "Bearer <token>"`)
)

// authenticate finds the token where the old frontend may put it: the
// Authorization header, the token query parameter, or the cookie, in that
// order. The first one present decides: bad credentials refuse the socket
// even when another place holds good ones.
func (h *Handler) authenticate(r *http.Request) (auth.Caller, error) {
	token, err := h.token(r)
	if err != nil {
		return auth.Caller{}, err
	}
	c, err := h.backend.Authenticate(token)
	if err != nil {
		return auth.Caller{}, err
	}
	if c.Service {
		return auth.Caller{}, errService
	}
	return c, nil
}

func (h *Handler) token(r *http.Request) (string, error) {
	if header := strings.TrimSpace(r.Header.Get("Authorization")); header != "" {
		scheme, token, ok := strings.Cut(header, " ")
		token = strings.TrimSpace(token)
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return "", errBadHeader
		}
		return token, nil
	}
	if token := r.URL.Query().Get("token"); token != "" {
		return token, nil
	}
	if ck, err := r.Cookie(h.cfg.Cookie); err == nil && ck.Value != "" {
		return ck.Value, nil
	}
	return "", errNoCredentials
}

// add registers c for Shutdown, unless the server is shutting down.
func (h *Handler) add(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		return false
	}
	h.conns[c] = struct{}{}
	return true
}

func (h *Handler) remove(c *conn) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
}

// Shutdown closes every socket with 1001 (going away), so that clients
// reconnect, to this server once it is back or to another, and refuses new
// ones. It runs by itself when the http.Server serving the handler shuts
// down: sockets are hijacked, and Server.Shutdown neither knows nor waits
// for them.
func (h *Handler) Shutdown() {
	h.mu.Lock()
	h.down = true
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.close(websocket.CloseGoingAway, "server shutting down")
	}
}

// watchShutdown hooks Shutdown to the server of r, once per server.
func (h *Handler) watchShutdown(r *http.Request) {
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if srv == nil {
		return
	}
	h.mu.Lock()
	_, seen := h.servers[srv]
	h.servers[srv] = struct{}{}
	h.mu.Unlock()
	if !seen {
		srv.RegisterOnShutdown(h.Shutdown)
	}
}

// responseHeader carries over what middleware put on w (X-Request-Id):
// gorilla writes the 101 from its argument alone.
func responseHeader(w http.ResponseWriter) http.Header {
	h := http.Header{}
	for k, vs := range w.Header() {
		switch http.CanonicalHeaderKey(k) {
		case "Upgrade", "Connection", "Content-Type", "Content-Length",
			"Sec-Websocket-Protocol", "Sec-Websocket-Accept", "Sec-Websocket-Extensions":
			continue
		}
		h[k] = append([]string(nil), vs...)
	}
	return h
}

func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	return origin == "http://"+r.Host || origin == "https://"+r.Host
}

// withSocketLog tags the socket's log lines with its user and
// conversation. A hook rather than With, as for the request id: With
// allocates a buffer per logger, which the socket would keep for its
// lifetime.
func withSocketLog(log *zerolog.Logger, userID, convID string) *zerolog.Logger {
	l := log.Hook(socketHook{userID: userID, convID: convID})
	return &l
}

type socketHook struct{ userID, convID string }

func (h socketHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str("user_id", h.userID).Str("conversation_id", h.convID)
}
