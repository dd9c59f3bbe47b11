package testsvc

import (
	"bufio"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// PrivateRedis is a redis-server of the test's own on a free loopback port,
// so that the test may kill and restart it without disturbing anyone else.
// It keeps nothing on disk. Not safe for concurrent use: one goroutine of
// the test starts and stops it.
type PrivateRedis struct {
	tb   testing.TB
	port string
	cmd  *exec.Cmd
	done chan struct{}
}

// privateRedisStartTimeout bounds the wait for a started server to answer.
const privateRedisStartTimeout = 10 * time.Second

// StartPrivateRedis starts redis-server on a free loopback port and kills
// it when tb ends. It runs where the Redis tests run (JOBCHAT_TEST_REDIS_URL
// is set, and always in CI, which installs redis-server for them); without
// redis-server on PATH it skips tb, or fails it in CI.
func StartPrivateRedis(tb testing.TB) *PrivateRedis {
	tb.Helper()
	RedisURL(tb)
	if _, err := exec.LookPath("redis-server"); err != nil {
		if InCI() {
			tb.Fatal("redis-server is not installed")
		}
		tb.Skip("redis-server is not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	_ = ln.Close()
	r := &PrivateRedis{tb: tb, port: port}
	r.Start()
	tb.Cleanup(r.Stop)
	return r
}

// Addr is the server's host:port.
func (r *PrivateRedis) Addr() string { return "127.0.0.1:" + r.port }

// URL is the server's redis:// URL, database 0.
func (r *PrivateRedis) URL() string { return "redis://" + r.Addr() + "/0" }

// Start starts the server on its port (again, after Stop) and returns once
// it answers PING, checked every 10 ms.
func (r *PrivateRedis) Start() {
	r.tb.Helper()
	if r.cmd != nil {
		return
	}
	cmd := exec.Command("redis-server", "--port", r.port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		r.tb.Fatalf("start redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	r.cmd, r.done = cmd, done
	deadline := time.Now().Add(privateRedisStartTimeout)
	for !pingRedis(r.Addr()) {
		select {
		case <-done:
			r.cmd = nil
			r.tb.Fatalf("redis-server on port %s exited at start", r.port)
		default:
		}
		if time.Now().After(deadline) {
			r.tb.Fatalf("private redis-server not answering after %v", privateRedisStartTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills the server, as a crash would: connections drop at once.
func (r *PrivateRedis) Stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// pingRedis reports whether a Redis server at addr answers PING.
func pingRedis(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}
