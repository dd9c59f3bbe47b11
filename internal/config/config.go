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
	"net/netip"
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
	RedisCluster    bool
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
	// Attachments.
	S3Endpoint  string
	S3Bucket    string
	S3AccessKey string
	S3SecretKey string
	S3Region    string
	S3PathStyle bool
	S3Redirect  bool
	FileURLTTL  time.Duration
	FileURLKey  string
	// Uploads.
	MaxUploadBytes int64
	UploadRate     int
	Demo           bool
	// Operations.
	FeedSweep    time.Duration
	PublishQueue int
	MetricsAddr  string
	// Security: tokens, sockets, rates.
	JWTLeeway      time.Duration
	JWTIssuer      string
	JWTAudience    string
	JWKSURL        string
	WSMaxPerUser   int
	WSMaxPerIP     int
	TrustedProxies []string
	TypingRate     float64
	TypingBurst    int
	RateFailOpen   bool
	// Security: what one operation may ask, what the schema tells.
	Introspection       string
	PersistedOnly       bool
	PersistedOperations string
	MaxQueryBytes       int
	MaxTokens           int
	MaxDepth            int
	MaxAliases          int
	MaxDuplicates       int
	MaxFields           int
	MaxFragments        int
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
	GroupFiles    = "Attachments"
	GroupLegacy   = "Old chat socket"
	GroupOps      = "Operations"
	GroupSecurity = "Security"
)

// Groups lists the groups in the order -h and the README show them, which
// is also the order of Fields.
func Groups() []string {
	return []string{GroupServer, GroupDatabase, GroupAuth, GroupLogs, GroupRedis, GroupLimits, GroupWS, GroupSSE, GroupLive, GroupFiles, GroupNotify, GroupLegacy, GroupOps, GroupSecurity}
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
		boolean(GroupRedis, "redis-cluster", "JOBCHAT_REDIS_CLUSTER", "false", "JOBCHAT_REDIS_URL is a node of a Redis Cluster (more seeds as ?addr=host:port&addr=...): fan out over sharded pub/sub (SPUBLISH/SSUBSCRIBE), spread over the masters", func(c *Config) *bool { return &c.RedisCluster }),

		integer(GroupLimits, "max-message-chars", "JOBCHAT_MAX_MESSAGE_CHARS", "4000", "longest messageText, in characters", func(c *Config) *int { return &c.MaxMessageChars }),
		float(GroupLimits, "send-rate", "JOBCHAT_SEND_RATE", "10", "messages per second each user may send (shared by all instances through Redis when JOBCHAT_REDIS_URL is set); 0 turns the limit off", func(c *Config) *float64 { return &c.SendRate }),
		integer(GroupLimits, "send-burst", "JOBCHAT_SEND_BURST", "30", "messages a user may send at once before the rate applies", func(c *Config) *int { return &c.SendBurst }),
		integer(GroupLimits, "max-complexity", "JOBCHAT_MAX_COMPLEXITY", "5000", "largest operation complexity; a connection costs its page size times its nodes' fields", func(c *Config) *int { return &c.MaxComplexity }),
		integer64(GroupLimits, "max-body-bytes", "JOBCHAT_MAX_BODY_BYTES", "262144", "largest HTTP request body (an upload's file aside); a body is read as JSON before its document can be refused, so this bounds what refusing one costs", func(c *Config) *int64 { return &c.MaxBodyBytes }),
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

		str(GroupFiles, "s3-endpoint", "JOBCHAT_S3_ENDPOINT", "", "S3-compatible object store for attachments: https://host[:port] (http:// for no TLS; a bare host means https); empty: the disk under the data dir (one instance only)", func(c *Config) *string { return &c.S3Endpoint }),
		str(GroupFiles, "s3-bucket", "JOBCHAT_S3_BUCKET", "jobchat", "bucket for attachments, created at start if missing", func(c *Config) *string { return &c.S3Bucket }),
		str(GroupFiles, "s3-access-key", "JOBCHAT_S3_ACCESS_KEY", "", "access key id for the object store", func(c *Config) *string { return &c.S3AccessKey }),
		str(GroupFiles, "s3-secret-key", "JOBCHAT_S3_SECRET_KEY", "", "secret access key for the object store", func(c *Config) *string { return &c.S3SecretKey }),
		str(GroupFiles, "s3-region", "JOBCHAT_S3_REGION", "us-east-1", "region of the bucket (most S3-compatible servers accept any)", func(c *Config) *string { return &c.S3Region }),
		boolean(GroupFiles, "s3-path-style", "JOBCHAT_S3_PATH_STYLE", "false", "address the bucket as host/bucket/key instead of bucket.host/key (most self-hosted servers need true)", func(c *Config) *bool { return &c.S3PathStyle }),
		boolean(GroupFiles, "s3-redirect", "JOBCHAT_S3_REDIRECT", "false", "answer /files/... with a redirect to a short-lived presigned URL of the object store instead of streaming the file (only if clients can reach the endpoint, and it is not the app's origin)", func(c *Config) *bool { return &c.S3Redirect }),
		duration(GroupFiles, "file-url-ttl", "JOBCHAT_FILE_URL_TTL", "1h", "how long a signed /files/... URL stays valid after it was handed out", func(c *Config) *time.Duration { return &c.FileURLTTL }),
		str(GroupFiles, "file-url-key", "JOBCHAT_FILE_URL_KEY", "", "HMAC key signing /files/... URLs (at least 32 characters; every instance needs the same); empty: generate one in the data dir (one instance only)", func(c *Config) *string { return &c.FileURLKey }),
		integer64(GroupFiles, "max-upload-bytes", "JOBCHAT_MAX_UPLOAD_BYTES", "26214400", "largest uploaded file (uploadAttachment), enforced while it streams in: a larger Content-Length gets 413, a file found larger mid-stream BAD_USER_INPUT naming file", func(c *Config) *int64 { return &c.MaxUploadBytes }),
		integer(GroupFiles, "upload-rate", "JOBCHAT_UPLOAD_RATE", "30", "uploads a user may make at once, given back at that many a minute; past it RATE_LIMITED with retryAfterMs; 0 turns the limit off", func(c *Config) *int { return &c.UploadRate }),

		str(GroupNotify, "webhook-url", "JOBCHAT_WEBHOOK_URL", "", "the notification service's URL, told by webhook of messages not delivered after the notify delay; empty: off, and no notice is queued", func(c *Config) *string { return &c.WebhookURL }),
		str(GroupNotify, "webhook-secret", "JOBCHAT_WEBHOOK_SECRET", "", "whsec_ and a base64 key of 24 to 64 bytes, signing every webhook (Standard Webhooks); required with JOBCHAT_WEBHOOK_URL", func(c *Config) *string { return &c.WebhookSecret }),
		duration(GroupNotify, "notify-delay", "JOBCHAT_NOTIFY_DELAY", "30s", "how long after a message its recipient is told of it by webhook if their apps have not received it", func(c *Config) *time.Duration { return &c.NotifyDelay }),
		duration(GroupNotify, "webhook-retry-min", "JOBCHAT_WEBHOOK_RETRY_MIN", "5s", "the wait before the first retry of a failed webhook, doubled for each next one up to an hour (±20 %), for up to 24 hours", func(c *Config) *time.Duration { return &c.WebhookRetryMin }),
		duration(GroupNotify, "webhook-timeout", "JOBCHAT_WEBHOOK_TIMEOUT", "10s", "how long one webhook attempt may take, from connecting to the end of the answer", func(c *Config) *time.Duration { return &c.WebhookTimeout }),

		str(GroupLegacy, "legacy-cookie", "JOBCHAT_LEGACY_COOKIE", "jobchat_token", "cookie that may carry the token on the deprecated /ws/chat/{id}/ socket", func(c *Config) *string { return &c.LegacyCookie }),

		duration(GroupOps, "feed-sweep", "JOBCHAT_FEED_SWEEP", "1s", "how often the subscriptions are compared with the database, in one query, to catch up messages whose broadcast was lost (see Operations)", func(c *Config) *time.Duration { return &c.FeedSweep }),
		integer(GroupOps, "publish-queue", "JOBCHAT_PUBLISH_QUEUE", "10000", "broadcasts that may wait for Redis; when full, new ones are dropped and counted, and the sweep delivers their messages", func(c *Config) *int { return &c.PublishQueue }),
		str(GroupOps, "metrics-addr", "JOBCHAT_METRICS_ADDR", "", "address for Prometheus's /metrics, e.g. :9090; empty: /metrics on the main listener (keep it from the public: see Operations)", func(c *Config) *string { return &c.MetricsAddr }),

		duration(GroupSecurity, "jwt-leeway", "JOBCHAT_JWT_LEEWAY", "5s", "clock skew allowed on a token's exp, nbf and iat (an iat further in the future is refused); at most 60s", func(c *Config) *time.Duration { return &c.JWTLeeway }),
		str(GroupSecurity, "jwt-issuer", "JOBCHAT_JWT_ISSUER", "", "if set, every token's iss must be this (jobchat token writes it); empty: iss is not checked", func(c *Config) *string { return &c.JWTIssuer }),
		str(GroupSecurity, "jwt-audience", "JOBCHAT_JWT_AUDIENCE", "", "if set, every token's aud must include this (jobchat token writes it); empty: aud is not checked", func(c *Config) *string { return &c.JWTAudience }),
		str(GroupSecurity, "jwks-url", "JOBCHAT_JWKS_URL", "", "the identity provider's JWKS (https://.../.well-known/jwks.json): RS256 and ES256 tokens are verified against its keys, beside HS256 with the secret; empty: HS256 only", func(c *Config) *string { return &c.JWKSURL }),
		integer(GroupSecurity, "ws-max-per-user", "JOBCHAT_WS_MAX_PER_USER", "32", "WebSockets (GraphQL and the old chat socket together) one user may hold open on an instance; the next closes with 4430; 0: no bound", func(c *Config) *int { return &c.WSMaxPerUser }),
		integer(GroupSecurity, "ws-max-per-ip", "JOBCHAT_WS_MAX_PER_IP", "1024", "WebSockets one client address (an IPv6 /64) may hold open on an instance; the next closes with 4431; 0: no bound", func(c *Config) *int { return &c.WSMaxPerIP }),
		list(GroupSecurity, "trusted-proxies", "JOBCHAT_TRUSTED_PROXIES", "", "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For names the client, for JOBCHAT_WS_MAX_PER_IP; empty: the TCP peer is the client", func(c *Config) *[]string { return &c.TrustedProxies }),
		float(GroupSecurity, "typing-rate", "JOBCHAT_TYPING_RATE", "10", "setTyping calls per second each user may make (shared by all instances through Redis when JOBCHAT_REDIS_URL is set); 0 turns the limit off", func(c *Config) *float64 { return &c.TypingRate }),
		integer(GroupSecurity, "typing-burst", "JOBCHAT_TYPING_BURST", "30", "setTyping calls a user may make at once before the rate applies", func(c *Config) *int { return &c.TypingBurst }),
		boolean(GroupSecurity, "rate-fail-open", "JOBCHAT_RATE_FAIL_OPEN", "true", "while Redis cannot answer rate limit checks: count on this instance alone, as without Redis (true), or refuse with RATE_LIMITED (false); either way it is logged", func(c *Config) *bool { return &c.RateFailOpen }),
		str(GroupSecurity, "introspection", "JOBCHAT_INTROSPECTION", "", "true or false: answer __schema and __type, and suggest names (\"Did you mean\") in validation errors; empty: as JOBCHAT_PLAYGROUND", func(c *Config) *string { return &c.Introspection }),
		boolean(GroupSecurity, "persisted-only", "JOBCHAT_PERSISTED_ONLY", "false", "run only the operations of JOBCHAT_PERSISTED_OPERATIONS (service tokens excepted); others get OPERATION_NOT_ALLOWED. Needs JOBCHAT_PLAYGROUND=false", func(c *Config) *bool { return &c.PersistedOnly }),
		str(GroupSecurity, "persisted-operations", "JOBCHAT_PERSISTED_OPERATIONS", "", "JSON file of known operations by SHA-256 (GraphQL Codegen's persisted-documents.json or an Apollo persisted query manifest), which clients may send by hash alone", func(c *Config) *string { return &c.PersistedOperations }),
		integer(GroupSecurity, "max-query-bytes", "JOBCHAT_MAX_QUERY_BYTES", "32768", "longest GraphQL document, in bytes", func(c *Config) *int { return &c.MaxQueryBytes }),
		integer(GroupSecurity, "max-tokens", "JOBCHAT_MAX_TOKENS", "2000", "most lexical tokens in a GraphQL document; the parser stops at the next one", func(c *Config) *int { return &c.MaxTokens }),
		integer(GroupSecurity, "max-depth", "JOBCHAT_MAX_DEPTH", "20", "deepest nesting of fields, fragments followed (GraphiQL's introspection query nests 15)", func(c *Config) *int { return &c.MaxDepth }),
		integer(GroupSecurity, "max-aliases", "JOBCHAT_MAX_ALIASES", "30", "most aliased fields in one operation, fragments counted as often as they are spread", func(c *Config) *int { return &c.MaxAliases }),
		integer(GroupSecurity, "max-duplicate-fields", "JOBCHAT_MAX_DUPLICATE_FIELDS", "20", "most fields answering under one name at one place of the response (field merging compares them pairwise)", func(c *Config) *int { return &c.MaxDuplicates }),
		integer(GroupSecurity, "max-fields", "JOBCHAT_MAX_FIELDS", "1000", "most fields in one operation or fragment with its fragments expanded", func(c *Config) *int { return &c.MaxFields }),
		integer(GroupSecurity, "max-fragments", "JOBCHAT_MAX_FRAGMENTS", "50", "most fragment definitions in one GraphQL document", func(c *Config) *int { return &c.MaxFragments }),
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
	errs = append(errs, checkSecurity(c)...)
	errs = append(errs, checkDocuments(c)...)
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
	if c.PublishQueue <= 0 {
		errs = append(errs, errors.New("JOBCHAT_PUBLISH_QUEUE must be positive"))
	}
	if c.SSEMaxPerCaller <= 0 || c.SSEMaxStreams <= 0 {
		errs = append(errs, errors.New("JOBCHAT_SSE_MAX_PER_CALLER and JOBCHAT_SSE_MAX_STREAMS must be positive"))
	}
	if err := checkRedisURL(c.RedisURL); err != nil {
		errs = append(errs, err)
	} else if c.RedisCluster {
		errs = append(errs, checkRedisCluster(c.RedisURL, c.RedisPrefix)...)
	}
	errs = append(errs, checkWebhook(c.WebhookURL, c.WebhookSecret)...)
	errs = append(errs, checkFiles(c)...)
	errs = append(errs, checkUploads(c)...)
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

// checkRedisCluster refuses what a Redis Cluster cannot take: no URL, a
// socket, a database other than 0 (a cluster has only that one), and a
// prefix with '{', whose hash tag would put every channel in one slot.
func checkRedisCluster(rawURL, prefix string) []error {
	var errs []error
	if rawURL == "" {
		return []error{errors.New("JOBCHAT_REDIS_CLUSTER needs JOBCHAT_REDIS_URL, a node of the cluster such as redis://host:7000?addr=host2:7000&addr=host3:7000")}
	}
	u, err := url.Parse(rawURL)
	switch {
	case err != nil:
	case u.Scheme == "unix":
		errs = append(errs, errors.New("JOBCHAT_REDIS_CLUSTER needs a redis:// or rediss:// JOBCHAT_REDIS_URL, not a socket"))
	case strings.Trim(u.Path, "/") != "" && strings.Trim(u.Path, "/") != "0":
		errs = append(errs, fmt.Errorf("JOBCHAT_REDIS_URL: a Redis Cluster has database 0 only, not %s", strings.Trim(u.Path, "/")))
	}
	if strings.Contains(prefix, "{") {
		errs = append(errs, fmt.Errorf("JOBCHAT_REDIS_PREFIX must not contain '{' with JOBCHAT_REDIS_CLUSTER (jobchat adds hash tags of its own): %q", prefix))
	}
	return errs
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

// checkSecurity checks the token, socket and rate settings.
func checkSecurity(c *Config) []error {
	var errs []error
	if c.JWTLeeway < 0 || c.JWTLeeway > time.Minute {
		errs = append(errs, fmt.Errorf("JOBCHAT_JWT_LEEWAY must be between 0s and 60s, not %s", c.JWTLeeway))
	}
	if c.JWKSURL != "" {
		if u, err := url.Parse(c.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, errors.New("JOBCHAT_JWKS_URL must be an https:// (or http://) URL"))
		}
	}
	if c.WSMaxPerUser < 0 || c.WSMaxPerIP < 0 {
		errs = append(errs, errors.New("JOBCHAT_WS_MAX_PER_USER and JOBCHAT_WS_MAX_PER_IP must be 0 (no bound) or more"))
	}
	if _, err := ParsePrefixes(c.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("JOBCHAT_TRUSTED_PROXIES: %w", err))
	}
	if c.TypingRate < 0 || c.SendRate < 0 {
		errs = append(errs, errors.New("JOBCHAT_SEND_RATE and JOBCHAT_TYPING_RATE must be 0 (no limit) or more"))
	}
	if c.TypingRate > 0 && c.TypingBurst <= 0 {
		errs = append(errs, errors.New("JOBCHAT_TYPING_BURST must be positive when JOBCHAT_TYPING_RATE is set"))
	}
	return errs
}

// ParsePrefixes reads addresses ("10.0.0.1", "::1") and CIDRs
// ("10.0.0.0/8") as prefixes, an address as a prefix of itself alone.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// checkFiles refuses an object store without its bucket or keys, and a
// URL signing key too short to be a secret. The keys are never shown.
func checkFiles(c *Config) []error {
	var errs []error
	if c.S3Endpoint != "" {
		if c.S3Bucket == "" || c.S3AccessKey == "" || c.S3SecretKey == "" {
			errs = append(errs, errors.New("JOBCHAT_S3_BUCKET, JOBCHAT_S3_ACCESS_KEY and JOBCHAT_S3_SECRET_KEY must be set with JOBCHAT_S3_ENDPOINT"))
		}
		if u, err := url.Parse(c.S3Endpoint); strings.Contains(c.S3Endpoint, "://") && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/")) {
			errs = append(errs, errors.New("JOBCHAT_S3_ENDPOINT must be https://host[:port], http://host[:port] or a bare host[:port], without a path"))
		}
	}
	if c.FileURLKey != "" && len(c.FileURLKey) < 32 {
		errs = append(errs, errors.New("JOBCHAT_FILE_URL_KEY must be at least 32 characters"))
	}
	return errs
}

// checkUploads refuses upload limits that would refuse every upload.
func checkUploads(c *Config) []error {
	var errs []error
	if c.MaxUploadBytes <= 0 {
		errs = append(errs, errors.New("JOBCHAT_MAX_UPLOAD_BYTES must be positive"))
	}
	if c.UploadRate < 0 {
		errs = append(errs, errors.New("JOBCHAT_UPLOAD_RATE must not be negative (0 turns the limit off)"))
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

// checkDocuments checks the document limits, introspection and persisted
// operations.
func checkDocuments(c *Config) []error {
	var errs []error
	switch c.Introspection {
	case "", "true", "false":
	default:
		errs = append(errs, fmt.Errorf("JOBCHAT_INTROSPECTION must be true, false or empty (as JOBCHAT_PLAYGROUND), not %q", c.Introspection))
	}
	if c.MaxQueryBytes <= 0 || c.MaxTokens <= 0 || c.MaxDepth <= 0 || c.MaxAliases <= 0 ||
		c.MaxDuplicates <= 0 || c.MaxFields <= 0 || c.MaxFragments <= 0 {
		errs = append(errs, errors.New("JOBCHAT_MAX_QUERY_BYTES, JOBCHAT_MAX_TOKENS, JOBCHAT_MAX_DEPTH, JOBCHAT_MAX_ALIASES, "+
			"JOBCHAT_MAX_DUPLICATE_FIELDS, JOBCHAT_MAX_FIELDS and JOBCHAT_MAX_FRAGMENTS must be positive"))
	}
	if c.PersistedOnly {
		if c.PersistedOperations == "" {
			errs = append(errs, errors.New("JOBCHAT_PERSISTED_ONLY needs JOBCHAT_PERSISTED_OPERATIONS, the file of the operations to run"))
		}
		if c.Playground {
			errs = append(errs, errors.New("JOBCHAT_PERSISTED_ONLY needs JOBCHAT_PLAYGROUND=false: the playground sends operations of its own"))
		}
	}
	return errs
}

// IntrospectionOn reports whether the schema answers introspection:
// JOBCHAT_INTROSPECTION if set, else whether the playground is served
// (it needs introspection for its docs and completion).
func (c Config) IntrospectionOn() bool {
	if c.Introspection == "" {
		return c.Playground
	}
	return c.Introspection == "true"
}
