package resolvers

import (
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/uptrace/bun"

	"github.com/jobchat/jobchat/db"
)

// requestCache remembers, for one response, the participants and profiles
// that message fields need, so that a page of messages costs a few queries
// rather than a few per message. Each response gets a fresh one: a
// subscription's events must not see read pointers from an earlier event.
type requestCache struct {
	mu           sync.Mutex
	participants map[string][]*db.Participant
	profiles     map[string]*db.Profile
	// reactions by message id; a message known to have none maps to nil.
	reactions map[string][]*db.Reaction
}

type cacheKey struct{}

// CacheExtension gives every response (each subscription event included) a
// fresh cache. Install it with handler.Server.Use.
type CacheExtension struct{}

var (
	_ graphql.HandlerExtension    = CacheExtension{}
	_ graphql.ResponseInterceptor = CacheExtension{}
)

// ExtensionName names the extension for gqlgen.
func (CacheExtension) ExtensionName() string { return "JobchatRequestCache" }

// Validate accepts any schema.
func (CacheExtension) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptResponse installs the cache for one response.
func (CacheExtension) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	return next(context.WithValue(ctx, cacheKey{}, newRequestCache()))
}

func newRequestCache() *requestCache {
	return &requestCache{participants: map[string][]*db.Participant{}, profiles: map[string]*db.Profile{},
		reactions: map[string][]*db.Reaction{}}
}

// cacheFrom returns the response's cache; outside a response (tests calling
// resolvers directly) it returns a throwaway one.
func cacheFrom(ctx context.Context) *requestCache {
	if c, ok := ctx.Value(cacheKey{}).(*requestCache); ok {
		return c
	}
	return newRequestCache()
}

func (c *requestCache) putParticipants(conversationID string, ps []*db.Participant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.participants[conversationID] = ps
	for _, p := range ps {
		if p.Profile != nil {
			c.profiles[p.ProfileID] = p.Profile
		}
	}
}

// loadParticipants returns a conversation's participants. The lock is held
// across the query so that sibling fields resolved in parallel share one.
func (c *requestCache) loadParticipants(ctx context.Context, idb bun.IDB, conversationID string) ([]*db.Participant, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps, ok := c.participants[conversationID]; ok {
		return ps, nil
	}
	ps, err := db.SelectParticipants(ctx, idb, conversationID)
	if err != nil {
		return nil, err
	}
	c.participants[conversationID] = ps
	for _, p := range ps {
		if p.Profile != nil {
			c.profiles[p.ProfileID] = p.Profile
		}
	}
	return ps, nil
}

// loadProfile returns a profile, or nil when it is unknown.
func (c *requestCache) loadProfile(ctx context.Context, idb bun.IDB, id string) (*db.Profile, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.profiles[id]; ok {
		return p, nil
	}
	ps, err := db.SelectProfiles(ctx, idb, []string{id})
	if err != nil {
		return nil, err
	}
	c.profiles[id] = ps[id]
	return ps[id], nil
}

// putReactions records the reactions of the messages ids; those without an
// entry in rs have none.
func (c *requestCache) putReactions(ids []string, rs map[string][]*db.Reaction) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		c.reactions[id] = rs[id]
	}
}

// loadReactions returns a message's reactions, oldest first. On a miss it
// loads those of every message of the response's pages at once would be
// better; one message is what a miss costs today (pages seed the cache).
func (c *requestCache) loadReactions(ctx context.Context, idb bun.IDB, messageID string) ([]*db.Reaction, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rs, ok := c.reactions[messageID]; ok {
		return rs, nil
	}
	rs, err := db.SelectReactions(ctx, idb, []string{messageID})
	if err != nil {
		return nil, err
	}
	c.reactions[messageID] = rs[messageID]
	return rs[messageID], nil
}
