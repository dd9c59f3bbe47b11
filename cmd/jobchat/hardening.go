package main

import (
	"context"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/internal/auth"
	"github.com/jobchat/jobchat/internal/config"
	"github.com/jobchat/jobchat/internal/ratelimit"
	"github.com/jobchat/jobchat/internal/wsconn"
)

// The wiring of the Security settings: how tokens are verified, how many
// sockets a user or an address may hold, where the rate limits count.

// newVerifier builds the token verifier: HS256 with secret, and RS256 and
// ES256 against JOBCHAT_JWKS_URL when set. ctx (or Close) ends the JWKS
// refresh.
func newVerifier(ctx context.Context, cfg config.Config, secret []byte, log zerolog.Logger) (*auth.Verifier, error) {
	v, err := auth.New(ctx, auth.Config{
		Secret:   secret,
		Leeway:   cfg.JWTLeeway,
		Issuer:   cfg.JWTIssuer,
		Audience: cfg.JWTAudience,
		JWKS: auth.JWKSConfig{
			URL: cfg.JWKSURL,
			OnError: func(_ context.Context, err error) {
				// Tokens of keys already fetched still pass; new keys wait
				// for the next fetch that works.
				log.Warn().Err(err).Msg("JWKS fetch failed")
			},
		},
	})
	if err != nil {
		return nil, err
	}
	if cfg.JWKSURL != "" {
		log.Info().Str("url", cfg.JWKSURL).Msg("RS256 and ES256 tokens verified against the JWKS")
	}
	return v, nil
}

// tokenScope is what `jobchat token` writes for the server to check.
func tokenScope(cfg config.Config) auth.Scope {
	return auth.Scope{Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience}
}

// newLimits is where the rate limits count: in Redis, shared by every
// instance, when there is one; else in this process.
func newLimits(cfg config.Config, rdb redis.UniversalClient) ratelimit.Backend {
	if rdb == nil {
		return ratelimit.Memory{}
	}
	return ratelimit.NewRedis(rdb, ratelimit.RedisConfig{Prefix: cfg.RedisPrefix + "rate:", FailOpen: cfg.RateFailOpen})
}

// newSocketQuota bounds the sockets per user and per address, for the
// GraphQL endpoint and the old chat socket together. Services are not
// counted: they are few, trusted, and may hold many.
func newSocketQuota(cfg config.Config, onRefused func()) *wsconn.Quota {
	proxies, _ := config.ParsePrefixes(cfg.TrustedProxies) // checked by config
	return wsconn.NewQuota(wsconn.QuotaConfig{
		PerUser:        cfg.WSMaxPerUser,
		PerAddr:        cfg.WSMaxPerIP,
		TrustedProxies: proxies,
		OnRefused:      onRefused,
		User: func(ctx context.Context) string {
			c, err := auth.CallerFrom(ctx)
			if err != nil || c.Service {
				return ""
			}
			return c.ID
		},
	})
}
