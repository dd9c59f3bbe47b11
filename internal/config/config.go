// Package config reads jobchat's settings from flags and JOBCHAT_*
// environment variables: a flag wins over its variable, which wins over the
// default. Every setting is listed in Fields so that the README's table and
// `jobchat serve -h` stay complete. It imports the standard library only.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of the server.
type Config struct {
	Addr            string
	DataDir         string
	DatabaseURL     string
	AutoMigrate     bool
	DBMaxConns      int
	JWTSecret       string
	LogLevel        string
	LogFormat       string
	AllowedOrigins  []string
	RedisURL        string
	RedisPrefix     string
	Playground      bool
	MaxMessageChars int
	MaxComplexity   int
	SendRate        float64
	SendBurst       int
	MaxBodyBytes    int64
	MaxFrameBytes   int64
	WSKeepAlive     time.Duration
	WSInitTimeout   time.Duration
	WSWriteTimeout  time.Duration
	WSMaxOps        int
	PprofAddr       string
	WSSendQueue     int
	SubscriberBuf   int
	SSEKeepAlive    time.Duration
	SSEMaxPerCaller int
	SSEMaxStreams   int
	ShutdownTimeout time.Duration
	TypingTTL       time.Duration
	EditWindow      time.Duration
	LegacyCookie    string
	Demo            bool
}

// Field describes one setting.
type Field struct {
	Flag, Env, Default, Usage string
	set                       func(c *Config, v string) error
}

// Fields lists every setting, in the order the README documents them.
func Fields() []Field {
	return []Field{
		{"addr", "JOBCHAT_ADDR", ":8080", "address to listen on", func(c *Config, v string) error { c.Addr = v; return nil }},
		{"data-dir", "JOBCHAT_DATA_DIR", "./data", "directory for the SQLite file and the generated dev secret", func(c *Config, v string) error { c.DataDir = v; return nil }},
		{"database-url", "JOBCHAT_DATABASE_URL", "", "postgres://user:pass@host/db?sslmode=disable for PostgreSQL; empty for SQLite in the data dir", func(c *Config, v string) error { c.DatabaseURL = v; return nil }},
		{"auto-migrate", "JOBCHAT_AUTO_MIGRATE", "true", "apply pending migrations when the server starts", boolSetter(func(c *Config) *bool { return &c.AutoMigrate })},
		{"db-max-conns", "JOBCHAT_DB_MAX_CONNS", "0", "database connection pool size; 0 means 20 on PostgreSQL, 8 on SQLite", intSetter(func(c *Config) *int { return &c.DBMaxConns })},
		{"jwt-secret", "JOBCHAT_JWT_SECRET", "", "HS256 secret for bearer tokens (at least 32 characters); empty: generate one in the data dir (development only)", func(c *Config, v string) error { c.JWTSecret = v; return nil }},
		{"log-level", "JOBCHAT_LOG_LEVEL", "info", "debug, info, warn or error", func(c *Config, v string) error { c.LogLevel = v; return nil }},
		{"log-format", "JOBCHAT_LOG_FORMAT", "auto", "json, console, or auto (console when stdout is a terminal)", func(c *Config, v string) error { c.LogFormat = v; return nil }},
		{"allowed-origins", "JOBCHAT_ALLOWED_ORIGINS", "", "comma-separated Origins allowed to open WebSockets (same-origin is always allowed; * allows any)", func(c *Config, v string) error { c.AllowedOrigins = splitList(v); return nil }},
		{"redis-url", "JOBCHAT_REDIS_URL", "", "redis://host:6379/0 to fan messages out across instances; empty: in-process only", func(c *Config, v string) error { c.RedisURL = v; return nil }},
		{"redis-prefix", "JOBCHAT_REDIS_PREFIX", "jobchat:", "prefix of jobchat's Redis channel names", func(c *Config, v string) error { c.RedisPrefix = v; return nil }},
		{"playground", "JOBCHAT_PLAYGROUND", "true", "serve the GraphiQL playground at /", boolSetter(func(c *Config) *bool { return &c.Playground })},
		{"max-message-chars", "JOBCHAT_MAX_MESSAGE_CHARS", "4000", "longest messageText, in characters", intSetter(func(c *Config) *int { return &c.MaxMessageChars })},
		{"send-rate", "JOBCHAT_SEND_RATE", "10", "messages per second each user may send (per instance); 0 turns the limit off", floatSetter(func(c *Config) *float64 { return &c.SendRate })},
		{"send-burst", "JOBCHAT_SEND_BURST", "30", "messages a user may send at once before the rate applies", intSetter(func(c *Config) *int { return &c.SendBurst })},
		{"max-complexity", "JOBCHAT_MAX_COMPLEXITY", "5000", "largest operation complexity; a connection costs its page size times its nodes' fields", intSetter(func(c *Config) *int { return &c.MaxComplexity })},
		{"max-body-bytes", "JOBCHAT_MAX_BODY_BYTES", "1048576", "largest HTTP request body", int64Setter(func(c *Config) *int64 { return &c.MaxBodyBytes })},
		{"max-frame-bytes", "JOBCHAT_MAX_FRAME_BYTES", "65536", "largest WebSocket message from a client", int64Setter(func(c *Config) *int64 { return &c.MaxFrameBytes })},
		{"ws-keepalive", "JOBCHAT_WS_KEEPALIVE", "15s", "interval of WebSocket keep-alive pings", durationSetter(func(c *Config) *time.Duration { return &c.WSKeepAlive })},
		{"ws-init-timeout", "JOBCHAT_WS_INIT_TIMEOUT", "10s", "how long a socket may wait before connection_init", durationSetter(func(c *Config) *time.Duration { return &c.WSInitTimeout })},
		{"ws-write-timeout", "JOBCHAT_WS_WRITE_TIMEOUT", "10s", "write deadline per WebSocket message; a client slower than that is cut off", durationSetter(func(c *Config) *time.Duration { return &c.WSWriteTimeout })},
		{"ws-max-operations", "JOBCHAT_WS_MAX_OPERATIONS", "100", "operations one WebSocket may run at once; the extra one gets a RATE_LIMITED error", intSetter(func(c *Config) *int { return &c.WSMaxOps })},
		{"ws-send-queue", "JOBCHAT_WS_SEND_QUEUE", "1024", "frames that may wait for a slow WebSocket client; when full, its operations wait up to the write timeout, then it is closed with 1008", intSetter(func(c *Config) *int { return &c.WSSendQueue })},
		{"pprof-addr", "JOBCHAT_PPROF_ADDR", "", "address for Go's /debug/pprof endpoints, e.g. 127.0.0.1:6060; empty: off. Never expose it publicly", func(c *Config, v string) error { c.PprofAddr = v; return nil }},
		{"subscriber-buffer", "JOBCHAT_SUBSCRIBER_BUFFER", "256", "events a subscription run by gqlgen's executor (SSE) may lag: past it messageAdded resynchronises from the database and live-only events are dropped (pushed WebSocket subscriptions use the send queue)", intSetter(func(c *Config) *int { return &c.SubscriberBuf })},
		{"sse-keepalive", "JOBCHAT_SSE_KEEPALIVE", "15s", "how long a Server-Sent Events stream may stay silent before a keep-alive comment", durationSetter(func(c *Config) *time.Duration { return &c.SSEKeepAlive })},
		{"sse-max-per-caller", "JOBCHAT_SSE_MAX_PER_CALLER", "16", "Server-Sent Events streams one caller may hold open at once; more get 429", intSetter(func(c *Config) *int { return &c.SSEMaxPerCaller })},
		{"sse-max-streams", "JOBCHAT_SSE_MAX_STREAMS", "10000", "Server-Sent Events streams the instance holds open at once; more get 429", intSetter(func(c *Config) *int { return &c.SSEMaxStreams })},
		{"typing-ttl", "JOBCHAT_TYPING_TTL", "6s", "how long a setTyping(true) lasts without a renewal before the server sends TYPING_STOPPED", durationSetter(func(c *Config) *time.Duration { return &c.TypingTTL })},
		{"edit-window", "JOBCHAT_EDIT_WINDOW", "15m", "how long after sending a user may edit their TEXT message", durationSetter(func(c *Config) *time.Duration { return &c.EditWindow })},
		{"legacy-cookie", "JOBCHAT_LEGACY_COOKIE", "jobchat_token", "cookie that may carry the token on the deprecated /ws/chat/{id}/ socket", func(c *Config, v string) error { c.LegacyCookie = v; return nil }},
		{"shutdown-timeout", "JOBCHAT_SHUTDOWN_TIMEOUT", "15s", "how long a graceful shutdown waits for requests in flight", durationSetter(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
	}
}

// Load parses args (without the program and subcommand names) over the
// environment. extra, if not nil, may add flags of the subcommand to fs.
func Load(name string, args []string, getenv func(string) string, stderr io.Writer, extra func(fs *flag.FlagSet)) (Config, []string, error) {
	var c Config
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fields := Fields()
	values := make([]*string, len(fields))
	for i, f := range fields {
		def := f.Default
		if v := getenv(f.Env); v != "" {
			def = v
		}
		values[i] = fs.String(f.Flag, def, f.Usage+" ($"+f.Env+")")
	}
	fs.BoolVar(&c.Demo, "demo", false, "seed a demo conversation and print tokens to try it")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return c, nil, err
	}
	for i, f := range fields {
		if err := f.set(&c, *values[i]); err != nil {
			return c, nil, fmt.Errorf("%s (--%s): %w", f.Env, f.Flag, err)
		}
	}
	if err := c.validate(); err != nil {
		return c, nil, err
	}
	return c, fs.Args(), nil
}

func (c *Config) validate() error {
	var errs []error
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		errs = append(errs, errors.New("JOBCHAT_JWT_SECRET must be at least 32 characters"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("JOBCHAT_LOG_LEVEL must be debug, info, warn or error, not %q", c.LogLevel))
	}
	switch c.LogFormat {
	case "auto", "json", "console":
	default:
		errs = append(errs, fmt.Errorf("JOBCHAT_LOG_FORMAT must be auto, json or console, not %q", c.LogFormat))
	}
	if c.MaxMessageChars <= 0 {
		errs = append(errs, errors.New("JOBCHAT_MAX_MESSAGE_CHARS must be positive"))
	}
	if c.SendRate > 0 && c.SendBurst <= 0 {
		errs = append(errs, errors.New("JOBCHAT_SEND_BURST must be positive when JOBCHAT_SEND_RATE is set"))
	}
	if c.MaxComplexity <= 0 {
		errs = append(errs, errors.New("JOBCHAT_MAX_COMPLEXITY must be positive"))
	}
	if c.MaxBodyBytes <= 0 || c.MaxFrameBytes <= 0 {
		errs = append(errs, errors.New("JOBCHAT_MAX_BODY_BYTES and JOBCHAT_MAX_FRAME_BYTES must be positive"))
	}
	if c.WSMaxOps <= 0 || c.WSSendQueue <= 0 {
		errs = append(errs, errors.New("JOBCHAT_WS_MAX_OPERATIONS and JOBCHAT_WS_SEND_QUEUE must be positive"))
	}
	if c.SubscriberBuf <= 0 {
		errs = append(errs, errors.New("JOBCHAT_SUBSCRIBER_BUFFER must be positive"))
	}
	if c.SSEMaxPerCaller <= 0 || c.SSEMaxStreams <= 0 {
		errs = append(errs, errors.New("JOBCHAT_SSE_MAX_PER_CALLER and JOBCHAT_SSE_MAX_STREAMS must be positive"))
	}
	return errors.Join(errs...)
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func boolSetter(p func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", v)
		}
		*p(c) = b
		return nil
	}
}

func intSetter(p func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("want a whole number, got %q", v)
		}
		*p(c) = n
		return nil
	}
}

func floatSetter(p func(*Config) *float64) func(*Config, string) error {
	return func(c *Config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			return fmt.Errorf("want a number of 0 or more, got %q", v)
		}
		*p(c) = f
		return nil
	}
}

func int64Setter(p func(*Config) *int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("want a whole number, got %q", v)
		}
		*p(c) = n
		return nil
	}
}

func durationSetter(p func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration such as 15s, got %q", v)
		}
		*p(c) = d
		return nil
	}
}
