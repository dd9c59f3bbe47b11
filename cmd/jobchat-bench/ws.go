package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// maxFrame bounds what one server frame may make a reader buffer.
const maxFrame = 1 << 20

// live is what every goroutine of a run reports into while it runs: atomics,
// so that the progress line and the phase boundaries can read them at any
// time without stopping anyone.
type live struct {
	base time.Time // the run's monotonic clock starts here
	tag  string    // this run's clientMessageId tag

	sent, sendOK, sendErr, late, skipped atomic.Int64
	deliveries, timed                    atomic.Int64
	dups                                 atomic.Int64
	subErrors, subDown                   atomic.Int64
	lastRecv                             atomic.Int64 // ns since base
	closing                              atomic.Bool
	// The live scenario's other subscriptions, over all sockets.
	typing liveCounters

	hists atomic.Pointer[stepHists]
	errs  errorCounts
}

// stepHists are one send phase's latencies; a new set per step.
type stepHists struct {
	send    histogram // due → answer
	sendSvc histogram // started → answer
	e2e     histogram // due → received by a subscriber
	e2eSvc  histogram // started → received
	// The live scenario's typing.
	typingCall histogram // setTyping: due → answer
	typingE2E  histogram // a burst's start due → TYPING_STARTED at the other participant's socket
}

func (l *live) now() time.Duration { return time.Since(l.base) }

// errorCounts tallies errors by a short class. Only error paths touch it.
type errorCounts struct {
	mu sync.Mutex
	m  map[string]int64
}

// maxErrorClasses bounds the map: errors carrying ids or addresses must not
// grow it without limit.
const maxErrorClasses = 40

func (e *errorCounts) add(class string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]int64{}
	}
	if _, ok := e.m[class]; !ok && len(e.m) >= maxErrorClasses {
		class = "other"
	}
	e.m[class]++
}

func (e *errorCounts) snapshot() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int64, len(e.m))
	for k, v := range e.m {
		out[k] = v
	}
	return out
}

// errClass shortens a transport error for the tally.
func errClass(prefix string, err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return prefix + ": timeout"
	case errors.Is(err, context.Canceled):
		return prefix + ": canceled"
	}
	s := err.Error()
	// Keep the tail ("connection refused", "too many open files"); the head
	// holds addresses that would make every error its own class.
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return prefix + ": " + truncate(s, 60)
}

// wsDialers are websocket dialers over the chosen source addresses.
type wsDialers struct {
	url     string
	dialers []*websocket.Dialer
}

func newWSDialers(httpURL string, ips []net.IP) wsDialers {
	u := strings.TrimSuffix(httpURL, "/")
	switch {
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + strings.TrimPrefix(u, "https://")
	default:
		u = "ws://" + strings.TrimPrefix(u, "http://")
	}
	mk := func(local net.Addr) *websocket.Dialer {
		nd := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: local}
		return &websocket.Dialer{
			NetDialContext:   nd.DialContext,
			HandshakeTimeout: 10 * time.Second,
			Subprotocols:     []string{"graphql-transport-ws"},
			// Frames are a few hundred bytes, and thousands of idle sockets
			// must not cost the bench more memory than the server.
			ReadBufferSize:  1024,
			WriteBufferSize: 512,
			WriteBufferPool: &sync.Pool{},
		}
	}
	d := wsDialers{url: u + "/query"}
	if len(ips) == 0 {
		d.dialers = []*websocket.Dialer{mk(nil)}
		return d
	}
	for _, ip := range ips {
		d.dialers = append(d.dialers, mk(&net.TCPAddr{IP: ip}))
	}
	return d
}

// open dials socket number i, authenticates as token and waits for the
// connection_ack.
func (d wsDialers) open(ctx context.Context, i int, token string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, resp, err := d.dialers[i%len(d.dialers)].DialContext(ctx, d.url, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: %s", resp.Status)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	if conn.Subprotocol() != "graphql-transport-ws" {
		_ = conn.Close()
		return nil, fmt.Errorf("dial: server chose subprotocol %q", conn.Subprotocol())
	}
	conn.SetReadLimit(maxFrame)
	deadline, _ := ctx.Deadline()
	_ = conn.SetWriteDeadline(deadline)
	_ = conn.SetReadDeadline(deadline)
	init := `{"type":"connection_init","payload":{"authorization":"Bearer ` + token + `"}}`
	if err := conn.WriteMessage(websocket.TextMessage, []byte(init)); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("connection_init: %w", err)
	}
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("wait for connection_ack: %w", err)
		}
		switch t := string(frameType(b)); t {
		case "connection_ack":
			_ = conn.SetWriteDeadline(time.Time{})
			_ = conn.SetReadDeadline(time.Time{})
			return conn, nil
		case "ping":
			if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"pong"}`)); err != nil {
				_ = conn.Close()
				return nil, fmt.Errorf("pong: %w", err)
			}
		default:
			_ = conn.Close()
			return nil, fmt.Errorf("wait for connection_ack: got %q: %.200s", t, b)
		}
	}
}

// readFrame reads the next message into buf, reusing its memory.
func readFrame(conn *websocket.Conn, buf []byte) ([]byte, error) {
	_, r, err := conn.NextReader()
	if err != nil {
		return buf, err
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// subscriber is one socket subscribed to one conversation.
type subscriber struct {
	conv    int
	conn    *websocket.Conn
	tracker *seqTracker
	wmu     sync.Mutex // pongs from the reader and the close at the end
	done    chan struct{}
	// lv is set in the live scenario, whose sockets have two more
	// subscriptions (ids 2 and 3); nil otherwise.
	lv *liveSub
}

// subscribeFrame asks for messageAdded after base, so that no message sent
// after the run's first send can fall between subscribing and the server
// registering the subscription: the server replays stored ones first.
func subscribeFrame(convID string, base int64, fields string) []byte {
	q := "subscription($c: ID!, $a: Int) { messageAdded(conversationId: $c, afterSeq: $a) { " + fields + " } }"
	b := []byte(`{"id":"1","type":"subscribe","payload":{"query":`)
	b = strconv.AppendQuote(b, q)
	b = append(b, `,"variables":{"c":`...)
	b = strconv.AppendQuote(b, convID)
	b = append(b, `,"a":`...)
	b = strconv.AppendInt(b, base, 10)
	b = append(b, `}}}`...)
	return b
}

func (s *subscriber) start(l *live, frame []byte) error {
	if err := s.write(frame); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	go s.read(l)
	return nil
}

// write sends one frame (a subscribe, a ping).
func (s *subscriber) write(frame []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	err := s.conn.WriteMessage(websocket.TextMessage, frame)
	_ = s.conn.SetWriteDeadline(time.Time{})
	return err
}

// read runs until the socket closes. It allocates nothing per message but
// gorilla's reader; see frame.go for the parsing.
func (s *subscriber) read(l *live) {
	defer close(s.done)
	buf := make([]byte, 0, 1024)
	for {
		var err error
		buf, err = readFrame(s.conn, buf)
		if err != nil {
			if !l.closing.Load() {
				l.subDown.Add(1)
				l.errs.add(errClass("subscriber socket", err))
			}
			return
		}
		switch string(frameType(buf)) {
		case "next":
			if s.lv != nil {
				if id := frameID(buf); string(id) != "1" {
					s.lv.next(l, id, buf)
					continue
				}
			}
			seq, due, started, timed, ok := nextFields(buf, l.tag)
			if !ok {
				l.subErrors.Add(1)
				l.errs.add("subscription next without seq: " + truncate(string(buf), 80))
				continue
			}
			l.deliveries.Add(1)
			if s.tracker.add(seq) {
				l.dups.Add(1)
			}
			if timed {
				now := l.now()
				h := l.hists.Load()
				h.e2e.record(now - due)
				h.e2eSvc.record(now - started)
				l.timed.Add(1)
				markRecv(l, now)
			}
		case "ping":
			s.wmu.Lock()
			_ = s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			err := s.conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"pong"}`))
			s.wmu.Unlock()
			if err != nil && !l.closing.Load() {
				l.errs.add(errClass("pong", err))
			}
		case "pong":
			if s.lv != nil {
				select {
				case s.lv.pong <- struct{}{}:
				default:
				}
			}
		case "error", "complete":
			// A subscription that ends or fails delivers nothing more; its
			// losses show up in the seq accounting.
			l.subErrors.Add(1)
			code := jsonStringAfter(buf, `"code":"`)
			l.errs.add("subscription " + string(frameType(buf)) + " " + code)
		}
	}
}

// close says goodbye with a close frame (bounded), then drops the socket.
func (s *subscriber) close() {
	s.wmu.Lock()
	_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	s.wmu.Unlock()
	_ = s.conn.Close()
}

// sender makes one send; each sender goroutine has its own, so buffers are
// reused without locks.
type sender interface {
	send(ctx context.Context, c *conversation, worker bool, clientID []byte, text string) (seq int64, errClass string)
}

// httpSender sends through POST /query.
type httpSender struct {
	client  *http.Client
	url     string
	timeout time.Duration
	body    []byte
	resp    bytes.Buffer
}

func (h *httpSender) send(ctx context.Context, c *conversation, worker bool, clientID []byte, text string) (int64, string) {
	h.body = appendSendBody(h.body[:0], c.ID, text, clientID)
	status, class := h.post(ctx, "send", c.participant(worker).token)
	if class != "" {
		return 0, class
	}
	return parseSendAnswer(status, h.resp.Bytes())
}

// setTyping calls setTyping as the participant; "" when it answered true.
func (h *httpSender) setTyping(ctx context.Context, c *conversation, worker, typing bool) string {
	h.body = appendSetTypingBody(h.body[:0], c.ID, typing)
	status, class := h.post(ctx, "setTyping", c.participant(worker).token)
	if class != "" {
		return class
	}
	return parseSetTypingAnswer(status, h.resp.Bytes())
}

// post sends h.body as the holder of token and reads the answer into
// h.resp; class is set when no answer came.
func (h *httpSender) post(ctx context.Context, what, token string) (status int, class string) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(h.body))
	if err != nil {
		return 0, errClass("request", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, errClass(what, err)
	}
	h.resp.Reset()
	_, err = h.resp.ReadFrom(io.LimitReader(resp.Body, maxFrame))
	_ = resp.Body.Close()
	if err != nil {
		return 0, errClass(what+": read answer", err)
	}
	return resp.StatusCode, ""
}

// wsSendConn is a socket that carries sendMessage mutations for one
// participant. Several sender goroutines may share it: writes take a lock,
// and one reader hands each answer to whoever waits for its id.
type wsSendConn struct {
	conn   *websocket.Conn
	wmu    sync.Mutex
	mu     sync.Mutex
	wait   map[int64]chan<- wsAnswer
	nextID atomic.Int64
	done   chan struct{}
	// closing marks the end we asked for, which is no error.
	closing atomic.Bool
}

type wsAnswer struct {
	id       int64
	seq      int64
	errClass string
}

func newWSSendConn(conn *websocket.Conn) *wsSendConn {
	return &wsSendConn{conn: conn, wait: map[int64]chan<- wsAnswer{}, done: make(chan struct{})}
}

func (w *wsSendConn) read(l *live) {
	defer close(w.done)
	buf := make([]byte, 0, 512)
	for {
		var err error
		buf, err = readFrame(w.conn, buf)
		if err != nil {
			if !l.closing.Load() && !w.closing.Load() {
				l.errs.add(errClass("sender socket", err))
			}
			// Fail whoever still waits rather than leave them to time out.
			w.mu.Lock()
			for id, ch := range w.wait {
				ch <- wsAnswer{id: id, errClass: "sender socket closed"}
				delete(w.wait, id)
			}
			w.mu.Unlock()
			return
		}
		typ := frameType(buf)
		switch string(typ) {
		case "next", "error":
			id, ok := parseInt(frameID(buf))
			if !ok {
				continue
			}
			a := wsAnswer{id: id}
			if string(typ) == "error" {
				a.errClass = jsonStringAfter(buf, `"code":"`)
				if a.errClass == "" {
					a.errClass = "ws error"
				}
			} else {
				a.seq, a.errClass = parseSendAnswer(http.StatusOK, buf)
			}
			w.mu.Lock()
			ch := w.wait[id]
			delete(w.wait, id)
			w.mu.Unlock()
			if ch != nil {
				ch <- a // buffered, one per waiter: never blocks
			}
		case "ping":
			w.wmu.Lock()
			_ = w.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			_ = w.conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"pong"}`))
			w.wmu.Unlock()
		}
	}
}

func (w *wsSendConn) close() {
	w.closing.Store(true)
	w.wmu.Lock()
	_ = w.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	w.wmu.Unlock()
	_ = w.conn.Close()
}

// wsSender sends over the participants' sockets (graphql-transport-ws
// subscribe with a mutation: one next, then complete).
type wsSender struct {
	conns   map[string]*wsSendConn // by participant id
	timeout time.Duration
	frame   []byte
	answers chan wsAnswer
	timer   *time.Timer
}

func newWSSender(conns map[string]*wsSendConn, timeout time.Duration) *wsSender {
	t := time.NewTimer(time.Hour)
	t.Stop()
	// Each registered id gets at most one answer, and send drains stale ones
	// before registering, so a few slots are enough for the reader never to
	// block on a sender that already gave up on an answer.
	return &wsSender{conns: conns, timeout: timeout, answers: make(chan wsAnswer, 4), timer: t}
}

func (s *wsSender) send(ctx context.Context, c *conversation, worker bool, clientID []byte, text string) (int64, string) {
	p := &c.Client
	if worker {
		p = &c.Worker
	}
	w := s.conns[p.ID]
	if w == nil {
		return 0, "no sender socket"
	}
	for drained := false; !drained; {
		select {
		case <-s.answers:
		default:
			drained = true
		}
	}
	id := w.nextID.Add(1)
	s.frame = append(s.frame[:0], `{"id":"`...)
	s.frame = strconv.AppendInt(s.frame, id, 10)
	s.frame = append(s.frame, `","type":"subscribe","payload":`...)
	s.frame = appendSendBody(s.frame, c.ID, text, clientID)
	s.frame = append(s.frame, '}')

	w.mu.Lock()
	w.wait[id] = s.answers
	w.mu.Unlock()
	w.wmu.Lock()
	_ = w.conn.SetWriteDeadline(time.Now().Add(s.timeout))
	err := w.conn.WriteMessage(websocket.TextMessage, s.frame)
	w.wmu.Unlock()
	if err != nil {
		w.mu.Lock()
		delete(w.wait, id)
		w.mu.Unlock()
		return 0, errClass("send over ws", err)
	}
	s.timer.Reset(s.timeout)
	defer s.timer.Stop()
	for {
		select {
		case a := <-s.answers:
			if a.id != id {
				continue // a late answer to an earlier send that timed out
			}
			return a.seq, a.errClass
		case <-s.timer.C:
			w.mu.Lock()
			delete(w.wait, id)
			w.mu.Unlock()
			return 0, "send over ws: timeout"
		case <-ctx.Done():
			w.mu.Lock()
			delete(w.wait, id)
			w.mu.Unlock()
			return 0, "send over ws: canceled"
		}
	}
}
