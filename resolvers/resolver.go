// Package resolvers implements jobchat's GraphQL API on top of db and the
// broadcast hub: access rules, validation, the send transaction, the live
// features around messages (typing, receipts, reactions, edits, the job's
// life) and the one engine behind every subscription (feed.go). errors.go
// is the one place that turns errors into GraphQL errors.
//
// It may import graph, graph/model, db, internal/auth, internal/broadcast,
// internal/contact (the contact details detector), internal/emoji,
// internal/files (where attachments are kept, and their signed URLs),
// internal/media (what an upload is, and making it fit to keep),
// internal/legacy (the types of the old chat socket it serves),
// internal/ratelimit (the rate limits' buckets),
// internal/scalar and internal/stream.
package resolvers

import (
	"fmt"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/rs/zerolog"
	"github.com/uptrace/bun"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph"
	"github.com/jobchat/jobchat/internal/broadcast"
	"github.com/jobchat/jobchat/internal/contact"
	"github.com/jobchat/jobchat/internal/files"
	"github.com/jobchat/jobchat/internal/media"
	"github.com/jobchat/jobchat/internal/ratelimit"
)

// Config holds the API's limits. Its zero value means the defaults.
type Config struct {
	// MaxMessageChars caps messageText in characters (runes). Zero: 4000.
	MaxMessageChars int
	// SendRate is how many messages per second each user may send, with
	// bursts of SendBurst. Zero SendRate means no limit.
	SendRate  float64
	SendBurst int
	// TypingRate is how many setTyping calls per second each user may
	// make, with bursts of TypingBurst. Zero TypingRate means no limit.
	TypingRate  float64
	TypingBurst int
	// Limits keeps the rate limits' buckets: ratelimit.Redis to share them
	// across instances. Nil: ratelimit.Memory, per instance.
	Limits ratelimit.Backend
	// TypingTTL is how long setTyping(true) lasts without a renewal.
	// Zero: 6s.
	TypingTTL time.Duration
	// EditWindow is how long after sending a user may edit a TEXT
	// message. Zero: 15 minutes.
	EditWindow time.Duration
	// ValueBuffer is how many events a subscription run by gqlgen's
	// executor may lag (see valueSink). Zero: 256.
	ValueBuffer int
	// Contact finds contact details in TEXT messages and edits. Nil: a
	// detector for contact.DefaultRegion.
	Contact *contact.Detector
	// ContactPolicy is the policy of conversations the job-service set
	// none for. Zero: FLAG.
	ContactPolicy db.ContactPolicy
	// NotifyDelay says how long after a message its recipients are told
	// of it, by the outbox's notices, if they have not received it by
	// then; asked at every message, since it is zero while the webhook
	// is turned off. Nil, or zero: no notice is queued.
	NotifyDelay func() time.Duration
	// Observer, if set, is told the latencies of sends and deliveries and
	// the duration of sweeps (package metrics implements it).
	Observer Observer
	// Files keeps uploaded attachments (disk or S3).
	Files files.Store
	// FileURLs signs the /files/... URLs that attachments are read
	// through, afresh each time one is read.
	FileURLs *files.Signer
	// MaxUploadBytes caps an uploaded file (the multipart transport also
	// stops reading there). Zero: 25 MiB.
	MaxUploadBytes int64
	// UploadRate is how many uploads each user may make at once, given
	// back at that many a minute. Zero means no limit.
	UploadRate int
	// UploadMaxAge is how long an upload may wait to be sent before
	// SweepUploads deletes it. Zero: 24 hours.
	UploadMaxAge time.Duration
	// UploadTempDir holds uploads while they are checked. Empty:
	// os.TempDir().
	UploadTempDir string
	// Now is the clock of the upload sweeper. Nil: time.Now.
	Now func() time.Time
}

// Resolver is the root resolver; gqlgen's generated code calls its methods.
type Resolver struct {
	db      *bun.DB
	hub     *broadcast.Hub
	cfg     Config
	sends   ratelimit.Limiter
	feeds   *feeds
	plans   plans
	senders senderCache
	members memberCache
	// typing is this instance's typing state; see CloseTyping.
	typing *typingTracker
	// typings limits setTyping calls per user.
	typings ratelimit.Limiter
	// limitLog keeps a failing rate limit store from flooding the log.
	limitLog zerolog.BurstSampler
	// uploads limits uploads per user; media checks them.
	uploads ratelimit.Limiter
	media   *media.Processor

	// es is the executable schema that genPlans run, built on first use.
	esOnce sync.Once
	es     graphql.ExecutableSchema
}

// New returns a Resolver that stores in bdb and fans messages out via hub.
func New(bdb *bun.DB, hub *broadcast.Hub, cfg Config) *Resolver {
	if cfg.MaxMessageChars <= 0 {
		cfg.MaxMessageChars = 4000
	}
	if cfg.TypingTTL <= 0 {
		cfg.TypingTTL = 6 * time.Second
	}
	if cfg.EditWindow <= 0 {
		cfg.EditWindow = 15 * time.Minute
	}
	if cfg.ValueBuffer <= 0 {
		cfg.ValueBuffer = 256
	}
	if cfg.Contact == nil {
		d, err := contact.New(contact.Config{})
		if err != nil {
			panic(err) // the default region is always known
		}
		cfg.Contact = d
	}
	switch {
	case cfg.ContactPolicy == "":
		cfg.ContactPolicy = db.ContactFlag
	case !cfg.ContactPolicy.Valid():
		panic(fmt.Sprintf("resolvers: contact policy %q is not ALLOW, FLAG, MASK or BLOCK", cfg.ContactPolicy))
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = media.DefaultMaxBytes
	}
	if cfg.UploadMaxAge <= 0 {
		cfg.UploadMaxAge = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Limits == nil {
		cfg.Limits = ratelimit.Memory{}
	}
	r := &Resolver{db: bdb, hub: hub, cfg: cfg}
	r.sends = cfg.Limits.Limiter("send", ratelimit.Rate{PerSecond: cfg.SendRate, Burst: cfg.SendBurst})
	r.typings = cfg.Limits.Limiter("typing", ratelimit.Rate{PerSecond: cfg.TypingRate, Burst: cfg.TypingBurst})
	r.limitLog = zerolog.BurstSampler{Burst: 1, Period: 10 * time.Second}
	r.uploads = cfg.Limits.Limiter("upload", ratelimit.Rate{PerSecond: float64(cfg.UploadRate) / 60, Burst: cfg.UploadRate})
	r.media = media.New(media.Config{MaxBytes: cfg.MaxUploadBytes, TempDir: cfg.UploadTempDir})
	r.feeds = &feeds{r: r, byKey: make(map[string]*feed), resume: make(chan time.Time, 1)}
	// What the broker lost while its connection was down is caught up by
	// the sweep loop (RunFeedSweep), at once.
	if hub != nil {
		hub.OnResume(r.feeds.resumed)
	}
	r.typing = newTypingTracker(cfg.TypingTTL, maxTypers, r.publishTyping)
	return r
}

// notifyAfter is a new message's NotifyAfter.
func (r *Resolver) notifyAfter() time.Duration {
	if r.cfg.NotifyDelay == nil {
		return 0
	}
	return r.cfg.NotifyDelay()
}

// Schema returns the executable schema served by r: its resolvers, the
// complexity of its fields, and the schema as introspection shows it
// (specSchema).
func (r *Resolver) Schema() graph.Config {
	return graph.Config{Resolvers: r, Complexity: complexity(), Schema: specSchema()}
}
