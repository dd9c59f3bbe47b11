// Package server turns jobchat's executable GraphQL schema into the process's
// HTTP handler: the GraphQL transports on /query (GET and POST after the
// GraphQL-over-HTTP spec, streamed GraphQL multipart requests for uploads,
// Server-Sent Events, and websockets through
// jobchat's own transport, package wsgql), the gate every operation passes
// before execution (persisted operations, document limits, strict variable
// coercion: guard.go, persisted.go), the GraphiQL playground on / (package
// playground), the /healthz and /readyz probes, security headers, request
// ids and access logging.
//
// It knows nothing of jobchat's domain. It may import gqlgen's graphql,
// handler and executor-facing packages (and gqlparser), gorilla/websocket,
// zerolog, google/uuid, jobchat's wsgql, wsconn, stream, playground,
// limits and coerce packages and the standard library; never jobchat's resolvers, db
// or graph packages, which reach it only as a graphql.ExecutableSchema and
// the callbacks in Config.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/rs/zerolog"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/jobchat/jobchat/internal/coerce"
	"github.com/jobchat/jobchat/internal/limits"
	"github.com/jobchat/jobchat/internal/server/playground"
	"github.com/jobchat/jobchat/internal/stream"
	"github.com/jobchat/jobchat/internal/wsconn"
	"github.com/jobchat/jobchat/internal/wsgql"
)

// Config configures New. Its zero value, apart from Schema, gives the defaults
// documented on each field.
type Config struct {
	// Schema is the generated executable schema. Required.
	Schema graphql.ExecutableSchema
	// Log is the root logger; each request gets a child with its req_id.
	Log zerolog.Logger

	// Authenticate wraps the GraphQL endpoint (HTTP requests and the websocket
	// upgrade request) to put the caller in the request context. May be nil.
	Authenticate func(http.Handler) http.Handler
	// WebsocketInit authenticates connection_init payloads. May be nil. A
	// refusal closes the socket with 4403.
	WebsocketInit wsgql.InitFunc
	// ErrorPresenter turns resolver errors into GraphQL errors. May be nil,
	// for gqlgen's default.
	ErrorPresenter graphql.ErrorPresenterFunc
	// RecoverFunc handles resolver panics. May be nil, for one that logs the
	// panic and its stack and tells the client only "internal error".
	RecoverFunc graphql.RecoverFunc
	// Ready reports whether the process can serve traffic, for /readyz. May be
	// nil, for always ready.
	Ready func(ctx context.Context) error

	// AllowedOrigins lists the browser origins, as sent in the Origin header
	// ("https://chat.example.com"), that may open a websocket; "*" allows
	// all. Same-origin requests and requests without an Origin header are
	// always allowed.
	AllowedOrigins []string

	// KeepAlive is the interval of legacy graphql-ws "ka" messages and of
	// graphql-transport-ws pings; a client that sends no pong within two
	// intervals is dropped.
	// Zero means 15s.
	KeepAlive time.Duration
	// InitTimeout bounds the wait for connection_init. Zero means 10s.
	InitTimeout time.Duration
	// MaxBodyBytes limits HTTP request bodies on /query. Zero means 256
	// KiB: a body is read as JSON before its document can be refused, so
	// this bounds what refusing one costs.
	// A multipart request's file is bounded by MaxUploadBytes instead,
	// its other fields by this.
	MaxBodyBytes int64
	// MaxUploadBytes limits the file of a GraphQL multipart request,
	// read as it streams. Zero means 25 MiB.
	MaxUploadBytes int64
	// MaxFrameBytes limits websocket messages from clients; larger ones close
	// the connection with code 1009. Zero means 64 KiB.
	MaxFrameBytes int64
	// WriteTimeout bounds each websocket write. Zero means 10s.
	WriteTimeout time.Duration
	// MaxOperations caps the operations running at once on one websocket.
	// Zero means 100.
	MaxOperations int
	// OnOperationRefused, if set, hears of each websocket operation
	// refused over MaxOperations; see wsgql.Config.
	OnOperationRefused func()
	// SendQueue is how many frames may wait for a websocket client; see
	// wsgql.Config. Zero means 1024.
	SendQueue int
	// SocketQuota, if set, bounds the websockets per user and per client
	// address (see wsconn.Quota); share it with the other socket
	// endpoints in Handlers.
	SocketQuota *wsconn.Quota
	// QueryCacheSize sizes the parsed-query and persisted-query caches. Zero
	// means 1000.
	QueryCacheSize int
	// ComplexityLimit caps operation complexity. Zero means 200.
	ComplexityLimit int
	// SSE configures subscriptions over Server-Sent Events; its zero value
	// gives the defaults documented on SSEConfig.
	SSE SSEConfig

	// Pusher, if set, serves the websocket subscriptions it accepts without
	// gqlgen's executor (see package stream). May be nil.
	Pusher stream.Pusher

	// Extensions are added to the GraphQL handler after the built-in ones
	// (introspection, persisted queries, the guard, complexity limit).
	Extensions []graphql.HandlerExtension

	// Limits bounds the documents /query takes (size, tokens, depth,
	// aliases, directives, duplicate fields, fields, fragments), checked
	// before the validator runs; its zero value gives package limits'
	// defaults.
	Limits limits.Config
	// MaxIDLength caps ID values, in variables and written into
	// documents, so that an id no row can have is refused before any
	// query. Zero means no cap.
	MaxIDLength int
	// DisableIntrospection refuses __schema and __type and takes the
	// "Did you mean" suggestions out of validation errors.
	DisableIntrospection bool
	// PersistedOperations are known operations by the hex SHA-256 of their
	// text (see LoadPersistedOperations): an Automatic Persisted Query
	// client may send just the hash of one, even to a fresh instance.
	PersistedOperations map[string]string
	// PersistedOnly runs only PersistedOperations, sent by hash or in
	// full, and registers nothing: every other operation is refused with
	// OPERATION_NOT_ALLOWED.
	PersistedOnly bool
	// PersistedBypass, if set, exempts the callers it accepts from
	// PersistedOnly (jobchat's own job-service). May be nil.
	PersistedBypass func(ctx context.Context) bool

	// Playground serves GraphiQL at "/".
	Playground bool

	// Handlers are mounted beside /query, by http.ServeMux pattern, behind
	// the request ids and the access log (the old chat socket). They do
	// their own origin checks: see CheckOrigin.
	Handlers map[string]http.Handler
}

const (
	defaultKeepAlive       = 15 * time.Second
	defaultInitTimeout     = 10 * time.Second
	defaultMaxBodyBytes    = 256 << 10
	defaultMaxUploadBytes  = 25 << 20
	defaultMaxFrameBytes   = 64 << 10
	defaultWriteTimeout    = 10 * time.Second
	defaultQueryCacheSize  = 1000
	defaultComplexityLimit = 200
)

func (c Config) withDefaults() Config {
	if c.KeepAlive == 0 {
		c.KeepAlive = defaultKeepAlive
	}
	if c.InitTimeout == 0 {
		c.InitTimeout = defaultInitTimeout
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = defaultMaxBodyBytes
	}
	if c.MaxUploadBytes == 0 {
		c.MaxUploadBytes = defaultMaxUploadBytes
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = defaultMaxFrameBytes
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = defaultWriteTimeout
	}
	if c.QueryCacheSize == 0 {
		c.QueryCacheSize = defaultQueryCacheSize
	}
	if c.ComplexityLimit == 0 {
		c.ComplexityLimit = defaultComplexityLimit
	}
	if c.RecoverFunc == nil {
		c.RecoverFunc = recoverPanic
	}
	return c
}

// New returns the HTTP handler for the whole server. It panics if cfg.Schema
// is nil, which is a wiring mistake rather than a runtime condition.
func New(cfg Config) *Handler {
	if cfg.Schema == nil {
		panic("server: Config.Schema is nil")
	}
	cfg = cfg.withDefaults()
	origins := newOriginPolicy(cfg.AllowedOrigins)

	var gql http.Handler = newGraphQL(cfg, origins)
	if cfg.Authenticate != nil {
		gql = cfg.Authenticate(gql)
	}
	// The origin check runs before authentication: a cross-site page must be
	// turned away even when the browser attaches the user's credentials.
	gql = websocketGate(origins, gql)
	gql = limitBody(cfg.MaxBodyBytes, cfg.MaxUploadBytes, gql)

	mux := http.NewServeMux()
	mux.Handle("/query", gql)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", readiness(cfg.Ready))
	for pattern, h := range cfg.Handlers {
		mux.Handle(pattern, h)
	}
	if cfg.Playground {
		// The page and the GraphiQL assets it loads are embedded and served
		// from this origin; the page talks to /query on this origin over
		// HTTP and, for subscriptions, websockets, sending the token from
		// its Headers tab in connection_init.
		pg := playground.New(playground.Config{Endpoint: "/query"})
		mux.Handle("GET /{$}", pg)
		mux.Handle("GET "+playground.AssetsPath, pg)
	}

	sockets := newSocketSet()
	return &Handler{Handler: withSecurityHeaders(withRequestID(cfg.Log, withAccessLog(sockets, mux))), sockets: sockets}
}

func newGraphQL(cfg Config, origins originPolicy) *handler.Server {
	srv := handler.New(cfg.Schema)

	srv.AddTransport(wsgql.New(wsgql.Config{
		Init:               guardInit(cfg.WebsocketInit),
		CheckOrigin:        origins.allowed,
		InitTimeout:        cfg.InitTimeout,
		KeepAlive:          cfg.KeepAlive,
		WriteTimeout:       cfg.WriteTimeout,
		MaxFrameBytes:      cfg.MaxFrameBytes,
		MaxOperations:      cfg.MaxOperations,
		OnOperationRefused: cfg.OnOperationRefused,
		SendQueue:          cfg.SendQueue,
		Quota:              cfg.SocketQuota,
		Pusher:             cfg.Pusher,
		BufferPool:         &sync.Pool{},
		OnError: func(ctx context.Context, err error) {
			// Mostly clients vanishing; useful when debugging a client,
			// noise otherwise.
			zerolog.Ctx(ctx).Debug().Err(err).Msg("websocket error")
		},
	}))
	srv.AddTransport(transport.Options{})
	// Uploads (multipart.go) first: their Accept may ask for anything.
	srv.AddTransport(multipartTransport{maxFieldBytes: cfg.MaxBodyBytes, maxFileBytes: cfg.MaxUploadBytes})
	// GraphQL over HTTP (http.go) and over SSE (sse.go). Event streams come
	// first: they are GETs and POSTs too, told apart by their Accept header.
	srv.AddTransport(newSSETransport(cfg.SSE, cfg.WriteTimeout))
	srv.AddTransport(httpTransport{})
	// Last: other methods get 405 rather than gqlgen's 400.
	srv.AddTransport(methodTransport{})

	docs := lru.New[*ast.QueryDocument](cfg.QueryCacheSize)
	srv.SetQueryCache(docs)
	lim := limits.New(cfg.Limits)
	// The guard has checked what the executor parses; the same token
	// limit there costs nothing and holds if that ever changes.
	srv.SetParserTokenLimit(max(lim.Config().Tokens, 0))
	srv.SetDisableSuggestion(cfg.DisableIntrospection)
	if !cfg.DisableIntrospection {
		srv.Use(extension.Introspection{})
	}
	// Persisted operations resolve a hash to a query, which the guard
	// then checks like any other.
	var registered graphql.Cache[string]
	if !cfg.PersistedOnly {
		registered = lru.New[string](cfg.QueryCacheSize)
	}
	srv.Use(&persisted{
		known:      cfg.PersistedOperations,
		registered: registered,
		maxBytes:   lim.Config().Bytes,
		only:       cfg.PersistedOnly,
		bypass:     cfg.PersistedBypass,
	})
	srv.Use(&guard{
		schema:        cfg.Schema.Schema(),
		limits:        lim,
		coerce:        coerce.New(cfg.Schema.Schema(), coerce.Config{MaxIDLength: cfg.MaxIDLength}),
		cache:         docs,
		rules:         validationRules(cfg.DisableIntrospection),
		introspection: !cfg.DisableIntrospection,
	})
	srv.Use(extension.FixedComplexityLimit(cfg.ComplexityLimit))
	srv.AroundOperations(logOperation)
	for _, ext := range cfg.Extensions {
		srv.Use(ext)
	}

	present := cfg.ErrorPresenter
	if present == nil {
		present = graphql.DefaultErrorPresenter
	}
	if cfg.DisableIntrospection {
		present = withoutSuggestions(present)
	}
	srv.SetErrorPresenter(present)
	srv.SetRecoverFunc(cfg.RecoverFunc)
	return srv
}

// guardInit logs refused connection_init payloads at debug level, where a
// client developer looks for them.
func guardInit(init wsgql.InitFunc) wsgql.InitFunc {
	if init == nil {
		return nil
	}
	return func(ctx context.Context, payload map[string]any) (context.Context, time.Time, error) {
		next, expires, err := init(ctx, payload)
		if err != nil {
			zerolog.Ctx(ctx).Debug().Err(err).Msg("websocket init refused")
		}
		return next, expires, err
	}
}

// recoverPanic is the default RecoverFunc: the stack goes to the log, where
// the request id ties it to the request, and never to the client.
func recoverPanic(ctx context.Context, p any) error {
	zerolog.Ctx(ctx).Error().
		Str("panic", fmt.Sprint(p)).
		Str("stack", string(debug.Stack())).
		Msg("panic while resolving")
	return errors.New("internal error")
}

func readiness(ready func(context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ready != nil {
			if err := ready(r.Context()); err != nil {
				// The cause may name hosts or credentials; probes only
				// need the verdict.
				zerolog.Ctx(r.Context()).Warn().Err(err).Msg("not ready")
				writeStatus(w, http.StatusServiceUnavailable, "unavailable")
				return
			}
		}
		writeStatus(w, http.StatusOK, "ok")
	}
}

func writeStatus(w http.ResponseWriter, code int, status string) {
	writeJSON(w, code, map[string]string{"status": status})
}

// writeError answers in the shape of a GraphQL response so clients parse our
// refusals the same way as gqlgen's.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"errors": []map[string]string{{"message": msg}}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
