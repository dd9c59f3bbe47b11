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

// TestTinyLiveScenario runs the live scenario against a real spawned
// server: 6 users with 4 sockets each (several devices), three
// subscriptions a socket, 15 typing bursts. Every typing event must reach
// every socket of the other participant and none of the typer's own, every
// message must arrive once with its inbox event, and the server must not
// have grown goroutines with the subscriptions.
func TestTinyLiveScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a server")
	}
	bin := serverBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	jsonPath := filepath.Join(t.TempDir(), "report.json")
	var stdout bytes.Buffer
	args := []string{
		"-spawn", "-server-bin", bin, "-live",
		"-conversations", "3", "-subscribers", "24",
		"-typing-rate", "10", "-duration", "1500ms", "-senders", "4",
		"-typing-min", "100ms", "-typing-max", "300ms", "-typing-renew", "100ms",
		"-settle", "300ms", "-progress=false", "-json", jsonPath,
	}
	if err := bench(ctx, args, func(string) string { return "" }, &stdout, tbWriter{t}); err != nil {
		t.Fatalf("bench: %v\n%s", err, stdout.String())
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("decode report: %v", err)
	}
	r := rep.Live
	if rep.Connect.Connected != 24 || r == nil || r.Users != 6 || r.Sockets != 24 || r.SubscribeFailed != 0 {
		t.Fatalf("connected %d, live %+v", rep.Connect.Connected, r)
	}
	if !r.Pushed || r.GoroutinesPerSocket < 0.9 || r.GoroutinesPerSocket > maxGoroutinesPerSocket {
		t.Fatalf("goroutines per socket %.2f with 3 subscriptions, pushed %v: %v", r.GoroutinesPerSocket, r.Pushed, r.PushedFailures)
	}
	if r.Scheduled != 15 || r.BurstsStarted+r.BurstsSkipped != 15 || r.BurstsStarted == 0 {
		t.Fatalf("bursts scheduled %d, started %d, skipped %d", r.Scheduled, r.BurstsStarted, r.BurstsSkipped)
	}
	if r.SetTypingErrors != 0 || r.MessageErrors != 0 || r.SetTypingOK < 2*r.BurstsStarted-r.MessagesOK {
		t.Fatalf("setTyping ok %d, errors %d; messages ok %d, errors %d", r.SetTypingOK, r.SetTypingErrors, r.MessagesOK, r.MessageErrors)
	}
	// Each burst is one start and one stop at each of the other
	// participant's 4 sockets.
	for name, c := range map[string]countCheck{"started": r.TypingStarted, "stopped": r.TypingStopped} {
		if c.Expected != 4*r.BurstsStarted || c.Lost != 0 || c.Received < c.Expected {
			t.Fatalf("typing %s: %+v for %d bursts", name, c, r.BurstsStarted)
		}
	}
	// Each message goes to the 8 sockets of its conversation, once as
	// messageAdded and once as an inbox event.
	for name, c := range map[string]countCheck{"inbox": r.Inbox, "messages": r.Messages} {
		if c.Expected != 8*r.MessagesOK || c.Lost != 0 || c.Extra != 0 {
			t.Fatalf("%s: %+v for %d messages", name, c, r.MessagesOK)
		}
	}
	if r.OwnTyping != 0 || r.TypingOutOfOrder != 0 || r.ForeignTyping != 0 || r.Unexpected != 0 || r.MessageDups != 0 {
		t.Fatalf("violations: own %d, out of order %d, foreign %d, unexpected %d, dups %d", r.OwnTyping, r.TypingOutOfOrder, r.ForeignTyping, r.Unexpected, r.MessageDups)
	}
	if !r.Pass || r.TypingLatency.Count != uint64(r.TypingStarted.Received) || r.CPUMicrosPerTypingEvent <= 0 || r.HeapInuseThreeSubs <= 0 {
		t.Fatalf("pass %v (%v), typing latencies %d, CPU µs per typing event %.1f, heap %d",
			r.Pass, r.FailReasons, r.TypingLatency.Count, r.CPUMicrosPerTypingEvent, r.HeapInuseThreeSubs)
	}
	if rep.SubscribersDown != 0 || rep.SubscriberErrors != 0 || len(rep.Errors) != 0 {
		t.Fatalf("errors: down %d, subscription errors %d, %v", rep.SubscribersDown, rep.SubscriberErrors, rep.Errors)
	}
	if md := stdout.String(); !strings.Contains(md, "server CPU µs per typing event delivered") || !strings.Contains(md, "| pass | yes |") {
		t.Fatalf("markdown report lacks the live tables:\n%s", md)
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
	o, err = parseOptions([]string{"-spawn", "-scenario", "live"}, env, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !o.Live || o.Conversations != 1000 || o.Subscribers != 2000 || o.typers() != 2000 || o.Rate != 0 || o.TypingRate != 100 || o.Drain != 10*time.Second {
		t.Fatalf("live preset: %+v", o)
	}
	// -live on a custom run: no -rate sends unless asked, and then refused.
	if o, err = parseOptions([]string{"-spawn", "-live"}, env, &bytes.Buffer{}); err != nil || o.Rate != 0 || o.TypingRate != 0.3 {
		t.Fatalf("-live custom: rate %v, typing rate %v (want 6 users / 20 s), %v", o.Rate, o.TypingRate, err)
	}
	for _, bad := range [][]string{
		{"-spawn", "-live", "-rate", "10"},
		{"-spawn", "-live", "-send-via", "ws"},
		{"-spawn", "-live", "-conversation-ids", "a,b"},
		{"-spawn", "-scenario", "live", "-typing-rate", "300"}, // 2000 users' bursts would overlap
		{"-spawn", "-live", "-typing-rate", "1e6"},
		{"-spawn", "-live", "-typing-min", "2s", "-typing-max", "1s"},
		{"-spawn", "-live", "-typing-send-frac", "2"},
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
