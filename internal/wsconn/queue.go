package wsconn

import (
	"context"
	"fmt"
	"time"

	"github.com/gorilla/websocket"
)

// maxQueueBytes bounds the bytes waiting for one client, whatever their
// number of frames: a few large messages must not pin megabytes each. One
// frame is always let in when there is room by this count, so a single
// frame larger than the bound still goes out.
const maxQueueBytes = 1 << 20

// Push queues a protocol frame without waiting. It reports false when c is
// closing, or when it has just cut the client off for letting 2×SendQueue
// frames pile up.
func (c *Conn) Push(f Frame) bool { return c.add(f, push) }

// Offer queues a data frame if there is room (fewer than SendQueue frames
// and 1 MiB waiting), reporting whether it did. When it did not, WaitRoom
// and offer again.
func (c *Conn) Offer(f Frame) bool { return c.add(f, offer) }

// Send queues a data frame if there is room, as Offer, and cuts the client
// off when there is none. It reports whether f was queued.
func (c *Conn) Send(f Frame) bool { return c.add(f, send) }

// door is how a frame enters the queue; there are three, one per kind of
// frame.
//
//   - Push: small protocol frames (acknowledgements, pongs, completions,
//     errors) never wait; a client that lets twice SendQueue frames pile up
//     is cut off, as it would otherwise hold memory without bound.
//   - Offer and WaitRoom: data that may wait for its client, which slows a
//     producer down to its client's pace; a client that takes nothing for
//     WriteTimeout is cut off.
//   - Send: data that cannot wait, on a protocol that cannot slow down: a
//     frame that finds no room cuts the client off, and the client learns
//     from the close that it missed frames.
//
// The cut-off closes with 1008 (policy violation).
type door uint8

const (
	push door = iota
	offer
	send
)

// add queues f through door d, starting the writer if it is not running
// and c has started.
func (c *Conn) add(f Frame, d door) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	room := c.roomLocked()
	if d == push {
		room = len(c.queue) < 2*c.e.cfg.SendQueue
	}
	if !room {
		c.mu.Unlock()
		if d != offer {
			c.CutOff()
		}
		return false
	}
	c.queue = append(c.queue, f)
	c.queueBytes += f.size()
	kick := c.ws != nil && !c.writing
	if kick {
		c.writing = true
	}
	c.mu.Unlock()
	if kick {
		go c.writeLoop()
	}
	return true
}

// WaitRoom waits until the queue has room for Offer. It fails with
// ctx.Err() when ctx ends, ErrClosed when c is closing, or ErrCutOff when
// the client took nothing for WriteTimeout, having cut it off.
func (c *Conn) WaitRoom(ctx context.Context) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	c.mu.Lock()
	for {
		if c.closing {
			c.mu.Unlock()
			return ErrClosed
		}
		if c.roomLocked() {
			c.mu.Unlock()
			return nil
		}
		if c.drained == nil {
			c.drained = make(chan struct{})
		}
		drained := c.drained
		c.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(c.e.cfg.WriteTimeout)
		}
		select {
		case <-drained:
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			c.CutOff()
			return ErrCutOff
		}
		c.mu.Lock()
	}
}

// CutOff drops what waits for the client and closes with 1008: a client
// that does not read must not hold memory.
func (c *Conn) CutOff() {
	c.mu.Lock()
	c.queue, c.queueBytes = nil, 0
	c.mu.Unlock()
	c.p.Log().Warn().Int("send_queue", c.e.cfg.SendQueue).Msg(c.e.cfg.Name + " client not reading; cutting it off")
	c.Close(websocket.ClosePolicyViolation, "slow consumer: too many frames waiting")
}

// wakeLocked wakes those waiting for room, with mu held.
func (c *Conn) wakeLocked() {
	if c.drained != nil {
		close(c.drained)
		c.drained = nil
	}
}

func (c *Conn) roomLocked() bool {
	return len(c.queue) < c.e.cfg.SendQueue && c.queueBytes < maxQueueBytes
}

// writeLoop writes the queue out, then the close frame if one waits, and
// ends when there is nothing left: an idle socket has no writer.
func (c *Conn) writeLoop() {
	cfg := &c.e.cfg
	for {
		c.mu.Lock()
		batch := c.queue
		c.queue, c.queueBytes = nil, 0
		c.wakeLocked()
		if len(batch) == 0 {
			c.writing = false
			code, reason := c.closeCode, c.closeReason
			c.closeCode, c.closeReason = 0, ""
			c.mu.Unlock()
			if code != 0 {
				c.writeClose(websocket.FormatCloseMessage(int(code), reason))
			}
			return
		}
		c.mu.Unlock()
		for _, f := range batch {
			err := c.ws.SetWriteDeadline(time.Now().Add(cfg.WriteTimeout))
			if err == nil {
				err = c.write(f)
			}
			if err != nil {
				c.drop(fmt.Errorf("%s write: %w", cfg.Name, err))
				c.mu.Lock()
				c.writing = false
				c.mu.Unlock()
				return
			}
		}
	}
}

// write sends f as one websocket message. gorilla copies the parts into its
// (pooled) write buffer, so a body shared by many sockets is never copied
// per socket on the heap.
func (c *Conn) write(f Frame) error {
	if f.Body == nil {
		return c.ws.WriteMessage(websocket.TextMessage, f.Head)
	}
	w, err := c.ws.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	_, _ = w.Write(f.Head)
	_, _ = w.Write(f.Body)
	_, _ = w.Write(closeBrace)
	return w.Close()
}

var closeBrace = []byte{'}'}
