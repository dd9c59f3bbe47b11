package wsgql

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/internal/wsconn"
)

type initState uint8

const (
	initWaiting initState = iota
	initRunning
	initDone
)

// conn is one socket: the GraphQL side of it, over the wsconn machinery in
// sock. The read loop (sock's) hands each message to Receive and is the
// only goroutine that changes the protocol state; operations run on
// goroutines of their own, or none when pushed. mu guards the fields below
// it; it is taken before sock's, never after.
type conn struct {
	sock   wsconn.Conn
	cfg    *Config
	exec   graphql.GraphExecutor
	legacy bool

	// ctx ends when the socket does; cancel ends it.
	ctx    context.Context
	cancel context.CancelFunc
	// opParent is what Init returned: every operation's parent.
	opParent context.Context

	ops       sync.WaitGroup
	initTimer *time.Timer

	mu     sync.Mutex
	state  initState
	active map[string]*operation
	// expiry's callback runs on a timer goroutine.
	expiry *time.Timer
}

var _ wsconn.Protocol = (*conn)(nil)

func newConn(r *http.Request, ws *websocket.Conn, exec graphql.GraphExecutor, t *Transport) *conn {
	// Not the request's own context: net/http cancels it when the handler
	// returns, which a detached socket outlives. Its values (logger, caller
	// from the upgrade header) carry over; shutdown arrives through
	// Transport.Shutdown.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	c := &conn{
		cfg:    &t.cfg,
		exec:   exec,
		legacy: ws.Subprotocol() == ProtocolLegacy,
		ctx:    ctx,
		cancel: cancel,
		active: make(map[string]*operation),
	}
	c.sock.Init(t.sockets, c)
	c.sock.Start(ws)
	return c
}

// awaitInit gives the client InitTimeout to send connection_init, once it
// has agreed on a subprotocol.
func (c *conn) awaitInit(subprotocol string) {
	if subprotocol == "" {
		// Like graphql-ws's reference server: the handshake succeeds, and the
		// socket closes at once with a code a client can act on.
		c.close(CloseSubprotocol, "Subprotocol not acceptable")
	}
	c.initTimer = time.AfterFunc(c.cfg.InitTimeout, func() {
		c.mu.Lock()
		waiting := c.state != initDone
		c.mu.Unlock()
		if waiting {
			c.close(CloseInitTimeout, "Connection initialisation timeout")
		}
	})
}

// Log is the socket's logger.
func (c *conn) Log() *zerolog.Logger { return zerolog.Ctx(c.ctx) }

// Receive handles one client message.
func (c *conn) Receive(data []byte) {
	if c.legacy {
		c.handleLegacy(data)
	} else {
		c.handle(data)
	}
}

// Ending ends the socket's context, and with it every operation.
func (c *conn) Ending(err error) {
	if err != nil && c.cfg.OnError != nil {
		c.cfg.OnError(c.ctx, err)
	}
	c.cancel()
}

// Ended releases everything the socket holds once it has closed.
func (c *conn) Ended() {
	c.mu.Lock()
	// Pushed operations have no context to see the socket end: stop them.
	var stops []func()
	for id, op := range c.active {
		if op.cancel != nil {
			stops = append(stops, op.cancel)
		}
		delete(c.active, id)
	}
	c.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
	c.cancel()
	if c.initTimer != nil {
		c.initTimer.Stop()
	}
	c.mu.Lock()
	if c.expiry != nil {
		// A timer left running would keep the closed socket in memory
		// until it fired: hours, for a token's expiry.
		c.expiry.Stop()
	}
	c.mu.Unlock()
	c.ops.Wait()
}

// close starts an orderly close (wsconn.Conn.Close): operations end, frames
// already queued are written, then the close frame.
func (c *conn) close(code int, reason string) {
	c.sock.Close(code, reason)
}

// enqueue queues a protocol frame (ack, pong, ka, complete, error). These
// are small and never wait (wsconn.Conn.Push).
func (c *conn) enqueue(msg []byte) {
	c.sock.Push(wsconn.Frame{Head: msg})
}

// accept runs the Init callback for a connection_init. It reports whether
// the connection may go on; on failure it has closed it.
func (c *conn) accept(payload map[string]any) bool {
	c.initTimer.Stop()
	c.initTimer = nil
	ctx := c.ctx
	var expires time.Time
	if c.cfg.Init != nil {
		next, exp, err := c.cfg.Init(ctx, payload)
		if err != nil {
			c.Log().Debug().Err(err).Msg("websocket init refused")
			c.refuse(err)
			return false
		}
		if next != nil {
			ctx = next
		}
		expires = exp
	}
	if over := c.sock.ClaimUser(ctx); over != nil {
		c.overQuota(over)
		return false
	}
	c.opParent = ctx
	c.mu.Lock()
	defer c.mu.Unlock()
	if !expires.IsZero() && !c.sock.Closing() {
		// Ended stops it.
		c.expiry = time.AfterFunc(time.Until(expires), func() {
			c.close(CloseForbidden, "Forbidden: token expired")
		})
	}
	c.state = initDone
	if c.legacy {
		// "ka" messages go with the pings from now on.
		c.sock.SendKeepAliveFrames()
	}
	return true
}

// overQuota closes a socket its Quota refused; a legacy client hears why
// in a connection_error first, which its library hands to the app.
func (c *conn) overQuota(over *wsconn.OverQuota) {
	if c.legacy {
		c.enqueue(legacyConnectionError(over.Reason))
	}
	c.close(over.Code, over.Reason)
}

func (c *conn) refuse(err error) {
	reason := "Forbidden"
	if msg := err.Error(); msg != "" {
		reason = "Forbidden: " + msg
	}
	if c.legacy {
		c.enqueue(legacyConnectionError(err.Error()))
	}
	c.close(CloseForbidden, reason)
}
