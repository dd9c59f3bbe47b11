package faults

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds the jobchat binary that the tests build once.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "jobchat-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildErr  error
)

// buildTimeout bounds the one build of the binary: seconds with a warm
// build cache (CI's `go test ./...` has just compiled the same packages),
// minutes on a fresh machine.
const buildTimeout = 5 * time.Minute

// jobchatBinary builds ./cmd/jobchat once per test binary, without -race
// (the test process is the one raced; the server stays fast), and returns
// its path.
func jobchatBinary(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(binDir, "jobchat")
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		gomod := strings.TrimSpace(string(out))
		if gomod == "" || gomod == os.DevNull {
			buildErr = fmt.Errorf("not inside the jobchat module (go env GOMOD = %q)", gomod)
			return
		}
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/jobchat")
		cmd.Dir = filepath.Dir(gomod)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/jobchat: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return bin
}

// instance is one jobchat process, serving on a loopback port of its own
// choosing, its output in a log file.
type instance struct {
	name    string
	url     string // http://127.0.0.1:port
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
}

// instanceStartTimeout bounds the wait for a started instance to be ready.
const instanceStartTimeout = 30 * time.Second

// startInstance runs `jobchat serve` with the given JOBCHAT_* settings (and
// none from the test's environment), waits until /readyz answers 200, and
// kills the process when tb ends, printing the tail of its log first if tb
// failed.
func startInstance(tb testing.TB, name string, settings map[string]string) *instance {
	tb.Helper()
	dir := tb.TempDir()
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer logFile.Close()

	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "JOBCHAT_") {
			env = append(env, kv)
		}
	}
	settings = withDefaults(settings, map[string]string{
		"JOBCHAT_ADDR":       "127.0.0.1:0",
		"JOBCHAT_DATA_DIR":   dir,
		"JOBCHAT_LOG_FORMAT": "json",
		"JOBCHAT_PLAYGROUND": "false",
	})
	for k, v := range settings {
		env = append(env, k+"="+v)
	}
	cmd := exec.Command(jobchatBinary(tb), "serve")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Should the test process die without its cleanups (a panic, the
	// test timeout), the kernel kills the instance with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	in := &instance{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(in.done) }()
	tb.Cleanup(func() {
		in.kill()
		if tb.Failed() {
			tb.Logf("last lines of instance %s's log (%s):\n%s", name, logPath, tail(logPath, 40))
		}
	})

	deadline := time.Now().Add(instanceStartTimeout)
	for in.url == "" {
		if addr := listenAddr(logPath); addr != "" {
			in.url = "http://" + addr
			break
		}
		select {
		case <-in.done:
			tb.Fatalf("instance %s exited at start:\n%s", name, tail(logPath, 40))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("instance %s not listening after %v:\n%s", name, instanceStartTimeout, tail(logPath, 40))
		}
	}
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(in.url + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return in
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("instance %s not ready after %v:\n%s", name, instanceStartTimeout, tail(logPath, 40))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// withDefaults returns base with defaults added where base has no value.
func withDefaults(base, defaults map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(defaults))
	for k, v := range defaults {
		out[k] = v
	}
	for k, v := range base {
		out[k] = v
	}
	return out
}

// listenAddr finds the address in the "jobchat listening" line of a JSON
// log, or "".
func listenAddr(logPath string) string {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Message string `json:"message"`
			Addr    string `json:"addr"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Message == "jobchat listening" {
			return line.Addr
		}
	}
	return ""
}

// tail returns the last n lines of a log, leaving out the access lines
// (one per request and per socket), which say little about a fault.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if !strings.Contains(l, `"message":"request"`) && !strings.Contains(l, `"message":"websocket `) {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// signal sends sig to the process.
func (in *instance) signal(tb testing.TB, sig syscall.Signal) {
	tb.Helper()
	if err := in.cmd.Process.Signal(sig); err != nil {
		tb.Fatalf("signal %v to %s: %v", sig, in.name, err)
	}
}

// waitExit waits up to timeout for the process to exit.
func (in *instance) waitExit(timeout time.Duration) bool {
	select {
	case <-in.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// kill ends the process with SIGKILL (which also ends a stopped one) and
// waits for it.
func (in *instance) kill() {
	select {
	case <-in.done:
		return
	default:
	}
	_ = in.cmd.Process.Kill()
	<-in.done
}
