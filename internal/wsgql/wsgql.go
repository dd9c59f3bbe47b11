// Package wsgql is jobchat's GraphQL-over-WebSocket transport: a
// graphql.Transport for gqlgen's executor that speaks graphql-transport-ws
// (the graphql-ws project's PROTOCOL.md) and the legacy graphql-ws
// subprotocol of subscriptions-transport-ws, on gorilla/websocket.
//
// It replaces gqlgen's stock websocket transport, which never sends the
// protocol's close codes and lets one stalled client hold goroutines and
// memory without bound. The socket machinery (one reading goroutine, the
// bounded write queue, keep-alives, the orderly close, shutdown) is
// package wsconn's; this package speaks the two protocols over it.
//
// It may import gqlgen's graphql package, gqlparser, gorilla/websocket,
// zerolog, jobchat's stream contract and wsconn, and the standard library.
package wsgql

import (
	"context"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gorilla/websocket"

	"github.com/jobchat/jobchat/internal/stream"
	"github.com/jobchat/jobchat/internal/wsconn"
)

// Subprotocol names.
const (
	// ProtocolTransportWS is graphql-ws's protocol, the one maintained today.
	ProtocolTransportWS = "graphql-transport-ws"
	// ProtocolLegacy is subscriptions-transport-ws's protocol (Apollo's old
	// client), confusingly also named graphql-ws.
	ProtocolLegacy = "graphql-ws"
)

// Close codes. The 44xx codes are graphql-transport-ws's; jobchat uses 4403
// on the legacy protocol too, for the same reasons.
const (
	CloseNormal             = websocket.CloseNormalClosure   // 1000: connection_terminate
	CloseGoingAway          = websocket.CloseGoingAway       // 1001: server shutting down
	ClosePolicy             = websocket.ClosePolicyViolation // 1008: slow consumer
	CloseTooBig             = websocket.CloseMessageTooBig   // 1009: frame over the limit
	CloseInternal           = 4500
	CloseBadRequest         = 4400
	CloseUnauthorized       = 4401 // subscribe before connection_ack
	CloseForbidden          = 4403 // bad credentials or expired token
	CloseSubprotocol        = 4406 // no supported subprotocol offered
	CloseInitTimeout        = 4408
	CloseSubscriberExists   = 4409
	CloseTooManyInitRequest = 4429
)

// InitFunc authenticates a connection_init payload (nil when the client sent
// none). The context it returns becomes the parent of every operation on the
// socket. If expires is not zero the socket closes with 4403 then, which is
// how a token's expiry reaches the client (a timer, not a context deadline:
// it costs an idle socket less). An error refuses the connection with 4403
// and its message as the close reason, so it must not carry internal
// details.
type InitFunc func(ctx context.Context, payload map[string]any) (next context.Context, expires time.Time, err error)

// Config configures a Transport. Its zero value gives the defaults noted on
// each field.
type Config struct {
	// Init authenticates connection_init. Nil accepts every connection.
	Init InitFunc
	// CheckOrigin decides whether the upgrade request's Origin may connect.
	// Nil allows same-origin requests and requests without an Origin.
	CheckOrigin func(r *http.Request) bool

	// InitTimeout bounds the wait for connection_init (close 4408). Zero
	// means 10s.
	InitTimeout time.Duration
	// KeepAlive is the interval of WebSocket pings, and of "ka" messages on
	// the legacy protocol. A peer that answers nothing for two intervals is
	// dropped. Zero means 15s.
	KeepAlive time.Duration
	// WriteTimeout bounds each frame written; a client that cannot take a
	// frame in that time is dropped. Zero means 10s.
	WriteTimeout time.Duration
	// MaxFrameBytes limits messages from the client (close 1009). Zero means
	// 64 KiB.
	MaxFrameBytes int64
	// MaxOperations caps the operations one socket may run at once; the
	// extra one gets an error. Zero means 100.
	MaxOperations int
	// OnOperationRefused, if set, is called for each operation refused
	// over MaxOperations (with RATE_LIMITED), for metrics: that error is
	// the socket's own, never seen by the executor's extensions. It must
	// not block.
	OnOperationRefused func()
	// SendQueue is how many frames (up to 1 MiB in all) may wait for a
	// client. When it is full, operations wait for room, which slows a
	// subscription to its client's pace; a client that takes nothing for
	// WriteTimeout is cut off with 1008. Zero means 1024.
	SendQueue int

	// Pusher, if set, is offered every subscription; those it takes run
	// without goroutines of their own (see package stream).
	Pusher stream.Pusher

	// BufferPool shares write buffers between sockets, so that an idle
	// socket holds none. Nil gives each Transport a pool of its own.
	BufferPool websocket.BufferPool
	// Quota, if set, bounds the sockets per client address (counted at
	// the upgrade) and per user (counted once Init has named the caller);
	// one over its bound is closed with wsconn.CloseTooManyFromAddr or
	// wsconn.CloseTooManyForUser.
	Quota *wsconn.Quota
	// OnError receives the errors that end a socket other than ordinary
	// closes, for logging. May be nil.
	OnError func(ctx context.Context, err error)
}

const (
	defaultInitTimeout   = 10 * time.Second
	defaultMaxOperations = 100
)

// withDefaults sets the defaults this package applies itself; those of the
// socket (KeepAlive, WriteTimeout, MaxFrameBytes, SendQueue, CheckOrigin,
// BufferPool) are wsconn's.
func (c Config) withDefaults() Config {
	if c.InitTimeout <= 0 {
		c.InitTimeout = defaultInitTimeout
	}
	if c.MaxOperations <= 0 {
		c.MaxOperations = defaultMaxOperations
	}
	return c
}

// Transport serves GraphQL over WebSocket. Add it to a gqlgen handler.Server
// with AddTransport, before the HTTP transports.
type Transport struct {
	cfg     Config
	sockets *wsconn.Endpoint
}

var _ graphql.Transport = (*Transport)(nil)

// New returns a Transport configured by cfg.
func New(cfg Config) *Transport {
	cfg = cfg.withDefaults()
	return &Transport{cfg: cfg, sockets: wsconn.NewEndpoint(wsconn.Config{
		Name:           "websocket",
		KeepAlive:      cfg.KeepAlive,
		WriteTimeout:   cfg.WriteTimeout,
		MaxFrameBytes:  cfg.MaxFrameBytes,
		SendQueue:      cfg.SendQueue,
		KeepAliveFrame: frameKA,
		// The maintained protocol wins whenever it is offered.
		Subprotocols: []string{ProtocolTransportWS, ProtocolLegacy},
		CheckOrigin:  cfg.CheckOrigin,
		BufferPool:   cfg.BufferPool,
		Quota:        cfg.Quota,
	})}
}

// Supports reports websocket upgrade requests.
func (t *Transport) Supports(r *http.Request) bool {
	return websocket.IsWebSocketUpgrade(r)
}

// Do upgrades the request and serves the socket. When w can detach, Do
// returns at once and the socket runs on a goroutine of its own (see
// wsconn.Endpoint.Serve); otherwise Do returns when the socket has closed
// and every operation on it has ended.
func (t *Transport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	t.sockets.Watch(r)
	ws, err := t.sockets.Upgrade(w, r)
	if err != nil {
		// The upgrader has answered the request.
		return
	}
	c := newConn(r, ws, exec, t)
	if !t.sockets.Add(&c.sock) {
		// Upgraded while the server shut down, after Shutdown closed the
		// others: this one goes the same way.
		c.sock.GoAway()
	}
	if over := c.sock.ClaimAddr(r); over != nil {
		c.overQuota(over)
	}
	c.awaitInit(ws.Subprotocol())
	t.sockets.Serve(w, &c.sock)
}

// Shutdown closes every socket with 1001 (going away), so that clients
// reconnect, to this server once it is back or to another. It runs by
// itself when the http.Server serving the transport shuts down: sockets
// are hijacked, and Server.Shutdown neither knows nor waits for them.
func (t *Transport) Shutdown() {
	t.sockets.Shutdown()
}
