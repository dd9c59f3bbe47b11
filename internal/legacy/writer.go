package legacy

import (
	"fmt"
	"time"

	"github.com/gorilla/websocket"
)

// maxQueueBytes bounds the bytes waiting for one client, whatever their
// number of frames: a few large messages must not pin megabytes each.
const maxQueueBytes = 1 << 20

// enqueue queues a frame without waiting. It reports false when the socket
// is closing or its client lets too much pile up; the client is then cut
// off, since it would otherwise hold memory without bound. Unlike the
// GraphQL socket there is nothing to slow down to the client's pace: the
// old protocol cannot resume, so a frame that does not fit is a frame lost
// to a client too slow to keep up, and dropping the socket tells it to
// reconnect and reload, which the old frontend does.
func (c *conn) enqueue(frame []byte) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	if len(c.queue) >= c.h.cfg.SendQueue || c.queueBytes+len(frame) > maxQueueBytes {
		c.queue, c.queueBytes = nil, 0
		c.mu.Unlock()
		c.log().Warn().Int("send_queue", c.h.cfg.SendQueue).Msg("legacy socket client not reading; cutting it off")
		c.close(websocket.ClosePolicyViolation, "slow consumer: too many frames waiting")
		return false
	}
	c.queue = append(c.queue, frame)
	c.queueBytes += len(frame)
	kick := c.started && !c.writing
	if kick {
		c.writing = true
	}
	c.mu.Unlock()
	if kick {
		go c.writeLoop()
	}
	return true
}

// writeLoop writes the queue out, then the close frame if one waits, and
// ends when there is nothing left: an idle socket has no writer.
func (c *conn) writeLoop() {
	timeout := c.h.cfg.WriteTimeout
	for {
		c.mu.Lock()
		batch := c.queue
		c.queue, c.queueBytes = nil, 0
		if len(batch) == 0 {
			c.writing = false
			msg := c.closeMsg
			c.closeMsg = nil
			c.mu.Unlock()
			if msg != nil {
				err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeGrace))
				if err != nil && err != websocket.ErrCloseSent {
					c.abort(fmt.Errorf("legacy socket close: %w", err))
				}
			}
			return
		}
		c.mu.Unlock()
		for _, f := range batch {
			err := c.ws.SetWriteDeadline(time.Now().Add(timeout))
			if err == nil {
				err = c.ws.WriteMessage(websocket.TextMessage, f)
			}
			if err != nil {
				c.abort(fmt.Errorf("legacy socket write: %w", err))
				c.mu.Lock()
				c.writing = false
				c.mu.Unlock()
				return
			}
		}
	}
}
