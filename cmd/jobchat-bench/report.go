package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// report is everything a run measured; the JSON report is this struct.
type report struct {
	Scenario         string           `json:"scenario"`
	RunTag           string           `json:"run_tag"`
	StartedAt        time.Time        `json:"started_at"`
	FinishedAt       time.Time        `json:"finished_at"`
	Options          options          `json:"options"`
	Host             hostInfo         `json:"host"`
	Server           serverInfo       `json:"server"`
	Connect          connectResult    `json:"connect"`
	Memory           memoryResult     `json:"memory"`
	Idle             *idleResult      `json:"idle,omitempty"`
	Live             *liveResult      `json:"live,omitempty"`
	Steps            []stepResult     `json:"steps,omitempty"`
	MaxSustainedRate float64          `json:"max_sustained_rate,omitempty"`
	SubscriberErrors int64            `json:"subscriber_errors"`
	SubscribersDown  int64            `json:"subscribers_down"`
	Errors           map[string]int64 `json:"errors,omitempty"`
}

type hostInfo struct {
	GoVersion  string `json:"go_version"`
	NumCPU     int    `json:"num_cpu"`
	NofileSoft uint64 `json:"nofile_soft"`
	NofileHard uint64 `json:"nofile_hard"`
}

type serverInfo struct {
	URL            string `json:"url"`
	PID            int    `json:"pid,omitempty"`
	Spawned        bool   `json:"spawned"`
	DB             string `json:"db"`
	Redis          bool   `json:"redis"`
	PprofAvailable bool   `json:"pprof_available"`
}

type connectResult struct {
	Requested int     `json:"requested"`
	Connected int     `json:"connected"`
	Failed    int     `json:"failed"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
	SourceIPs int     `json:"source_ips"`

	connected atomic.Int64 // live, for the progress line
}

// memoryResult compares the server before and after the sockets subscribed.
// -1 means not available (no pprof endpoint).
type memoryResult struct {
	RSSBeforeBytes      int64   `json:"rss_before_bytes"`
	RSSAfterBytes       int64   `json:"rss_after_bytes"`
	RSSPerSocketBytes   int64   `json:"rss_per_socket_bytes"`
	HeapInuseBefore     int64   `json:"heap_inuse_before_bytes"`
	HeapInuseAfter      int64   `json:"heap_inuse_after_bytes"`
	HeapPerSocketBytes  int64   `json:"heap_per_socket_bytes"`
	GoroutinesBefore    int64   `json:"goroutines_before"`
	GoroutinesAfter     int64   `json:"goroutines_after"`
	GoroutinesPerSocket float64 `json:"goroutines_per_socket"`
	// BenchRSSBytes is the bench's own RSS with every socket open.
	BenchRSSBytes int64 `json:"bench_rss_bytes"`
}

type idleResult struct {
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUPercent float64 `json:"cpu_percent"`
	RSSBytes   int64   `json:"rss_bytes"`
}

// liveResult is the live scenario's: memory and goroutines with three
// subscriptions per socket, and the typing phase. Memory with one
// subscription is in memoryResult. -1 means not available.
type liveResult struct {
	Users                  int     `json:"users"`
	Sockets                int     `json:"sockets"`
	SubscriptionsPerSocket int     `json:"subscriptions_per_socket"`
	SubscribeFailed        int     `json:"subscribe_failed"`
	SubscribeSeconds       float64 `json:"subscribe_seconds"`

	RSSThreeSubsBytes     int64    `json:"rss_three_subs_bytes"`
	RSSPerSocketBytes     int64    `json:"rss_per_socket_bytes"`
	RSSPerAddedSubBytes   int64    `json:"rss_per_added_subscription_bytes"`
	HeapInuseThreeSubs    int64    `json:"heap_inuse_three_subs_bytes"`
	HeapPerSocketBytes    int64    `json:"heap_per_socket_bytes"`
	HeapPerAddedSubBytes  int64    `json:"heap_per_added_subscription_bytes"`
	GoroutinesThreeSubs   int64    `json:"goroutines_three_subs"`
	GoroutinesPerSocket   float64  `json:"goroutines_per_socket"`
	GoroutinesPerAddedSub float64  `json:"goroutines_per_added_subscription"`
	Pushed                bool     `json:"pushed"`
	PushedFailures        []string `json:"pushed_failures,omitempty"`

	TypingRate      float64        `json:"typing_rate"`
	DurationSeconds float64        `json:"duration_seconds"`
	Scheduled       int64          `json:"bursts_scheduled"`
	BurstsStarted   int64          `json:"bursts_started"`
	BurstsSkipped   int64          `json:"bursts_skipped"`
	SetTypingCalls  int64          `json:"set_typing_calls"`
	SetTypingOK     int64          `json:"set_typing_ok"`
	SetTypingErrors int64          `json:"set_typing_errors"`
	SetTypingLate   int64          `json:"set_typing_late"`
	SetTyping       latencySummary `json:"set_typing_latency"`
	MessagesSent    int64          `json:"messages_sent"`
	MessagesOK      int64          `json:"messages_ok"`
	MessageErrors   int64          `json:"message_errors"`
	MessageSend     latencySummary `json:"message_send_latency"`

	// Received against expected, socket by socket.
	TypingStarted countCheck `json:"typing_started"`
	TypingStopped countCheck `json:"typing_stopped"`
	Inbox         countCheck `json:"inbox_message_added"`
	Messages      countCheck `json:"messages"`
	MessageDups   int64      `json:"message_dups"`
	// TypingLatency: a burst's start due → TYPING_STARTED at each of the
	// other participant's sockets.
	TypingLatency latencySummary `json:"typing_latency"`
	MessageE2E    latencySummary `json:"message_e2e_latency"`

	OwnTyping        int64 `json:"own_typing"`
	TypingOutOfOrder int64 `json:"typing_out_of_order"`
	ForeignTyping    int64 `json:"foreign_typing"`
	OtherInbox       int64 `json:"other_inbox_events"`
	OtherActivity    int64 `json:"other_activity_events"`
	Unexpected       int64 `json:"unexpected_frames"`

	// The window is the typing phase and its drain.
	WindowSeconds           float64 `json:"window_seconds"`
	TypingEventsPerSecond   float64 `json:"typing_events_per_second"`
	DeliveriesPerSecond     float64 `json:"deliveries_per_second"`
	ServerCPUSeconds        float64 `json:"server_cpu_seconds"`
	ServerCPUPercent        float64 `json:"server_cpu_percent"`
	CPUMicrosPerTypingEvent float64 `json:"server_cpu_us_per_typing_event"`
	CPUMicrosPerDelivery    float64 `json:"server_cpu_us_per_delivery"`
	CPUMicrosPerCall        float64 `json:"server_cpu_us_per_call"`
	BenchCPUPercent         float64 `json:"bench_cpu_percent"`
	OtherCPUPercent         float64 `json:"other_cpu_percent"`
	ServerRSSPeakBytes      int64   `json:"server_rss_peak_bytes"`

	GoroutinesAfterLoad          int64   `json:"goroutines_after_load"`
	GoroutinesPerSocketAfterLoad float64 `json:"goroutines_per_socket_after_load"`

	Pass        bool     `json:"pass"`
	FailReasons []string `json:"fail_reasons,omitempty"`
}

// judge passes a typing phase that lost nothing, broke no rule and had no
// errors.
func (r *liveResult) judge() {
	var why []string
	add := func(n int64, what string) {
		if n > 0 {
			why = append(why, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(r.TypingStarted.Lost+r.TypingStopped.Lost, "typing events lost")
	add(r.Inbox.Lost, "inbox events lost")
	add(r.Messages.Lost, "messages lost")
	add(r.MessageDups, "messages duplicated")
	add(r.OwnTyping, "own typing events delivered")
	add(r.TypingOutOfOrder, "typing events out of order")
	add(r.ForeignTyping, "typing events by strangers")
	add(r.SetTypingErrors+r.MessageErrors, "call errors")
	add(r.BurstsSkipped, "bursts skipped")
	add(int64(r.SubscribeFailed), "subscriptions failed")
	why = append(why, r.PushedFailures...)
	r.FailReasons = why
	r.Pass = len(why) == 0
}

type stepResult struct {
	Step                       int            `json:"step"`
	TargetRate                 float64        `json:"target_rate"`
	AchievedRate               float64        `json:"achieved_rate"`
	DurationSeconds            float64        `json:"duration_seconds"`
	Scheduled                  int64          `json:"scheduled"`
	Sent                       int64          `json:"sent"`
	OK                         int64          `json:"ok"`
	Errors                     int64          `json:"errors"`
	Late                       int64          `json:"late"`
	Skipped                    int64          `json:"skipped"`
	SendLatency                latencySummary `json:"send_latency"`
	SendService                latencySummary `json:"send_service_time"`
	E2E                        latencySummary `json:"e2e_latency"`
	E2EService                 latencySummary `json:"e2e_from_start"`
	Deliveries                 int64          `json:"deliveries"`
	ExpectedDeliveries         int64          `json:"expected_deliveries"`
	DeliveriesPerSecond        float64        `json:"deliveries_per_second"`
	Lost                       int64          `json:"lost"`
	Dups                       int64          `json:"dups"`
	OutOfOrder                 int64          `json:"out_of_order"`
	ServerCPUSeconds           float64        `json:"server_cpu_seconds"`
	ServerCPUPercent           float64        `json:"server_cpu_percent"`
	ServerCPUMicrosPerDelivery float64        `json:"server_cpu_us_per_delivery"`
	ServerCPUMicrosPerSend     float64        `json:"server_cpu_us_per_send"`
	BenchCPUPercent            float64        `json:"bench_cpu_percent"`
	// OtherCPUPercent is the machine's busy CPU minus the server's and the
	// bench's: other processes (and the database, when it runs here).
	OtherCPUPercent    float64  `json:"other_cpu_percent"`
	ServerRSSBytes     int64    `json:"server_rss_bytes"`
	ServerRSSPeakBytes int64    `json:"server_rss_peak_bytes"`
	Goroutines         int64    `json:"goroutines"`
	Pass               bool     `json:"pass"`
	FailReasons        []string `json:"fail_reasons,omitempty"`
}

// judge decides whether the step sustained its rate, for -find-max and for
// the reader: every send made on time (within -max-late-frac), answered, and
// delivered once to every subscriber within -max-p99.
func (r *stepResult) judge(o options) {
	var why []string
	if r.Lost > 0 {
		why = append(why, fmt.Sprintf("%d lost", r.Lost))
	}
	if r.Dups > 0 {
		why = append(why, fmt.Sprintf("%d duplicated", r.Dups))
	}
	if r.Errors > 0 {
		why = append(why, fmt.Sprintf("%d send errors", r.Errors))
	}
	if r.Skipped > 0 {
		why = append(why, fmt.Sprintf("%d sends skipped", r.Skipped))
	}
	if r.Sent > 0 && float64(r.Late)/float64(r.Sent) > o.MaxLateFrac {
		why = append(why, fmt.Sprintf("%.1f%% sends late", 100*float64(r.Late)/float64(r.Sent)))
	}
	if p99 := time.Duration(r.E2E.P99Ms * 1e6); r.E2E.Count > 0 && p99 > o.MaxP99 {
		why = append(why, fmt.Sprintf("e2e p99 %.1fms > %s", r.E2E.P99Ms, o.MaxP99))
	}
	r.FailReasons = why
	r.Pass = len(why) == 0
}

func writeReports(r *report, jsonPath string, stdout io.Writer) error {
	if jsonPath != "" {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return fmt.Errorf("encode JSON report: %w", err)
		}
		if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write JSON report: %w", err)
		}
	}
	_, err := io.WriteString(stdout, markdown(r))
	return err
}

func markdown(r *report) string {
	var b strings.Builder
	o := r.Options
	fmt.Fprintf(&b, "## jobchat-bench: %s\n\n", r.Scenario)
	how := "at " + r.Server.URL
	if r.Server.Spawned {
		how = "spawned"
	}
	fmt.Fprintf(&b, "Server %s, pid %s, %s%s; %d conversations, %d subscriber sockets; sends over %s from %d senders; %d CPUs, %s.\n\n",
		how, pidStr(r.Server.PID), r.Server.DB, map[bool]string{true: " + Redis", false: ""}[r.Server.Redis],
		o.Conversations, o.Subscribers, o.SendVia, o.Senders, r.Host.NumCPU, r.Host.GoVersion)

	c, m := &r.Connect, r.Memory
	b.WriteString("| sockets | value |\n| --- | --- |\n")
	fmt.Fprintf(&b, "| connected / requested (failed) | %d / %d (%d) |\n", c.Connected, c.Requested, c.Failed)
	fmt.Fprintf(&b, "| connect time | %.1f s (%.0f/s over %d source IPs) |\n", c.Seconds, c.PerSecond, c.SourceIPs)
	fmt.Fprintf(&b, "| server RSS before → after subscribing | %s → %s |\n", mibOrNA(m.RSSBeforeBytes), mibOrNA(m.RSSAfterBytes))
	fmt.Fprintf(&b, "| server RSS per subscribed socket | %s |\n", kibOrNA(m.RSSPerSocketBytes, c.Connected > 0 && m.RSSAfterBytes > 0))
	fmt.Fprintf(&b, "| Go heap in use before → after | %s → %s (%s per socket) |\n", mibOrNA(m.HeapInuseBefore), mibOrNA(m.HeapInuseAfter), kibOrNA(m.HeapPerSocketBytes, m.HeapInuseAfter > 0))
	if m.GoroutinesAfter >= 0 && m.GoroutinesBefore >= 0 {
		fmt.Fprintf(&b, "| goroutines before → after | %d → %d (%.2f per socket) |\n", m.GoroutinesBefore, m.GoroutinesAfter, m.GoroutinesPerSocket)
	} else {
		b.WriteString("| goroutines | n/a (no /debug/pprof) |\n")
	}
	fmt.Fprintf(&b, "| bench RSS with the sockets open | %s |\n", mibOrNA(m.BenchRSSBytes))
	if r.Idle != nil {
		fmt.Fprintf(&b, "| server CPU at rest | %.2f%% of a core over %.0f s (%.3f CPU s) |\n", r.Idle.CPUPercent, r.Idle.Seconds, r.Idle.CPUSeconds)
		if n := int64(r.Connect.Connected); n > 0 && m.RSSBeforeBytes > 0 && r.Idle.RSSBytes > 0 {
			fmt.Fprintf(&b, "| server RSS per socket after the rest | %.1f KiB |\n", float64(r.Idle.RSSBytes-m.RSSBeforeBytes)/float64(n)/1024)
		}
	}
	b.WriteString("\n")

	if len(r.Steps) > 0 {
		b.WriteString("| step | rate/s target → sent | ok | err | late | skipped | send p50 / p99 ms | e2e p50 / p90 / p99 / max ms | deliveries/s | lost | dup | server CPU | CPU µs / delivery | bench CPU | other CPU | RSS peak | goroutines | pass |\n")
		b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
		for _, s := range r.Steps {
			g := "n/a"
			if s.Goroutines >= 0 {
				g = fmt.Sprint(s.Goroutines)
			}
			pass := "yes"
			if !s.Pass {
				pass = "no: " + strings.Join(s.FailReasons, ", ")
			}
			fmt.Fprintf(&b, "| %d | %.0f → %.0f | %d | %d | %d | %d | %.2f / %.2f | %.2f / %.2f / %.2f / %.2f | %.0f | %d | %d | %.0f%% | %.1f | %.0f%% | %.0f%% | %s | %s | %s |\n",
				s.Step, s.TargetRate, s.AchievedRate, s.OK, s.Errors, s.Late, s.Skipped,
				s.SendLatency.P50Ms, s.SendLatency.P99Ms,
				s.E2E.P50Ms, s.E2E.P90Ms, s.E2E.P99Ms, s.E2E.MaxMs,
				s.DeliveriesPerSecond, s.Lost, s.Dups, s.ServerCPUPercent, s.ServerCPUMicrosPerDelivery, s.BenchCPUPercent, s.OtherCPUPercent,
				mibOrNA(s.ServerRSSPeakBytes), g, pass)
		}
		b.WriteString("\n")
		if o.FindMax {
			if r.MaxSustainedRate > 0 {
				fmt.Fprintf(&b, "Highest rate sustained: **%.0f sends/s** (e2e p99 ≤ %s, no loss, dups, errors or skips, ≤ %.1f%% late).\n\n", r.MaxSustainedRate, o.MaxP99, 100*o.MaxLateFrac)
			} else {
				b.WriteString("No step passed: lower -rate.\n\n")
			}
		}
	}
	if r.Live != nil {
		liveMarkdown(&b, r)
	}
	if len(r.Errors) > 0 || r.SubscribersDown > 0 || r.SubscriberErrors > 0 {
		fmt.Fprintf(&b, "Subscribers down: %d, subscription errors: %d.\n\n", r.SubscribersDown, r.SubscriberErrors)
		if len(r.Errors) > 0 {
			b.WriteString("| error | count |\n| --- | --- |\n")
			keys := make([]string, 0, len(r.Errors))
			for k := range r.Errors {
				keys = append(keys, k)
			}
			sort.Slice(keys, func(i, j int) bool { return r.Errors[keys[i]] > r.Errors[keys[j]] })
			for _, k := range keys {
				fmt.Fprintf(&b, "| %s | %d |\n", strings.ReplaceAll(k, "|", "\\|"), r.Errors[k])
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func pidStr(pid int) string {
	if pid <= 0 {
		return "unknown (no /proc figures)"
	}
	return fmt.Sprint(pid)
}

func mibOrNA(n int64) string {
	if n <= 0 {
		return "n/a"
	}
	return mib(n)
}

func kibOrNA(n int64, ok bool) string {
	if !ok {
		return "n/a"
	}
	return fmt.Sprintf("%.1f KiB", float64(n)/1024)
}

func liveMarkdown(b *strings.Builder, rep *report) {
	r, m := rep.Live, rep.Memory
	who := "socket"
	if r.Users == r.Sockets {
		who = "user (one socket each)"
	}
	fmt.Fprintf(b, "Live: %d users, %d sockets, each with messageAdded, inboxUpdated and conversationActivity.\n\n", r.Users, r.Sockets)
	b.WriteString("| 3 subscriptions per socket | value |\n| --- | --- |\n")
	fmt.Fprintf(b, "| server RSS per %s, 1 → 3 subscriptions | %s → **%s** |\n", who,
		kibOrNA(m.RSSPerSocketBytes, m.RSSAfterBytes > 0), kibOrNA(r.RSSPerSocketBytes, r.RSSThreeSubsBytes > 0))
	fmt.Fprintf(b, "| Go heap per %s after GC, 1 → 3 subscriptions | %s → **%s** |\n", who,
		kibOrNA(m.HeapPerSocketBytes, m.HeapInuseAfter > 0), kibOrNA(r.HeapPerSocketBytes, r.HeapInuseThreeSubs > 0))
	fmt.Fprintf(b, "| each added subscription | RSS %s, heap %s |\n",
		kibOrNA(r.RSSPerAddedSubBytes, r.RSSThreeSubsBytes > 0), kibOrNA(r.HeapPerAddedSubBytes, r.HeapInuseThreeSubs > 0))
	if r.GoroutinesPerSocket >= 0 {
		pushed := "yes"
		if !r.Pushed {
			pushed = "**NO: " + strings.Join(r.PushedFailures, "; ") + "**"
		}
		fmt.Fprintf(b, "| goroutines per socket, 1 → 3 subscriptions (per added subscription) | %.2f → **%.2f** (%.3f) |\n", m.GoroutinesPerSocket, r.GoroutinesPerSocket, r.GoroutinesPerAddedSub)
		fmt.Fprintf(b, "| pushed (≤ %.1f goroutines per socket, none per subscription) | %s |\n", maxGoroutinesPerSocket, pushed)
	} else {
		b.WriteString("| goroutines | n/a (no /debug/pprof) |\n")
	}
	fmt.Fprintf(b, "| subscriptions 2 and 3 in place on every socket (failed) | %.2f s (%d) |\n", r.SubscribeSeconds, r.SubscribeFailed)
	b.WriteString("\n")
	if r.Scheduled == 0 {
		return
	}
	b.WriteString("| typing phase | value |\n| --- | --- |\n")
	fmt.Fprintf(b, "| bursts/s target; scheduled → started (skipped) | %.0f; %d → %d (%d) |\n", r.TypingRate, r.Scheduled, r.BurstsStarted, r.BurstsSkipped)
	fmt.Fprintf(b, "| setTyping calls ok / err / late; p50 / p99 ms | %d / %d / %d; %.2f / %.2f |\n", r.SetTypingOK, r.SetTypingErrors, r.SetTypingLate, r.SetTyping.P50Ms, r.SetTyping.P99Ms)
	fmt.Fprintf(b, "| messages ending a burst: ok / err; send p50 / p99 ms | %d / %d; %.2f / %.2f |\n", r.MessagesOK, r.MessageErrors, r.MessageSend.P50Ms, r.MessageSend.P99Ms)
	row := func(name string, c countCheck) {
		fmt.Fprintf(b, "| %s received / expected (lost, extra) | %d / %d (%d, %d) |\n", name, c.Received, c.Expected, c.Lost, c.Extra)
	}
	row("TYPING_STARTED", r.TypingStarted)
	row("TYPING_STOPPED", r.TypingStopped)
	row("inbox MESSAGE_ADDED", r.Inbox)
	row("messageAdded", r.Messages)
	fmt.Fprintf(b, "| typer's own typing received / out of order / by strangers | %d / %d / %d |\n", r.OwnTyping, r.TypingOutOfOrder, r.ForeignTyping)
	if r.OtherInbox+r.OtherActivity+r.Unexpected > 0 {
		fmt.Fprintf(b, "| other inbox / other activity / unexpected frames | %d / %d / %d |\n", r.OtherInbox, r.OtherActivity, r.Unexpected)
	}
	fmt.Fprintf(b, "| typing start → other side p50 / p99 / max ms | %.2f / %.2f / %.2f |\n", r.TypingLatency.P50Ms, r.TypingLatency.P99Ms, r.TypingLatency.MaxMs)
	fmt.Fprintf(b, "| message e2e p50 / p99 / max ms | %.2f / %.2f / %.2f |\n", r.MessageE2E.P50Ms, r.MessageE2E.P99Ms, r.MessageE2E.MaxMs)
	fmt.Fprintf(b, "| typing events / all deliveries per second (over %.1f s) | %.0f / %.0f |\n", r.WindowSeconds, r.TypingEventsPerSecond, r.DeliveriesPerSecond)
	fmt.Fprintf(b, "| server CPU | %.1f%% of a core (%.2f CPU s) |\n", r.ServerCPUPercent, r.ServerCPUSeconds)
	fmt.Fprintf(b, "| **server CPU µs per typing event delivered** (all the phase's CPU) | **%.1f** |\n", r.CPUMicrosPerTypingEvent)
	fmt.Fprintf(b, "| server CPU µs per delivery (typing, inbox, messages) / per call (setTyping, sendMessage) | %.1f / %.1f |\n", r.CPUMicrosPerDelivery, r.CPUMicrosPerCall)
	fmt.Fprintf(b, "| bench CPU / other CPU | %.0f%% / %.0f%% |\n", r.BenchCPUPercent, r.OtherCPUPercent)
	fmt.Fprintf(b, "| server RSS peak | %s |\n", mibOrNA(r.ServerRSSPeakBytes))
	if r.GoroutinesAfterLoad >= 0 {
		fmt.Fprintf(b, "| goroutines after the load | %d (%.2f per socket) |\n", r.GoroutinesAfterLoad, r.GoroutinesPerSocketAfterLoad)
	}
	pass := "yes"
	if !r.Pass {
		pass = "no: " + strings.Join(r.FailReasons, ", ")
	}
	fmt.Fprintf(b, "| pass | %s |\n\n", pass)
}
