package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// Subprotocols in order of preference. gorilla picks the first entry of this
// list that the client offers, so the maintained protocol goes first and the
// legacy Apollo one is only chosen for clients that offer nothing better.
var subprotocols = []string{"graphql-transport-ws", "graphql-ws"}

// closeGrace bounds the close frame write: the transport calls WriteClose while
// holding its own lock, so a peer that stopped reading must not stall teardown.
const closeGrace = time.Second

// maxCloseReason is what is left of a control frame's 125 bytes after the
// two-byte close code; gorilla refuses longer close payloads outright.
const maxCloseReason = 123

// gorillaImpl adapts gorilla/websocket to gqlgen's websocket transport, which
// only ships a coder/websocket adapter.
type gorillaImpl struct {
	upgrader     websocket.Upgrader
	writeTimeout time.Duration
}

var _ transport.WebsocketImplementation = (*gorillaImpl)(nil)

func newGorillaImpl(origins originPolicy, writeTimeout time.Duration, pool websocket.BufferPool) *gorillaImpl {
	return &gorillaImpl{
		upgrader: websocket.Upgrader{
			// The connection has no deadlines after the hijack; this bounds
			// the 101 write to a client that stopped reading.
			HandshakeTimeout: writeTimeout,
			// Small buffers: most frames are short JSON, and idle subscribers
			// are the common case, so per-connection memory dominates.
			ReadBufferSize:  1024,
			WriteBufferSize: 1024,
			WriteBufferPool: pool,
			Subprotocols:    subprotocols,
			CheckOrigin:     origins.allowed,
			// The transport writes its own 400 after a failed Accept; writing
			// here as well would produce a second, superfluous response.
			Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
				zerolog.Ctx(r.Context()).Debug().Int("status", status).Err(reason).Msg("websocket upgrade refused")
			},
			EnableCompression: false,
		},
		writeTimeout: writeTimeout,
	}
}

func (g *gorillaImpl) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	// Without a common subprotocol gorilla still upgrades, and gqlgen would then
	// silently fall back to legacy graphql-ws; refuse instead so a client with a
	// protocol mismatch finds out at the handshake.
	if negotiable(websocket.Subprotocols(r)) == "" {
		return nil, errNoSubprotocol
	}

	// gorilla writes the 101 response itself from this header only, ignoring
	// w.Header(); carry over what middleware set (X-Request-Id, cookies).
	header := http.Header{}
	for k, vs := range w.Header() {
		if handshakeHeader(k) {
			continue
		}
		header[k] = slices.Clone(vs)
	}
	for k, vs := range opts.ResponseHeader {
		if handshakeHeader(k) {
			continue
		}
		header[k] = append(header[k], vs...)
	}

	conn, err := g.upgrader.Upgrade(w, r, header)
	if err != nil {
		return nil, err
	}
	return &gorillaConn{conn: conn, writeTimeout: g.writeTimeout}, nil
}

var errNoSubprotocol = errors.New("websocket: no supported subprotocol offered")

// negotiable returns the subprotocol gorilla would choose from offered, or "".
func negotiable(offered []string) string {
	for _, p := range subprotocols {
		if slices.Contains(offered, p) {
			return p
		}
	}
	return ""
}

// handshakeHeader reports header keys that gorilla writes itself or rejects in
// the response header, and entity headers that make no sense on a 101.
func handshakeHeader(key string) bool {
	switch http.CanonicalHeaderKey(key) {
	case "Upgrade", "Connection", "Content-Type", "Content-Length":
		return true
	}
	return strings.HasPrefix(http.CanonicalHeaderKey(key), "Sec-Websocket-")
}

// gorillaConn is safe for the transport's use: one reader goroutine, and
// writers from several goroutines (responses, keep-alives, close).
type gorillaConn struct {
	conn         *websocket.Conn
	writeTimeout time.Duration

	// gorilla supports only one concurrent writer of data frames.
	writeMu sync.Mutex
}

var (
	_ transport.WebsocketConn          = (*gorillaConn)(nil)
	_ transport.WebsocketReadLimiter   = (*gorillaConn)(nil)
	_ transport.WebsocketReadDeadliner = (*gorillaConn)(nil)
)

func (c *gorillaConn) NextReader() (int, io.Reader, error) {
	t, r, err := c.conn.NextReader()
	if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseNoStatusReceived, websocket.CloseGoingAway) {
		// The transport treats only this sentinel as an orderly close and
		// reports anything else through ErrorFunc.
		return t, nil, transport.ErrWebsocketClosed
	}
	return t, r, err
}

func (c *gorillaConn) WriteJSON(v any) error {
	// Encode outside the lock so a slow marshal does not hold up other writers.
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.conn.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
		return err
	}
	return c.conn.WriteMessage(websocket.TextMessage, b)
}

func (c *gorillaConn) WriteClose(code int, reason string) error {
	grace := min(c.writeTimeout, closeGrace)
	// WriteControl may run concurrently with WriteMessage in gorilla, so it
	// does not take writeMu: a writer stuck on a full socket must not delay
	// the close frame beyond its own deadline.
	err := c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, truncateReason(reason)), time.Now().Add(grace))
	if errors.Is(err, websocket.ErrCloseSent) {
		// gorilla already answered the peer's close or sent 1009 itself.
		return nil
	}
	return err
}

func (c *gorillaConn) Close() error { return c.conn.Close() }

func (c *gorillaConn) Subprotocol() string { return c.conn.Subprotocol() }

func (c *gorillaConn) SetReadLimit(limit int64) { c.conn.SetReadLimit(limit) }

func (c *gorillaConn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// truncateReason cuts reason to fit a close frame without splitting a rune.
func truncateReason(reason string) string {
	if len(reason) <= maxCloseReason {
		return reason
	}
	cut := maxCloseReason
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}

// originPolicy decides which browser origins may open a websocket. Browsers
// send cookies with cross-site websocket handshakes, so without this check any
// page could act as a logged-in user.
type originPolicy struct {
	any     bool
	origins []string // lower-cased, without trailing slash
}

func newOriginPolicy(allowed []string) originPolicy {
	var p originPolicy
	for _, o := range allowed {
		o = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(o), "/"))
		if o == "*" {
			p.any = true
		}
		p.origins = append(p.origins, o)
	}
	return p
}

func (p originPolicy) allowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		// Non-browser clients send no Origin and are not exposed to CSRF.
		return true
	}
	if p.any {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return slices.Contains(p.origins, strings.ToLower(strings.TrimSuffix(origin, "/")))
}

// websocketGate answers upgrade requests that would fail in the adapter with
// a precise status. gqlgen's transport maps every Accept error to 400 and
// prints it with the standard library logger, so refusing here gives clients
// 403 for a bad origin and keeps refusals out of stderr; what still reaches
// the adapter and fails is an I/O error during the upgrade.
func websocketGate(origins originPolicy, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Mirrors transport.Websocket.Supports: any Upgrade header routes the
		// request to the websocket transport.
		if r.Header.Get("Upgrade") == "" {
			next.ServeHTTP(w, r)
			return
		}
		log := zerolog.Ctx(r.Context())
		switch {
		case !websocket.IsWebSocketUpgrade(r):
			writeError(w, http.StatusBadRequest, "not a websocket upgrade")
		case r.Method != http.MethodGet:
			writeError(w, http.StatusMethodNotAllowed, "websocket upgrade requires GET")
		case !validHandshake(r):
			writeError(w, http.StatusBadRequest, "bad websocket handshake")
		case !origins.allowed(r):
			log.Debug().Str("origin", r.Header.Get("Origin")).Msg("websocket origin refused")
			writeError(w, http.StatusForbidden, "origin not allowed")
		case negotiable(websocket.Subprotocols(r)) == "":
			log.Debug().Strs("offered", websocket.Subprotocols(r)).Msg("websocket subprotocol refused")
			writeError(w, http.StatusBadRequest, "unsupported websocket subprotocol; use graphql-transport-ws or graphql-ws")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// validHandshake checks the version and key the way gorilla will, so that
// malformed handshakes (scanners, broken proxies) are answered here.
func validHandshake(r *http.Request) bool {
	if strings.TrimSpace(r.Header.Get("Sec-Websocket-Version")) != "13" {
		return false
	}
	key, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-Websocket-Key"))
	return err == nil && len(key) == 16
}
