package legacy

import (
	"context"
	"errors"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/internal/auth"
	"github.com/jobchat/jobchat/internal/wsconn"
)

// Close codes beyond the standard ones (1001 going away, 1008 slow client,
// 1009 frame too big).
const (
	// closeExpired ends a socket whose token expired, as the GraphQL
	// socket does: the client reconnects with a fresh one.
	closeExpired = 4403
)

// conn is one socket: the old protocol over the wsconn machinery in sock,
// which reads, queues, writes, pings and closes. A timer, not a goroutine,
// ends the socket when the token expires.
type conn struct {
	sock   wsconn.Conn
	h      *Handler
	caller auth.Caller
	convID string

	// ctx ends when the socket does; it is the parent of every send.
	ctx    context.Context
	cancel context.CancelFunc

	// stopFollow ends the conversation's follower; set before start.
	stopFollow func()
	// expiry is set by start, before the socket is served.
	expiry *time.Timer
}

var _ wsconn.Protocol = (*conn)(nil)

func newConn(ctx context.Context, cancel context.CancelFunc, h *Handler, caller auth.Caller, convID string) *conn {
	c := &conn{h: h, ctx: ctx, cancel: cancel, caller: caller, convID: convID}
	c.sock.Init(h.sockets, c)
	return c
}

// Log is the socket's logger.
func (c *conn) Log() *zerolog.Logger { return zerolog.Ctx(c.ctx) }

// start takes the upgraded socket: frames queued by the follower since it
// started go out now.
func (c *conn) start(ws *websocket.Conn) {
	c.sock.Start(ws)
	if exp := c.caller.ExpiresAt; !exp.IsZero() {
		c.expiry = time.AfterFunc(time.Until(exp), func() {
			c.close(closeExpired, "token expired")
		})
	}
}

// Receive sends one client frame. What the old consumer ignored is
// ignored; a refused send gets an error frame and the socket stays open.
func (c *conn) Receive(data []byte) {
	text, msgType, notText, ok := decodeSend(data)
	if !ok {
		return
	}
	if notText != "" {
		// The code and wording GraphQL gives the same text.
		c.enqueue(encodeError("BAD_USER_INPUT", "message is not Unicode text: it "+notText))
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
	c.Log().Error().Err(err).Msg("legacy socket: send")
	c.enqueue(encodeError("INTERNAL_SERVER_ERROR", "internal error"))
}

// enqueue queues a frame without waiting. It reports false when the socket
// is closing or its client lets too much pile up; the client is then cut
// off (wsconn.Conn.Send). Unlike the GraphQL socket there is nothing to
// slow down to the client's pace: the old protocol cannot resume, so a
// frame that does not fit is a frame lost to a client too slow to keep up,
// and dropping the socket tells it to reconnect and reload, which the old
// frontend does.
func (c *conn) enqueue(frame []byte) bool {
	return c.sock.Send(wsconn.Frame{Head: frame})
}

// deliver is the follower's callback: it must not block.
func (c *conn) deliver(ev Event) bool {
	return c.enqueue(encodeEvent(ev))
}

// followEnded runs when the follower gave up by itself.
func (c *conn) followEnded() {
	c.close(websocket.CloseInternalServerErr, "the conversation's feed failed: reconnect")
}

// close starts an orderly close (wsconn.Conn.Close). It never blocks, so
// that the follower's callback may call it.
func (c *conn) close(code int, reason string) {
	c.sock.Close(code, reason)
}

// Ending logs a socket dropped for a failure. An orderly close leaves the
// context alone: a send in flight finishes.
func (c *conn) Ending(err error) {
	if err != nil {
		c.Log().Debug().Err(err).Msg("legacy socket dropped")
	}
}

// Ended releases the socket once it has closed.
func (c *conn) Ended() { c.teardown() }

// teardown releases the socket: the connection, the follower, the timers.
// It may run before start, when the upgrade fails.
func (c *conn) teardown() {
	c.sock.End()
	if c.expiry != nil {
		// A timer left running would keep the closed socket in memory
		// until it fired: hours, for a token's expiry.
		c.expiry.Stop()
	}
	if c.stopFollow != nil {
		c.stopFollow()
	}
	c.cancel()
}
