package server

import (
	"context"
	"net"
	"net/http"
	"sync"
)

// Handler is the whole server's HTTP handler, with what a shutdown needs
// beyond http.Server.Shutdown: the sockets. A websocket's connection is
// hijacked, so Shutdown neither waits for it nor closes it; the transports
// close theirs with 1001 from Shutdown's hooks, and WaitSockets waits until
// each has closed and logged its "websocket closed" line.
type Handler struct {
	http.Handler
	sockets *socketSet
}

// WaitSockets waits until every connection the handler hijacked (GraphQL
// websockets, the old chat socket) has ended and logged its close line, or
// until ctx ends. It returns how many were still open then.
func (h *Handler) WaitSockets(ctx context.Context) (open int) {
	return h.sockets.wait(ctx)
}

// CloseSockets drops the TCP connection of every socket still open, which
// ends each at once (its close line is still logged): for a shutdown whose
// clients did not answer the close in time.
func (h *Handler) CloseSockets() {
	h.sockets.closeAll()
}

// socketSet counts the hijacked connections from the moment a handler asks
// to hijack until the connection's close line is logged.
type socketSet struct {
	mu    sync.Mutex
	open  map[*socket]struct{}
	empty chan struct{} // closed while open is empty
}

// socket is one hijacked connection; conn is nil until the hijack is done.
type socket struct {
	conn net.Conn
}

func newSocketSet() *socketSet {
	s := &socketSet{open: make(map[*socket]struct{}), empty: make(chan struct{})}
	close(s.empty)
	return s
}

// add counts a connection about to be hijacked: before the hijack, so that
// no moment passes in which neither http.Server nor the set knows of it.
func (s *socketSet) add() *socket {
	k := &socket{}
	s.mu.Lock()
	if len(s.open) == 0 {
		s.empty = make(chan struct{})
	}
	s.open[k] = struct{}{}
	s.mu.Unlock()
	return k
}

func (s *socketSet) hijacked(k *socket, conn net.Conn) {
	s.mu.Lock()
	k.conn = conn
	s.mu.Unlock()
}

func (s *socketSet) done(k *socket) {
	s.mu.Lock()
	if _, ok := s.open[k]; ok {
		delete(s.open, k)
		if len(s.open) == 0 {
			close(s.empty)
		}
	}
	s.mu.Unlock()
}

func (s *socketSet) wait(ctx context.Context) int {
	s.mu.Lock()
	empty := s.empty
	s.mu.Unlock()
	select {
	case <-empty:
		return 0
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

func (s *socketSet) closeAll() {
	s.mu.Lock()
	var conns []net.Conn
	for k := range s.open {
		if k.conn != nil {
			conns = append(conns, k.conn)
		}
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}
