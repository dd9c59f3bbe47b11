// Package wsconn is the socket machinery that jobchat's WebSocket endpoints
// share, whatever they speak: the GraphQL transport (package wsgql) and the
// old chat socket (package legacy) each embed a Conn and keep only their
// protocol: frame formats, operations, init, subprotocols.
//
// Most sockets sit idle for hours, so a Conn holds what every socket needs
// and no more: the caller's goroutine reads, each message is handled on a
// short-lived goroutine, writes go through a bounded queue drained by a
// goroutine that exists only while there is something to write, a timer
// (not a goroutine) drives the keep-alive pings and a read deadline finds
// dead peers. A close is orderly: the frames already queued, then the close
// frame, then a grace period for the peer's answer. An Endpoint is what the
// sockets of one handler share: the configuration, the upgrader, and the
// registry that a server's shutdown closes with 1001.
//
// It also holds the rules every socket follows whatever its subprotocol:
// RFC 6455's above the framing (a binary message closes with 1003, a text
// message that is not UTF-8 with 1007), and the Quota of sockets per user
// and per client address (4430, 4431), which endpoints may share.
//
// It may import the standard library, gorilla/websocket and zerolog; nothing
// GraphQL, nothing else of jobchat.
package wsconn

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// Config configures an Endpoint and its sockets. Its zero value gives the
// defaults noted on each field.
type Config struct {
	// Name begins the sockets' log lines and errors ("websocket closing").
	// Empty means "websocket".
	Name string
	// KeepAlive is the interval of pings; a peer that answers nothing for
	// two intervals (and WriteTimeout) is dropped. Zero means 15s.
	KeepAlive time.Duration
	// WriteTimeout bounds each frame written and the handshake; a client
	// that cannot take a frame in that time is dropped. Zero means 10s.
	WriteTimeout time.Duration
	// MaxFrameBytes limits messages from the peer (close 1009). Zero means
	// 64 KiB.
	MaxFrameBytes int64
	// SendQueue is how many frames (up to 1 MiB in all) may wait for a
	// client before it has no room (see Conn.Offer). Zero means 1024.
	SendQueue int
	// Quota, if set, bounds the sockets per user and per client address;
	// endpoints that share one share its bounds (see Conn.ClaimAddr and
	// Conn.ClaimUser).
	Quota *Quota
	// KeepAliveFrame, if set, is queued before each ping on the sockets
	// that asked for it (Conn.SendKeepAliveFrames).
	KeepAliveFrame []byte
	// Subprotocols are offered to clients, the preferred first.
	Subprotocols []string
	// CheckOrigin decides whether the upgrade request's Origin may connect.
	// Nil means SameOrigin.
	CheckOrigin func(r *http.Request) bool
	// BufferPool shares write buffers between sockets, so that an idle
	// socket holds none. Nil gives the Endpoint a pool of its own.
	BufferPool websocket.BufferPool
}

const (
	defaultName          = "websocket"
	defaultKeepAlive     = 15 * time.Second
	defaultWriteTimeout  = 10 * time.Second
	defaultMaxFrameBytes = 64 << 10
	defaultSendQueue     = 1024
)

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = defaultName
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = defaultKeepAlive
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = defaultWriteTimeout
	}
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = defaultMaxFrameBytes
	}
	if c.SendQueue <= 0 {
		c.SendQueue = defaultSendQueue
	}
	if c.CheckOrigin == nil {
		c.CheckOrigin = SameOrigin
	}
	if c.BufferPool == nil {
		c.BufferPool = &sync.Pool{}
	}
	return c
}

// Protocol is what a socket speaks. The package that embeds a Conn
// implements it; the Conn calls it. None of its methods may wait on the
// Conn: they may queue frames and close it.
type Protocol interface {
	// Receive handles one message from the peer. Messages come one at a
	// time and in order, each on a goroutine that ends with it.
	Receive(data []byte)
	// Ending is called once, when the socket starts to end from this side:
	// err is nil for an orderly close (Close, a cut-off, a shutdown), else
	// the failure (a write, a ping, a read) that drops the connection
	// without a close frame. It is not called when the peer closes first.
	Ending(err error)
	// Ended is called once, when the read loop has ended and the
	// connection is closed: the protocol releases what the socket holds.
	Ended()
	// Log is the socket's logger.
	Log() *zerolog.Logger
}

// Frame is one queued message. Head alone is a message. With a Body (not
// nil) the message is Head, Body and a closing brace, written as one
// message without copying Body: Head opens a JSON object whose last value
// is Body, which many sockets may share.
type Frame struct {
	Head, Body []byte
}

func (f Frame) size() int { return len(f.Head) + len(f.Body) }

// Errors of Conn.WaitRoom.
var (
	// ErrClosed: the socket is closing or closed.
	ErrClosed = errors.New("socket closed")
	// ErrCutOff: the client took nothing for the write timeout, and has
	// been cut off.
	ErrCutOff = errors.New("client cut off for not reading")
)
