package testsvc

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// echoServer answers every line with itself, until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(c, c) })
		}
	})
	return ln.Addr().String()
}

func dialProxy(t *testing.T, p *FaultProxy) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, bufio.NewReader(c)
}

// roundTrip writes line and reads its echo within wait.
func roundTrip(c net.Conn, r *bufio.Reader, line string, wait time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	got, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return got[:len(got)-1], nil
}

func TestFaultProxy(t *testing.T) {
	const short = 300 * time.Millisecond
	p := NewFaultProxy(t, echoServer(t))

	c1, r1 := dialProxy(t, p)
	if got, err := roundTrip(c1, r1, "one", time.Second); err != nil || got != "one" {
		t.Fatalf("pass-through: %q, %v", got, err)
	}

	// Blackhole: the existing connection and a new one hang; after Restore
	// both get their answers, nothing lost.
	p.Blackhole()
	if _, err := roundTrip(c1, r1, "held", short); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("blackholed connection: %v, want a timeout", err)
	}
	c2, r2 := dialProxy(t, p)
	if _, err := roundTrip(c2, r2, "new", short); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection made during the blackhole: %v, want a timeout", err)
	}
	p.Restore()
	_ = c1.SetDeadline(time.Now().Add(time.Second))
	if got, err := r1.ReadString('\n'); err != nil || got != "held\n" {
		t.Fatalf("held bytes after Restore: %q, %v", got, err)
	}
	_ = c2.SetDeadline(time.Now().Add(time.Second))
	if got, err := r2.ReadString('\n'); err != nil || got != "new\n" {
		t.Fatalf("held connection after Restore: %q, %v", got, err)
	}

	// Cut: both connections end at once.
	if n := p.Cut(); n != 2 {
		t.Fatalf("Cut closed %d connections, want 2", n)
	}
	for i, r := range []*bufio.Reader{r1, r2} {
		_ = []net.Conn{c1, c2}[i].SetDeadline(time.Now().Add(time.Second))
		if _, err := r.ReadString('\n'); !errors.Is(err, io.EOF) && !isReset(err) {
			t.Fatalf("connection %d after Cut: %v, want it closed", i+1, err)
		}
	}

	// Refuse: a new connection is closed at once; Restore heals.
	p.Refuse()
	c3, r3 := dialProxy(t, p)
	if _, err := roundTrip(c3, r3, "refused", time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection while refusing: %v, want it closed", err)
	}
	p.Restore()
	c4, r4 := dialProxy(t, p)
	if got, err := roundTrip(c4, r4, "back", time.Second); err != nil || got != "back" {
		t.Fatalf("after Restore: %q, %v", got, err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}
