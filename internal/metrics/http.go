package metrics

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// The protocols sockets are counted by. SSE streams are not hijacked
// connections, but they are what a client holds open instead of a socket.
const (
	protoTransportWS = iota // graphql-transport-ws
	protoGraphQLWS          // legacy graphql-ws (subscriptions-transport-ws)
	protoLegacy             // the old chat socket, /ws/chat/{id}/
	protoSSE                // Server-Sent Events on /query
	protoOther              // a WebSocket offering no protocol we speak (closed with 4406)
	numProtos
)

var protoNames = [numProtos]string{"graphql-transport-ws", "graphql-ws", "legacy", "sse", "other"}

// socketCounts is a few atomics per protocol, read at scrape time.
type socketCounts struct {
	open   [numProtos]atomic.Int64
	opened [numProtos]atomic.Uint64
	cutOff [numProtos]atomic.Uint64
}

func newSocketCounts() *socketCounts { return &socketCounts{} }

var (
	descOpen   = prometheus.NewDesc("jobchat_open_sockets", "Open WebSockets (and SSE streams) by protocol.", []string{"protocol"}, nil)
	descOpened = prometheus.NewDesc("jobchat_sockets_opened_total", "WebSockets (and SSE streams) opened, by protocol.", []string{"protocol"}, nil)
	descCutOff = prometheus.NewDesc("jobchat_slow_clients_cut_off_total", "WebSockets cut off for not reading: closed with 1008, or a write that hit the write timeout.", []string{"protocol"}, nil)
)

type socketCollector struct{ c *socketCounts }

func (s *socketCounts) collector() prometheus.Collector { return socketCollector{s} }

func (c socketCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descOpen
	ch <- descOpened
	ch <- descCutOff
}

func (c socketCollector) Collect(ch chan<- prometheus.Metric) {
	for i, name := range protoNames {
		ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(c.c.open[i].Load()), name)
		ch <- prometheus.MustNewConstMetric(descOpened, prometheus.CounterValue, float64(c.c.opened[i].Load()), name)
		if i != protoSSE {
			ch <- prometheus.MustNewConstMetric(descCutOff, prometheus.CounterValue, float64(c.c.cutOff[i].Load()), name)
		}
	}
}

// Middleware wraps the server's whole handler: it counts sockets and SSE
// streams by protocol while they are open, counts 429 answers as rate-limit
// refusals, and, when serveMetrics is set, answers GET /metrics itself
// (before request ids and the access log, which a scrape every few seconds
// would only fill).
func (m *Metrics) Middleware(next http.Handler, serveMetrics bool) http.Handler {
	metrics := m.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if serveMetrics && r.URL.Path == "/metrics" {
			metrics.ServeHTTP(w, r)
			return
		}
		if isUpgrade(r) {
			next.ServeHTTP(&hijackWriter{ResponseWriter: w, m: m, proto: protocolOf(r)}, r)
			return
		}
		if r.URL.Path == "/query" && strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			c := m.sockets
			c.opened[protoSSE].Add(1)
			c.open[protoSSE].Add(1)
			defer c.open[protoSSE].Add(-1)
		}
		next.ServeHTTP(&statusWriter{ResponseWriter: w, m: m}, r)
	})
}

func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// protocolOf says what a WebSocket will speak, by the rule the server
// follows: the old chat socket by its path; on /query graphql-transport-ws
// whenever the client offers it, else graphql-ws if offered.
func protocolOf(r *http.Request) int {
	if strings.HasPrefix(r.URL.Path, "/ws/chat/") {
		return protoLegacy
	}
	legacy := false
	for _, h := range r.Header.Values("Sec-Websocket-Protocol") {
		for p := range strings.SplitSeq(h, ",") {
			switch strings.TrimSpace(p) {
			case protoNames[protoTransportWS]:
				return protoTransportWS
			case protoNames[protoGraphQLWS]:
				legacy = true
			}
		}
	}
	if legacy {
		return protoGraphQLWS
	}
	return protoOther
}

// statusWriter counts 429 answers. Flush and Unwrap keep streaming and
// http.ResponseController working through it.
type statusWriter struct {
	http.ResponseWriter
	m       *Metrics
	counted bool
}

func (w *statusWriter) WriteHeader(code int) {
	if code == http.StatusTooManyRequests && !w.counted {
		w.counted = true
		w.m.rateLimited.WithLabelValues("http").Inc()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// hijackWriter counts the socket from its hijack until its connection
// closes.
type hijackWriter struct {
	http.ResponseWriter
	m     *Metrics
	proto int
}

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	c := w.m.sockets
	c.opened[w.proto].Add(1)
	c.open[w.proto].Add(1)
	// The wrapper keeps neither the writer nor the request: a socket
	// outlives both, and must not keep them alive.
	return &countedConn{Conn: conn, counts: c, proto: w.proto}, brw, nil
}

func (w *hijackWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countedConn is a hijacked connection that uncounts itself when closed,
// and notices the server cutting off a slow client: a close frame with
// status 1008 (which only the cut-off sends; see wsconn.CutOff and the
// README's close codes), or a write that timed out. Frames are looked at
// only by their first four bytes, so the cost is a comparison per write.
type countedConn struct {
	net.Conn
	counts *socketCounts
	proto  int
	closed atomic.Bool
	cut    atomic.Bool
}

// closePolicy is the start of an unmasked, final close frame whose
// payload begins with status 1008 (0x03F0), as a server writes it.
var closePolicy = [4]byte{0x88, 0, 0x03, 0xF0}

func (c *countedConn) Write(b []byte) (int, error) {
	if len(b) >= 4 && b[0] == closePolicy[0] && b[1] >= 2 && b[1] < 126 && b[2] == closePolicy[2] && b[3] == closePolicy[3] {
		c.cutOnce()
	}
	n, err := c.Conn.Write(b)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.cutOnce()
	}
	return n, err
}

func (c *countedConn) cutOnce() {
	if c.cut.CompareAndSwap(false, true) {
		c.counts.cutOff[c.proto].Add(1)
	}
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.counts.open[c.proto].Add(-1)
	}
	return c.Conn.Close()
}
