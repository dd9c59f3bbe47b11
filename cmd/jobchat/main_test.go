package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobchat/jobchat/db/dbtest"
)

// These tests run the program itself, through run, as main does: real
// arguments, a private environment, and stdout captured. Their helpers'
// names start with "main".

// mainSyncBuffer is stdout for a server running on another goroutine.
type mainSyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *mainSyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *mainSyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// mainGetenv is an environment holding only vars.
func mainGetenv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// mainLogLines decodes the JSON log lines of out, skipping anything else
// (such as the demo block).
func mainLogLines(out string) []map[string]any {
	var lines []map[string]any
	for _, line := range strings.Split(out, "\n") {
		var m map[string]any
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &m) == nil {
			lines = append(lines, m)
		}
	}
	return lines
}

// mainLogged returns the first log line with level and a message
// containing msg, or nil.
func mainLogged(out, level, msg string) map[string]any {
	for _, l := range mainLogLines(out) {
		if l["level"] == level && strings.Contains(l["message"].(string), msg) {
			return l
		}
	}
	return nil
}

// mainServer is `jobchat serve` running on a goroutine.
type mainServer struct {
	base   string
	out    *mainSyncBuffer
	cancel context.CancelFunc
	errc   chan error
}

// mainServe runs `jobchat` with args (a serve command listening on
// 127.0.0.1:0) and waits for its "jobchat listening" log line. The server is
// stopped when the test ends if the test has not stopped it.
func mainServe(tb testing.TB, args []string, vars map[string]string) *mainServer {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &mainServer{out: &mainSyncBuffer{}, cancel: cancel, errc: make(chan error, 1)}
	go func() { s.errc <- run(ctx, args, mainGetenv(vars), s.out) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-s.errc:
		case <-time.After(30 * time.Second):
			tb.Errorf("server still running 30s after the test")
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		if l := mainLogged(s.out.String(), "info", "jobchat listening"); l != nil {
			addr, _ := l["addr"].(string)
			if addr == "" {
				tb.Fatalf("listening line without addr: %v", l)
			}
			s.base = "http://" + addr
			return s
		}
		select {
		case err := <-s.errc:
			s.errc <- err // for Cleanup
			tb.Fatalf("run returned before listening: %v\noutput:\n%s", err, s.out)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no \"jobchat listening\" line after 30s; output:\n%s", s.out)
		}
	}
}

// stop cancels the server's context and checks that run returns nil.
func (s *mainServer) stop(tb testing.TB) {
	tb.Helper()
	s.cancel()
	select {
	case err := <-s.errc:
		s.errc <- err // for Cleanup
		if err != nil {
			tb.Fatalf("run returned %v after cancel", err)
		}
	case <-time.After(20 * time.Second):
		tb.Fatalf("run did not return within 20s of cancel; output:\n%s", s.out)
	}
}

// mainRun runs a command that exits and returns what it printed.
func mainRun(tb testing.TB, args []string, vars map[string]string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, args, mainGetenv(vars), &out); err != nil {
		tb.Fatalf("jobchat %s: %v\noutput:\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func mainGet(tb testing.TB, url string) (int, string) {
	tb.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// TestRunServe runs `jobchat serve` on SQLite in a fresh data dir without a
// JWT secret, as a newcomer would: it must make a secret and say so, serve
// the playground and probes, accept the tokens `jobchat token` prints, and
// shut down gracefully, closing open websockets, when its context ends.
func TestRunServe(t *testing.T) {
	dir := t.TempDir()
	s := mainServe(t, []string{"serve", "--addr", "127.0.0.1:0"}, map[string]string{
		"JOBCHAT_DATA_DIR":         dir,
		"JOBCHAT_SHUTDOWN_TIMEOUT": "5s",
	})

	for _, tc := range []struct{ path, want string }{
		{"/", "graphiql"},
		{"/healthz", `"ok"`},
		{"/readyz", `"ok"`},
	} {
		t.Run("GET "+tc.path, func(t *testing.T) {
			code, body := mainGet(t, s.base+tc.path)
			if code != http.StatusOK || !strings.Contains(strings.ToLower(body), tc.want) {
				t.Fatalf("status %d, body %.200q; want 200 containing %q", code, body, tc.want)
			}
		})
	}

	for _, name := range []string{"jwt-secret", "jobchat.db"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
			t.Fatalf("data dir should hold a non-empty %s: %v", name, err)
		}
	}
	if mainLogged(s.out.String(), "warn", "generated a development secret") == nil {
		t.Fatalf("no warning about the generated secret in the log:\n%s", s.out)
	}

	e := &env{url: s.base}
	userTok := strings.TrimSpace(mainRun(t, []string{"token", "--sub", "u1", "--name", "Ana", "--data-dir", dir}, nil))
	var me struct {
		Me struct {
			ID          string `json:"id"`
			DisplayName string `json:"displayName"`
		} `json:"me"`
	}
	e.do(t, userTok, `{ me { id displayName } }`, nil).ok(t, &me)
	if me.Me.ID != "u1" || me.Me.DisplayName != "Ana" {
		t.Fatalf("me with the printed token: %+v", me.Me)
	}
	// The server checks tokens against the data dir's secret, not any.
	e.do(t, userToken(t, "u1", "Ana"), `{ me { id } }`, nil).fails(t, "UNAUTHENTICATED", "")

	svcTok := strings.TrimSpace(mainRun(t, []string{"token", "--service", "--data-dir", dir}, nil))
	input := map[string]any{"input": map[string]any{
		"jobId": "job-run", "jobTitle": "Paint the fence",
		"client":        map[string]any{"id": "u1", "displayName": "Ana"},
		"worker":        map[string]any{"id": "u2", "displayName": "Ben"},
		"systemMessage": "Job 'Paint the fence' has been accepted. Chat is now active.",
	}}
	e.do(t, userTok, createConversation, input).fails(t, "FORBIDDEN", "")
	var created struct {
		Conv conversation `json:"createConversationForJob"`
	}
	e.do(t, svcTok, createConversation, input).ok(t, &created)
	if created.Conv.ID == "" || created.Conv.LastSeq != 1 {
		t.Fatalf("createConversationForJob with the service token: %+v", created.Conv)
	}

	// A live subscription over a websocket, open when the server stops.
	ws := e.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + userTok})
	id := ws.subscribe(concSubscription, map[string]any{"c": created.Conv.ID, "after": 0})
	if m := ws.nextMessage(id); m.Seq != 1 || m.MessageType != "SYSTEM" {
		t.Fatalf("first message: %+v", m)
	}

	// The client reads while the server stops, as a real one does, and so
	// answers the server's close at once.
	readErrc := make(chan error, 1)
	go func() {
		for range 100 {
			_ = ws.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, _, err := ws.conn.ReadMessage(); err != nil {
				readErrc <- err
				return
			}
		}
		readErrc <- nil
	}()
	s.stop(t)
	// The socket must be closed by the server, not left hanging: reads end
	// with an error other than our own deadline.
	readErr := <-readErrc
	var netErr net.Error
	if readErr == nil || (errors.As(readErr, &netErr) && netErr.Timeout()) {
		t.Fatalf("websocket not closed by shutdown: %v", readErr)
	}
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get(s.base + "/healthz"); err == nil {
		t.Fatalf("server still answers after shutdown")
	}
	if mainLogged(s.out.String(), "info", "stopped") == nil {
		t.Fatalf("no \"stopped\" log line:\n%s", s.out)
	}
}

// mainDBVars is the environment of a command on dialect's fresh database.
func mainDBVars(tb testing.TB, dialect string) map[string]string {
	tb.Helper()
	dbc := dbtest.Config(tb, dialect)
	if dbc.DataDir == "" {
		dbc.DataDir = tb.TempDir()
	}
	return map[string]string{"JOBCHAT_DATA_DIR": dbc.DataDir, "JOBCHAT_DATABASE_URL": dbc.URL}
}

// TestRunMigrate applies the migrations to a fresh database, then finds
// nothing to do.
func TestRunMigrate(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			vars := mainDBVars(t, dialect)
			first := mainRun(t, []string{"migrate"}, vars)
			if !regexp.MustCompile(`^applied: \d{14}_\w+(, \d{14}_\w+)*\n$`).MatchString(first) {
				t.Fatalf("first migrate printed %q, want the applied migrations", first)
			}
			if second := mainRun(t, []string{"migrate"}, vars); second != "database is up to date\n" {
				t.Fatalf("second migrate printed %q", second)
			}
		})
	}
}

var (
	mainDemoConvRE = regexp.MustCompile(`Conversation (\S+) for job`)
	mainJWTRE      = regexp.MustCompile(`[\w-]+\.[\w-]+\.[\w-]+`)
	mainDemoURLRE  = regexp.MustCompile(`Playground: \S+`)
)

// mainDemoBlock finds the demo block in out and returns it with the
// conversation id and the Bearer tokens (Ana's, then Ben's).
func mainDemoBlock(tb testing.TB, out string) (block, conversationID string, tokens []string) {
	tb.Helper()
	start := strings.Index(out, "=== jobchat demo")
	end := strings.LastIndex(out, "\n=====")
	if start < 0 || end < start {
		tb.Fatalf("no demo block in:\n%s", out)
	}
	block = out[start:end]
	m := mainDemoConvRE.FindStringSubmatch(block)
	if m == nil {
		tb.Fatalf("no conversation id in the demo block:\n%s", block)
	}
	conversationID = m[1]
	if !strings.Contains(block, `messageAdded(conversationId: "`+conversationID+`", afterSeq: 0)`) {
		tb.Fatalf("no subscription for %s in the demo block:\n%s", conversationID, block)
	}
	for _, line := range strings.Split(block, "\n") {
		if _, tok, ok := strings.Cut(line, `"Authorization": "Bearer `); ok {
			tokens = append(tokens, strings.TrimSuffix(tok, `"}`))
		}
	}
	if len(tokens) != 2 {
		tb.Fatalf("want 2 user tokens in the demo block, got %d:\n%s", len(tokens), block)
	}
	return block, conversationID, tokens
}

// mainNormalizeDemo blanks what legitimately differs between two demo
// blocks: the tokens and the playground URL.
func mainNormalizeDemo(block string) string {
	return mainDemoURLRE.ReplaceAllString(mainJWTRE.ReplaceAllString(block, "<token>"), "Playground: <url>")
}

// TestRunDemo seeds the demo twice with `jobchat demo`, then once more with
// `jobchat serve --demo`: the same conversation each time, with its system
// message posted once, and tokens that the server accepts.
func TestRunDemo(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			vars := mainDBVars(t, dialect)
			block1, conv1, tokens := mainDemoBlock(t, mainRun(t, []string{"demo"}, vars))
			block2, conv2, _ := mainDemoBlock(t, mainRun(t, []string{"demo"}, vars))
			if conv1 != conv2 {
				t.Fatalf("demo is not idempotent: conversation %s, then %s", conv1, conv2)
			}
			if mainNormalizeDemo(block1) != mainNormalizeDemo(block2) {
				t.Fatalf("demo blocks differ:\n%s\n---\n%s", block1, block2)
			}

			s := mainServe(t, []string{"serve", "--demo", "--addr", "127.0.0.1:0"}, vars)
			block3, conv3, _ := mainDemoBlock(t, s.out.String())
			if conv3 != conv1 {
				t.Fatalf("serve --demo seeded conversation %s, demo seeded %s", conv3, conv1)
			}
			if got, want := mainNormalizeDemo(block3), mainNormalizeDemo(block1); got != want {
				t.Fatalf("serve --demo printed a different block:\n%s\n---\n%s", got, want)
			}
			if !strings.Contains(block3, "Playground: "+s.base+"/") {
				t.Fatalf("serve --demo block does not point at %s:\n%s", s.base, block3)
			}

			// The first demo run's token for Ana works on the server, and
			// three seedings made one conversation with one system message.
			e := &env{url: s.base}
			var out struct {
				Conversations struct {
					Edges []struct {
						Node struct {
							ID      string `json:"id"`
							LastSeq int    `json:"lastSeq"`
							MyRole  string `json:"myRole"`
						} `json:"node"`
					} `json:"edges"`
				} `json:"conversations"`
				Me struct {
					ID string `json:"id"`
				} `json:"me"`
			}
			e.do(t, tokens[0], `{ me { id } conversations { edges { node { id lastSeq myRole } } } }`, nil).ok(t, &out)
			if out.Me.ID != "demo-ana" || len(out.Conversations.Edges) != 1 {
				t.Fatalf("Ana's view: %+v", out)
			}
			if n := out.Conversations.Edges[0].Node; n.ID != conv1 || n.LastSeq != 1 || n.MyRole != "CLIENT" {
				t.Fatalf("demo conversation: %+v", n)
			}
			var sent struct {
				Msg message `json:"sendMessage"`
			}
			e.do(t, tokens[1], sendMessage, map[string]any{"input": map[string]any{"conversationId": conv1, "messageText": "Hi Ana"}}).ok(t, &sent)
			if sent.Msg.Seq != 2 || sent.Msg.SenderID == nil || *sent.Msg.SenderID != "demo-ben" {
				t.Fatalf("Ben's message: %+v", sent.Msg)
			}
			s.stop(t)
		})
	}
}

// TestRunErrors checks that run refuses what it cannot do, with an error
// that says why, before it touches the data dir.
func TestRunErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		vars map[string]string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, nil, `unknown command "frobnicate"`},
		{"serve with a bad log level", []string{"serve", "--addr", "127.0.0.1:0"}, map[string]string{"JOBCHAT_LOG_LEVEL": "loud"}, "JOBCHAT_LOG_LEVEL"},
		{"serve with a bad log level flag", []string{"serve", "--addr", "127.0.0.1:0", "--log-level", "loud"}, nil, "JOBCHAT_LOG_LEVEL"},
		// migrate and token read only their own settings (a bad log level
		// is not theirs), and check those.
		{"migrate with a bad pool size", []string{"migrate"}, map[string]string{"JOBCHAT_DB_MAX_CONNS": "many"}, "JOBCHAT_DB_MAX_CONNS"},
		{"token with a short secret", []string{"token", "--sub", "u1"}, map[string]string{"JOBCHAT_JWT_SECRET": "short"}, "JOBCHAT_JWT_SECRET"},
		{"token with a server flag", []string{"token", "--sub", "u1", "--addr", ":1"}, nil, "-addr"},
		{"demo with a bad log level", []string{"demo"}, map[string]string{"JOBCHAT_LOG_LEVEL": "loud"}, "JOBCHAT_LOG_LEVEL"},
		{"serve with a short secret", []string{"serve", "--addr", "127.0.0.1:0"}, map[string]string{"JOBCHAT_JWT_SECRET": "short"}, "JOBCHAT_JWT_SECRET"},
		{"serve with a stray argument", []string{"serve", "--auto-migrate", "false"}, nil, "--auto-migrate=false"},
		{"token without --sub", []string{"token"}, nil, "--sub"},
		// The scheme missing: the error names the variable and the form
		// it takes, where the Redis client would say only "invalid URL
		// scheme: ".
		{"serve with a redis URL that is not one", []string{"serve", "--addr", "127.0.0.1:0"}, map[string]string{"JOBCHAT_REDIS_URL": "garbage"},
			`JOBCHAT_REDIS_URL must be a Redis URL such as redis://host:6379/0 (rediss://host:6380/0 for TLS, unix:///path/to/redis.sock for a socket), not "garbage"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			vars := map[string]string{"JOBCHAT_DATA_DIR": dir}
			for k, v := range tc.vars {
				vars[k] = v
			}
			// Bounded in case a broken check lets serve start after all.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var out mainSyncBuffer
			err := run(ctx, tc.args, mainGetenv(vars), &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run %v: got error %v, want one containing %q; output:\n%s", tc.args, err, tc.want, out.String())
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("the data dir was written to before the error: %v", entries)
			}
		})
	}
}

// TestRunPprof: profiles are off by default, and with JOBCHAT_PPROF_ADDR they
// are served on that address only, never on the public one.
func TestRunPprof(t *testing.T) {
	off := mainServe(t, []string{"serve", "--addr", "127.0.0.1:0"}, map[string]string{"JOBCHAT_DATA_DIR": t.TempDir()})
	if code, _ := mainGet(t, off.base+"/debug/pprof/"); code != http.StatusNotFound {
		t.Fatalf("public /debug/pprof/ = %d with profiles off, want 404", code)
	}
	if mainLogged(off.out.String(), "warn", "pprof listening") != nil {
		t.Fatal("pprof listening without JOBCHAT_PPROF_ADDR")
	}

	on := mainServe(t, []string{"serve", "--addr", "127.0.0.1:0"}, map[string]string{
		"JOBCHAT_DATA_DIR":   t.TempDir(),
		"JOBCHAT_PPROF_ADDR": "127.0.0.1:0",
	})
	l := mainLogged(on.out.String(), "warn", "pprof listening")
	if l == nil {
		t.Fatalf("no pprof line in the log:\n%s", on.out)
	}
	addr, _ := l["addr"].(string)
	code, body := mainGet(t, "http://"+addr+"/debug/pprof/goroutine?debug=1")
	if code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("pprof goroutine profile: %d %.200q", code, body)
	}
	if code, _ := mainGet(t, on.base+"/debug/pprof/"); code != http.StatusNotFound {
		t.Fatalf("public /debug/pprof/ = %d, want 404: profiles belong on their own address", code)
	}
}
