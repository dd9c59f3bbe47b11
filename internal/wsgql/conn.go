package wsgql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/jobchat/jobchat/internal/stream"
)

type initState uint8

const (
	initWaiting initState = iota
	initRunning
	initDone
)

// conn is one socket. The read loop (serve) is the only reader and the only
// goroutine that changes the protocol state; writes of data frames happen in
// writeLoop, which runs only while the queue is non-empty. mu guards the
// fields below it.
type conn struct {
	cfg    Config
	exec   graphql.GraphExecutor
	ws     *websocket.Conn
	legacy bool

	// ctx ends when the socket does; cancel ends it.
	ctx    context.Context
	cancel context.CancelFunc
	// opParent is what Init returned: every operation's parent.
	opParent context.Context

	ops sync.WaitGroup

	// keepAlive and expiry are guarded by mu: their callbacks run on timer
	// goroutines.
	keepAlive *time.Timer
	expiry    *time.Timer
	initTimer *time.Timer

	mu         sync.Mutex
	state      initState
	active     map[string]*operation
	queue      []frame
	queueBytes int
	// drained, when not nil, is closed by the writer once it has taken the
	// queue: operations waiting for room block on it.
	drained chan struct{}
	writing bool
	closing bool
	// closeMsg is a close frame waiting for the frames queued before it.
	closeMsg []byte
}

// frame is one queued websocket message: head alone, or a result, which is
// head (the operation's prefix), body (the response JSON, possibly shared
// with other sockets) and a closing brace, written as one message without
// copying body.
type frame struct {
	head, body []byte
}

func (f frame) size() int { return len(f.head) + len(f.body) }

// operation is one running subscribe/start.
type operation struct {
	id     string
	cancel context.CancelFunc
	// prefix and suffix frame each result: {"id":…,"type":"next","payload":
	// and }.
	prefix []byte
}

func newConn(r *http.Request, ws *websocket.Conn, exec graphql.GraphExecutor, cfg Config) *conn {
	// Not the request's own context: net/http cancels it when the handler
	// returns, which a detached socket outlives. Its values (logger, caller
	// from the upgrade header) carry over; shutdown arrives through
	// Transport.Shutdown.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	return &conn{
		cfg:    cfg,
		exec:   exec,
		ws:     ws,
		legacy: ws.Subprotocol() == ProtocolLegacy,
		ctx:    ctx,
		cancel: cancel,
		active: make(map[string]*operation),
	}
}

func (c *conn) log() *zerolog.Logger { return zerolog.Ctx(c.ctx) }

// serve runs the read loop until the socket ends, then releases everything
// the socket holds.
func (c *conn) serve() {
	defer c.teardown()
	if c.ws.Subprotocol() == "" {
		// Like graphql-ws's reference server: the handshake succeeds, and the
		// socket closes at once with a code a client can act on.
		c.close(CloseSubprotocol, "Subprotocol not acceptable")
	}
	c.ws.SetReadLimit(c.cfg.MaxFrameBytes)
	c.ws.SetPongHandler(func(string) error {
		c.extendRead()
		return nil
	})
	c.extendRead()
	c.initTimer = time.AfterFunc(c.cfg.InitTimeout, func() {
		c.mu.Lock()
		waiting := c.state != initDone
		c.mu.Unlock()
		if waiting {
			c.close(CloseInitTimeout, "Connection initialisation timeout")
		}
	})
	c.mu.Lock()
	c.keepAlive = time.AfterFunc(c.cfg.KeepAlive, c.ping)
	c.mu.Unlock()

	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.readEnded(err)
			return
		}
		if c.isClosing() {
			// Drain until the peer answers our close frame.
			continue
		}
		c.extendRead()
		c.offload(data)
	}
}

// offload handles one client message on a short-lived goroutine and waits
// for it, so messages are still handled one at a time and in order. The
// reason is memory: the read loop lives as long as the socket, and a
// goroutine keeps the stack its deepest call grew (parsing, validation, a
// database query) until a garbage collection shrinks it, which an idle
// server rarely runs. Idle sockets so cost a small stack each.
func (c *conn) offload(data []byte) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if c.legacy {
			c.handleLegacy(data)
		} else {
			c.handle(data)
		}
	}()
	<-done
}

func (c *conn) readEnded(err error) {
	var ce *websocket.CloseError
	switch {
	case c.isClosing():
	case errors.As(err, &ce):
		c.log().Debug().Int("code", ce.Code).Str("reason", ce.Text).Msg("websocket closed by client")
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has sent 1009 already.
		c.log().Debug().Int64("limit", c.cfg.MaxFrameBytes).Msg("websocket frame too large")
	default:
		if c.cfg.OnError != nil {
			c.cfg.OnError(c.ctx, fmt.Errorf("websocket read: %w", err))
		}
	}
}

func (c *conn) teardown() {
	c.mu.Lock()
	c.closing = true
	c.queue, c.queueBytes = nil, 0
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
	for _, t := range []*time.Timer{c.keepAlive, c.expiry} {
		if t != nil {
			// A timer left running would keep the closed socket in memory
			// until it fired: hours, for a token's expiry.
			t.Stop()
		}
	}
	c.mu.Unlock()
	_ = c.ws.Close()
	c.ops.Wait()
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
		_ = c.ws.SetReadDeadline(time.Now().Add(2*c.cfg.KeepAlive + c.cfg.WriteTimeout))
	}
}

// ping runs on the keep-alive timer.
func (c *conn) ping() {
	if c.isClosing() {
		return
	}
	if c.legacy {
		c.mu.Lock()
		ready := c.state == initDone
		c.mu.Unlock()
		if ready {
			c.enqueue(frameKA)
		}
	}
	// Control frames may be written concurrently with the data writer.
	if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.cfg.WriteTimeout)); err != nil {
		c.abort(fmt.Errorf("websocket ping: %w", err))
		return
	}
	c.mu.Lock()
	if !c.closing {
		c.keepAlive.Reset(c.cfg.KeepAlive)
	}
	c.mu.Unlock()
}

// close starts an orderly close: operations end, frames already queued are
// written, then the close frame, and the read loop waits a little for the
// peer's answer. Only the first call has an effect.
func (c *conn) close(code int, reason string) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	msg := websocket.FormatCloseMessage(code, truncateReason(reason))
	writeNow := !c.writing
	if !writeNow {
		c.closeMsg = msg
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(c.cfg.WriteTimeout + closeGrace))
	c.mu.Unlock()
	c.cancel()
	c.log().Debug().Int("code", code).Str("reason", reason).Msg("websocket closing")
	if writeNow {
		c.writeClose(msg)
	}
}

func (c *conn) writeClose(msg []byte) {
	err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeGrace))
	if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
		c.abort(fmt.Errorf("websocket close: %w", err))
	}
}

// abort drops the TCP connection; the read loop then ends and tears down.
func (c *conn) abort(err error) {
	c.mu.Lock()
	already := c.closing
	c.closing = true
	c.queue, c.queueBytes = nil, 0
	c.mu.Unlock()
	if !already && c.cfg.OnError != nil {
		c.cfg.OnError(c.ctx, err)
	}
	c.cancel()
	_ = c.ws.NetConn().Close()
}

// maxQueueBytes bounds the bytes waiting for one client, whatever their
// number of frames: a few large messages must not pin megabytes each.
const maxQueueBytes = 1 << 20

// enqueue queues a protocol frame (ack, pong, ka, complete, error). These
// are small and never wait; a client that lets twice SendQueue frames pile
// up is cut off, as it would otherwise hold memory without bound.
func (c *conn) enqueue(msg []byte) {
	c.mu.Lock()
	c.enqueueLocked(frame{head: msg})
}

// enqueueLocked is enqueue with mu held; it unlocks mu.
func (c *conn) enqueueLocked(frame frame) {
	if c.closing {
		c.mu.Unlock()
		return
	}
	if len(c.queue) >= 2*c.cfg.SendQueue {
		c.mu.Unlock()
		c.cutOff()
		return
	}
	c.queue = append(c.queue, frame)
	c.queueBytes += frame.size()
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
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
// did.
func (c *conn) tryResult(op *operation, body []byte) bool {
	c.mu.Lock()
	if c.closing || c.active[op.id] != op || len(c.queue) >= c.cfg.SendQueue || c.queueBytes >= maxQueueBytes {
		c.mu.Unlock()
		return false
	}
	c.enqueueLocked(frame{head: op.prefix, body: body})
	return true
}

var (
	errOperationOver = errors.New("operation is over")
	errCutOff        = errors.New("client cut off for not reading")
)

// waitRoom waits until the queue has room for a result of op.
func (c *conn) waitRoom(ctx context.Context, op *operation) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	c.mu.Lock()
	for {
		if c.closing || c.active[op.id] != op {
			// The socket is closing, or the client completed op.
			c.mu.Unlock()
			return errOperationOver
		}
		if len(c.queue) < c.cfg.SendQueue && c.queueBytes < maxQueueBytes {
			c.mu.Unlock()
			return nil
		}
		if c.drained == nil {
			c.drained = make(chan struct{})
		}
		drained := c.drained
		c.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(c.cfg.WriteTimeout)
		}
		select {
		case <-drained:
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			c.cutOff()
			return errCutOff
		}
		c.mu.Lock()
	}
}

func (c *conn) cutOff() {
	c.mu.Lock()
	c.queue, c.queueBytes = nil, 0
	c.mu.Unlock()
	c.log().Warn().Int("send_queue", c.cfg.SendQueue).Msg("websocket client not reading; cutting it off")
	c.close(ClosePolicy, "slow consumer: too many frames waiting")
}

func (c *conn) writeLoop() {
	for {
		c.mu.Lock()
		batch := c.queue
		c.queue, c.queueBytes = nil, 0
		if c.drained != nil {
			close(c.drained)
			c.drained = nil
		}
		if len(batch) == 0 {
			c.writing = false
			msg := c.closeMsg
			c.closeMsg = nil
			c.mu.Unlock()
			if msg != nil {
				c.writeClose(msg)
			}
			return
		}
		c.mu.Unlock()
		for _, f := range batch {
			err := c.ws.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
			if err == nil {
				err = c.write(f)
			}
			if err != nil {
				c.abort(fmt.Errorf("websocket write: %w", err))
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
func (c *conn) write(f frame) error {
	if f.body == nil {
		return c.ws.WriteMessage(websocket.TextMessage, f.head)
	}
	w, err := c.ws.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	_, _ = w.Write(f.head)
	_, _ = w.Write(f.body)
	_, _ = w.Write(closeBrace)
	return w.Close()
}

var closeBrace = []byte{'}'}

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
			c.log().Debug().Err(err).Msg("websocket init refused")
			c.refuse(err)
			return false
		}
		if next != nil {
			ctx = next
		}
		expires = exp
	}
	c.opParent = ctx
	c.mu.Lock()
	defer c.mu.Unlock()
	if !expires.IsZero() && !c.closing {
		// teardown stops it.
		c.expiry = time.AfterFunc(time.Until(expires), func() {
			c.close(CloseForbidden, "Forbidden: token expired")
		})
	}
	c.state = initDone
	return true
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

// start runs one operation in its own goroutine. The caller has checked the
// id is free.
func (c *conn) start(id string, params *graphql.RawParams, received time.Time) {
	c.mu.Lock()
	full := len(c.active) >= c.cfg.MaxOperations
	c.mu.Unlock()
	if full {
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
			live := c.active[id] == op && !c.closing
			if live {
				op.cancel = stop
			}
			c.mu.Unlock()
			if !live {
				// Completed (by the pusher, or a closing socket) before
				// it could be told how to stop.
				stop()
			}
			c.log().Debug().Str("op", rc.OperationName).Str("op_type", "subscription").Bool("pushed", true).
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
	if c.closing || c.active[op.id] != prev {
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

// truncateReason cuts reason to fit a close frame (125 bytes less the code)
// without splitting a rune: gorilla refuses longer ones outright.
func truncateReason(reason string) string {
	const maxReason = 123
	if len(reason) <= maxReason {
		return reason
	}
	cut := maxReason
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}

// millis is d in milliseconds, with microseconds, for log fields named
// *_ms as the access log's.
func millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
