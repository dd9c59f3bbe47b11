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
	"net/url"
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
	ContactPolicy   string
	DefaultRegion   string
	LegacyCookie    string
	WebhookURL      string
	WebhookSecret   string
	NotifyDelay     time.Duration
	WebhookRetryMin time.Duration
	WebhookTimeout  time.Duration
	Demo            bool
}

// Field describes one setting.
type Field struct {
	Flag, Env, Default, Usage string
	// Group is the heading the setting is listed under, in -h and in the
	// README's configuration table: one of Groups.
	Group string
	// Type is what the value is, as -h shows it: string, bool, int, float,
	// duration or list (comma-separated).
	Type string
	set  func(c *Config, v string) error
}

// The groups of settings.
const (
	GroupServer   = "Server"
	GroupDatabase = "Database"
	GroupAuth     = "Auth"
	GroupLogs     = "Logs"
	GroupRedis    = "Redis"
	GroupLimits   = "Limits"
	GroupWS       = "WebSocket"
	GroupSSE      = "SSE"
	GroupLive     = "Live features"
	GroupNotify   = "Notifications"
	GroupLegacy   = "Old chat socket"
)

// Groups lists the groups in the order -h and the README show them, which
// is also the order of Fields.
func Groups() []string {
	return []string{GroupServer, GroupDatabase, GroupAuth, GroupLogs, GroupRedis, GroupLimits, GroupWS, GroupSSE, GroupLive, GroupNotify, GroupLegacy}
}

// Fields lists every setting, group by group, in the order the README
// documents them.
func Fields() []Field {
	return []Field{
		str(GroupServer, "addr", "JOBCHAT_ADDR", ":8080", "address to listen on", func(c *Config) *string { return &c.Addr }),
		boolean(GroupServer, "playground", "JOBCHAT_PLAYGROUND", "true", "serve the GraphiQL playground at /", func(c *Config) *bool { return &c.Playground }),
		list(GroupServer, "allowed-origins", "JOBCHAT_ALLOWED_ORIGINS", "", "comma-separated Origins allowed to open WebSockets (same-origin is always allowed; * allows any)", func(c *Config) *[]string { return &c.AllowedOrigins }),
		duration(GroupServer, "shutdown-timeout", "JOBCHAT_SHUTDOWN_TIMEOUT", "15s", "how long a graceful shutdown waits for requests in flight and for sockets to close", func(c *Config) *time.Duration { return &c.ShutdownTimeout }),
		str(GroupServer, "pprof-addr", "JOBCHAT_PPROF_ADDR", "", "address for Go's /debug/pprof endpoints, e.g. 127.0.0.1:6060; empty: off. Never expose it publicly", func(c *Config) *string { return &c.PprofAddr }),

		str(GroupDatabase, "data-dir", "JOBCHAT_DATA_DIR", "./data", "directory for the SQLite file and the generated dev secret", func(c *Config) *string { return &c.DataDir }),
		str(GroupDatabase, "database-url", "JOBCHAT_DATABASE_URL", "", "postgres://user:pass@host/db?sslmode=disable for PostgreSQL; empty for SQLite in the data dir", func(c *Config) *string { return &c.DatabaseURL }),
		boolean(GroupDatabase, "auto-migrate", "JOBCHAT_AUTO_MIGRATE", "true", "apply pending migrations when the server starts", func(c *Config) *bool { return &c.AutoMigrate }),
		integer(GroupDatabase, "db-max-conns", "JOBCHAT_DB_MAX_CONNS", "0", "database connection pool size; 0 means 20 on PostgreSQL, 8 on SQLite", func(c *Config) *int { return &c.DBMaxConns }),

		str(GroupAuth, "jwt-secret", "JOBCHAT_JWT_SECRET", "", "HS256 secret for bearer tokens (at least 32 characters); empty: generate one in the data dir (development only)", func(c *Config) *string { return &c.JWTSecret }),

		str(GroupLogs, "log-level", "JOBCHAT_LOG_LEVEL", "info", "debug, info, warn or error", func(c *Config) *string { return &c.LogLevel }),
		str(GroupLogs, "log-format", "JOBCHAT_LOG_FORMAT", "auto", "json, console, or auto (console when stdout is a terminal)", func(c *Config) *string { return &c.LogFormat }),

		str(GroupRedis, "redis-url", "JOBCHAT_REDIS_URL", "", "redis://host:6379/0 (rediss:// for TLS) to fan messages out across instances; empty: in-process only", func(c *Config) *string { return &c.RedisURL }),
		str(GroupRedis, "redis-prefix", "JOBCHAT_REDIS_PREFIX", "jobchat:", "prefix of jobchat's Redis channel names", func(c *Config) *string { return &c.RedisPrefix }),

		integer(GroupLimits, "max-message-chars", "JOBCHAT_MAX_MESSAGE_CHARS", "4000", "longest messageText, in characters", func(c *Config) *int { return &c.MaxMessageChars }),
		float(GroupLimits, "send-rate", "JOBCHAT_SEND_RATE", "10", "messages per second each user may send (per instance); 0 turns the limit off", func(c *Config) *float64 { return &c.SendRate }),
		integer(GroupLimits, "send-burst", "JOBCHAT_SEND_BURST", "30", "messages a user may send at once before the rate applies", func(c *Config) *int { return &c.SendBurst }),
		integer(GroupLimits, "max-complexity", "JOBCHAT_MAX_COMPLEXITY", "5000", "largest operation complexity; a connection costs its page size times its nodes' fields", func(c *Config) *int { return &c.MaxComplexity }),
		integer64(GroupLimits, "max-body-bytes", "JOBCHAT_MAX_BODY_BYTES", "1048576", "largest HTTP request body", func(c *Config) *int64 { return &c.MaxBodyBytes }),
		integer64(GroupLimits, "max-frame-bytes", "JOBCHAT_MAX_FRAME_BYTES", "65536", "largest WebSocket message from a client", func(c *Config) *int64 { return &c.MaxFrameBytes }),

		duration(GroupWS, "ws-keepalive", "JOBCHAT_WS_KEEPALIVE", "15s", "interval of WebSocket keep-alive pings", func(c *Config) *time.Duration { return &c.WSKeepAlive }),
		duration(GroupWS, "ws-init-timeout", "JOBCHAT_WS_INIT_TIMEOUT", "10s", "how long a socket may wait before connection_init", func(c *Config) *time.Duration { return &c.WSInitTimeout }),
		duration(GroupWS, "ws-write-timeout", "JOBCHAT_WS_WRITE_TIMEOUT", "10s", "write deadline per WebSocket message; a client slower than that is cut off", func(c *Config) *time.Duration { return &c.WSWriteTimeout }),
		integer(GroupWS, "ws-max-operations", "JOBCHAT_WS_MAX_OPERATIONS", "100", "operations one WebSocket may run at once; the extra one gets a RATE_LIMITED error", func(c *Config) *int { return &c.WSMaxOps }),
		integer(GroupWS, "ws-send-queue", "JOBCHAT_WS_SEND_QUEUE", "1024", "frames that may wait for a slow WebSocket client; when full, its operations wait up to the write timeout, then it is closed with 1008", func(c *Config) *int { return &c.WSSendQueue }),

		duration(GroupSSE, "sse-keepalive", "JOBCHAT_SSE_KEEPALIVE", "15s", "how long a Server-Sent Events stream may stay silent before a keep-alive comment", func(c *Config) *time.Duration { return &c.SSEKeepAlive }),
		integer(GroupSSE, "sse-max-per-caller", "JOBCHAT_SSE_MAX_PER_CALLER", "16", "Server-Sent Events streams one caller may hold open at once; more get 429", func(c *Config) *int { return &c.SSEMaxPerCaller }),
		integer(GroupSSE, "sse-max-streams", "JOBCHAT_SSE_MAX_STREAMS", "10000", "Server-Sent Events streams the instance holds open at once; more get 429", func(c *Config) *int { return &c.SSEMaxStreams }),
		integer(GroupSSE, "subscriber-buffer", "JOBCHAT_SUBSCRIBER_BUFFER", "256", "events a subscription run by gqlgen's executor (SSE) may lag: past it messageAdded resynchronises from the database and live-only events are dropped (pushed WebSocket subscriptions use the send queue)", func(c *Config) *int { return &c.SubscriberBuf }),

		duration(GroupLive, "typing-ttl", "JOBCHAT_TYPING_TTL", "6s", "how long a setTyping(true) lasts without a renewal before the server sends TYPING_STOPPED", func(c *Config) *time.Duration { return &c.TypingTTL }),
		duration(GroupLive, "edit-window", "JOBCHAT_EDIT_WINDOW", "15m", "how long after sending a user may edit their TEXT message", func(c *Config) *time.Duration { return &c.EditWindow }),
		str(GroupLive, "contact-policy", "JOBCHAT_CONTACT_POLICY", "FLAG", "what a conversation does with messages carrying contact details until the job-service sets its own: ALLOW, FLAG, MASK or BLOCK", func(c *Config) *string { return &c.ContactPolicy }),
		str(GroupLive, "default-region", "JOBCHAT_DEFAULT_REGION", "US", "ISO 3166-1 region whose national phone numbers count as contact details (international +... numbers always do)", func(c *Config) *string { return &c.DefaultRegion }),

		str(GroupNotify, "webhook-url", "JOBCHAT_WEBHOOK_URL", "", "the notification service's URL, told by webhook of messages not delivered after the notify delay; empty: off, and no notice is queued", func(c *Config) *string { return &c.WebhookURL }),
		str(GroupNotify, "webhook-secret", "JOBCHAT_WEBHOOK_SECRET", "", "whsec_ and a base64 key of 24 to 64 bytes, signing every webhook (Standard Webhooks); required with JOBCHAT_WEBHOOK_URL", func(c *Config) *string { return &c.WebhookSecret }),
		duration(GroupNotify, "notify-delay", "JOBCHAT_NOTIFY_DELAY", "30s", "how long after a message its recipient is told of it by webhook if their apps have not received it", func(c *Config) *time.Duration { return &c.NotifyDelay }),
		duration(GroupNotify, "webhook-retry-min", "JOBCHAT_WEBHOOK_RETRY_MIN", "5s", "the wait before the first retry of a failed webhook, doubled for each next one up to an hour (±20 %), for up to 24 hours", func(c *Config) *time.Duration { return &c.WebhookRetryMin }),
		duration(GroupNotify, "webhook-timeout", "JOBCHAT_WEBHOOK_TIMEOUT", "10s", "how long one webhook attempt may take, from connecting to the end of the answer", func(c *Config) *time.Duration { return &c.WebhookTimeout }),

		str(GroupLegacy, "legacy-cookie", "JOBCHAT_LEGACY_COOKIE", "jobchat_token", "cookie that may carry the token on the deprecated /ws/chat/{id}/ socket", func(c *Config) *string { return &c.LegacyCookie }),
	}
}

// Load reads every setting, as `jobchat serve` does, and --demo; extra, if
// not nil, may add flags of its own to fs. It returns the arguments left
// after the flags.
func Load(name string, args []string, getenv func(string) string, stderr io.Writer, extra func(fs *flag.FlagSet)) (Config, []string, error) {
	var demo bool
	cmd := Command{Name: name, Flags: func(fs *flag.FlagSet) {
		fs.BoolVar(&demo, "demo", false, "seed a demo conversation and print tokens to try it")
		if extra != nil {
			extra(fs)
		}
	}}
	c, rest, err := cmd.parse(args, getenv, stderr)
	c.Demo = demo
	return c, rest, err
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
	switch c.ContactPolicy {
	case "ALLOW", "FLAG", "MASK", "BLOCK":
	default:
		errs = append(errs, fmt.Errorf("JOBCHAT_CONTACT_POLICY must be ALLOW, FLAG, MASK or BLOCK, not %q", c.ContactPolicy))
	}
	if !isRegionCode(c.DefaultRegion) {
		errs = append(errs, fmt.Errorf("JOBCHAT_DEFAULT_REGION must be a two-letter region code such as US, GB or DE, not %q", c.DefaultRegion))
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
	if err := checkRedisURL(c.RedisURL); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, checkWebhook(c.WebhookURL, c.WebhookSecret)...)
	return errors.Join(errs...)
}

// isRegionCode reports two ASCII capital letters; whether the region has
// phone number metadata is the detector's to say when the server starts.
func isRegionCode(s string) bool {
	return len(s) == 2 && 'A' <= s[0] && s[0] <= 'Z' && 'A' <= s[1] && s[1] <= 'Z'
}

// checkRedisURL refuses what the Redis client would refuse for its scheme,
// with an error that says what is expected. Empty is fine: no Redis.
func checkRedisURL(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err == nil {
		switch u.Scheme {
		case "redis", "rediss", "unix":
			return nil
		}
	}
	// Shown only where no password can be: redacted, or without an "@".
	got := "a value that is not a URL of that form"
	switch {
	case err == nil && u.User != nil:
		got = strconv.Quote(u.Redacted())
	case err == nil && !strings.Contains(v, "@"):
		got = strconv.Quote(v)
	}
	return fmt.Errorf("JOBCHAT_REDIS_URL must be a Redis URL such as redis://host:6379/0 "+
		"(rediss://host:6380/0 for TLS, unix:///path/to/redis.sock for a socket), not %s", got)
}

// checkWebhook refuses a webhook URL that is not absolute http(s), and
// one without a secret. The secret's key is the webhook package's to
// read; the error never shows the secret.
func checkWebhook(rawURL, secret string) []error {
	if rawURL == "" {
		return nil
	}
	var errs []error
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("JOBCHAT_WEBHOOK_URL must be an absolute http:// or https:// URL"))
	}
	if !strings.HasPrefix(secret, "whsec_") {
		errs = append(errs, errors.New(`JOBCHAT_WEBHOOK_SECRET must be set with JOBCHAT_WEBHOOK_URL: "whsec_" and a base64 key (echo "whsec_$(openssl rand -base64 32)" makes one)`))
	}
	return errs
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

func str(group, name, env, def, usage string, p func(*Config) *string) Field {
	return Field{Flag: name, Env: env, Default: def, Usage: usage, Group: group, Type: "string",
		set: func(c *Config, v string) error { *p(c) = v; return nil }}
}

func list(group, name, env, def, usage string, p func(*Config) *[]string) Field {
	return Field{Flag: name, Env: env, Default: def, Usage: usage, Group: group, Type: "list",
		set: func(c *Config, v string) error { *p(c) = splitList(v); return nil }}
}

func boolean(group, name, env, def, usage string, p func(*Config) *bool) Field {
	return Field{Flag: name, Env: env, Default: def, Usage: usage, Group: group, Type: "bool",
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("want true or false, got %q", v)
			}
			*p(c) = b
			return nil
		}}
}

func integer(group, name, env, def, usage string, p func(*Config) *int) Field {
	return Field{Flag: name, Env: env, Default: def, Usage: usage, Group: group, Type: "int",
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("want a whole number, got %q", v)
			}
			*p(c) = n
			return nil
		}}
}

func integer64(group, name, env, def, usage string, p func(*Config) *int64) Field {
	return Field{Flag: name, Env: env, Default: def, Usage: usage, Group: group, Type: "int",
		set: func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("want a whole number, got %q", v)
			}
			*p(c) = n
			return nil
		}}
}

func float(group, name, env, def, usage string, p func(*Config) *float64) Field {
	return Field{Flag: name, Env: env, Default: def, Usage: usage, Group: group, Type: "float",
		set: func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 {
				return fmt.Errorf("want a number of 0 or more, got %q", v)
			}
			*p(c) = f
			return nil
		}}
}

func duration(group, name, env, def, usage string, p func(*Config) *time.Duration) Field {
	return Field{Flag: name, Env: env, Default: def, Usage: usage, Group: group, Type: "duration",
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("want a positive duration such as 15s, got %q", v)
			}
			*p(c) = d
			return nil
		}}
}
