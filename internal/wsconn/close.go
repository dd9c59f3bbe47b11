package wsconn

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// closeGrace is how long a closing socket waits for the peer's close frame
// before the TCP connection is dropped, and bounds writing the close frame.
const closeGrace = time.Second

// Close starts an orderly close: the frames already queued are written,
// then the close frame with code and reason (cut to fit), and the read loop
// waits a little for the peer's answer. Only the first call has an effect:
// it calls the protocol's Ending(nil). Close never blocks, so that a
// callback that must not block may call it.
func (c *Conn) Close(code int, reason string) {
	cfg := &c.e.cfg
	reason = truncateReason(reason)
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.closeCode, c.closeReason = uint16(code), reason
	started := c.ws != nil
	kick := started && !c.writing
	if kick {
		c.writing = true
	}
	if started {
		_ = c.ws.SetReadDeadline(time.Now().Add(cfg.WriteTimeout + closeGrace))
	}
	c.mu.Unlock()
	c.p.Ending(nil)
	c.p.Log().Debug().Int("code", code).Str("reason", reason).Msg(cfg.Name + " closing")
	if kick {
		go c.writeLoop()
	}
}

// GoAway closes c with 1001, as a server shutting down: clients reconnect,
// to this server once it is back or to another.
func (c *Conn) GoAway() {
	c.Close(websocket.CloseGoingAway, "server shutting down")
}

// drop drops the TCP connection after a failure; the read loop then ends.
func (c *Conn) drop(err error) {
	c.mu.Lock()
	already := c.closing
	c.closing = true
	c.queue, c.queueBytes = nil, 0
	ws := c.ws
	c.mu.Unlock()
	if !already {
		c.p.Ending(err)
	}
	_ = ws.NetConn().Close()
}

func (c *Conn) writeClose(msg []byte) {
	err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeGrace))
	if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
		c.drop(fmt.Errorf("%s close: %w", c.e.cfg.Name, err))
	}
}

// maxReason is the longest close reason: a close frame's payload is 125
// bytes at most, two of them the code.
const maxReason = 123

// truncateReason cuts reason to fit a close frame without splitting a
// rune: gorilla refuses longer ones outright.
func truncateReason(reason string) string {
	if len(reason) <= maxReason {
		return reason
	}
	cut := maxReason
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}
