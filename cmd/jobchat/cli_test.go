package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jobchat/jobchat/internal/config"
)

// These tests hold the command line to what a newcomer needs: help that
// lists the commands, each command's own flags typed and grouped, a
// version, a demo banner whose commands work, logs with milliseconds and
// units, and a shutdown that logs every socket's close before "stopped".
// Helpers are shared with main_test.go.

// TestRunHelp: every way of asking for help lists every command, one line
// each, and succeeds.
func TestRunHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"-help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out := mainRun(t, args, nil)
			for _, c := range []string{"serve", "migrate", "token", "demo", "version", "help"} {
				if !regexp.MustCompile(`(?m)^  ` + c + ` +\S.*$`).MatchString(out) {
					t.Errorf("no line for %s in:\n%s", c, out)
				}
			}
			if strings.Contains(out, "-addr") {
				t.Errorf("the commands' help lists flags:\n%s", out)
			}
		})
	}
}

// TestRunCommandHelp: a command's help lists its own flags and the
// settings it reads, and nothing else; `jobchat help token` is `jobchat
// token -h`.
func TestRunCommandHelp(t *testing.T) {
	tests := []struct {
		args      []string
		want, not []string
	}{
		{
			args: []string{"token", "--help"},
			want: []string{
				"Usage: jobchat token [flags]", "\nToken:\n", "  -sub string\n", "  -name string\n", "  -service bool\n",
				"  -ttl duration ", "  -jwt-secret string     JOBCHAT_JWT_SECRET\n", `  -data-dir string       JOBCHAT_DATA_DIR, default "./data"`,
				"  -jwt-issuer string     JOBCHAT_JWT_ISSUER\n", "  -jwt-audience string   JOBCHAT_JWT_AUDIENCE\n",
			},
			not: []string{"-addr", "-send-rate", "-playground", "-log-level", "-database-url", "-demo"},
		},
		{
			args: []string{"serve", "-h"},
			want: []string{
				"Usage: jobchat serve [flags]", "\nServer:\n", "\nDatabase:\n", "\nLimits:\n", "\nWebSocket:\n", "\nSSE:\n", "\nLive features:\n",
				"  -demo bool\n", "  -playground bool ", "JOBCHAT_PLAYGROUND, default true\n", "  -send-rate float ", "JOBCHAT_SEND_RATE, default 10\n",
				"  -ws-keepalive duration ", "JOBCHAT_WS_KEEPALIVE, default 15s\n", "  -max-frame-bytes int ", "JOBCHAT_MAX_FRAME_BYTES, default 65536\n",
			},
			not: []string{"  -sub ", "  -ttl ", `string (default "true")`},
		},
		{
			args: []string{"migrate", "-h"},
			want: []string{"  -database-url string ", "  -data-dir string ", "  -db-max-conns int "},
			not:  []string{"-addr", "-jwt-secret", "-auto-migrate", "-demo"},
		},
		{
			args: []string{"version", "-h"},
			want: []string{"Usage: jobchat version\n"},
			not:  []string{"-addr", "-data-dir"},
		},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tt.args, mainGetenv(nil), &out)
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("run: %v, want flag.ErrHelp (which main does not report)", err)
			}
			help := out.String()
			for _, w := range tt.want {
				if !strings.Contains(help, w) {
					t.Errorf("help lacks %q:\n%s", w, help)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(help, n) {
					t.Errorf("help has %q:\n%s", n, help)
				}
			}
		})
	}
	if a, b := mainRun(t, []string{"help", "token"}, nil), mainRunHelp(t, "token"); a != b {
		t.Errorf("jobchat help token:\n%s\njobchat token -h:\n%s", a, b)
	}
}

func mainRunHelp(tb testing.TB, cmd string) string {
	tb.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), []string{cmd, "-h"}, mainGetenv(nil), &out); !errors.Is(err, flag.ErrHelp) {
		tb.Fatalf("%s -h: %v", cmd, err)
	}
	return out.String()
}

// TestRunVersion: `jobchat version` says which build this is.
func TestRunVersion(t *testing.T) {
	out := mainRun(t, []string{"version"}, nil)
	if !regexp.MustCompile(`^jobchat \S.* \(go1\.\d+.* \w+/\w+\)\n$`).MatchString(out) {
		t.Fatalf("version printed %q", out)
	}
}

// TestDescribeBuild: a stamped version wins; otherwise the module version
// and VCS revision Go recorded.
func TestDescribeBuild(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0ead1c2f8a9b7c6d5e4f"},
		{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	read := func() (*debug.BuildInfo, bool) { return info, true }
	tests := []struct {
		name, stamped string
		read          func() (*debug.BuildInfo, bool)
		want          string
	}{
		{"stamped", "v1.4.0", read, "v1.4.0 ("},
		{"vcs", "", read, "(devel) 0ead1c2f8a9b+dirty 2026-12-01T10:00:00Z (go1.26.8 "},
		{"module", "", func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.3.0"}}, true
		}, "v1.3.0 (go1.26.8 "},
		{"no build info", "", func() (*debug.BuildInfo, bool) { return nil, false }, "unknown ("},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describeBuild(tt.stamped, tt.read); !strings.HasPrefix(got, tt.want) {
				t.Fatalf("got %q, want it to start with %q", got, tt.want)
			}
		})
	}
}

// TestSelf: the demo banner's commands start the way this process was
// started.
func TestSelf(t *testing.T) {
	tests := []struct{ arg0, want string }{
		{"/tmp/go-build1234567/b001/exe/jobchat", "go run ./cmd/jobchat"},
		{"/home/ana/.cache/tmp/go-build99/b001/exe/jobchat", "go run ./cmd/jobchat"},
		{"./jobchat", "./jobchat"},
		{"jobchat", "jobchat"},
		{"/usr/local/bin/jobchat", "/usr/local/bin/jobchat"},
		{"/opt/my apps/jobchat", `'/opt/my apps/jobchat'`},
		{"/tmp/go-build1234567/b001/jobchat.test", "jobchat"},
	}
	for _, tt := range tests {
		if got := self(tt.arg0); got != tt.want {
			t.Errorf("self(%q) = %q, want %q", tt.arg0, got, tt.want)
		}
	}
	cfg := config.Config{DataDir: "./data"}
	if got := tokenCommandLine("go run ./cmd/jobchat", cfg); got != `go run ./cmd/jobchat token --sub demo-ana --name "Ana Client"` {
		t.Errorf("default data dir: %q", got)
	}
	cfg.DataDir = "/srv/job chat"
	if got := tokenCommandLine("jobchat", cfg); got != `jobchat token --sub demo-ana --name "Ana Client" --data-dir '/srv/job chat'` {
		t.Errorf("own data dir: %q", got)
	}
	cfg.JWTSecret = testSecret
	if got := tokenCommandLine("jobchat", cfg); strings.Contains(got, "--data-dir") {
		t.Errorf("with JOBCHAT_JWT_SECRET the data dir does not matter: %q", got)
	}
}

// TestRunDemoTokenCommand: the banner's "make more" command, run as
// printed, makes a token the server accepts.
func TestRunDemoTokenCommand(t *testing.T) {
	vars := map[string]string{"JOBCHAT_DATA_DIR": t.TempDir()}
	out := mainRun(t, []string{"demo"}, vars)
	_, line, ok := strings.Cut(out, "make more with:\n   ")
	line, _, _ = strings.Cut(line, "\n")
	if !ok || !strings.HasPrefix(line, self(os.Args[0])+" token ") {
		t.Fatalf("no token command in the banner:\n%s", out)
	}
	args := mainShellWords(t, strings.TrimPrefix(line, self(os.Args[0])+" "))
	// The environment of a new shell: the data dir comes from the line.
	tok := strings.TrimSpace(mainRun(t, args, nil))

	s := mainServe(t, []string{"serve", "--addr", "127.0.0.1:0"}, vars)
	var me struct {
		Me struct{ ID, DisplayName string } `json:"me"`
	}
	(&env{url: s.base}).do(t, tok, `{ me { id displayName } }`, nil).ok(t, &me)
	if me.Me.ID != "demo-ana" || me.Me.DisplayName != "Ana Client" {
		t.Fatalf("token from %q: %+v", line, me.Me)
	}
}

// mainShellWords splits a command line as a POSIX shell would, for the
// quoting shellQuote and the banner use.
func mainShellWords(tb testing.TB, line string) []string {
	tb.Helper()
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		switch ch := line[i]; ch {
		case ' ':
			if inWord {
				words, inWord = append(words, w.String()), false
				w.Reset()
			}
		case '\'', '"':
			end := strings.IndexByte(line[i+1:], ch)
			if end < 0 {
				tb.Fatalf("unbalanced quote in %q", line)
			}
			w.WriteString(line[i+1 : i+1+end])
			i += end + 1
			inWord = true
		default:
			w.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

var (
	mainJSONTimeRE    = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$`)
	mainConsoleTimeRE = regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} `)
)

// TestLogTimes: JSON lines carry their time with milliseconds, and the
// console shows those milliseconds rather than ".000".
func TestLogTimes(t *testing.T) {
	var out bytes.Buffer
	log := newLogger(config.Config{LogLevel: "info", LogFormat: "json"}, &out)
	log.Info().Str("k", "v").Msg("hello")
	lines := mainLogLines(out.String())
	if len(lines) != 1 {
		t.Fatalf("log lines: %q", out.String())
	}
	if ts, _ := lines[0]["time"].(string); !mainJSONTimeRE.MatchString(ts) {
		t.Fatalf("JSON time %q, want RFC 3339 with milliseconds", ts)
	}

	out.Reset()
	log = newLogger(config.Config{LogLevel: "info", LogFormat: "console"}, &out)
	log.Info().Msg("hello")
	if !mainConsoleTimeRE.MatchString(out.String()) {
		t.Fatalf("console line %q, want it to start with hh:mm:ss.mmm", out.String())
	}

	at := time.Date(2026, 12, 7, 6, 22, 3, 318_000_000, time.UTC)
	if got, want := consoleTime(at.Format(logTimeFormat)), at.Local().Format("15:04:05")+".318"; got != want {
		t.Fatalf("console time %q, want %q", got, want)
	}
}

// TestRunLogUnits: durations in the log carry their unit, in a field
// named _ms or as a Go duration string: the shutdown line says timeout
// "2s", never 2000, and the lines of requests, SQL queries, operations and
// pushed subscriptions say duration_ms.
func TestRunLogUnits(t *testing.T) {
	s := mainServe(t, []string{"serve", "--addr", "127.0.0.1:0"}, map[string]string{
		"JOBCHAT_DATA_DIR":         t.TempDir(),
		"JOBCHAT_JWT_SECRET":       testSecret,
		"JOBCHAT_SHUTDOWN_TIMEOUT": "2s",
		"JOBCHAT_LOG_LEVEL":        "debug",
	})
	e := &env{url: s.base}
	conv := e.openJob(t, "job-units", "ana", "ben", "Chat is now active.")
	ws := e.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + userToken(t, "ana", "Ana")})
	id := ws.subscribe(concSubscription, map[string]any{"c": conv.ID, "after": 0})
	if m := ws.nextMessage(id); m.Seq != 1 {
		t.Fatalf("first message: %+v", m)
	}
	_ = ws.conn.Close()
	s.stop(t)
	if l := mainLogged(s.out.String(), "info", "shutting down"); l == nil || l["timeout"] != "2s" {
		t.Fatalf("shutdown line %v, want timeout \"2s\"", l)
	}
	for _, l := range mainLogLines(s.out.String()) {
		for k, v := range l {
			if _, isNumber := v.(float64); isNumber && (k == "duration" || k == "timeout" || strings.HasSuffix(k, "_duration")) {
				t.Errorf("%q: %s is a number without a unit: %v", l["message"], k, l)
			}
		}
	}
	seen := map[string]bool{}
	for _, l := range mainLogLines(s.out.String()) {
		msg, _ := l["message"].(string)
		if msg == "graphql operation" && l["pushed"] == true {
			msg = "pushed subscription"
		}
		if _, ok := l["duration_ms"].(float64); ok {
			seen[msg] = true
		}
	}
	for _, msg := range []string{"request", "sql query", "graphql operation", "pushed subscription", "websocket closed"} {
		if !seen[msg] {
			t.Errorf("no %q line with duration_ms:\n%s", msg, s.out)
		}
	}
}

// TestRunRedisLogs: go-redis's own lines about an unreachable Redis come
// through the structured log, before the error that ends the start.
func TestRunRedisLogs(t *testing.T) {
	// Port 1 on loopback: nothing listens there, so dials are refused at
	// once.
	var out mainSyncBuffer
	err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0"}, mainGetenv(map[string]string{
		"JOBCHAT_DATA_DIR":  t.TempDir(),
		"JOBCHAT_REDIS_URL": "redis://127.0.0.1:1/0",
	}), &out)
	if err == nil || !strings.Contains(err.Error(), "connect to redis at 127.0.0.1:1") {
		t.Fatalf("run: %v, want the redis connection error", err)
	}
	if l := mainLogged(out.String(), "warn", "redis: "); l == nil || l["source"] != "go-redis" {
		t.Fatalf("no go-redis line in the log:\n%s", out.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.HasPrefix(line, "{") {
			t.Errorf("a line outside the structured log: %q", line)
		}
	}
}

// TestRunShutdownLogsSockets: at shutdown every socket the server opened,
// GraphQL and the old chat socket alike, logs exactly one "websocket
// closed" line, and all of them come before "stopped": those whose
// clients answer the close at once, and one whose client does not, which
// is dropped shortly before the shutdown timeout.
func TestRunShutdownLogsSockets(t *testing.T) {
	s := mainServe(t, []string{"serve", "--addr", "127.0.0.1:0"}, map[string]string{
		"JOBCHAT_DATA_DIR":         t.TempDir(),
		"JOBCHAT_JWT_SECRET":       testSecret,
		"JOBCHAT_SHUTDOWN_TIMEOUT": "2s",
	})
	e := &env{url: s.base}
	ana := userToken(t, "ana", "Ana")
	conv := e.openJob(t, "job-shutdown", "ana", "ben", "Chat is now active.")

	// Clients that read, and so answer the server's close frame.
	reading := []*websocket.Conn{
		e.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + ana}).conn,
		e.dial(t, "graphql-ws", map[string]any{"authorization": "Bearer " + ana}).conn,
		e.lsDial(t, conv.ID, "", lsBearer(ana)),
	}
	ended := make(chan error, len(reading))
	for _, c := range reading {
		go func() {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					ended <- err
					return
				}
			}
		}()
	}
	// A client that reads nothing, so never answers.
	e.dialRaw(t, "graphql-transport-ws", nil)

	opened := 0
	for _, l := range mainLogLines(s.out.String()) {
		if l["message"] == "websocket opened" {
			opened++
		}
	}
	if opened != 4 {
		t.Fatalf("%d \"websocket opened\" lines for 4 sockets:\n%s", opened, s.out)
	}

	s.stop(t)
	for range reading {
		var ce *websocket.CloseError
		if err := <-ended; !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Errorf("a reading client ended with %v, want close 1001", err)
		}
	}

	lines := mainLogLines(s.out.String())
	stopped := -1
	closedBy := map[string]int{}
	openedBy := map[string]int{}
	for i, l := range lines {
		id, _ := l["req_id"].(string)
		switch l["message"] {
		case "websocket opened":
			openedBy[id]++
		case "websocket closed":
			closedBy[id]++
			if stopped >= 0 {
				t.Errorf("a close line after \"stopped\": %v", l)
			}
			if _, ok := l["duration_ms"].(float64); !ok {
				t.Errorf("close line without duration_ms: %v", l)
			}
		case "stopped":
			stopped = i
		}
	}
	if stopped < 0 {
		t.Fatalf("no \"stopped\" line:\n%s", s.out)
	}
	for id, n := range openedBy {
		if n != 1 || closedBy[id] != 1 {
			t.Errorf("socket %s: %d opened, %d closed lines; want one each", id, n, closedBy[id])
		}
	}
	if len(closedBy) != len(openedBy) {
		t.Errorf("close lines for %d sockets, %d opened:\n%s", len(closedBy), len(openedBy), s.out)
	}
	if l := mainLogged(s.out.String(), "warn", "did not close in time"); l == nil || l["sockets"] != float64(1) {
		t.Errorf("want one socket dropped at the deadline, got %v", l)
	}
}
