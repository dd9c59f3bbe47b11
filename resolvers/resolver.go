// Package resolvers implements jobchat's GraphQL API on top of db and the
// broadcast hub: access rules, validation, the send transaction, the live
// features around messages (typing, receipts, reactions, edits, the job's
// life) and the one engine behind every subscription (feed.go). errors.go
// is the one place that turns errors into GraphQL errors.
//
// It may import graph, graph/model, db, internal/auth, internal/broadcast,
// internal/contact (the contact details detector), internal/emoji,
// internal/legacy (the types of the old chat socket it serves),
// internal/scalar and internal/stream.
package resolvers

import (
	"fmt"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/uptrace/bun"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph"
	"github.com/jobchat/jobchat/internal/broadcast"
	"github.com/jobchat/jobchat/internal/contact"
)

// Config holds the API's limits. Its zero value means the defaults.
type Config struct {
	// MaxMessageChars caps messageText in characters (runes). Zero: 4000.
	MaxMessageChars int
	// SendRate is how many messages per second each user may send, with
	// bursts of SendBurst. Zero SendRate means no limit.
	SendRate  float64
	SendBurst int
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
}

// Resolver is the root resolver; gqlgen's generated code calls its methods.
type Resolver struct {
	db      *bun.DB
	hub     *broadcast.Hub
	cfg     Config
	sends   *sendLimiter
	feeds   *feeds
	plans   plans
	senders senderCache
	members memberCache
	// typing is this instance's typing state; see CloseTyping.
	typing *typingTracker

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
	r := &Resolver{db: bdb, hub: hub, cfg: cfg, sends: newSendLimiter(cfg.SendRate, cfg.SendBurst)}
	r.feeds = &feeds{r: r, byKey: make(map[string]*feed)}
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

// Schema returns the executable schema served by r.
func (r *Resolver) Schema() graph.Config {
	return graph.Config{Resolvers: r, Complexity: complexity()}
}
