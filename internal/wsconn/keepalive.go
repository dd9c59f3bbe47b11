package wsconn

import (
	"fmt"
	"time"

	"github.com/gorilla/websocket"
)

// extendRead pushes the read deadline out: a peer that sends nothing, not
// even a pong, for two keep-alive intervals is gone.
func (c *Conn) extendRead() {
	cfg := &c.e.cfg
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closing {
		_ = c.ws.SetReadDeadline(time.Now().Add(2*cfg.KeepAlive + cfg.WriteTimeout))
	}
}

// SendKeepAliveFrames makes every later ping follow the Endpoint's
// KeepAliveFrame, for protocols with keep-alive messages of their own.
func (c *Conn) SendKeepAliveFrames() {
	c.mu.Lock()
	c.keepFrames = true
	c.mu.Unlock()
}

// ping runs on the keep-alive timer.
func (c *Conn) ping() {
	cfg := &c.e.cfg
	c.mu.Lock()
	closing, frames := c.closing, c.keepFrames
	c.mu.Unlock()
	if closing {
		return
	}
	if frames {
		c.Push(Frame{Head: cfg.KeepAliveFrame})
	}
	// Control frames may be written concurrently with the writer.
	if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteTimeout)); err != nil {
		c.drop(fmt.Errorf("%s ping: %w", cfg.Name, err))
		return
	}
	c.mu.Lock()
	if !c.closing {
		c.keepAlive.Reset(cfg.KeepAlive)
	}
	c.mu.Unlock()
}
