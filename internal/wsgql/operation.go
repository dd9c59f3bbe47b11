package wsgql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/jobchat/jobchat/internal/stream"
	"github.com/jobchat/jobchat/internal/wsconn"
)

// operation is one running subscribe/start.
type operation struct {
	id     string
	cancel context.CancelFunc
	// prefix and suffix frame each result: {"id":…,"type":"next","payload":
	// and }.
	prefix []byte
}

// start runs one operation in its own goroutine. The caller has checked the
// id is free.
func (c *conn) start(id string, params *graphql.RawParams, received time.Time) {
	c.mu.Lock()
	full := len(c.active) >= c.cfg.MaxOperations
	c.mu.Unlock()
	if full {
		if c.cfg.OnOperationRefused != nil {
			c.cfg.OnOperationRefused()
		}
		c.sendErrors(id, gqlerror.List{{
			Message:    fmt.Sprintf("too many active operations on this socket: at most %d", c.cfg.MaxOperations),
			Extensions: map[string]any{"code": "RATE_LIMITED"},
		}})
		return
	}

	traced := graphql.StartOperationTrace(c.opParent)
	params.ReadTime = graphql.TraceTiming{Start: received, End: graphql.Now()}
	rc, errs := c.exec.CreateOperationContext(traced, params)
	if errs != nil {
		resp := c.exec.DispatchError(graphql.WithOperationContext(traced, rc), errs)
		c.sendErrors(id, resp.Errors)
		return
	}

	if c.cfg.Pusher != nil && rc.Operation.Operation == ast.Subscription {
		// A pushed subscription has no context of its own and keeps
		// nothing of the operation (variables, stats): one may live for
		// days. Its cancel is the pusher's stop, set once Push accepts.
		op := &operation{id: id, prefix: framePrefix(id, c.legacy)}
		if !c.register(op, nil) {
			return
		}
		began := time.Now()
		if stop, ok := c.cfg.Pusher.Push(c.opParent, rc, &sink{c: c, op: op}); ok {
			c.mu.Lock()
			live := c.active[id] == op && !c.sock.Closing()
			if live {
				op.cancel = stop
			}
			c.mu.Unlock()
			if !live {
				// Completed (by the pusher, or a closing socket) before
				// it could be told how to stop.
				stop()
			}
			c.Log().Debug().Str("op", rc.OperationName).Str("op_type", "subscription").Bool("pushed", true).
				Float64("duration_ms", millis(time.Since(began))).Msg("graphql operation")
			return
		}
		// Declined: the executor takes it, in a context of its own.
		exCtx, exCancel := context.WithCancel(graphql.WithOperationContext(traced, rc))
		exOp := &operation{id: id, cancel: exCancel, prefix: op.prefix}
		if c.register(exOp, op) {
			c.runExecutor(exCtx, exOp, rc)
		}
		return
	}

	ctx, cancel := context.WithCancel(graphql.WithOperationContext(traced, rc))
	op := &operation{id: id, cancel: cancel, prefix: framePrefix(id, c.legacy)}
	if c.register(op, nil) {
		c.runExecutor(ctx, op, rc)
	}
}

// register makes op the operation of its id, in place of prev (nil: none).
// It reports false, and cancels op, if the socket is closing or the client
// completed prev meanwhile.
func (c *conn) register(op, prev *operation) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sock.Closing() || c.active[op.id] != prev {
		if op.cancel != nil {
			op.cancel()
		}
		return false
	}
	c.active[op.id] = op
	return true
}

// runExecutor runs op through gqlgen's executor on a goroutine of its own.
func (c *conn) runExecutor(ctx context.Context, op *operation, rc *graphql.OperationContext) {
	c.mu.Lock()
	if c.active[op.id] != op {
		c.mu.Unlock()
		return
	}
	c.ops.Add(1)
	c.mu.Unlock()
	go c.run(ctx, op, rc)
}

// sink is how a stream.Pusher feeds one operation. It has no goroutine: the
// pusher calls it from wherever its results are made.
type sink struct {
	c  *conn
	op *operation
}

var _ stream.Sink = (*sink)(nil)

func (s *sink) Send(payload []byte) bool { return s.c.tryResult(s.op, payload) }

func (s *sink) WaitRoom(ctx context.Context) error { return s.c.waitRoom(ctx, s.op) }

func (s *sink) Complete() {
	c := s.c
	c.mu.Lock()
	cancel := s.op.cancel // nil while Push has not returned; start stops it then
	c.mu.Unlock()
	if c.release(s.op) && c.opParent.Err() == nil {
		c.enqueue(frameComplete(s.op.id, c.legacy))
	}
	if cancel != nil {
		cancel()
	}
}

func (c *conn) run(ctx context.Context, op *operation, rc *graphql.OperationContext) {
	defer c.ops.Done()
	defer op.cancel()
	defer func() {
		if p := recover(); p != nil {
			err := rc.Recover(ctx, p)
			gerr := &gqlerror.Error{Message: "internal error"}
			if err != nil {
				gerr.Message = err.Error()
			}
			if c.release(op) {
				c.sendErrors(op.id, gqlerror.List{gerr})
			}
		}
	}()

	responses, ctx := c.exec.DispatchOperation(ctx, rc)
	for {
		resp := responses(ctx)
		if resp == nil {
			break
		}
		b, err := json.Marshal(resp)
		if err != nil {
			panic(fmt.Errorf("encode response: %w", err))
		}
		if !c.enqueueResult(ctx, op, b) {
			return
		}
	}
	// An operation ended by the socket's end (close, expiry, shutdown) gets
	// no complete: that would tell the client its subscription finished.
	if c.release(op) && c.opParent.Err() == nil {
		c.enqueue(frameComplete(op.id, c.legacy))
	}
}

// release forgets op, reporting whether it was still registered (the client
// had not completed or replaced it).
func (c *conn) release(op *operation) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active[op.id] != op {
		return false
	}
	delete(c.active, op.id)
	return true
}

// stop ends the client's operation id, if it runs, without a complete.
func (c *conn) stop(id string) {
	c.mu.Lock()
	op := c.active[id]
	delete(c.active, id)
	var cancel func()
	if op != nil {
		cancel = op.cancel
	}
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

func (c *conn) isActive(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active[id] != nil
}

func (c *conn) sendErrors(id string, errs gqlerror.List) {
	b, err := json.Marshal(errs)
	if err != nil {
		b = []byte(`[{"message":"internal error"}]`)
	}
	c.enqueue(frameError(id, b))
}

// enqueueResult queues a result frame of op, waiting while the queue is
// full. The wait is what slows a subscription down to its client's pace
// (and lets the hub resynchronise it when it lags too far); a client that
// takes nothing for WriteTimeout is cut off. It reports whether op may go on.
func (c *conn) enqueueResult(ctx context.Context, op *operation, body []byte) bool {
	for !c.tryResult(op, body) {
		if c.waitRoom(ctx, op) != nil {
			return false
		}
	}
	return true
}

// tryResult queues a result of op if there is room, reporting whether it
// did. It holds mu while it queues, so that no result follows op's end
// (a complete, or a replacement) onto the wire.
func (c *conn) tryResult(op *operation, body []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active[op.id] == op && c.sock.Offer(wsconn.Frame{Head: op.prefix, Body: body})
}

var errOperationOver = errors.New("operation is over")

// waitRoom waits until the queue has room for a result of op.
func (c *conn) waitRoom(ctx context.Context, op *operation) error {
	if !c.isCurrent(op) {
		// The client completed op.
		return errOperationOver
	}
	err := c.sock.WaitRoom(ctx)
	if errors.Is(err, wsconn.ErrClosed) || err == nil && !c.isCurrent(op) {
		return errOperationOver
	}
	return err
}

// isCurrent reports whether op is still the operation of its id.
func (c *conn) isCurrent(op *operation) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active[op.id] == op
}

// millis is d in milliseconds, with microseconds, for log fields named
// *_ms as the access log's.
func millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
