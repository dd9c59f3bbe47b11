package metrics

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestProtocolOf(t *testing.T) {
	for _, c := range []struct {
		path, offered string
		want          string
	}{
		{"/query", "graphql-transport-ws", "graphql-transport-ws"},
		{"/query", "graphql-ws", "graphql-ws"},
		{"/query", "graphql-ws, graphql-transport-ws", "graphql-transport-ws"},
		{"/query", "", "other"},
		{"/query", "mqtt", "other"},
		{"/ws/chat/c1/", "", "legacy"},
	} {
		r := httptest.NewRequest(http.MethodGet, c.path, nil)
		if c.offered != "" {
			r.Header.Set("Sec-WebSocket-Protocol", c.offered)
		}
		if got := protoNames[protocolOf(r)]; got != c.want {
			t.Errorf("%s offering %q: %s, want %s", c.path, c.offered, got, c.want)
		}
	}
}

// TestCountedConn: a socket is uncounted once however often it is closed,
// and a 1008 close frame counts one cut-off, other close frames none.
func TestCountedConn(t *testing.T) {
	for _, c := range []struct {
		name  string
		frame []byte
		cut   float64
	}{
		{"1008 slow consumer", []byte{0x88, 4, 0x03, 0xF0, 'x', 'y'}, 1},
		{"1001 going away", []byte{0x88, 2, 0x03, 0xE9}, 0},
		{"text frame", []byte{0x81, 4, 0x03, 0xF0, '{', '}'}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := New(Config{})
			server, client := net.Pipe()
			go func() { _, _ = io.Copy(io.Discard, client) }()
			m.sockets.open[protoLegacy].Add(1)
			conn := &countedConn{Conn: server, counts: m.sockets, proto: protoLegacy}
			if _, err := conn.Write(c.frame); err != nil {
				t.Fatal(err)
			}
			_ = conn.Close()
			_ = conn.Close()
			_ = client.Close()
			if got := m.sockets.open[protoLegacy].Load(); got != 0 {
				t.Errorf("open %d after close, want 0", got)
			}
			if got := float64(m.sockets.cutOff[protoLegacy].Load()); got != c.cut {
				t.Errorf("cut-offs %v, want %v", got, c.cut)
			}
		})
	}
}

// TestCountedConnWriteTimeout: a write that hits its deadline is a client
// too slow to read.
func TestCountedConnWriteTimeout(t *testing.T) {
	m := New(Config{})
	server, client := net.Pipe() // nobody reads client: writes block
	defer client.Close()
	conn := &countedConn{Conn: server, counts: m.sockets, proto: protoTransportWS}
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := conn.Write([]byte{0x81, 1, 'x'}); err == nil {
		t.Fatal("write to a peer that does not read succeeded")
	}
	if got := m.sockets.cutOff[protoTransportWS].Load(); got != 1 {
		t.Fatalf("cut-offs %d, want 1", got)
	}
	_ = conn.Close()
}

// TestEngineSeries: the engine's snapshot becomes its series, labelled by
// bounded values only.
func TestEngineSeries(t *testing.T) {
	m := New(Config{Engine: func() Engine {
		return Engine{
			SubscriptionsByKind: map[string]int{"messageAdded": 3, "conversationActivity": 2, "inboxUpdated": 1},
			Conversations:       2, Delivered: 40, Resyncs: 1, CatchUps: 4, Sweeps: 9, Healed: 1,
			Queued: 5, QueueSize: 10000, Published: 50, PublishFailed: 2, QueueDropped: 1, Resumes: 1,
		}
	}})
	m.Send(3 * time.Millisecond)
	m.Delivery(time.Millisecond)
	m.Sweep(2 * time.Millisecond)
	want := `
# HELP jobchat_publish_failures_total Broadcasts lost: refused or timed out by the broker (failed), or dropped by the full queue (queue_full). The sweep heals them.
# TYPE jobchat_publish_failures_total counter
jobchat_publish_failures_total{reason="failed"} 2
jobchat_publish_failures_total{reason="queue_full"} 1
# HELP jobchat_subscriptions Active subscriptions by kind.
# TYPE jobchat_subscriptions gauge
jobchat_subscriptions{kind="conversationActivity"} 2
jobchat_subscriptions{kind="inboxUpdated"} 1
jobchat_subscriptions{kind="messageAdded"} 3
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "jobchat_publish_failures_total", "jobchat_subscriptions"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.send); n != 1 {
		t.Fatalf("send histogram: %d series", n)
	}
	if problems, err := testutil.GatherAndLint(m.Registry()); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
}

func TestBoundedCode(t *testing.T) {
	for code, want := range map[string]string{
		"RATE_LIMITED": "RATE_LIMITED", "NOT_FOUND": "NOT_FOUND", "": "error", "conversation 42 is gone": "error",
	} {
		if got := boundedCode(code); got != want {
			t.Errorf("boundedCode(%q) = %q, want %q", code, got, want)
		}
	}
}

// TestDashboardSeries: every jobchat series the Grafana dashboard queries
// exists, so that a rename cannot leave an empty panel behind.
func TestDashboardSeries(t *testing.T) {
	b, err := os.ReadFile("../../deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	m := New(Config{Engine: func() Engine { return Engine{SubscriptionsByKind: map[string]int{"messageAdded": 0}} }})
	m.ops.WithLabelValues("sendMessage", "mutation", "ok").Inc()
	m.opDuration.WithLabelValues("mutation").Observe(0.001)
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range fams {
		have[f.GetName()] = true
	}
	used := regexp.MustCompile(`jobchat_[a-z_]+`).FindAllString(string(b), -1)
	if len(used) == 0 {
		t.Fatal("the dashboard queries no jobchat series")
	}
	for _, name := range used {
		base := strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count")
		if !have[base] {
			t.Errorf("the dashboard queries %s, which does not exist", name)
		}
	}
}
