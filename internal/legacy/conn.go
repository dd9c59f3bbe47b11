package legacy

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/internal/auth"
)

// closeGrace is how long a closing socket waits for the peer's close frame
// before the TCP connection is dropped.
const closeGrace = time.Second

// Close codes beyond the standard ones (1001 going away, 1008 slow client,
// 1009 frame too big).
const (
	// closeExpired ends a socket whose token expired, as the GraphQL
	// socket does: the client reconnects with a fresh one.
	closeExpired = 4403
)

// conn is one socket. The read loop (serve) is the only reader; frames are
// written by writeLoop, which runs only while the queue is non-empty, and
// timers, not goroutines, drive keep-alives and the token's expiry. mu
// guards the fields below it.
type conn struct {
	h      *Handler
	ws     *websocket.Conn // set by start
	caller auth.Caller
	convID string

	// ctx ends when the socket does; it is the parent of every send.
	ctx    context.Context
	cancel context.CancelFunc

	// stopFollow ends the conversation's follower; set before start.
	stopFollow func()

	mu         sync.Mutex
	started    bool // ws is set: the writer may run
	closing    bool
	writing    bool
	queue      [][]byte
	queueBytes int
	// closeMsg is a close frame waiting for the frames queued before it.
	closeMsg  []byte
	keepAlive *time.Timer
	expiry    *time.Timer
}

func newConn(ctx context.Context, cancel context.CancelFunc, h *Handler, caller auth.Caller, convID string) *conn {
	return &conn{h: h, ctx: ctx, cancel: cancel, caller: caller, convID: convID}
}

func (c *conn) log() *zerolog.Logger { return zerolog.Ctx(c.ctx) }

// start takes the upgraded socket: frames queued by the follower since it
// started go out now.
func (c *conn) start(ws *websocket.Conn) {
	cfg := c.h.cfg
	ws.SetReadLimit(cfg.MaxFrameBytes)
	ws.SetPongHandler(func(string) error {
		c.extendRead()
		return nil
	})
	c.mu.Lock()
	c.ws = ws
	c.started = true
	c.keepAlive = time.AfterFunc(cfg.KeepAlive, c.ping)
	if exp := c.caller.ExpiresAt; !exp.IsZero() {
		c.expiry = time.AfterFunc(time.Until(exp), func() {
			c.close(closeExpired, "token expired")
		})
	}
	kick := !c.writing && (len(c.queue) > 0 || c.closeMsg != nil)
	if kick {
		c.writing = true
	}
	if c.closing {
		// Cut off or shut down before the upgrade answered.
		_ = ws.SetReadDeadline(time.Now().Add(cfg.WriteTimeout + closeGrace))
	}
	c.mu.Unlock()
	c.extendRead()
	if kick {
		go c.writeLoop()
	}
}

// serve runs the read loop until the socket ends, then releases everything
// the socket holds.
func (c *conn) serve() {
	defer c.teardown()
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			c.readEnded(err)
			return
		}
		if c.isClosing() {
			// Drain until the peer answers our close frame.
			continue
		}
		c.extendRead()
		if typ != websocket.TextMessage {
			// The consumer read text frames only.
			continue
		}
		c.offload(data)
	}
}

// offload handles one client frame on a short-lived goroutine and waits
// for it, so frames are still handled one at a time and in order. As on
// the GraphQL socket, the reason is memory: the read loop lives as long as
// the socket, and would otherwise keep the stack a send grew (validation,
// the database) until a garbage collection shrinks it.
func (c *conn) offload(data []byte) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.handle(data)
	}()
	<-done
}

// handle sends one client frame. What the old consumer ignored is ignored;
// a refused send gets an error frame and the socket stays open.
func (c *conn) handle(data []byte) {
	text, msgType, ok := decodeSend(data)
	if !ok {
		return
	}
	err := c.h.backend.Send(c.ctx, c.caller, c.convID, text, msgType)
	if err == nil {
		return
	}
	if c.ctx.Err() != nil {
		// The socket ended while sending; nobody reads the answer.
		return
	}
	if coded, ok := errors.AsType[Coded](err); ok {
		c.enqueue(encodeError(coded.Code(), coded.Error()))
		return
	}
	c.log().Error().Err(err).Msg("legacy socket: send")
	c.enqueue(encodeError("INTERNAL_SERVER_ERROR", "internal error"))
}

// deliver is the follower's callback: it must not block.
func (c *conn) deliver(ev Event) bool {
	return c.enqueue(encodeEvent(ev))
}

// followEnded runs when the follower gave up by itself.
func (c *conn) followEnded() {
	c.close(websocket.CloseInternalServerErr, "the conversation's feed failed: reconnect")
}

func (c *conn) readEnded(err error) {
	var ce *websocket.CloseError
	switch {
	case c.isClosing():
	case errors.As(err, &ce):
		c.log().Debug().Int("code", ce.Code).Str("reason", ce.Text).Msg("legacy socket closed by client")
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has sent 1009 already.
		c.log().Debug().Int64("limit", c.h.cfg.MaxFrameBytes).Msg("legacy socket frame too large")
	default:
		c.log().Debug().Err(err).Msg("legacy socket read")
	}
}

// teardown releases the socket: the follower, the timers, the connection.
// It may run before start, when the upgrade fails.
func (c *conn) teardown() {
	c.mu.Lock()
	c.closing = true
	c.queue, c.queueBytes = nil, 0
	timers := []*time.Timer{c.keepAlive, c.expiry}
	ws := c.ws
	c.mu.Unlock()
	for _, t := range timers {
		if t != nil {
			// A timer left running would keep the closed socket in
			// memory until it fired: hours, for a token's expiry.
			t.Stop()
		}
	}
	if c.stopFollow != nil {
		c.stopFollow()
	}
	c.cancel()
	if ws != nil {
		_ = ws.Close()
	}
}

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// extendRead pushes the read deadline out: a peer that sends nothing, not
// even a pong, for two keep-alive intervals is gone.
func (c *conn) extendRead() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closing {
		_ = c.ws.SetReadDeadline(time.Now().Add(2*c.h.cfg.KeepAlive + c.h.cfg.WriteTimeout))
	}
}

// ping runs on the keep-alive timer.
func (c *conn) ping() {
	if c.isClosing() {
		return
	}
	// Control frames may be written concurrently with the writer.
	if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.h.cfg.WriteTimeout)); err != nil {
		c.abort(err)
		return
	}
	c.mu.Lock()
	if !c.closing {
		c.keepAlive.Reset(c.h.cfg.KeepAlive)
	}
	c.mu.Unlock()
}

// close starts an orderly close: the frames already queued are written,
// then the close frame, and the read loop waits a little for the peer's
// answer. Only the first call has an effect. It never blocks, so that the
// follower's callback may call it.
func (c *conn) close(code int, reason string) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.closeMsg = websocket.FormatCloseMessage(code, reason)
	kick := c.started && !c.writing
	if kick {
		c.writing = true
	}
	if c.started {
		_ = c.ws.SetReadDeadline(time.Now().Add(c.h.cfg.WriteTimeout + closeGrace))
	}
	c.mu.Unlock()
	c.log().Debug().Int("code", code).Str("reason", reason).Msg("legacy socket closing")
	if kick {
		go c.writeLoop()
	}
}

// abort drops the TCP connection; the read loop then ends and tears down.
func (c *conn) abort(err error) {
	c.mu.Lock()
	already := c.closing
	c.closing = true
	c.queue, c.queueBytes = nil, 0
	c.mu.Unlock()
	if !already {
		c.log().Debug().Err(err).Msg("legacy socket dropped")
	}
	_ = c.ws.NetConn().Close()
}
