package broadcast

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// confirmRetry is how long Subscribe waits for its PONG before pinging
// again. Extra PINGs cost little; a lost one would stall Subscribe until its
// context ends.
const confirmRetry = time.Second

// resumeToken is the payload of the PING the read loop sends after losing
// its connection; its PONG says the new connection is subscribed again.
const resumeToken = "broadcast-resume"

// subConn is one Redis pub/sub connection of a broker and the one goroutine
// that reads it: RedisBroker has one, RedisClusterBroker one per shard
// bucket. It is the one place that confirms subscriptions and notices
// losses and comebacks, for both.
//
// Confirming: go-redis reports a SUBSCRIBE confirmation only to the
// reader, and one for a channel is indistinguishable from a late one (an
// abandoned earlier attempt, or go-redis resubscribing after a reconnect).
// So subscribe follows SUBSCRIBE with a PING carrying a payload of its own:
// Redis answers commands on a connection in order, so when the read loop
// sees that PONG, the subscription is in place.
//
// Losing: if the connection drops, go-redis reconnects and resubscribes
// every channel of the PubSub on its own; payloads published in the
// meantime are lost for this instance, which the at-most-once contract
// allows. After a read error the loop pauses, then sends a PING of its own
// (resumeToken): go-redis dials a new connection for it and resubscribes
// every channel first, so when that PONG arrives every channel is live
// again and the broker's outage learns it.
//
// Sharded (cluster) connections have three more duties, because go-redis
// routes a PubSub's connection to the node owning the slot of its first
// channel and does not follow a slot that moves:
//   - The anchor, a channel of the bucket's slot, is subscribed first and
//     for the connection's whole life, so that every (re)dial of the PubSub
//     goes to the slot's owner; with no channel it would go to a random node,
//     where SSUBSCRIBE is answered with MOVED.
//   - After a loss the client's slot map is reloaded, so a reconnect after
//     a failover goes to the new owner.
//   - When the slot has moved (an SSUBSCRIBE answered with MOVED, or an
//     SUNSUBSCRIBE the server sent by itself, which is how Redis tells its
//     shard channel subscribers that the slot left the node), go-redis keeps
//     the connection to the old owner: the loop replaces the PubSub with a
//     new one subscribed to the same channels, and counts it as a loss.
type subConn struct {
	sharded bool
	prefix  string // cut from a channel's name to give its topic
	anchor  string // sharded only
	// newPubSub (sharded only) makes an unconnected PubSub.
	newPubSub func() *redis.PubSub
	// reload (sharded only) asks the client to refresh its slot map, in
	// the background.
	reload func()
	outage *outage
	done   <-chan struct{} // closed when the broker closes
	// armed is closed once the PubSub holds a channel, so that the read
	// loop's first dial goes where the channel lives.
	armed   chan struct{}
	stopped chan struct{} // closed when the read loop exits
	handle  func(topic string, payload []byte)

	// psMu guards ps, closed, started and channels, and keeps a command
	// sent on ps and the record of channels together.
	psMu     sync.Mutex
	ps       *redis.PubSub
	closed   bool
	started  bool
	anchored bool                // sharded: the anchor has been sent
	channels map[string]struct{} // sharded: what a replacing PubSub subscribes

	mu      sync.Mutex
	nextID  uint64
	waiting map[string]chan struct{} // PING payload -> closed when its PONG arrives
	unsubs  map[string]int           // sharded: SUNSUBSCRIBE replies still due, by channel
}

// newSubConn returns a connection for SUBSCRIBE over ps, which must have no
// channels yet (so that it has done no I/O).
func newSubConn(ps *redis.PubSub, prefix string, done <-chan struct{}, o *outage) *subConn {
	c := &subConn{
		prefix:  prefix,
		outage:  o,
		done:    done,
		armed:   make(chan struct{}),
		stopped: make(chan struct{}),
		ps:      ps,
		waiting: make(map[string]chan struct{}),
	}
	close(c.armed)
	return c
}

// newShardedSubConn returns a connection for SSUBSCRIBE to the channels of
// one slot, all named prefix+topic; anchor is a channel of that slot.
func newShardedSubConn(client *redis.ClusterClient, prefix, anchor string, done <-chan struct{}, o *outage) *subConn {
	c := &subConn{
		sharded: true,
		prefix:  prefix,
		anchor:  anchor,
		// With no channels this does no I/O.
		newPubSub: func() *redis.PubSub { return client.SSubscribe(context.Background()) },
		reload:    func() { client.ReloadState(context.Background()) },
		outage:    o,
		done:      done,
		armed:     make(chan struct{}),
		stopped:   make(chan struct{}),
		channels:  make(map[string]struct{}),
		waiting:   make(map[string]chan struct{}),
		unsubs:    make(map[string]int),
	}
	c.ps = c.newPubSub()
	return c
}

// start launches the read loop, handing it what arrives.
func (c *subConn) start(handle func(topic string, payload []byte)) {
	c.psMu.Lock()
	defer c.psMu.Unlock()
	c.handle = handle
	c.started = true
	go c.read()
}

// subscribe subscribes channel and returns once Redis has processed it. On
// failure the channel is dropped again, so that go-redis will not
// resubscribe it after a reconnect.
func (c *subConn) subscribe(ctx context.Context, channel string) error {
	c.mu.Lock()
	c.nextID++
	token := "broadcast-subscribe-" + strconv.FormatUint(c.nextID, 10)
	confirmed := make(chan struct{})
	c.waiting[token] = confirmed
	c.mu.Unlock()

	defer func() {
		c.mu.Lock()
		delete(c.waiting, token)
		c.mu.Unlock()
	}()

	err := c.send(ctx, channel, token)
	if err == nil {
		err = c.awaitConfirmation(ctx, token, confirmed)
		if err == nil {
			return nil
		}
	}
	if c.isDone() {
		return ErrBrokerClosed
	}
	// The caller's context may be what failed; the rollback must still be
	// sent. go-redis bounds it with the client's dial and write timeouts.
	_ = c.unsubscribe(context.WithoutCancel(ctx), channel)
	return err
}

// send sends the subscription of channel, then the PING carrying token.
func (c *subConn) send(ctx context.Context, channel, token string) error {
	c.psMu.Lock()
	defer c.psMu.Unlock()
	if c.closed {
		return ErrBrokerClosed
	}
	var err error
	if c.sharded {
		c.channels[channel] = struct{}{}
		channels := []string{channel}
		if !c.anchored {
			channels = []string{c.anchor, channel}
		}
		// On failure too the PubSub keeps the channels, and subscribes
		// them on its next connection.
		err = c.ps.SSubscribe(ctx, channels...)
		if !c.anchored {
			c.anchored = true
			close(c.armed)
		}
	} else {
		err = c.ps.Subscribe(ctx, channel)
	}
	if err == nil {
		err = c.ps.Ping(ctx, token)
	}
	return err
}

// awaitConfirmation waits for the PONG carrying token. The PING or its PONG
// is lost if the connection drops meanwhile, so the PING is repeated now
// and then. Any PONG with the token will do: on a new connection go-redis
// resubscribes every channel before sending anything else.
func (c *subConn) awaitConfirmation(ctx context.Context, token string, confirmed <-chan struct{}) error {
	retry := time.NewTicker(confirmRetry)
	defer retry.Stop()
	for {
		select {
		case <-confirmed:
			return nil
		case <-c.done:
			return ErrBrokerClosed
		case <-ctx.Done():
			return ctx.Err()
		case <-retry.C:
			// A failed write makes go-redis reconnect; the next tick retries.
			c.psMu.Lock()
			_ = c.ps.Ping(ctx, token)
			c.psMu.Unlock()
		}
	}
}

// unsubscribe sends the unsubscription of channel without waiting for Redis
// to confirm it: a payload that still arrives finds no local subscriber and
// is dropped.
func (c *subConn) unsubscribe(ctx context.Context, channel string) error {
	c.psMu.Lock()
	defer c.psMu.Unlock()
	if c.closed {
		return ErrBrokerClosed
	}
	if !c.sharded {
		return c.ps.Unsubscribe(ctx, channel)
	}
	delete(c.channels, channel)
	if channel == c.anchor {
		return nil // the anchor stays (its topic is the empty one)
	}
	// Its reply must not be taken for the server's news of a moved slot.
	c.expectUnsubscribe(channel, 1)
	err := c.ps.SUnsubscribe(ctx, channel)
	if err != nil {
		c.expectUnsubscribe(channel, -1)
	}
	return err
}

// close closes the PubSub, which ends the read loop's blocking read, and
// waits for the loop to exit. The broker closes done first.
func (c *subConn) close() error {
	c.psMu.Lock()
	c.closed = true
	started := c.started
	err := c.ps.Close()
	c.psMu.Unlock()
	if started {
		<-c.stopped
	}
	if err != nil {
		return fmt.Errorf("redis pubsub close: %w", err)
	}
	return nil
}

func (c *subConn) isDone() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *subConn) current() *redis.PubSub {
	c.psMu.Lock()
	defer c.psMu.Unlock()
	return c.ps
}

// read is the one reader of the connection. It must keep reading:
// subscribe depends on it to see PONGs.
func (c *subConn) read() {
	defer close(c.stopped)
	select {
	case <-c.armed:
	case <-c.done:
		return
	}

	const (
		minPause = 50 * time.Millisecond
		maxPause = time.Second
	)
	pause := minPause
	var lostAt time.Time // zero while connected
	pinged := false      // the resume PING went out on this attempt
	replace := false     // the slot moved: a new PubSub is due
	// lose records a loss and pauses, so that a dead server is not
	// hammered; false means the broker is closing.
	lose := func() bool {
		if lostAt.IsZero() {
			lostAt = time.Now()
			c.outage.lose(lostAt)
		}
		pinged = false
		c.forgetUnsubscribes()
		if c.sharded {
			c.reload()
		}
		t := time.NewTimer(pause)
		defer t.Stop()
		pause = min(2*pause, maxPause)
		select {
		case <-c.done:
			return false
		case <-t.C:
			return true
		}
	}
	for {
		if replace {
			if !c.replacePubSub() {
				return
			}
			replace = false
		}
		ps := c.current()
		if !lostAt.IsZero() && !pinged {
			ctx, cancel := context.WithTimeout(context.Background(), confirmRetry)
			// A failure here is the outage going on: Receive fails too, or
			// reconnects by itself, and either way the PING goes again on
			// the next turn; a new connection without it would never say
			// it is back.
			pinged = ps.Ping(ctx, resumeToken) == nil
			cancel()
		}
		// No deadline: a quiet connection is normal. Close unblocks the read.
		msg, err := ps.Receive(context.Background())
		if err != nil {
			if c.isDone() || errors.Is(err, redis.ErrClosed) {
				return
			}
			// go-redis has dropped a broken connection and dials a new one
			// on the next Receive. A reply that is an error (MOVED) leaves
			// the connection up, talking to a node that no longer owns the
			// slot.
			var rerr redis.Error
			replace = c.sharded && errors.As(err, &rerr)
			if !lose() {
				return
			}
			continue
		}
		pause = minPause

		switch m := msg.(type) {
		case *redis.Message:
			topic, ok := strings.CutPrefix(m.Channel, c.prefix)
			if ok {
				c.handle(topic, []byte(m.Payload))
			}
		case *redis.Subscription:
			if c.sharded && m.Kind == "sunsubscribe" && c.slotMoved(m.Channel) {
				replace = true
				if !lose() {
					return
				}
			}
		case *redis.Pong:
			if m.Payload == resumeToken {
				if !lostAt.IsZero() {
					c.outage.resume()
				}
				lostAt = time.Time{}
				continue
			}
			c.confirm(m.Payload)
		}
	}
}

// replacePubSub swaps the PubSub for a new one subscribed to the same
// channels, dialled to the slot's owner in the client's slot map; false
// means the broker is closing. A subscribe whose PING went to the old one
// pings again on its next retry, on the new one.
func (c *subConn) replacePubSub() bool {
	c.psMu.Lock()
	defer c.psMu.Unlock()
	if c.closed {
		return false
	}
	old := c.ps
	c.ps = c.newPubSub()
	channels := append([]string{c.anchor}, slices.Collect(maps.Keys(c.channels))...)
	ctx, cancel := context.WithTimeout(context.Background(), confirmRetry)
	// On failure the PubSub keeps the channels and subscribes them when
	// the read loop's next Receive dials again.
	_ = c.ps.SSubscribe(ctx, channels...)
	cancel()
	_ = old.Close()
	c.forgetUnsubscribes()
	return true
}

func (c *subConn) confirm(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.waiting[token]; ok {
		close(ch)
		delete(c.waiting, token)
	}
}

func (c *subConn) expectUnsubscribe(channel string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unsubs[channel] += n; c.unsubs[channel] <= 0 {
		delete(c.unsubs, channel)
	}
}

// forgetUnsubscribes drops the replies still due: they went with the
// connection.
func (c *subConn) forgetUnsubscribes() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.unsubs)
}

// slotMoved reports whether an SUNSUBSCRIBE for channel is the server's
// own: one this connection did not ask for, of a channel it still holds.
func (c *subConn) slotMoved(channel string) bool {
	c.mu.Lock()
	if c.unsubs[channel] > 0 {
		c.unsubs[channel]--
		if c.unsubs[channel] == 0 {
			delete(c.unsubs, channel)
		}
		c.mu.Unlock()
		return false
	}
	c.mu.Unlock()
	c.psMu.Lock()
	defer c.psMu.Unlock()
	_, held := c.channels[channel]
	return held || channel == c.anchor
}

// outage follows the losses of a broker's connections, so that each
// comeback is reported with the start of the outage it ends: with several
// connections (one per shard bucket) a later connection's own loss time
// could be after a payload that an earlier one lost, and consumers that
// coalesce comebacks keep only one time.
type outage struct {
	mu    sync.Mutex
	fn    func(lostAt time.Time) // set before the read loops start
	lost  int                    // connections lost and not back yet
	since time.Time              // the first of their losses
}

func (o *outage) lose(at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.lost == 0 || at.Before(o.since) {
		o.since = at
	}
	o.lost++
}

// resume reports a connection back, with the start of the outage.
func (o *outage) resume() {
	o.mu.Lock()
	since, fn := o.since, o.fn
	o.lost--
	o.mu.Unlock()
	if fn != nil {
		fn(since)
	}
}

func (o *outage) setFn(fn func(lostAt time.Time)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fn = fn
}
