// Package resolvers implements jobchat's GraphQL API on top of db and the
// broadcast hub: access rules, validation, the send transaction and the
// messageAdded stream. errors.go is the one place that turns errors into
// GraphQL errors.
//
// It may import graph, graph/model, db, internal/auth, internal/broadcast,
// internal/scalar and internal/stream.
package resolvers

import (
	"github.com/uptrace/bun"

	"github.com/jobchat/jobchat/graph"
	"github.com/jobchat/jobchat/internal/broadcast"
)

// Config holds the API's limits. Its zero value means the defaults.
type Config struct {
	// MaxMessageChars caps messageText in characters (runes). Zero: 4000.
	MaxMessageChars int
	// SendRate is how many messages per second each user may send, with
	// bursts of SendBurst. Zero SendRate means no limit.
	SendRate  float64
	SendBurst int
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
}

// New returns a Resolver that stores in bdb and fans messages out via hub.
func New(bdb *bun.DB, hub *broadcast.Hub, cfg Config) *Resolver {
	if cfg.MaxMessageChars <= 0 {
		cfg.MaxMessageChars = 4000
	}
	r := &Resolver{db: bdb, hub: hub, cfg: cfg, sends: newSendLimiter(cfg.SendRate, cfg.SendBurst)}
	r.feeds = &feeds{r: r, byConv: make(map[string]*feed)}
	return r
}

// Schema returns the executable schema served by r.
func (r *Resolver) Schema() graph.Config {
	return graph.Config{Resolvers: r, Complexity: complexity()}
}
