package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/jobchat/jobchat/internal/wsgql"
	"github.com/mattn/go-isatty"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/uptrace/bun"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph"
	"github.com/jobchat/jobchat/internal/auth"
	"github.com/jobchat/jobchat/internal/broadcast"
	"github.com/jobchat/jobchat/internal/config"
	"github.com/jobchat/jobchat/internal/contact"
	"github.com/jobchat/jobchat/internal/files"
	"github.com/jobchat/jobchat/internal/legacy"
	"github.com/jobchat/jobchat/internal/limits"
	"github.com/jobchat/jobchat/internal/metrics"
	"github.com/jobchat/jobchat/internal/notify"
	"github.com/jobchat/jobchat/internal/server"
	"github.com/jobchat/jobchat/internal/webhook"
	"github.com/jobchat/jobchat/migrations"
	"github.com/jobchat/jobchat/resolvers"
)

// app is everything a running server holds.
type app struct {
	cfg      config.Config
	log      zerolog.Logger
	db       *bun.DB
	hub      *broadcast.Hub
	redis    redis.UniversalClient // nil without JOBCHAT_REDIS_URL
	secret   []byte
	resolver *resolvers.Resolver
	handler  *server.Handler
	// notices sends the outbox's notices; nil without JOBCHAT_WEBHOOK_URL.
	notices *notify.Dispatcher
	// metrics is the Prometheus registry (ops.go); stopSweep ends the
	// feeds' sweep (JOBCHAT_FEED_SWEEP).
	metrics   *metrics.Metrics
	stopSweep func()
	// files keeps attachments: the data dir's disk, or S3 with
	// JOBCHAT_S3_ENDPOINT; fileURLs signs the /files/... URLs they are
	// read through.
	files    files.Store
	fileURLs *files.Signer
	// stopUploadSweep ends the sweep of uploads nobody sent.
	stopUploadSweep func()
	// verifier checks bearer tokens; Close stops its JWKS refresh.
	verifier *auth.Verifier
}

func newLogger(cfg config.Config, out io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		level = zerolog.InfoLevel
	}
	console := cfg.LogFormat == "console"
	if cfg.LogFormat == "auto" {
		if f, ok := out.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			console = true
		}
	}
	if console {
		out = zerolog.ConsoleWriter{Out: out, FormatTimestamp: consoleTime}
	}
	return zerolog.New(out).Level(level).Hook(timestampHook{})
}

// logTimeFormat is RFC 3339 with milliseconds, always three digits, so that
// lines sort and align. zerolog's own Timestamp formats with the global
// zerolog.TimeFieldFormat (whole seconds by default); this hook leaves the
// global alone.
const logTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// timestampHook stamps every line with its time. It is the root logger's
// first hook, so the time comes before the fields other hooks add (req_id,
// user_id).
type timestampHook struct{}

func (timestampHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str(zerolog.TimestampFieldName, time.Now().Format(logTimeFormat))
}

// consoleTime shows a line's time as 15:04:05.000 in the console format.
func consoleTime(v any) string {
	s, _ := v.(string)
	t, err := time.Parse(logTimeFormat, s)
	if err != nil {
		return s
	}
	return t.Local().Format("15:04:05.000")
}

// loadSecret returns the configured JWT secret, or the data dir's
// development secret, making it on first use.
func loadSecret(cfg config.Config, log zerolog.Logger) ([]byte, error) {
	if cfg.JWTSecret != "" {
		return []byte(cfg.JWTSecret), nil
	}
	secret, created, err := auth.LoadOrCreateSecret(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	ev := log.Warn().Str("dir", cfg.DataDir)
	if created {
		ev.Msg("JOBCHAT_JWT_SECRET is not set: generated a development secret in the data dir; set JOBCHAT_JWT_SECRET in production")
	} else {
		ev.Msg("JOBCHAT_JWT_SECRET is not set: using the development secret in the data dir")
	}
	return secret, nil
}

func openDB(ctx context.Context, cfg config.Config) (*bun.DB, error) {
	return db.Open(ctx, db.Config{URL: cfg.DatabaseURL, DataDir: cfg.DataDir, MaxOpenConns: cfg.DBMaxConns})
}

// newApp opens the database, migrates it, connects the broker and builds
// the HTTP handler. close releases all of it.
func newApp(ctx context.Context, cfg config.Config, log zerolog.Logger) (*app, error) {
	a := &app{cfg: cfg, log: log}
	ok := false
	defer func() {
		if !ok {
			a.close()
		}
	}()

	var err error
	if a.secret, err = loadSecret(cfg, log); err != nil {
		return nil, err
	}
	if a.db, err = openDB(ctx, cfg); err != nil {
		return nil, err
	}
	log.Info().Str("dialect", a.db.Dialect().Name().String()).Msg("database connected")
	if cfg.AutoMigrate {
		res, err := migrations.Up(ctx, a.db)
		if err != nil {
			return nil, err
		}
		log.Info().Strs("applied", res.Applied).Msg("migrations up to date")
	}

	var broker broadcast.Broker
	if cfg.RedisURL != "" {
		if a.redis, broker, err = connectRedis(ctx, cfg, log); err != nil {
			return nil, err
		}
	} else {
		broker = broadcast.NewMemoryBroker()
		log.Info().Msg("fan-out in process (set JOBCHAT_REDIS_URL to run several instances)")
	}
	if a.hub, err = broadcast.NewHub(broker, broadcast.Config{BufferSize: cfg.SubscriberBuf, QueueSize: cfg.PublishQueue}); err != nil {
		_ = broker.Close()
		return nil, fmt.Errorf("start hub: %w", err)
	}

	detector, err := contact.New(contact.Config{Region: cfg.DefaultRegion})
	if err != nil {
		return nil, fmt.Errorf("JOBCHAT_DEFAULT_REGION: %w", err)
	}
	var notifyDelay func() time.Duration
	if cfg.WebhookURL != "" {
		if a.notices, err = newNotices(a.db, cfg); err != nil {
			return nil, err
		}
		notifyDelay = a.notices.Delay
	}
	if a.files, a.fileURLs, err = newFiles(ctx, cfg, log); err != nil {
		return nil, err
	}
	a.metrics = newMetrics(a)
	a.resolver = resolvers.New(a.db, a.hub, resolvers.Config{
		Observer:        a.metrics,
		MaxMessageChars: cfg.MaxMessageChars,
		SendRate:        cfg.SendRate,
		SendBurst:       cfg.SendBurst,
		TypingRate:      cfg.TypingRate,
		TypingBurst:     cfg.TypingBurst,
		Limits:          newLimits(cfg, a.redis),
		TypingTTL:       cfg.TypingTTL,
		EditWindow:      cfg.EditWindow,
		ValueBuffer:     cfg.SubscriberBuf,
		Contact:         detector,
		ContactPolicy:   db.ContactPolicy(cfg.ContactPolicy),
		NotifyDelay:     notifyDelay,
		Files:           a.files,
		FileURLs:        a.fileURLs,
		MaxUploadBytes:  cfg.MaxUploadBytes,
		UploadRate:      cfg.UploadRate,
	})
	if a.verifier, err = newVerifier(ctx, cfg, a.secret, log); err != nil {
		return nil, err
	}
	verifier := a.verifier
	quota := newSocketQuota(cfg, a.metrics.SocketRefused)
	docLimits := limits.Config{
		Bytes: cfg.MaxQueryBytes, Tokens: cfg.MaxTokens, Depth: cfg.MaxDepth, Aliases: cfg.MaxAliases,
		Duplicates: cfg.MaxDuplicates, Fields: cfg.MaxFields, Fragments: cfg.MaxFragments,
	}
	var persisted map[string]string
	if cfg.PersistedOperations != "" {
		if persisted, err = server.LoadPersistedOperations(cfg.PersistedOperations, docLimits); err != nil {
			return nil, fmt.Errorf("JOBCHAT_PERSISTED_OPERATIONS: %w", err)
		}
		log.Info().Int("operations", len(persisted)).Bool("only", cfg.PersistedOnly).Msg("persisted operations loaded")
	}
	a.handler = server.New(server.Config{
		Schema:             graph.NewExecutableSchema(a.resolver.Schema()),
		Log:                log,
		Authenticate:       func(next http.Handler) http.Handler { return verifier.Middleware(logCaller(next)) },
		WebsocketInit:      logCallerInit(verifier.WebsocketInit),
		Pusher:             a.resolver,
		ErrorPresenter:     resolvers.ErrorPresenter,
		Extensions:         []graphql.HandlerExtension{resolvers.CacheExtension{}, resolvers.AuditExtension{}, a.metrics.GraphQL()},
		Ready:              func(ctx context.Context) error { return db.Ping(ctx, a.db) },
		AllowedOrigins:     cfg.AllowedOrigins,
		KeepAlive:          cfg.WSKeepAlive,
		InitTimeout:        cfg.WSInitTimeout,
		MaxBodyBytes:       cfg.MaxBodyBytes,
		MaxUploadBytes:     cfg.MaxUploadBytes,
		ComplexityLimit:    cfg.MaxComplexity,
		MaxFrameBytes:      cfg.MaxFrameBytes,
		WriteTimeout:       cfg.WSWriteTimeout,
		MaxOperations:      cfg.WSMaxOps,
		OnOperationRefused: a.metrics.SocketRefused,
		SendQueue:          cfg.WSSendQueue,
		SocketQuota:        quota,
		Playground:         cfg.Playground,

		// Document limits, introspection and persisted operations: see
		// the README's Security section.
		Limits:               docLimits,
		MaxIDLength:          resolvers.MaxIDLength,
		DisableIntrospection: !cfg.IntrospectionOn(),
		PersistedOperations:  persisted,
		PersistedOnly:        cfg.PersistedOnly,
		PersistedBypass:      isService,

		Handlers: map[string]http.Handler{
			// Deprecated: the Django consumer's socket, for the old
			// frontend while it moves to GraphQL.
			legacy.Pattern: legacy.New(a.resolver.LegacySocket(verifier), legacy.Config{
				MaxFrameBytes: cfg.MaxFrameBytes,
				WriteTimeout:  cfg.WSWriteTimeout,
				KeepAlive:     cfg.WSKeepAlive,
				SendQueue:     cfg.WSSendQueue,
				Cookie:        cfg.LegacyCookie,
				CheckOrigin:   server.CheckOrigin(cfg.AllowedOrigins),
				Quota:         quota,
			}),
			// Attachments, through signed URLs: no bearer token, since an
			// <img> cannot send one.
			files.Pattern: files.NewHandler(a.files, a.fileURLs, files.HandlerConfig{Redirect: cfg.S3Redirect}),
		},
		SSE: server.SSEConfig{
			KeepAlive:    cfg.SSEKeepAlive,
			MaxPerCaller: cfg.SSEMaxPerCaller,
			MaxStreams:   cfg.SSEMaxStreams,
			Caller:       streamCaller,
			Expired:      fmt.Errorf("%w: token expired", auth.ErrUnauthenticated),
		},
	})
	// Outermost: it counts every socket, and answers /metrics unless that
	// has a listener of its own.
	a.handler.Handler = a.metrics.Middleware(a.handler.Handler, cfg.MetricsAddr == "")
	// /metrics, answered above, gets the security headers too.
	a.handler.Handler = server.SecurityHeaders(a.handler.Handler)
	a.stopSweep = background(log, func(ctx context.Context) { a.resolver.RunFeedSweep(ctx, cfg.FeedSweep) })
	a.stopUploadSweep = background(log, func(ctx context.Context) { a.resolver.RunUploadSweeper(ctx, uploadSweepEvery) })
	if a.notices != nil {
		a.notices.Start(log.WithContext(ctx))
	}
	ok = true
	return a, nil
}

// uploadSweepEvery is how often each instance deletes the uploads nobody
// sent within a day; instances may overlap, each row goes once.
const uploadSweepEvery = time.Hour

// isService reports a service caller, which JOBCHAT_PERSISTED_ONLY lets
// run any operation: the job-service is ours, and holds a secret.
func isService(ctx context.Context) bool {
	c, err := auth.CallerFrom(ctx)
	return err == nil && c.Service
}

// newFiles opens the attachments' store and makes their URL signer.
func newFiles(ctx context.Context, cfg config.Config, log zerolog.Logger) (files.Store, *files.Signer, error) {
	key := []byte(cfg.FileURLKey)
	if len(key) == 0 {
		k, created, err := files.LoadOrCreateURLKey(cfg.DataDir)
		if err != nil {
			return nil, nil, err
		}
		key = k
		ev := log.Warn().Str("dir", cfg.DataDir)
		if created {
			ev.Msg("JOBCHAT_FILE_URL_KEY is not set: generated a file URL key in the data dir; set it (the same on every instance) to run several")
		} else {
			ev.Msg("JOBCHAT_FILE_URL_KEY is not set: using the file URL key in the data dir")
		}
	}
	signer := files.NewSigner(key, cfg.FileURLTTL)
	if cfg.S3Endpoint == "" {
		store, err := files.NewDiskStore(filepath.Join(cfg.DataDir, "files"))
		if err != nil {
			return nil, nil, err
		}
		log.Info().Str("dir", cfg.DataDir).Msg("attachments on disk (set JOBCHAT_S3_ENDPOINT to run several instances)")
		return store, signer, nil
	}
	store, err := files.NewS3Store(ctx, files.S3Config{
		Endpoint:  cfg.S3Endpoint,
		Bucket:    cfg.S3Bucket,
		AccessKey: cfg.S3AccessKey,
		SecretKey: cfg.S3SecretKey,
		Region:    cfg.S3Region,
		PathStyle: cfg.S3PathStyle,
		UseSSL:    true,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("JOBCHAT_S3_ENDPOINT: %w", err)
	}
	log.Info().Str("endpoint", cfg.S3Endpoint).Str("bucket", cfg.S3Bucket).Msg("attachments in S3")
	return store, signer, nil
}

// newNotices builds the dispatcher of notices for offline users.
func newNotices(bdb *bun.DB, cfg config.Config) (*notify.Dispatcher, error) {
	secret, err := webhook.ParseSecret(cfg.WebhookSecret)
	if err != nil {
		return nil, fmt.Errorf("JOBCHAT_WEBHOOK_SECRET: %w", err)
	}
	sender, err := webhook.NewSender(webhook.Config{URL: cfg.WebhookURL, Secret: secret, Timeout: cfg.WebhookTimeout})
	if err != nil {
		return nil, fmt.Errorf("JOBCHAT_WEBHOOK_URL: %w", err)
	}
	return notify.New(bdb, sender, notify.Config{
		Delay:    cfg.NotifyDelay,
		RetryMin: cfg.WebhookRetryMin,
		// A claim outlasts an attempt, or another instance could send the
		// same notice while the first is still waiting for its answer.
		Lease: max(2*time.Minute, 2*cfg.WebhookTimeout+30*time.Second),
	}), nil
}

func (a *app) close() {
	if a.notices != nil {
		// The attempt in hand may finish, for a few seconds at most (one
		// cut short is sent again under its webhook-id); what this
		// instance holds goes back to the outbox for the next one.
		ctx, cancel := context.WithTimeout(context.Background(), min(a.cfg.ShutdownTimeout, 5*time.Second))
		a.notices.Stop(ctx)
		cancel()
	}
	if a.resolver != nil {
		// Typers on this instance stop typing with it: tell the others
		// now rather than leave them to their TTL.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		a.resolver.CloseTyping(ctx)
		cancel()
	}
	if a.stopSweep != nil {
		a.stopSweep()
	}
	if a.stopUploadSweep != nil {
		a.stopUploadSweep()
	}
	if a.verifier != nil {
		a.verifier.Close()
	}
	if a.hub != nil {
		if err := a.hub.Close(); err != nil {
			a.log.Warn().Err(err).Msg("close hub")
		}
	}
	if a.redis != nil {
		_ = a.redis.Close()
	}
	if a.db != nil {
		_ = a.db.Close()
	}
}

// connectRedis connects to the Redis (or, with JOBCHAT_REDIS_CLUSTER, the
// Redis Cluster) of JOBCHAT_REDIS_URL and returns the client, which the
// rate limits share, and the broker over it.
func connectRedis(ctx context.Context, cfg config.Config, log zerolog.Logger) (redis.UniversalClient, broadcast.Broker, error) {
	if cfg.RedisCluster {
		opts, err := redis.ParseClusterURL(cfg.RedisURL)
		if err != nil {
			return nil, nil, fmt.Errorf("JOBCHAT_REDIS_URL (expected redis://host:7000?addr=host2:7000&addr=host3:7000): %w", err)
		}
		// Deadlines of contexts bound each call, not the read timeout
		// alone: the rate limits' checks on the send path give up on a
		// Redis that hangs after 100 ms (internal/ratelimit).
		opts.ContextTimeoutEnabled = true
		client := redis.NewClusterClient(opts)
		// Any node will do: the slot map is loaded from the seeds first.
		if err := client.Ping(ctx).Err(); err != nil {
			_ = client.Close()
			return nil, nil, fmt.Errorf("connect to redis cluster at %s: %w", strings.Join(opts.Addrs, ","), err)
		}
		log.Info().Strs("seeds", opts.Addrs).Msg("fan-out through redis cluster, sharded pub/sub")
		return client, broadcast.NewRedisClusterBroker(client, cfg.RedisPrefix), nil
	}
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		// config has checked the scheme; this is the rest (a bad port
		// or database number).
		return nil, nil, fmt.Errorf("JOBCHAT_REDIS_URL (expected redis://host:6379/0): %w", err)
	}
	opts.ContextTimeoutEnabled = true // as above
	client := redis.NewClient(opts)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, nil, fmt.Errorf("connect to redis at %s: %w", opts.Addr, err)
	}
	log.Info().Str("addr", opts.Addr).Msg("fan-out through redis")
	return client, broadcast.NewRedisBroker(client, cfg.RedisPrefix), nil
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var demo bool
	cmd := serveCommand
	cmd.Flags = func(fs *flag.FlagSet) {
		fs.BoolVar(&demo, "demo", false, "seed the demo conversation and print its tokens and operations")
	}
	cfg, err := cmd.Parse(args, getenv, stdout)
	if err != nil {
		return err
	}
	cfg.Demo = demo
	log := newLogger(cfg, stdout)
	zerolog.DefaultContextLogger = &log
	redisLogger.Store(&log)

	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.close()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	base := baseURL(ln.Addr())
	if cfg.Demo {
		if err := printDemo(ctx, a, base, stdout); err != nil {
			_ = ln.Close()
			return err
		}
	}

	// Sockets are hijacked, so Shutdown does not wait for them; their
	// contexts derive from baseCtx, and cancelling it closes them.
	baseCtx, cancelSockets := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSockets()
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          newStdLog(log),
	}
	srv.RegisterOnShutdown(cancelSockets)

	if cfg.PprofAddr != "" {
		stop, err := servePprof(cfg.PprofAddr, log)
		if err != nil {
			_ = ln.Close()
			return err
		}
		defer stop()
	}

	if cfg.MetricsAddr != "" {
		stop, err := serveMetrics(cfg.MetricsAddr, a.metrics, log)
		if err != nil {
			_ = ln.Close()
			return err
		}
		defer stop()
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info().Str("addr", ln.Addr().String()).Str("url", base+"/").Bool("playground", cfg.Playground).
		Str("version", buildVersion()).Msg("jobchat listening")

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info().Stringer("timeout", cfg.ShutdownTimeout).Msg("shutting down")
	shutdown(context.WithoutCancel(ctx), srv, a.handler, cfg.ShutdownTimeout, log)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info().Msg("stopped")
	return nil
}

// shutdown stops srv within timeout: requests in flight finish, and every
// socket closes and logs its "websocket closed" line. Shutdown's hooks ask
// the sockets to close (1001), but Shutdown waits for none of them: they
// are hijacked; h waits for them. What is still open when all but the last
// fifth of the timeout (at most a second) has passed is dropped, which
// ends it at once, and the rest of the timeout is for that: so every
// socket is logged before the process says it stopped.
func shutdown(ctx context.Context, srv *http.Server, h *server.Handler, timeout time.Duration, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	graceCtx, cancelGrace := context.WithTimeout(ctx, timeout-min(time.Second, timeout/5))
	defer cancelGrace()
	if err := srv.Shutdown(graceCtx); err != nil {
		log.Warn().Err(err).Msg("graceful shutdown timed out; closing connections")
		_ = srv.Close()
	}
	open := h.WaitSockets(graceCtx)
	if open == 0 {
		return
	}
	log.Warn().Int("sockets", open).Msg("sockets did not close in time; dropping them")
	h.CloseSockets()
	if open := h.WaitSockets(ctx); open > 0 {
		log.Warn().Int("sockets", open).Msg("sockets still open at the shutdown timeout")
	}
}

// baseURL is how a person on this machine reaches the listener.
func baseURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return "http://" + host + ":" + port
}

// withCallerLog adds the caller's id to the request's logger, so that every
// line logged for the request says whose it was.
func withCallerLog(ctx context.Context) context.Context {
	c, err := auth.CallerFrom(ctx)
	if err != nil {
		return ctx
	}
	l := zerolog.Ctx(ctx).Hook(callerHook{id: c.ID, service: c.Service})
	return l.WithContext(ctx)
}

// callerHook adds the caller to every line; a hook rather than With for the
// reason given at server's requestIDHook: an open socket keeps its logger.
type callerHook struct {
	id      string
	service bool
}

func (h callerHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str("user_id", h.id).Bool("service", h.service)
}

// streamCaller tells the SSE transport whose stream a request opens, for
// the per-caller cap, and when its token expires, which ends the stream.
// Services and users live in different id spaces, hence the prefix.
func streamCaller(ctx context.Context) (string, time.Time) {
	c, err := auth.CallerFrom(ctx)
	if err != nil {
		return "", time.Time{}
	}
	if c.Service {
		return "service:" + c.ID, c.ExpiresAt
	}
	return "user:" + c.ID, c.ExpiresAt
}

func logCaller(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(withCallerLog(r.Context())))
	})
}

func logCallerInit(init wsgql.InitFunc) wsgql.InitFunc {
	return func(ctx context.Context, p map[string]any) (context.Context, time.Time, error) {
		ctx, expires, err := init(ctx, p)
		if err != nil {
			zerolog.Ctx(ctx).Info().Err(err).Msg("websocket authentication refused")
			return ctx, expires, err
		}
		return withCallerLog(ctx), expires, nil
	}
}

// servePprof serves Go's profiles on their own listener, so that they are
// never reachable through the public address by mistake. It returns a
// function that stops the listener.
func servePprof(addr string, log zerolog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for pprof on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Warn().Str("addr", ln.Addr().String()).Msg("pprof listening: profiles expose internals, keep this address private")
	return func() { _ = srv.Close() }, nil
}
