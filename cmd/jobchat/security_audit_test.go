package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/db/dbtest"
)

// secLogs keeps a server's log lines, for the audit tests.
type secLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *secLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// lines returns the JSON lines whose message is msg.
func (l *secLogs) lines(tb testing.TB, msg string) []map[string]any {
	tb.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(l.buf.String(), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			tb.Fatalf("log line %q: %v", line, err)
		}
		if m["message"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func (l *secLogs) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Reset()
}

// secEnvLogged is newEnv with the server's info-level log kept.
func secEnvLogged(tb testing.TB, dialect string, extra map[string]string) (*env, *secLogs) {
	tb.Helper()
	logs := &secLogs{}
	vars := map[string]string{"JOBCHAT_LOG_LEVEL": "info"}
	for k, v := range extra {
		vars[k] = v
	}
	e, _ := startApp(tb, dbtest.Config(tb, dialect), vars, zerolog.New(logs).Level(zerolog.InfoLevel))
	return e, logs
}

// TestSecurityAuditServiceActions: every service-role action leaves one
// "audit" line saying who, what and which conversation; users' actions
// leave none.
func TestSecurityAuditServiceActions(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			e, logs := secEnvLogged(t, dialect, nil)
			svc, ben := serviceToken(t), userToken(t, "ben", "Ben")
			conv := e.openJob(t, "job-1", "ana", "ben", "Chat is now active.")
			msg := e.sendText(t, ben, conv.ID, "hi")

			actions := []struct {
				op, query string
				vars      map[string]any
				message   bool
			}{
				{"postSystemMessage", apiPostSystem, map[string]any{"c": conv.ID, "text": "Paid.", "key": "k1"}, true},
				{"postJobEvent", `mutation($c: ID!) { postJobEvent(conversationId: $c, event: JOB_STARTED, messageText: "Started.", idempotencyKey: "k2") { id } }`, map[string]any{"c": conv.ID}, true},
				{"setContactPolicy", `mutation($c: ID!) { setContactPolicy(conversationId: $c, policy: ALLOW) { id } }`, map[string]any{"c": conv.ID}, false},
				{"deleteMessage", `mutation($m: ID!) { deleteMessage(messageId: $m) { id } }`, map[string]any{"m": msg.ID}, true},
				{"closeConversation", `mutation($c: ID!) { closeConversation(conversationId: $c, reason: "done") { id } }`, map[string]any{"c": conv.ID}, false},
				{"reopenConversation", `mutation($c: ID!) { reopenConversation(conversationId: $c) { id } }`, map[string]any{"c": conv.ID}, false},
				{"conversation", `query($c: ID!) { conversation(id: $c) { id } }`, map[string]any{"c": conv.ID}, false},
				{"createConversationForJob", createConversation, map[string]any{"input": map[string]any{
					"jobId": "job-1", "jobTitle": "Title of job-1",
					"client": map[string]any{"id": "ana", "displayName": "Name ana"},
					"worker": map[string]any{"id": "ben", "displayName": "Name ben"},
				}}, false},
			}
			for _, a := range actions {
				t.Run(a.op, func(t *testing.T) {
					logs.reset()
					e.do(t, svc, a.query, a.vars).ok(t, nil)
					lines := logs.lines(t, "audit")
					if len(lines) != 1 {
						t.Fatalf("%d audit lines, want 1: %v", len(lines), lines)
					}
					l := lines[0]
					if l["op"] != a.op || l["user_id"] != "job-service" || l["role"] != "service" || l["conversation_id"] != conv.ID || l["ok"] != true {
						t.Errorf("audit line %v", l)
					}
					if a.message && l["message_id"] == nil {
						t.Errorf("no message_id in %v", l)
					}
					if a.op == "createConversationForJob" && l["job_id"] != "job-1" {
						t.Errorf("no job_id in %v", l)
					}
				})
			}

			t.Run("a refused action", func(t *testing.T) {
				logs.reset()
				e.do(t, svc, apiPostSystem, map[string]any{"c": conv.ID, "text": " ", "key": "k3"}).fails(t, "BAD_USER_INPUT", "messageText")
				lines := logs.lines(t, "audit")
				if len(lines) != 1 || lines[0]["ok"] != false || lines[0]["conversation_id"] != conv.ID || !strings.Contains(lines[0]["error"].(string), "messageText") {
					t.Fatalf("audit lines %v", lines)
				}
			})
			t.Run("users are not audited", func(t *testing.T) {
				logs.reset()
				e.sendText(t, ben, conv.ID, "again")
				if lines := logs.lines(t, "audit"); len(lines) != 0 {
					t.Fatalf("audit lines for a user: %v", lines)
				}
			})
		})
	}
}

// TestSecurityHeadersEveryAnswer: the security headers are on every answer
// of the real server, whatever answers it.
func TestSecurityHeadersEveryAnswer(t *testing.T) {
	e := newEnv(t, "sqlite", nil)
	for _, path := range []string{"/query?query=%7B__typename%7D", "/healthz", "/readyz", "/", "/ws/chat/x/", "/files/nope", "/nowhere", "/metrics"} {
		resp, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s (%d): X-Content-Type-Options %q, Referrer-Policy %q", path, resp.StatusCode,
				resp.Header.Get("X-Content-Type-Options"), resp.Header.Get("Referrer-Policy"))
		}
		if path == "/" && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "'nonce-") {
			t.Errorf("playground CSP %q", resp.Header.Get("Content-Security-Policy"))
		}
	}
}
