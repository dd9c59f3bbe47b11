package wsconn

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Close codes of a socket over its Quota. They are in the range RFC 6455
// leaves to applications, beside graphql-transport-ws's 44xx codes and
// apart from them: a client may retry later, with backoff, once it has
// closed some of its other sockets.
const (
	// CloseTooManyForUser: the user already holds QuotaConfig.PerUser
	// sockets.
	CloseTooManyForUser = 4430
	// CloseTooManyFromAddr: the client's address already holds
	// QuotaConfig.PerAddr sockets.
	CloseTooManyFromAddr = 4431
)

// QuotaConfig configures a Quota. Its zero value bounds nothing.
type QuotaConfig struct {
	// PerUser bounds the sockets one user holds open at once. Zero: no
	// bound.
	PerUser int
	// PerAddr bounds the sockets one client address holds open at once;
	// IPv6 addresses count by their /64, which one subscriber's devices
	// usually share. Zero: no bound.
	PerAddr int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed: the client address of a request from one of them is the
	// right-most address of that header not itself a trusted proxy.
	// Without them every socket behind a proxy counts against the proxy.
	TrustedProxies []netip.Prefix
	// User names the user a socket's context carries, "" for none (an
	// anonymous socket, or a caller exempt from the bound). Nil: no user
	// is ever counted.
	User func(ctx context.Context) string
	// OnRefused, if set, is called for each socket refused over a bound,
	// for metrics. It must not block.
	OnRefused func()
}

// Quota counts the open sockets per user and per client address, for the
// endpoints that share it, so that one user or one host cannot hold an
// unbounded share of the server's sockets (each costs memory and a file
// descriptor for as long as it stays open). A nil Quota bounds nothing.
type Quota struct {
	cfg QuotaConfig
	// refusals keeps a flood of refused sockets from flooding the log.
	refusals zerolog.BurstSampler

	mu    sync.Mutex
	users map[string]int
	addrs map[string]int
}

// NewQuota returns a Quota configured by cfg.
func NewQuota(cfg QuotaConfig) *Quota {
	return &Quota{
		cfg:      cfg,
		users:    make(map[string]int),
		addrs:    make(map[string]int),
		refusals: zerolog.BurstSampler{Burst: 1, Period: 10 * time.Second},
	}
}

// claim counts one more socket under key in m if that stays within bound.
func (q *Quota) claim(m map[string]int, key string, bound int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if m[key] >= bound {
		return false
	}
	m[key]++
	return true
}

// release gives back what a socket claimed; either key may be "".
func (q *Quota) release(user, addr string) {
	if q == nil || (user == "" && addr == "") {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, k := range []struct {
		m   map[string]int
		key string
	}{{q.users, user}, {q.addrs, addr}} {
		if k.key == "" {
			continue
		}
		if k.m[k.key]--; k.m[k.key] <= 0 {
			delete(k.m, k.key)
		}
	}
}

// Counts returns how many sockets a user and an address hold now.
func (q *Quota) Counts(user, addr string) (byUser, byAddr int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.users[user], q.addrs[addr]
}

// ClientAddr is the key r's socket counts against: the TCP peer's
// address, or, when the peer is a trusted proxy, the client's address
// as the proxies forwarded it; an IPv6 address by its /64.
func (q *Quota) ClientAddr(r *http.Request) string {
	peer, ok := parseHost(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	addr := peer
	if q.trusted(peer) {
		// Proxies append the address they saw: the right end is the most
		// trustworthy, and the first untrusted address from the right is
		// the client. Anything left of it may be the client's invention.
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			addr = a.Unmap()
			if !q.trusted(addr) {
				break
			}
		}
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

func (q *Quota) trusted(a netip.Addr) bool {
	for _, p := range q.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func parseHost(hostport string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// OverQuota is a socket refused by its Quota: close it with Code and
// Reason.
type OverQuota struct {
	Code   int
	Reason string
}

func (e *OverQuota) Error() string { return e.Reason }

// ClaimAddr counts c against the client address of r, its upgrade request.
// Over the bound it counts nothing and returns why, for the caller to
// close c with (and tell the client first, if its protocol has a way).
// End gives the claim back.
func (c *Conn) ClaimAddr(r *http.Request) *OverQuota {
	q := c.e.cfg.Quota
	if q == nil || q.cfg.PerAddr <= 0 {
		return nil
	}
	key := q.ClientAddr(r)
	if !c.claim(q, q.addrs, key, q.cfg.PerAddr, &c.quotaAddr) {
		log := c.p.Log().Sample(&q.refusals)
		log.Warn().Str("addr", key).Int("limit", q.cfg.PerAddr).Msg(c.e.cfg.Name + " refused: too many sockets from this address")
		q.refused()
		return &OverQuota{Code: CloseTooManyFromAddr, Reason: "Too many sockets from this address"}
	}
	return nil
}

// ClaimUser counts c against the user ctx carries (QuotaConfig.User), if
// any, as ClaimAddr does against its address.
func (c *Conn) ClaimUser(ctx context.Context) *OverQuota {
	q := c.e.cfg.Quota
	if q == nil || q.cfg.PerUser <= 0 || q.cfg.User == nil {
		return nil
	}
	key := q.cfg.User(ctx)
	if key == "" {
		return nil
	}
	if !c.claim(q, q.users, key, q.cfg.PerUser, &c.quotaUser) {
		log := c.p.Log().Sample(&q.refusals)
		log.Warn().Str("user_id", key).Int("limit", q.cfg.PerUser).Msg(c.e.cfg.Name + " refused: too many sockets for this user")
		q.refused()
		return &OverQuota{Code: CloseTooManyForUser, Reason: "Too many sockets for this user"}
	}
	return nil
}

func (q *Quota) refused() {
	if q.cfg.OnRefused != nil {
		q.cfg.OnRefused()
	}
}

// claim counts c under key unless c has ended (End has given back what it
// held, and would not see a later claim) or already holds a claim of that
// kind. held is c's field for the kind, guarded by c.mu.
func (c *Conn) claim(q *Quota, m map[string]int, key string, bound int, held *string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended || *held != "" {
		return true
	}
	if !q.claim(m, key, bound) {
		return false
	}
	*held = key
	return true
}
