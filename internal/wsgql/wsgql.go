// Package wsgql is jobchat's GraphQL-over-WebSocket transport: a
// graphql.Transport for gqlgen's executor that speaks graphql-transport-ws
// (the graphql-ws project's PROTOCOL.md) and the legacy graphql-ws
// subprotocol of subscriptions-transport-ws, on gorilla/websocket.
//
// It replaces gqlgen's stock websocket transport, which never sends the
// protocol's close codes and lets one stalled client hold goroutines and
// memory without bound. Here every socket has one reading goroutine (the
// handler's own), writes go through a bounded queue drained by a goroutine
// that exists only while there is something to write, and timers, not
// goroutines, drive keep-alives and deadlines.
//
// It may import gqlgen's graphql package, gqlparser, gorilla/websocket,
// zerolog, jobchat's stream contract and the standard library.
package wsgql

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gorilla/websocket"

	"github.com/jobchat/jobchat/internal/stream"
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
	// OnError receives the errors that end a socket other than ordinary
	// closes, for logging. May be nil.
	OnError func(ctx context.Context, err error)
}

const (
	defaultInitTimeout   = 10 * time.Second
	defaultKeepAlive     = 15 * time.Second
	defaultWriteTimeout  = 10 * time.Second
	defaultMaxFrameBytes = 64 << 10
	defaultMaxOperations = 100
	defaultSendQueue     = 1024

	// closeGrace is how long a closing socket waits for the peer's close
	// frame before the TCP connection is dropped.
	closeGrace = time.Second
)

func (c Config) withDefaults() Config {
	if c.InitTimeout <= 0 {
		c.InitTimeout = defaultInitTimeout
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = defaultKeepAlive
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = defaultWriteTimeout
	}
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = defaultMaxFrameBytes
	}
	if c.MaxOperations <= 0 {
		c.MaxOperations = defaultMaxOperations
	}
	if c.SendQueue <= 0 {
		c.SendQueue = defaultSendQueue
	}
	if c.BufferPool == nil {
		c.BufferPool = &sync.Pool{}
	}
	return c
}

// Transport serves GraphQL over WebSocket. Add it to a gqlgen handler.Server
// with AddTransport, before the HTTP transports.
type Transport struct {
	cfg      Config
	upgrader websocket.Upgrader

	// mu guards the sockets and servers seen, for Shutdown.
	mu      sync.Mutex
	conns   map[*conn]struct{}
	servers map[*http.Server]struct{}
	down    bool
}

var _ graphql.Transport = (*Transport)(nil)

// New returns a Transport configured by cfg.
func New(cfg Config) *Transport {
	cfg = cfg.withDefaults()
	t := &Transport{cfg: cfg, conns: make(map[*conn]struct{}), servers: make(map[*http.Server]struct{})}
	t.upgrader = websocket.Upgrader{
		// The connection has no deadline once hijacked; this bounds the 101.
		HandshakeTimeout: cfg.WriteTimeout,
		// Frames are short JSON and most sockets sit idle, so small read
		// buffers and pooled write buffers keep per-socket memory low.
		ReadBufferSize:  512,
		WriteBufferSize: 1024,
		WriteBufferPool: cfg.BufferPool,
		// gorilla picks the first of these the client offers, so the
		// maintained protocol wins whenever it is offered.
		Subprotocols: []string{ProtocolTransportWS, ProtocolLegacy},
		CheckOrigin:  cfg.CheckOrigin,
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			http.Error(w, reason.Error(), status)
		},
	}
	if t.upgrader.CheckOrigin == nil {
		t.upgrader.CheckOrigin = sameOrigin
	}
	return t
}

// Supports reports websocket upgrade requests.
func (t *Transport) Supports(r *http.Request) bool {
	return websocket.IsWebSocketUpgrade(r)
}

// detacher is implemented by a ResponseWriter (jobchat's access log) that
// lets a handler return while the hijacked connection lives on; closed is
// called when it finally ends.
type detacher interface {
	Detach() (closed func())
}

// Do upgrades the request and serves the socket. When w can detach, Do
// returns at once and the socket runs on a goroutine of its own, so that
// nothing of the HTTP request (its goroutine's stack, net/http's buffers,
// the request) stays in memory for the socket's lifetime; otherwise Do
// returns when the socket has closed and every operation on it has ended.
func (t *Transport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	t.watchShutdown(r)
	ws, err := t.upgrader.Upgrade(w, r, responseHeader(w))
	if err != nil {
		// The upgrader has answered the request.
		return
	}
	c := newConn(r, ws, exec, t.cfg)
	t.mu.Lock()
	t.conns[c] = struct{}{}
	down := t.down
	t.mu.Unlock()
	if down {
		// Upgraded while the server shut down, after Shutdown closed the
		// others: this one goes the same way.
		c.close(CloseGoingAway, "server shutting down")
	}
	run := func() {
		c.serve()
		t.mu.Lock()
		delete(t.conns, c)
		t.mu.Unlock()
	}
	if d, ok := w.(detacher); ok {
		closed := d.Detach()
		go func() {
			run()
			closed()
		}()
		return
	}
	run()
}

// Shutdown closes every socket with 1001 (going away), so that clients
// reconnect, to this server once it is back or to another. It runs by
// itself when the http.Server serving the transport shuts down: sockets
// are hijacked, and Server.Shutdown neither knows nor waits for them.
func (t *Transport) Shutdown() {
	t.mu.Lock()
	t.down = true
	conns := make([]*conn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		c.close(CloseGoingAway, "server shutting down")
	}
}

// watchShutdown hooks Shutdown to the server of r, once per server.
func (t *Transport) watchShutdown(r *http.Request) {
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if srv == nil {
		return
	}
	t.mu.Lock()
	_, seen := t.servers[srv]
	t.servers[srv] = struct{}{}
	t.mu.Unlock()
	if !seen {
		srv.RegisterOnShutdown(t.Shutdown)
	}
}

// responseHeader carries over what middleware put on w (X-Request-Id,
// cookies): gorilla writes the 101 from its argument alone.
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
