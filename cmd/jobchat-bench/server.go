package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// serverPkg is built when -spawn has no -server-bin. A package path rather
// than ./cmd/jobchat, so that the bench can be run from anywhere in the module.
const serverPkg = "github.com/jobchat/jobchat/cmd/jobchat"

// spawned is a jobchat server the bench started and must stop.
type spawned struct {
	cmd     *exec.Cmd
	dir     string
	logPath string
	url     string
	secret  string
	// pprofURL is where the server was asked to serve /debug/pprof; servers
	// without JOBCHAT_PPROF_ADDR ignore the variable, and probes say n/a.
	pprofURL string
	done     chan error
	keep     bool
}

type spawnConfig struct {
	bin      string
	dbURL    string
	redisURL string
	extraEnv []string // KEY=VALUE, applied last
	pprof    bool     // ask the server for /debug/pprof on another free port
	keep     bool
	stderr   io.Writer
}

// spawnServer builds (unless given a binary) and starts a jobchat server on a
// free loopback port with a fresh secret and the per-user send limit off, and
// waits until it is ready. A port found free can be taken by another
// process before the server binds it (tests in other packages pick ports
// the same way), so a server that could not bind is started again, on new
// ports, a few times.
func spawnServer(ctx context.Context, sc spawnConfig) (*spawned, error) {
	for attempt := 1; ; attempt++ {
		s, err := spawnServerOnce(ctx, sc)
		if err == nil || attempt == 3 || !errors.Is(err, errPortTaken) {
			return s, err
		}
		if sc.stderr != nil {
			fmt.Fprintf(sc.stderr, "spawn: a port was taken before the server bound it; starting again\n")
		}
	}
}

// errPortTaken marks a spawned server that exited because its address was
// in use.
var errPortTaken = errors.New("address already in use")

func spawnServerOnce(ctx context.Context, sc spawnConfig) (*spawned, error) {
	dir, err := os.MkdirTemp("", "jobchat-bench-")
	if err != nil {
		return nil, fmt.Errorf("spawn: temp dir: %w", err)
	}
	s := &spawned{dir: dir, keep: sc.keep, done: make(chan error, 1)}
	ok := false
	defer func() {
		if !ok {
			s.stop()
		}
	}()

	bin := sc.bin
	if bin == "" {
		bin = filepath.Join(dir, "jobchat")
		if err := buildServer(ctx, bin, sc.stderr); err != nil {
			return nil, err
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("spawn: secret: %w", err)
	}
	s.secret = hex.EncodeToString(secret)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.url = "http://" + addr

	env := []string{}
	// The server reads every JOBCHAT_* variable; inheriting the caller's
	// would let a stray JOBCHAT_SEND_RATE skew the run.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "JOBCHAT_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"JOBCHAT_ADDR="+addr,
		"JOBCHAT_JWT_SECRET="+s.secret,
		"JOBCHAT_DATA_DIR="+filepath.Join(dir, "data"),
		"JOBCHAT_SEND_RATE=0",
		// Every simulated user types and connects from loopback: the
		// bounds meant for real clients would refuse the load itself.
		"JOBCHAT_TYPING_RATE=0",
		"JOBCHAT_WS_MAX_PER_IP=0",
		"JOBCHAT_WS_MAX_PER_USER=0",
		"JOBCHAT_LOG_LEVEL=warn",
		"JOBCHAT_LOG_FORMAT=json",
		"JOBCHAT_PLAYGROUND=false",
		"JOBCHAT_SHUTDOWN_TIMEOUT=3s",
		"JOBCHAT_DATABASE_URL="+sc.dbURL,
		"JOBCHAT_REDIS_URL="+sc.redisURL,
	)
	if sc.pprof {
		pport, err := freePort()
		if err != nil {
			return nil, err
		}
		paddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(pport))
		env = append(env, "JOBCHAT_PPROF_ADDR="+paddr)
		s.pprofURL = "http://" + paddr + "/debug/pprof"
	}
	env = append(env, sc.extraEnv...)

	s.logPath = filepath.Join(dir, "server.log")
	logf, err := os.Create(s.logPath)
	if err != nil {
		return nil, fmt.Errorf("spawn: log file: %w", err)
	}
	// Not CommandContext: the server must get SIGTERM and time to close its
	// sockets, not a SIGKILL the moment ctx ends.
	s.cmd = exec.Command(bin, "serve")
	s.cmd.Env = env
	s.cmd.Stdout = logf
	s.cmd.Stderr = logf
	if err := s.cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("spawn: start %s: %w", bin, err)
	}
	go func() {
		s.done <- s.cmd.Wait()
		_ = logf.Close()
	}()
	if err := s.waitReady(ctx, 60*time.Second); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

func buildServer(ctx context.Context, out string, stderr io.Writer) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, serverPkg)
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	fmt.Fprintf(stderr, "building %s ...\n", serverPkg)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s (run the bench inside the module, or pass -server-bin): %w\n%s", serverPkg, err, buf.String())
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (s *spawned) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			s.done <- err
			tail := s.logTail()
			if strings.Contains(tail, "address already in use") {
				return fmt.Errorf("spawned server exited before it was ready (%v): %w; its log:\n%s", err, errPortTaken, tail)
			}
			return fmt.Errorf("spawned server exited before it was ready (%v); its log:\n%s", err, tail)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := client.Get(s.url + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("spawned server not ready after %s; its log:\n%s", limit, s.logTail())
}

func (s *spawned) pid() int { return s.cmd.Process.Pid }

func (s *spawned) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// stop ends the server (SIGTERM, then SIGKILL after a grace period) and
// removes its directory unless asked to keep it.
func (s *spawned) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	if !s.keep && s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

// procSample is one reading of the server process.
type procSample struct {
	at        time.Time
	cpuSec    float64 // utime+stime
	rssBytes  int64
	threads   int64
	ok        bool
	errReason string
}

// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat. Linux
// fixes it at 100 for user space on every architecture Go supports, and Go has
// no sysconf without cgo.
const clockTicks = 100

// readProc samples /proc/<pid>/stat and /proc/<pid>/status.
func readProc(pid int) procSample {
	s := procSample{at: time.Now()}
	if pid <= 0 {
		s.errReason = "no server pid"
		return s
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		s.errReason = err.Error()
		return s
	}
	cpu, threads, err := parseStat(stat)
	if err != nil {
		s.errReason = err.Error()
		return s
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		s.errReason = err.Error()
		return s
	}
	rss, err := parseStatusKB(status, "VmRSS:")
	if err != nil {
		s.errReason = err.Error()
		return s
	}
	s.cpuSec, s.threads, s.rssBytes, s.ok = cpu, threads, rss*1024, true
	return s
}

// parseStat returns utime+stime in seconds and the thread count. The command
// name (field 2) may contain spaces and parentheses, so fields are counted
// from the last ')'.
func parseStat(b []byte) (cpuSec float64, threads int64, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("parse /proc stat: no ')'")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime is field 14, stime 15, num_threads 20.
	if len(f) < 18 {
		return 0, 0, fmt.Errorf("parse /proc stat: %d fields", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	th, err3 := strconv.ParseInt(f[17], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, 0, fmt.Errorf("parse /proc stat: %w", err)
	}
	return float64(ut+st) / clockTicks, th, nil
}

func parseStatusKB(b []byte, key string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("parse /proc status: no %s", key)
}

// pprofProbe reads what the server's pprof endpoints tell that /proc cannot:
// goroutines and the Go heap. Both are optional; -1 means not available.
type pprofProbe struct {
	base   string // e.g. http://127.0.0.1:8080/debug/pprof
	client *http.Client
}

func (p pprofProbe) get(ctx context.Context, path string) ([]byte, error) {
	if p.base == "" {
		return nil, errors.New("no pprof URL")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	// debug=1 profiles aggregate by stack; 4 MiB is plenty and bounds a
	// surprise.
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return b, nil
}

func (p pprofProbe) goroutines(ctx context.Context) int64 {
	b, err := p.get(ctx, "/goroutine?debug=1")
	if err != nil {
		return -1
	}
	return parseGoroutineTotal(b)
}

// heapInuse reads the server's heap in use right after a collection it
// forces, so that garbage from the connection storm does not count.
func (p pprofProbe) heapInuse(ctx context.Context) int64 {
	b, err := p.get(ctx, "/heap?debug=1&gc=1")
	if err != nil {
		return -1
	}
	return parseHeapInuse(b)
}

// parseGoroutineTotal reads "goroutine profile: total N" from the first line.
func parseGoroutineTotal(b []byte) int64 {
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	rest, ok := bytes.CutPrefix(line, []byte("goroutine profile: total "))
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(rest)), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// parseHeapInuse reads the "# HeapInuse = N" line of a debug=1 heap profile.
func parseHeapInuse(b []byte) int64 {
	_, rest, ok := bytes.Cut(b, []byte("\n# HeapInuse = "))
	if !ok {
		return -1
	}
	line, _, _ := bytes.Cut(rest, []byte{'\n'})
	n, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// hostCPU reads the machine's busy CPU seconds (all cores) from /proc/stat,
// so that a step can show how much CPU went to processes other than the
// server and the bench: on a shared machine, a stall with the server idle is
// often someone else's compile.
func hostCPU() (busySec float64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	return parseHostCPU(b)
}

func parseHostCPU(b []byte) (busySec float64, ok bool) {
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	f := strings.Fields(string(line))
	if len(f) < 6 || f[0] != "cpu" {
		return 0, false
	}
	var busy uint64
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, false
		}
		// user nice system idle iowait irq softirq steal guest guest_nice:
		// idle and iowait are not busy, and guest time is already counted
		// in user.
		if i == 3 || i == 4 || i >= 8 {
			continue
		}
		busy += n
	}
	return float64(busy) / clockTicks, true
}
