// Package legacy serves the old marketplace chat socket, the Django Channels
// consumer's `ws/chat/{conversation_id}/`, on jobchat, so that the existing
// frontend keeps working unchanged while it moves to GraphQL. It is a
// bridge for the migration, deprecated from the day it ships: new clients
// use GraphQL subscriptions.
//
// The package speaks the old JSON frames and the socket's lifecycle
// (handshake, token expiry) over package wsconn's machinery (keep-alive,
// write queue, orderly close, shutdown). Everything
// about conversations and messages (who may see one, how a message is
// stored and broadcast, what a stored message looks like) reaches it
// through the Backend interface, which the resolvers implement with the
// same send path and the same per-conversation feed as GraphQL.
//
// It may import the standard library, gorilla/websocket, zerolog,
// jobchat's auth package (for the Caller type), wsconn and jsontext; never
// resolvers, db, graph or anything GraphQL.
package legacy

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/internal/auth"
	"github.com/jobchat/jobchat/internal/wsconn"
)

// Pattern is the route the handler expects, for an http.ServeMux: the
// conversation id comes from its wildcard.
const Pattern = "GET /ws/chat/{conversationId}/{$}"

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
	// Quota, if set, bounds the sockets per user and per address; share
	// it with the GraphQL endpoint so that the bounds hold across both.
	Quota *wsconn.Quota
}

const defaultCookie = "jobchat_token"

// withDefaults sets the defaults this package applies itself; those of the
// socket (MaxFrameBytes, WriteTimeout, KeepAlive, SendQueue, BufferPool)
// are wsconn's.
func (c Config) withDefaults() Config {
	if c.Cookie == "" {
		c.Cookie = defaultCookie
	}
	if c.CheckOrigin == nil {
		c.CheckOrigin = wsconn.SameOrigin
	}
	return c
}

// Handler serves the old chat socket. Mount it at Pattern.
type Handler struct {
	cfg     Config
	backend Backend
	sockets *wsconn.Endpoint
}

var _ http.Handler = (*Handler)(nil)

// New returns a Handler serving backend's conversations.
func New(backend Backend, cfg Config) *Handler {
	cfg = cfg.withDefaults()
	return &Handler{
		cfg:     cfg,
		backend: backend,
		sockets: wsconn.NewEndpoint(wsconn.Config{
			Name:          "legacy socket",
			KeepAlive:     cfg.KeepAlive,
			WriteTimeout:  cfg.WriteTimeout,
			MaxFrameBytes: cfg.MaxFrameBytes,
			SendQueue:     cfg.SendQueue,
			Quota:         cfg.Quota,
			// ServeHTTP has checked the origin already, with a status of
			// its own.
			CheckOrigin: func(*http.Request) bool { return true },
			BufferPool:  cfg.BufferPool,
		}),
	}
}

// ServeHTTP refuses, before the upgrade and with 403 as Channels does when
// a consumer closes during connect, a request without valid credentials or
// for a conversation the caller is not in; then it follows the
// conversation and serves the socket. The following starts before the
// upgrade answers, so that every message committed after the client sees
// the socket open reaches it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.sockets.Watch(r)
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
	// A socket over its quota is upgraded all the same, and closed at once
	// with a code that says why: a browser never sees the status of a
	// refused handshake.
	over := c.sock.ClaimAddr(r)
	if over == nil {
		over = c.sock.ClaimUser(auth.WithCaller(ctx, caller))
	}
	if over != nil {
		c.close(over.Code, over.Reason)
	} else {
		stop, err := h.backend.Follow(ctx, caller, convID, c.deliver, c.followEnded)
		if err != nil {
			c.teardown()
			log.Error().Err(err).Msg("legacy socket: follow conversation")
			http.Error(w, "could not follow the conversation; retry", http.StatusServiceUnavailable)
			return
		}
		c.stopFollow = stop
	}
	if !h.sockets.Add(&c.sock) {
		c.teardown()
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	ws, err := h.sockets.Upgrade(w, r)
	if err != nil {
		// The upgrader has answered the request.
		h.sockets.Remove(&c.sock)
		c.teardown()
		return
	}
	c.start(ws)
	h.sockets.Serve(w, &c.sock)
}

// Shutdown closes every socket with 1001 (going away), so that clients
// reconnect, to this server once it is back or to another, and refuses new
// ones. It runs by itself when the http.Server serving the handler shuts
// down: sockets are hijacked, and Server.Shutdown neither knows nor waits
// for them.
func (h *Handler) Shutdown() {
	h.sockets.Shutdown()
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
