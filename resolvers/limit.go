package resolvers

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/internal/ratelimit"
)

// allow takes one action from key's budget in lim, saying how long to
// wait when there is none. A store that cannot answer (Redis down) has
// decided by its fail policy already; this logs it, sampled, since every
// call would otherwise log while it lasts. Rate limits of actions (send,
// setTyping, uploads) go through here.
func (r *Resolver) allow(ctx context.Context, lim ratelimit.Limiter, what, key string) (ok bool, retryAfter time.Duration) {
	ok, retryAfter, err := lim.Allow(ctx, key)
	if err != nil {
		log := zerolog.Ctx(ctx).Sample(&r.limitLog)
		log.Warn().Err(err).Str("limit", what).Bool("allowed", ok).
			Msg("rate limit store failed: allowing or refusing by JOBCHAT_RATE_FAIL_OPEN")
	}
	return ok, retryAfter
}

// takeSend takes one send from userID's budget. refund gives it back,
// for a send that turned out to store nothing.
func (r *Resolver) takeSend(ctx context.Context, userID string) (ok bool, retryAfter time.Duration, refund func()) {
	ok, retryAfter = r.allow(ctx, r.sends, "send", userID)
	if !ok {
		return false, retryAfter, nil
	}
	return true, 0, func() {
		if err := r.sends.Refund(ctx, userID); err != nil {
			// The send is refused all the same; the budget is one short
			// until its tokens come back.
			log := zerolog.Ctx(ctx).Sample(&r.limitLog)
			log.Warn().Err(err).Str("limit", "send").Msg("rate limit refund failed")
		}
	}
}
