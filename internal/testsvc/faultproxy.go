package testsvc

import (
	"net"
	"sync"
	"testing"
	"time"
)

// FaultProxy is a TCP proxy on loopback between a program under test and a
// service (PostgreSQL, Redis, another instance) that a test can break on
// purpose: pass everything through, drop every connection, refuse new
// ones, or let nothing through at all, and then heal. The program is
// pointed at Addr instead of the service.
//
// The faults are the ones networks and services really have:
//   - Cut: every connection through the proxy is closed at once, both ends,
//     as when the service restarts or a middlebox resets them.
//   - Refuse: new connections are closed as soon as they are accepted, as a
//     port with nothing behind it (combine with Cut for a restart).
//   - Blackhole: nothing passes either way, on existing connections and on
//     new ones, which are accepted and then left unanswered: a network
//     partition. Bytes (and closes) already read are held, not lost.
//   - Restore: traffic flows again; held connections are then connected to
//     the service and held bytes delivered, as after a partition heals.
//
// It imports the standard library only and is safe for concurrent use.
type FaultProxy struct {
	target string
	ln     net.Listener

	mu     sync.Mutex
	refuse bool
	flow   chan struct{} // closed while traffic flows; open during a blackhole
	links  map[*proxyLink]struct{}
	held   map[net.Conn]struct{} // accepted during a blackhole, not yet dialled through
	closed bool
	wg     sync.WaitGroup
}

// proxyLink is one proxied connection: the program's side and the
// service's.
type proxyLink struct {
	client, server net.Conn
	done           chan struct{}
	once           sync.Once
}

func (l *proxyLink) close() {
	l.once.Do(func() {
		_ = l.client.Close()
		_ = l.server.Close()
		close(l.done)
	})
}

// proxyDialTimeout bounds the dial to the service for one connection.
const proxyDialTimeout = 5 * time.Second

// NewFaultProxy starts a pass-through proxy to target (host:port) on a free
// loopback port and closes it when tb ends.
func NewFaultProxy(tb testing.TB, target string) *FaultProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("fault proxy: listen: %v", err)
	}
	flow := make(chan struct{})
	close(flow)
	p := &FaultProxy{
		target: target,
		ln:     ln,
		flow:   flow,
		links:  map[*proxyLink]struct{}{},
		held:   map[net.Conn]struct{}{},
	}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port, to use instead of the service's.
func (p *FaultProxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every connection through the proxy now, held ones included,
// and returns how many there were. What new connections meet does not
// change.
func (p *FaultProxy) Cut() int {
	p.mu.Lock()
	links := make([]*proxyLink, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	held := p.held
	p.held = map[net.Conn]struct{}{}
	p.mu.Unlock()
	for _, l := range links {
		l.close()
	}
	for c := range held {
		_ = c.Close()
	}
	return len(links) + len(held)
}

// Refuse makes the proxy close each new connection as soon as it is
// accepted, until Restore. Existing connections are left as they are.
func (p *FaultProxy) Refuse() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuse = true
}

// Blackhole stops all traffic until Restore: existing connections carry
// nothing either way, new ones are accepted and left unanswered.
func (p *FaultProxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.flow:
		p.flow = make(chan struct{})
	default: // already stopped
	}
}

// Restore lets traffic through again: new connections are forwarded, held
// ones are connected to the service, and stalled bytes are delivered.
func (p *FaultProxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuse = false
	select {
	case <-p.flow:
	default:
		close(p.flow)
	}
	if p.closed {
		return
	}
	for c := range p.held {
		delete(p.held, c)
		p.wg.Add(1)
		go p.connect(c)
	}
}

// Close stops the proxy and closes every connection through it.
func (p *FaultProxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	_ = p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *FaultProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		switch {
		case p.closed || p.refuse:
			_ = c.Close()
		case !isClosed(p.flow):
			p.held[c] = struct{}{}
		default:
			p.wg.Add(1)
			go p.connect(c)
		}
		p.mu.Unlock()
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// connect dials the service for the accepted connection c and forwards
// both ways until either side closes or the proxy cuts it.
func (p *FaultProxy) connect(c net.Conn) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", p.target, proxyDialTimeout)
	if err != nil {
		_ = c.Close()
		return
	}
	l := &proxyLink{client: c, server: server, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		l.close()
		return
	}
	p.links[l] = struct{}{}
	p.wg.Add(2)
	p.mu.Unlock()
	go p.pipe(l, server, c)
	go p.pipe(l, c, server)
	<-l.done
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// pipe copies src to dst, waiting while the proxy is blackholed before it
// delivers each chunk, and before it passes on the end of the stream.
func (p *FaultProxy) pipe(l *proxyLink, dst, src net.Conn) {
	defer p.wg.Done()
	defer l.close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if !p.waitFlow(l) {
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// waitFlow blocks while the proxy is blackholed; it reports false when the
// link was closed meanwhile.
func (p *FaultProxy) waitFlow(l *proxyLink) bool {
	for {
		p.mu.Lock()
		flow := p.flow
		p.mu.Unlock()
		select {
		case <-l.done:
			return false
		case <-flow:
			// A blackhole may have begun between reading flow and now:
			// look again, so that nothing slips through after Blackhole
			// returned.
			p.mu.Lock()
			still := flow == p.flow
			p.mu.Unlock()
			if still {
				return true
			}
		}
	}
}
