package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/jobchat/jobchat/db/dbtest"
)

// scrape reads e's /metrics over HTTP, as Prometheus does.
func scrape(tb testing.TB, e *env) map[string]*dto.MetricFamily {
	tb.Helper()
	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		tb.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		tb.Fatalf("GET /metrics: %s %s", resp.Status, b)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		tb.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the sample of family name whose labels include want (a
// histogram's count), or -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			return m.GetUntyped().GetValue()
		}
	}
	return -1
}

// TestMetricsScrape: after real traffic (a subscriber over WebSocket, sends
// over HTTP, a refused send, a query for a conversation that is not
// there), /metrics has every series the README lists, with values that
// match the traffic, and no label value that is an id.
func TestMetricsScrape(t *testing.T) {
	forEachDialectVars(t, map[string]string{"JOBCHAT_FEED_SWEEP": "50ms", "JOBCHAT_SEND_RATE": "0.001", "JOBCHAT_SEND_BURST": "2",
		"JOBCHAT_WS_MAX_OPERATIONS": "1", "JOBCHAT_WS_MAX_PER_USER": "1"},
		func(t *testing.T, e *env) {
			ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
			conv := e.openJob(t, "job-metrics", "ana", "ben", "")
			ws := e.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + ben})
			sub := ws.subscribe(apiSubscription, map[string]any{"c": conv.ID})
			liveWaitFollowers(t, e, 1)
			var sent []message
			for _, text := range []string{"first", "second"} {
				sent = append(sent, e.sendText(t, ana, conv.ID, text))
			}
			for range sent {
				ws.nextMessage(sub)
			}
			e.do(t, ana, sendMessage, map[string]any{"input": map[string]any{"conversationId": conv.ID, "messageText": "third"}}).
				fails(t, "RATE_LIMITED", "")
			e.do(t, ana, `query($c: ID!) { conversation(id: $c) { id } }`, map[string]any{"c": "no-such-conversation"})
			// The sockets' own bounds: a second operation on Ben's socket,
			// and a second socket for Ben.
			extra := ws.subscribe(apiSubscription, map[string]any{"c": conv.ID})
			if errs := apiOperationError(t, ws, extra); apiCode(errs[0]) != "RATE_LIMITED" {
				t.Fatalf("second operation: %+v", errs)
			}
			if ce := e.apiInitRefused(t, "graphql-transport-ws", nil, map[string]any{"authorization": "Bearer " + ben}); ce.Code != 4430 {
				t.Fatalf("second socket closed with %d", ce.Code)
			}

			// The sweep runs every 50ms; wait, bounded, for one.
			var fams map[string]*dto.MetricFamily
			for deadline := time.Now().Add(10 * time.Second); ; {
				fams = scrape(t, e)
				if value(fams, "jobchat_sweeps_total", nil) > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no sweep counted within 10s")
				}
				time.Sleep(20 * time.Millisecond)
			}

			for _, c := range []struct {
				name   string
				labels map[string]string
				min    float64
				max    float64
			}{
				{"jobchat_open_sockets", map[string]string{"protocol": "graphql-transport-ws"}, 1, 1},
				{"jobchat_sockets_opened_total", map[string]string{"protocol": "graphql-transport-ws"}, 2, 2}, // the refused one too
				{"jobchat_open_sockets", map[string]string{"protocol": "sse"}, 0, 0},
				{"jobchat_slow_clients_cut_off_total", map[string]string{"protocol": "graphql-transport-ws"}, 0, 0},
				{"jobchat_subscriptions", map[string]string{"kind": "messageAdded"}, 1, 1},
				{"jobchat_subscriptions", map[string]string{"kind": "inboxUpdated"}, 0, 0},
				{"jobchat_conversations_with_subscribers", nil, 1, 1},
				{"jobchat_deliveries_total", nil, 2, 2},
				{"jobchat_catchups_total", nil, 1, 100},
				{"jobchat_resyncs_total", nil, 0, 100},
				{"jobchat_sweeps_total", nil, 1, 1e6},
				{"jobchat_sweep_healed_total", nil, 0, 100},
				{"jobchat_sweep_duration_seconds", nil, 1, 1e6},
				{"jobchat_send_duration_seconds", nil, 2, 2},
				{"jobchat_delivery_latency_seconds", nil, 2, 2},
				{"jobchat_published_total", nil, 2, 100},
				{"jobchat_publish_failures_total", map[string]string{"reason": "failed"}, 0, 0},
				{"jobchat_publish_failures_total", map[string]string{"reason": "queue_full"}, 0, 0},
				{"jobchat_publish_queue_depth", nil, 0, 10000},
				{"jobchat_publish_queue_capacity", nil, 10000, 10000},
				{"jobchat_broker_resumes_total", nil, 0, 0},
				{"jobchat_graphql_operations_total", map[string]string{"op": "sendMessage", "type": "mutation", "outcome": "ok"}, 2, 2},
				{"jobchat_graphql_operations_total", map[string]string{"op": "sendMessage", "type": "mutation", "outcome": "RATE_LIMITED"}, 1, 1},
				{"jobchat_graphql_operations_total", map[string]string{"op": "createConversationForJob", "type": "mutation", "outcome": "ok"}, 1, 1},
				{"jobchat_graphql_operations_total", map[string]string{"op": "conversation", "type": "query", "outcome": "NOT_FOUND"}, 1, 1},
				{"jobchat_graphql_operations_total", map[string]string{"op": "messageAdded", "type": "subscription", "outcome": "started"}, 1, 1},
				{"jobchat_graphql_operation_duration_seconds", map[string]string{"type": "mutation"}, 4, 4},
				{"jobchat_rate_limited_total", map[string]string{"source": "graphql"}, 1, 1},
				{"jobchat_rate_limited_total", map[string]string{"source": "http"}, 0, 0},
				{"jobchat_rate_limited_total", map[string]string{"source": "websocket"}, 2, 2},
				{"go_sql_open_connections", map[string]string{"db_name": "jobchat"}, 0, 1000},
				{"go_sql_max_open_connections", map[string]string{"db_name": "jobchat"}, 1, 1000},
				{"go_goroutines", nil, 1, 1e6},
			} {
				if got := value(fams, c.name, c.labels); got < c.min || got > c.max {
					t.Errorf("%s%v = %v, want %v..%v", c.name, c.labels, got, c.min, c.max)
				}
			}

			// No label value may be an id: none of this test's, and nothing
			// shaped like one (a UUID, or a long run of letters and digits).
			ids := []string{conv.ID, "ana", "ben", "job-metrics", "no-such-conversation"}
			for _, m := range sent {
				ids = append(ids, m.ID)
			}
			idShaped := regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-|^[A-Za-z0-9_-]*[0-9][A-Za-z0-9_-]*[A-Za-z][A-Za-z0-9_-]{14,}$`)
			for name, f := range fams {
				for _, m := range f.GetMetric() {
					for _, l := range m.GetLabel() {
						v := l.GetValue()
						if idShaped.MatchString(v) && !(strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_")) {
							t.Errorf("%s{%s=%q}: looks like an id", name, l.GetName(), v)
						}
						for _, id := range ids {
							if strings.Contains(v, id) {
								t.Errorf("%s{%s=%q} carries id %q", name, l.GetName(), v, id)
							}
						}
					}
				}
			}
		})
}

// forEachDialectVars is forEachDialect with settings of its own.
func forEachDialectVars(t *testing.T, vars map[string]string, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			fn(t, newEnv(t, dialect, vars))
		})
	}
}
