// Package notify tells the marketplace's notification service, by webhook,
// of messages that their recipients have not received some time (the
// delay) after they were sent, so that it can send a push or an e-mail.
//
// A send writes a notice to the outbox (db/outbox.go) in the transaction
// that stores the message; one notice covers all of a recipient's
// undelivered messages in a conversation. A Dispatcher, one goroutine per
// instance, claims the notices that are due, drops those whose recipient
// has received everything since (a message delivered within the delay
// notifies nobody), and POSTs the others, signed, through a
// webhook.Sender, retrying with exponential backoff for up to a day. Every
// attempt at one notice carries the same webhook-id and body, so that the
// receiver can tell a retry from a new notice. Several instances share the
// outbox: each notice is claimed by one at a time, under a lease that lets
// another take over from one that crashed. A receiver answering 410 Gone
// turns notices off for every instance (the state is in the database)
// until an operator turns them on again.
//
// It imports db, internal/webhook and the logger.
package notify

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/uptrace/bun"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/internal/webhook"
)

// Config tunes a Dispatcher. Its zero values mean the defaults.
type Config struct {
	// Delay is how long after a message its recipients are told of it if
	// they have not received it. Zero: 30s.
	Delay time.Duration
	// RetryMin is the wait after a first failed attempt, doubled after
	// each further one up to RetryMax, each within ±20 % (jitter). Zero:
	// 5s and an hour.
	RetryMin, RetryMax time.Duration
	// MaxAge is how long a notice is retried after its first attempt;
	// a notice never attempted that long after its message is dropped
	// too. Zero: 24h.
	MaxAge time.Duration
	// Batch is how many notices an instance claims at once. Zero: 100.
	Batch int
	// Poll is how often an idle instance looks for due notices. Zero:
	// a second, or a quarter of Delay if that is less.
	Poll time.Duration
	// Lease is how long a claim holds before another instance may take
	// the notice over; it must outlast an attempt. Zero: two minutes.
	Lease time.Duration
}

func (c *Config) defaults() {
	if c.Delay <= 0 {
		c.Delay = 30 * time.Second
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 5 * time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = time.Hour
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 24 * time.Hour
	}
	if c.Batch <= 0 {
		c.Batch = 100
	}
	if c.Poll <= 0 {
		c.Poll = min(time.Second, max(c.Delay/4, 10*time.Millisecond))
	}
	if c.Lease <= 0 {
		c.Lease = 2 * time.Minute
	}
}

// Dispatcher sends the outbox's notices. Build it with New, run it with
// Start and end it with Stop.
type Dispatcher struct {
	db     *bun.DB
	sender *webhook.Sender
	cfg    Config
	// instance names this instance's claims.
	instance string
	// endpointKey identifies the receiver in notify_webhook_off.
	endpointKey string
	// off is true while the receiver is turned off.
	off atomic.Bool

	started  atomic.Bool
	stopOnce sync.Once
	stopping chan struct{} // closed by Stop: finish the attempt in hand, start no other
	abort    context.CancelFunc
	done     chan struct{} // closed when the goroutine has ended
}

// New returns a Dispatcher that sends bdb's outbox through sender.
func New(bdb *bun.DB, sender *webhook.Sender, cfg Config) *Dispatcher {
	cfg.defaults()
	sum := sha256.Sum256([]byte(sender.URL()))
	return &Dispatcher{
		db:          bdb,
		sender:      sender,
		cfg:         cfg,
		instance:    instanceName(),
		endpointKey: hex.EncodeToString(sum[:]),
		stopping:    make(chan struct{}),
		done:        make(chan struct{}),
	}
}

// instanceName is this process's name in its claims: the host and a random
// part, since several processes may share a host.
func instanceName() string {
	host, _ := os.Hostname()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Delay is how long after a message its notices are due, for the send
// path to queue them with; zero, so that nothing is queued, while the
// receiver is turned off or on a nil Dispatcher.
func (d *Dispatcher) Delay() time.Duration {
	if d == nil || d.off.Load() {
		return 0
	}
	return d.cfg.Delay
}

// Start reads whether the receiver is turned off and starts the
// dispatcher's goroutine. ctx carries the logger; cancelling it stops
// nothing: Stop does.
func (d *Dispatcher) Start(ctx context.Context) {
	if !d.started.CompareAndSwap(false, true) {
		return
	}
	log := zerolog.Ctx(ctx).With().Str("op", "notify").Logger()
	ctx, d.abort = context.WithCancel(log.WithContext(context.WithoutCancel(ctx)))
	d.checkOff(ctx)
	log.Info().Str("endpoint", d.sender.Endpoint()).Stringer("delay", d.cfg.Delay).
		Bool("off", d.off.Load()).Msg("webhook notifications on")
	go func() {
		defer close(d.done)
		d.run(ctx)
	}()
}

// Stop ends the dispatcher: the attempt in hand may finish until ctx ends,
// when it is abandoned; the notices this instance holds are given back
// for the next instance (or the next start) to send. It returns when the
// goroutine has ended.
func (d *Dispatcher) Stop(ctx context.Context) {
	if !d.started.Load() {
		return
	}
	d.stopOnce.Do(func() { close(d.stopping) })
	select {
	case <-d.done:
	case <-ctx.Done():
		d.abort()
		<-d.done
	}
	d.abort()
}

func (d *Dispatcher) run(ctx context.Context) {
	log := zerolog.Ctx(ctx)
	defer func() {
		// Whatever this instance still holds goes back, due as it was.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := db.ReleaseNotices(rctx, d.db, d.instance, nil); err != nil {
			log.Warn().Err(err).Msg("give back notices at shutdown (they go out when the lease ends)")
		}
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-d.stopping:
			return
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		wait := d.cfg.Poll
		if d.round(ctx) {
			wait = 0 // a full batch: more may be due
		}
		timer.Reset(wait)
	}
}

// round sends the notices that are due, at most a batch of them, and
// reports whether there may be more.
func (d *Dispatcher) round(ctx context.Context) (more bool) {
	log := zerolog.Ctx(ctx)
	if d.checkOff(ctx) {
		// Nothing will ever send what is queued for a receiver that is
		// gone: clear it, a batch at a time.
		n, err := db.PurgeNotices(ctx, d.db, d.cfg.Batch)
		if err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Msg("purge notices")
		}
		return n == int64(d.cfg.Batch)
	}
	now := time.Now()
	ids, err := db.ClaimNotices(ctx, d.db, d.instance, now, now.Add(d.cfg.Lease), d.cfg.Batch)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn().Err(err).Msg("claim notices")
		}
		return false
	}
	for i, id := range ids {
		select {
		case <-d.stopping:
			d.release(ctx, ids[i:])
			return false
		default:
		}
		if r := d.attempt(ctx, id); r == failed || r == gone {
			// The receiver is down or gone: the rest wait for the next
			// round rather than each taking a timeout now.
			d.release(ctx, ids[i+1:])
			return false
		}
	}
	return len(ids) == d.cfg.Batch
}

func (d *Dispatcher) release(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := db.ReleaseNotices(rctx, d.db, d.instance, ids); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("give back notices (they go out when the lease ends)")
	}
}

// result is what an attempt came to.
type result int

const (
	sent    result = iota // the receiver took it
	dropped               // not sent, and never will be: received, expired, gone
	failed                // to be retried
	gone                  // the receiver answered 410: notices are off
)

// attempt makes one attempt at notice id.
func (d *Dispatcher) attempt(ctx context.Context, id string) result {
	log := zerolog.Ctx(ctx).With().Str("webhook_id", id).Logger()
	n, err := d.prepare(ctx, id)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn().Err(err).Msg("prepare notice")
		}
		d.release(ctx, []string{id})
		return failed
	}
	if n == nil {
		return dropped
	}
	log = log.With().Str("conversation_id", n.ConversationID).Str("recipient_id", n.RecipientID).Int("attempt", n.Attempts).Logger()
	err = d.sender.Send(ctx, n.ID, []byte(*n.Payload))
	// The outcome is recorded even when ctx ended during the request.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	switch {
	case err == nil:
		if _, err := db.DeleteNotice(fctx, d.db, n.ID, d.instance); err != nil {
			log.Warn().Err(err).Msg("notice sent, but not deleted: it may be sent again, with the same webhook-id")
		}
		log.Debug().Msg("notice sent")
		return sent
	case errors.Is(err, webhook.ErrGone):
		d.turnOff(fctx, err)
		if _, err := db.DeleteNotice(fctx, d.db, n.ID, d.instance); err != nil {
			log.Warn().Err(err).Msg("delete notice")
		}
		return gone
	case ctx.Err() != nil:
		// Shutting down: the next instance sends it.
		d.release(fctx, []string{n.ID})
		return failed
	}
	now := time.Now()
	var se *webhook.StatusError
	wait := backoff(n.Attempts, d.cfg.RetryMin, d.cfg.RetryMax, mrand.Float64())
	if errors.As(err, &se) && se.RetryAfter > wait {
		wait = min(se.RetryAfter, d.cfg.RetryMax)
	}
	next := now.Add(wait)
	if next.After(*n.ExpiresAt) {
		log.Error().Err(err).Stringer("max_age", d.cfg.MaxAge).Msg(giveUp)
		if _, err := db.DeleteNotice(fctx, d.db, n.ID, d.instance); err != nil {
			log.Warn().Err(err).Msg("delete notice")
		}
		return failed
	}
	log.Warn().Err(err).Stringer("retry_in", wait.Round(time.Millisecond)).Msg("notice not delivered; will retry")
	if err := db.RetryNotice(fctx, d.db, n.ID, d.instance, next); err != nil {
		log.Warn().Err(err).Msg("reschedule notice (it is retried when the lease ends)")
	}
	return failed
}

// giveUp is the error line of a notice dropped undelivered.
const giveUp = "notice not delivered: giving up after the last retry"

// prepare readies notice id for an attempt, in one transaction that holds
// the notice's lock: it drops a notice that has nothing left to tell, and
// freezes one on its first attempt. It returns the notice to send, or nil
// when there is none.
func (d *Dispatcher) prepare(ctx context.Context, id string) (*db.Notice, error) {
	log := zerolog.Ctx(ctx).With().Str("webhook_id", id).Logger()
	var out *db.Notice
	err := d.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		out = nil
		n, err := db.LockNotice(ctx, tx, id, d.instance)
		if errors.Is(err, db.ErrNotFound) {
			return nil // gone, or taken over after our lease
		}
		if err != nil {
			return err
		}
		drop := func(why string) error {
			log.Debug().Str("conversation_id", n.ConversationID).Str("recipient_id", n.RecipientID).Str("reason", why).Msg("notice dropped")
			_, err := db.DeleteNotice(ctx, tx, n.ID, d.instance)
			return err
		}
		u, err := db.SelectUndelivered(ctx, tx, n.ConversationID, n.RecipientID)
		if errors.Is(err, db.ErrNotFound) {
			return drop("not a participant")
		}
		if err != nil {
			return err
		}
		now := time.Now()
		switch {
		case n.Frozen() && u.Pointer >= *n.LatestSeq:
			return drop("received since the first attempt")
		case n.Frozen() && now.After(*n.ExpiresAt):
			log.Error().Str("conversation_id", n.ConversationID).Str("recipient_id", n.RecipientID).Int("attempts", n.Attempts).
				Stringer("max_age", d.cfg.MaxAge).Msg(giveUp)
			return drop("expired")
		case !n.Frozen() && u.Count == 0:
			return drop("received within the delay")
		case !n.Frozen() && now.Sub(n.CreatedAt) > d.cfg.MaxAge:
			return drop("too old to tell")
		case !n.Frozen():
			body, err := encodeUndelivered(n, u, now)
			if err != nil {
				return err
			}
			latest, payload, expires := u.Latest.Seq, string(body), now.Add(d.cfg.MaxAge)
			n.LatestSeq, n.Payload, n.ExpiresAt = &latest, &payload, &expires
		}
		n.Attempts++
		until := now.Add(d.cfg.Lease)
		n.ClaimedUntil = &until
		if err := db.UpdateNoticeAttempt(ctx, tx, n); err != nil {
			return err
		}
		out = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("prepare notice %s: %w", id, err)
	}
	return out, nil
}

// checkOff reads whether the receiver is turned off, and says so in the
// log when that changes. A failed read keeps the last state.
func (d *Dispatcher) checkOff(ctx context.Context) bool {
	log := zerolog.Ctx(ctx)
	w, err := db.SelectWebhookOff(ctx, d.db, d.endpointKey)
	switch {
	case err == nil:
		if !d.off.Swap(true) {
			log.Error().Str("endpoint", w.Endpoint).Int("status", w.Status).Time("off_at", w.OffAt).
				Msg("webhook notifications are OFF: the receiver answered 410 Gone; " + turnOnHint)
		}
	case errors.Is(err, db.ErrNotFound):
		if d.off.Swap(false) {
			log.Warn().Str("endpoint", d.sender.Endpoint()).Msg("webhook notifications are on again")
		}
	default:
		if ctx.Err() == nil {
			log.Warn().Err(err).Msg("read whether webhook notifications are off")
		}
	}
	return d.off.Load()
}

const turnOnHint = "no notice is queued or sent until an operator deletes its row from notify_webhook_off " +
	"(DELETE FROM notify_webhook_off) or JOBCHAT_WEBHOOK_URL changes"

// turnOff records, for every instance, that the receiver answered 410.
func (d *Dispatcher) turnOff(ctx context.Context, cause error) {
	d.off.Store(true)
	log := zerolog.Ctx(ctx)
	err := db.InsertWebhookOff(ctx, d.db, &db.WebhookOff{EndpointKey: d.endpointKey, Endpoint: d.sender.Endpoint(), Status: 410})
	if err != nil {
		log.Error().Err(err).Msg("record that the webhook receiver is gone (this instance stops; others stop at their own 410)")
	}
	log.Error().Err(cause).Str("endpoint", d.sender.Endpoint()).
		Msg("webhook notifications turned OFF: the receiver answered 410 Gone; " + turnOnHint)
}

// backoff is the wait after an attempt-th failed attempt (1 for the
// first): min doubled attempt-1 times, at most max, times a jitter factor
// of 0.8 to 1.2 drawn from r in [0, 1).
func backoff(attempt int, minWait, maxWait time.Duration, r float64) time.Duration {
	wait := minWait
	for i := 1; i < attempt && wait < maxWait; i++ {
		wait *= 2
	}
	wait = min(wait, maxWait)
	return time.Duration(float64(wait) * (0.8 + 0.4*r))
}
