package resolvers

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// sendLimiter caps how fast each user may send, so that one runaway client
// (a retry loop, a script) cannot flood a conversation or the database. It
// counts per instance: behind a load balancer with N instances a user may
// reach N times the rate, which is still bounded.
type sendLimiter struct {
	limit rate.Limit
	burst int

	mu        sync.Mutex
	users     map[string]*userBucket
	lastSweep time.Time
}

type userBucket struct {
	lim      *rate.Limiter
	lastSeen time.Time
}

// idleBucket is how long a user's bucket is kept after their last send; by
// then it is full again, so forgetting it changes nothing.
const idleBucket = 10 * time.Minute

// newSendLimiter returns nil, which allows everything, when perSecond is 0.
func newSendLimiter(perSecond float64, burst int) *sendLimiter {
	if perSecond <= 0 {
		return nil
	}
	return &sendLimiter{limit: rate.Limit(perSecond), burst: max(burst, 1), users: map[string]*userBucket{}}
}

// allow takes one send from the user's bucket, or says how long to wait.
// refund gives the send back, for one that turned out to store nothing.
func (l *sendLimiter) allow(userID string, now time.Time) (ok bool, retryAfter time.Duration, refund func()) {
	if l == nil {
		return true, 0, func() {}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > time.Minute {
		for id, b := range l.users {
			if now.Sub(b.lastSeen) > idleBucket {
				delete(l.users, id)
			}
		}
		l.lastSweep = now
	}
	b, found := l.users[userID]
	if !found {
		b = &userBucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.users[userID] = b
	}
	b.lastSeen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d, nil
	}
	return true, 0, func() { r.CancelAt(time.Now()) }
}
