package wsconn

import (
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Conn is one socket's machinery. Embed it by value in the protocol's
// connection, call Init, then Start once the upgrade has succeeded, and
// hand it to Endpoint.Serve. Its zero value is not usable before Init.
//
// The read loop is the only reader. Data frames are written by a writer
// goroutine that runs only while the queue is not empty, or a close frame
// waits; pings are written by the keep-alive timer. mu guards the fields
// below it.
type Conn struct {
	e *Endpoint
	p Protocol

	mu sync.Mutex
	// ws is nil until Start: frames queued before wait for it.
	ws         *websocket.Conn
	queue      []Frame
	queueBytes int
	// drained, when not nil, is closed by the writer once it has taken the
	// queue, or when the socket ends: WaitRoom blocks on it.
	drained   chan struct{}
	keepAlive *time.Timer
	// closeCode (not 0) and closeReason make a close frame waiting for the
	// frames queued before it.
	closeReason string
	closeCode   uint16
	closing     bool
	writing     bool
	keepFrames  bool // queue e.cfg.KeepAliveFrame before each ping
	// ended is set by End: nothing more may be claimed of the Quota.
	ended bool
	// quotaUser and quotaAddr are the Quota's keys this socket counts
	// against ("" for none); End gives them back.
	quotaUser, quotaAddr string
}

// Init ties c to its endpoint and protocol. Frames may be queued, and c
// closed, before Start: they go out once it has started.
func (c *Conn) Init(e *Endpoint, p Protocol) {
	c.e, c.p = e, p
}

// Start takes the upgraded connection: reading is limited to
// MaxFrameBytes, the keep-alive starts, and what was queued before (a
// close frame too) goes out.
func (c *Conn) Start(ws *websocket.Conn) {
	cfg := &c.e.cfg
	ws.SetReadLimit(cfg.MaxFrameBytes)
	ws.SetPongHandler(func(string) error {
		c.extendRead()
		return nil
	})
	c.mu.Lock()
	c.ws = ws
	c.keepAlive = time.AfterFunc(cfg.KeepAlive, c.ping)
	kick := !c.writing && (len(c.queue) > 0 || c.closeCode != 0)
	if kick {
		c.writing = true
	}
	if c.closing {
		// Closed before the upgrade answered: wait for the peer's close
		// frame only so long.
		_ = ws.SetReadDeadline(time.Now().Add(cfg.WriteTimeout + closeGrace))
	}
	c.mu.Unlock()
	c.extendRead()
	if kick {
		go c.writeLoop()
	}
}

// Closing reports whether c is closing or closed: nothing more is queued.
func (c *Conn) Closing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// End ends c at once, if it has not ended: nothing more is queued or
// written, waiters for room return ErrClosed, the keep-alive stops, and the
// connection (if started) closes. It may run before Start, when the
// upgrade fails.
func (c *Conn) End() {
	c.mu.Lock()
	c.closing = true
	c.ended = true
	c.queue, c.queueBytes = nil, 0
	c.wakeLocked()
	if c.keepAlive != nil {
		// A timer left running would keep the closed socket in memory
		// until it fired.
		c.keepAlive.Stop()
	}
	ws := c.ws
	user, addr := c.quotaUser, c.quotaAddr
	c.quotaUser, c.quotaAddr = "", ""
	c.mu.Unlock()
	if ws != nil {
		_ = ws.Close()
	}
	c.e.cfg.Quota.release(user, addr)
}

// serve runs the read loop until the socket ends, then ends c and tells
// the protocol.
func (c *Conn) serve() {
	cfg := &c.e.cfg
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			c.readEnded(err)
			break
		}
		if c.Closing() {
			// Drain until the peer answers our close frame.
			continue
		}
		c.extendRead()
		if code, reason := checkFrame(typ, data); code != 0 {
			c.p.Log().Debug().Int("code", code).Msg(cfg.Name + " frame refused: " + reason)
			c.Close(code, reason)
			continue
		}
		c.offload(data)
	}
	c.End()
	c.p.Ended()
}

// checkFrame applies RFC 6455's rules above the framing, which gorilla
// leaves to its caller, to a data message: every protocol jobchat speaks is
// JSON text, so a binary message is refused (1003, unsupported data), and
// a text message must be UTF-8 (1007, inconsistent data). code is 0 when
// the message may go to the protocol.
func checkFrame(typ int, data []byte) (code int, reason string) {
	switch {
	case typ != websocket.TextMessage:
		return websocket.CloseUnsupportedData, "binary messages are not accepted: send JSON text"
	case !utf8.Valid(data):
		return websocket.CloseInvalidFramePayloadData, "text message is not valid UTF-8"
	}
	return 0, ""
}

// offload handles one message on a short-lived goroutine and waits for it,
// so messages are still handled one at a time and in order. The reason is
// memory: the read loop lives as long as the socket, and a goroutine keeps
// the stack its deepest call grew (parsing, validation, a database query)
// until a garbage collection shrinks it, which an idle server rarely runs.
// Idle sockets so cost a small stack each.
func (c *Conn) offload(data []byte) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.p.Receive(data)
	}()
	<-done
}

func (c *Conn) readEnded(err error) {
	cfg := &c.e.cfg
	var ce *websocket.CloseError
	switch {
	case c.Closing():
	case errors.As(err, &ce):
		c.p.Log().Debug().Int("code", ce.Code).Str("reason", ce.Text).Msg(cfg.Name + " closed by client")
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has sent 1009 already.
		c.p.Log().Debug().Int64("limit", cfg.MaxFrameBytes).Msg(cfg.Name + " frame too large")
	default:
		c.drop(fmt.Errorf("%s read: %w", cfg.Name, err))
	}
}

// Protocol returns the protocol c was initialised with.
func (c *Conn) Protocol() Protocol { return c.p }
