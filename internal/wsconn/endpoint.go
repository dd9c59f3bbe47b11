package wsconn

import (
	"net/http"
	"sync"

	"github.com/gorilla/websocket"
)

// Endpoint is what the sockets of one handler share: the configuration,
// the upgrader, and the registry of open sockets that a shutdown closes.
type Endpoint struct {
	cfg      Config
	upgrader websocket.Upgrader

	// mu guards the sockets and servers seen, for Shutdown.
	mu      sync.Mutex
	conns   map[*Conn]struct{}
	servers map[*http.Server]struct{}
	down    bool
}

// NewEndpoint returns an Endpoint configured by cfg.
func NewEndpoint(cfg Config) *Endpoint {
	cfg = cfg.withDefaults()
	return &Endpoint{
		cfg: cfg,
		upgrader: websocket.Upgrader{
			// The connection has no deadline once hijacked; this bounds the
			// 101.
			HandshakeTimeout: cfg.WriteTimeout,
			// Frames are short JSON and most sockets sit idle, so small read
			// buffers and pooled write buffers keep per-socket memory low.
			ReadBufferSize:  512,
			WriteBufferSize: 1024,
			WriteBufferPool: cfg.BufferPool,
			// gorilla picks the first of these the client offers.
			Subprotocols: cfg.Subprotocols,
			CheckOrigin:  cfg.CheckOrigin,
			Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
				http.Error(w, reason.Error(), status)
			},
		},
		conns:   make(map[*Conn]struct{}),
		servers: make(map[*http.Server]struct{}),
	}
}

// Watch hooks Shutdown to the http.Server serving r, once per server: its
// sockets are hijacked, and Server.Shutdown neither knows nor waits for
// them. Call it first thing for every request.
func (e *Endpoint) Watch(r *http.Request) {
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if srv == nil {
		return
	}
	e.mu.Lock()
	_, seen := e.servers[srv]
	e.servers[srv] = struct{}{}
	e.mu.Unlock()
	if !seen {
		srv.RegisterOnShutdown(e.Shutdown)
	}
}

// Upgrade answers r with the 101, carrying over the headers middleware put
// on w. On error the upgrader has answered r.
func (e *Endpoint) Upgrade(w http.ResponseWriter, r *http.Request) (*websocket.Conn, error) {
	return e.upgrader.Upgrade(w, r, responseHeader(w))
}

// Add registers c for Shutdown. It reports false, registering nothing, once
// the endpoint has shut down: the caller refuses the socket, or closes it
// with GoAway as Shutdown closed the others.
func (e *Endpoint) Add(c *Conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.down {
		return false
	}
	e.conns[c] = struct{}{}
	return true
}

// Remove forgets c.
func (e *Endpoint) Remove(c *Conn) {
	e.mu.Lock()
	delete(e.conns, c)
	e.mu.Unlock()
}

// Conns returns the sockets registered now.
func (e *Endpoint) Conns() []*Conn {
	e.mu.Lock()
	defer e.mu.Unlock()
	conns := make([]*Conn, 0, len(e.conns))
	for c := range e.conns {
		conns = append(conns, c)
	}
	return conns
}

// Shutdown closes every registered socket with GoAway, and makes Add refuse
// new ones. It runs by itself when a watched http.Server shuts down.
func (e *Endpoint) Shutdown() {
	e.mu.Lock()
	e.down = true
	e.mu.Unlock()
	for _, c := range e.Conns() {
		c.GoAway()
	}
}

// detacher is implemented by a ResponseWriter (jobchat's access log, see
// package server) that lets a handler return while the hijacked
// connection lives on; closed is called when it finally ends.
type detacher interface {
	Detach() (closed func())
}

// Serve runs c's read loop until the socket ends, tells its protocol
// (Ended) and forgets c. When w can detach, Serve returns at once and the
// socket runs on a goroutine of its own, so that nothing of the HTTP
// request (its goroutine's stack, net/http's buffers, the request) stays
// in memory for the socket's lifetime; otherwise Serve returns when the
// socket has ended.
func (e *Endpoint) Serve(w http.ResponseWriter, c *Conn) {
	if d, ok := w.(detacher); ok {
		closed := d.Detach()
		go func() {
			e.serve(c)
			closed()
		}()
		return
	}
	e.serve(c)
}

func (e *Endpoint) serve(c *Conn) {
	c.serve()
	e.Remove(c)
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

// SameOrigin allows requests without an Origin, and those whose Origin is
// the request's own host.
func SameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	return origin == "http://"+r.Host || origin == "https://"+r.Host
}
