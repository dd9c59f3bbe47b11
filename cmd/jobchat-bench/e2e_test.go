package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serverBin builds the jobchat server once per test binary, or takes
// $JOBCHAT_BENCH_SERVER_BIN. The server is built without -race: the tests
// check the bench, and a race-instrumented server would only slow it down.
func serverBin(tb testing.TB) string {
	tb.Helper()
	if bin := os.Getenv("JOBCHAT_BENCH_SERVER_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(tb.TempDir(), "jobchat")
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := buildServer(ctx, bin, &out); err != nil {
		tb.Fatalf("build server: %v", err)
	}
	return bin
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestTinyScenarioEndToEnd runs the bench against a real spawned server: 3
// conversations × 2 subscribers, 30 messages, over HTTP and over WebSocket;
// every subscriber must see every message exactly once.
func TestTinyScenarioEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a server")
	}
	bin := serverBin(t)
	for _, via := range []string{"http", "ws"} {
		t.Run(via, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			jsonPath := filepath.Join(t.TempDir(), "report.json")
			var stdout bytes.Buffer
			args := []string{
				"-spawn", "-server-bin", bin,
				"-conversations", "3", "-subscribers", "6",
				"-rate", "30", "-duration", "1s", "-senders", "4", "-send-via", via,
				"-settle", "200ms", "-drain", "3s", "-progress=false",
				"-json", jsonPath,
			}
			start := time.Now()
			if err := bench(ctx, args, func(string) string { return "" }, &stdout, tbWriter{t}); err != nil {
				t.Fatalf("bench: %v", err)
			}
			t.Logf("ran in %s", time.Since(start).Round(time.Millisecond))
			b, err := os.ReadFile(jsonPath)
			if err != nil {
				t.Fatal(err)
			}
			var r report
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatalf("decode report: %v", err)
			}
			if r.Connect.Connected != 6 || r.Connect.Failed != 0 {
				t.Fatalf("connected %d, failed %d; want 6, 0", r.Connect.Connected, r.Connect.Failed)
			}
			if len(r.Steps) != 1 {
				t.Fatalf("%d steps, want 1", len(r.Steps))
			}
			s := r.Steps[0]
			if s.Scheduled != 30 || s.Sent != 30 || s.OK != 30 || s.Errors != 0 || s.Skipped != 0 {
				t.Fatalf("scheduled %d sent %d ok %d errors %d skipped %d; want 30 sent and answered", s.Scheduled, s.Sent, s.OK, s.Errors, s.Skipped)
			}
			// Each message goes to one conversation, which has 2 subscribers.
			if s.ExpectedDeliveries != 60 || s.Deliveries != 60 || s.Lost != 0 || s.Dups != 0 || s.OutOfOrder != 0 {
				t.Fatalf("deliveries %d of %d, lost %d, dups %d, out of order %d; want 60 of 60 exactly once in order",
					s.Deliveries, s.ExpectedDeliveries, s.Lost, s.Dups, s.OutOfOrder)
			}
			if s.E2E.Count != 60 || s.E2E.P50Ms <= 0 || s.E2E.MaxMs < s.E2E.P99Ms || s.SendLatency.Count != 30 {
				t.Fatalf("latencies not measured: e2e %+v, send %+v", s.E2E, s.SendLatency)
			}
			if r.Server.PID <= 0 || r.Memory.RSSAfterBytes <= 0 || s.ServerCPUSeconds < 0 {
				t.Fatalf("server not measured: pid %d, rss %d", r.Server.PID, r.Memory.RSSAfterBytes)
			}
			if r.SubscribersDown != 0 || r.SubscriberErrors != 0 || len(r.Errors) != 0 {
				t.Fatalf("errors: down %d, subscription errors %d, %v", r.SubscribersDown, r.SubscriberErrors, r.Errors)
			}
			if md := stdout.String(); !strings.Contains(md, "| 1 | 30 → 30 | 30 | 0 |") {
				t.Fatalf("markdown report lacks the step row:\n%s", md)
			}
		})
	}
}

func TestOptionsPresetsAndCaps(t *testing.T) {
	env := func(string) string { return "" }
	o, err := parseOptions([]string{"-spawn", "-scenario", "fanout", "-rate", "300"}, env, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Conversations != 100 || o.Subscribers != 1000 || o.Rate != 300 {
		t.Fatalf("fanout preset with -rate 300: %d conversations, %d subscribers, rate %v", o.Conversations, o.Subscribers, o.Rate)
	}
	for _, bad := range [][]string{
		{"-spawn", "-subscribers", "1000000"},
		{"-spawn", "-duration", "1h"},
		{"-spawn", "-rate", "1e9"},
		{"-spawn", "-scenario", "nope"},
		{"-url", "http://127.0.0.1:1"},           // no secret to sign tokens
		{"-spawn", "-url", "http://127.0.0.1:1"}, // both
		{"-spawn", "-fields", "seq } hack { x"},
	} {
		if _, err := parseOptions(bad, env, &bytes.Buffer{}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
