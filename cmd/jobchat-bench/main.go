// Command jobchat-bench is a load generator for jobchat. It opens many
// graphql-transport-ws subscriptions to messageAdded, sends messages on an
// open-loop schedule over HTTP or WebSocket, and reports send and end-to-end
// latency, deliveries per second, loss and duplication per subscriber (by
// seq), errors, and the server's RSS, CPU and goroutines. Its live scenario
// gives every socket inboxUpdated and conversationActivity as well and has
// the users type (setTyping) in bursts, reporting memory per user with three
// subscriptions, CPU per typing event delivered and goroutines per socket.
//
// See bench/README.md for the scenarios and how to read the output.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "jobchat-bench:", err)
		os.Exit(1)
	}
}

// run is main without the process. Progress goes to stderr, the Markdown
// report to stdout.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return bench(ctx, args, getenv, stdout, os.Stderr)
}

// Hard caps: whatever the flags say, a run stays bounded in size and time.
const (
	maxSockets       = 100_000
	maxConversations = 100_000
	maxRate          = 200_000
	maxSenders       = 1024
	maxDuration      = 10 * time.Minute
	maxSteps         = 20
	maxMessageBytes  = 4000
	maxTypingRate    = 50_000
)

// typingEvery is how often a user starts typing unless -typing-rate says
// otherwise: someone in a lively chat, on average.
const typingEvery = 20 * time.Second

// options are the run's settings after the scenario preset and the flags.
type options struct {
	Scenario        string        `json:"scenario"`
	URL             string        `json:"url"`
	AllowRemote     bool          `json:"allow_remote"`
	Spawn           bool          `json:"spawn"`
	ServerBin       string        `json:"server_bin,omitempty"`
	ServerPID       int           `json:"server_pid,omitempty"`
	DB              string        `json:"db,omitempty"`
	Redis           string        `json:"redis,omitempty"`
	ServerEnv       []string      `json:"server_env,omitempty"`
	KeepServerDir   bool          `json:"keep_server_dir,omitempty"`
	PprofURL        string        `json:"pprof_url,omitempty"`
	NoPprof         bool          `json:"no_pprof,omitempty"`
	Conversations   int           `json:"conversations"`
	ConversationIDs []string      `json:"conversation_ids,omitempty"`
	Subscribers     int           `json:"subscribers"`
	Fields          string        `json:"fields"`
	Rate            float64       `json:"rate"`
	Senders         int           `json:"senders"`
	SendVia         string        `json:"send_via"`
	Duration        time.Duration `json:"duration_ns"`
	MessageBytes    int           `json:"message_bytes"`
	SendTimeout     time.Duration `json:"send_timeout_ns"`
	Late            time.Duration `json:"late_ns"`
	MaxBehind       time.Duration `json:"max_behind_ns"`
	FindMax         bool          `json:"find_max"`
	MaxSteps        int           `json:"max_steps"`
	StepFactor      float64       `json:"step_factor"`
	MaxP99          time.Duration `json:"max_p99_ns"`
	MaxLateFrac     float64       `json:"max_late_frac"`
	Idle            time.Duration `json:"idle_ns"`
	Settle          time.Duration `json:"settle_ns"`
	Drain           time.Duration `json:"drain_ns"`
	ConnectTimeout  time.Duration `json:"connect_timeout_ns"`
	DialConcurrency int           `json:"dial_concurrency"`
	SourceIPs       int           `json:"source_ips"`
	Live            bool          `json:"live"`
	TypingRate      float64       `json:"typing_rate,omitempty"`
	TypingRenew     time.Duration `json:"typing_renew_ns,omitempty"`
	TypingMin       time.Duration `json:"typing_min_ns,omitempty"`
	TypingMax       time.Duration `json:"typing_max_ns,omitempty"`
	TypingSendFrac  float64       `json:"typing_send_frac,omitempty"`
	JSONPath        string        `json:"json_path,omitempty"`
	Progress        bool          `json:"progress"`

	secret string
}

// preset is what a named scenario sets; explicit flags win over it.
type preset struct {
	about string
	set   map[string]string
}

// presets returns the named scenarios: a function rather than a package
// variable, so that nothing can change them between runs.
func presets() map[string]preset {
	return map[string]preset{
		"custom": {"whatever the flags say (small defaults)", nil},
		"idle": {"as many idle subscribed sockets as possible; memory per socket and CPU at rest", map[string]string{
			"conversations": "1000", "subscribers": "19000", "rate": "0", "idle": "10s", "settle": "3s",
		}},
		"fanout": {"100 conversations x 10 subscribers; add -find-max to step the rate up", map[string]string{
			"conversations": "100", "subscribers": "1000", "rate": "1000", "senders": "32", "duration": "15s",
		}},
		"one2one": {"2000 conversations x 2 subscribers, persisted sends (-db for PostgreSQL)", map[string]string{
			"conversations": "2000", "subscribers": "4000", "rate": "1000", "senders": "32", "duration": "20s",
		}},
		"latency": {"send and delivery latency at 1000 sends/s", map[string]string{
			"conversations": "100", "subscribers": "200", "rate": "1000", "senders": "32", "duration": "30s",
		}},
		"live": {"2000 users in 1000 conversations, 3 subscriptions a socket, typing at 100 bursts/s", map[string]string{
			"live": "true", "conversations": "1000", "subscribers": "2000", "typing-rate": "100", "senders": "16",
			"duration": "30s", "settle": "3s",
		}},
	}
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	var ids string
	var env listFlag
	fs := flag.NewFlagSet("jobchat-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Scenario, "scenario", "custom", "preset: idle, fanout, one2one, latency, live or custom; explicit flags override it")
	fs.StringVar(&o.URL, "url", "http://127.0.0.1:8080", "server to load (ignored with -spawn)")
	fs.BoolVar(&o.AllowRemote, "allow-remote", false, "allow a -url that is not a loopback address")
	fs.BoolVar(&o.Spawn, "spawn", false, "build and start a server of our own on a free loopback port (SQLite unless -db)")
	fs.StringVar(&o.ServerBin, "server-bin", "", "server binary for -spawn (default: go build "+serverPkg+")")
	fs.IntVar(&o.ServerPID, "server-pid", 0, "pid of the server behind -url, for RSS and CPU from /proc (0: not measured)")
	fs.StringVar(&o.DB, "db", "", "with -spawn: PostgreSQL URL for JOBCHAT_DATABASE_URL (default: SQLite in a temp dir)")
	fs.StringVar(&o.Redis, "redis", "", "with -spawn: JOBCHAT_REDIS_URL")
	fs.Var(&env, "server-env", "with -spawn: extra KEY=VALUE for the server's environment (repeatable), e.g. JOBCHAT_DB_MAX_CONNS=40")
	fs.BoolVar(&o.KeepServerDir, "keep-server-dir", false, "with -spawn: keep the temp dir (server log, SQLite file)")
	fs.StringVar(&o.PprofURL, "pprof", "", "base URL of the server's /debug/pprof for goroutines and heap (default: with -spawn, JOBCHAT_PPROF_ADDR on a free port; else <url>/debug/pprof; n/a if unreachable)")
	fs.BoolVar(&o.NoPprof, "no-pprof", false, "do not read goroutines and heap from /debug/pprof (collecting a goroutine profile briefly stops the server)")
	fs.StringVar(&o.secret, "secret", getenv("JOBCHAT_JWT_SECRET"), "the server's JWT secret, to sign tokens (default $JOBCHAT_JWT_SECRET; -spawn makes its own)")
	fs.IntVar(&o.Conversations, "conversations", 3, "conversations to create (C)")
	fs.StringVar(&ids, "conversation-ids", "", "comma-separated existing conversation ids to use instead of creating any")
	fs.IntVar(&o.Subscribers, "subscribers", 6, "subscribed sockets (N), spread round-robin over the conversations and their two participants")
	fs.StringVar(&o.Fields, "fields", "seq clientMessageId messageText senderName messageType timestamp", "Message fields each subscription selects (seq and clientMessageId are always added)")
	fs.Float64Var(&o.Rate, "rate", 10, "sends per second over all senders (R); 0: no sends")
	fs.IntVar(&o.Senders, "senders", 8, "concurrent senders (S); each has one send in flight (with -live: the typing workers, one call in flight each)")
	fs.StringVar(&o.SendVia, "send-via", "http", "http (POST /query) or ws (mutations over graphql-transport-ws sockets, one per participant)")
	fs.DurationVar(&o.Duration, "duration", 3*time.Second, "length of the send phase (of each step with -find-max)")
	fs.IntVar(&o.MessageBytes, "message-bytes", 64, "length of each messageText")
	fs.DurationVar(&o.SendTimeout, "send-timeout", 10*time.Second, "give up on one send after this")
	fs.DurationVar(&o.Late, "late", 10*time.Millisecond, "a send that starts more than this after its scheduled time counts as late")
	fs.DurationVar(&o.MaxBehind, "max-behind", time.Second, "a send more than this behind its scheduled time is skipped (counted), not made")
	fs.BoolVar(&o.FindMax, "find-max", false, "step the rate up by -step-factor from -rate until a step fails (p99 > -max-p99, loss, dups, errors, skips or too many late sends)")
	fs.IntVar(&o.MaxSteps, "max-steps", 8, "most steps of -find-max")
	fs.Float64Var(&o.StepFactor, "step-factor", 1.5, "rate multiplier between -find-max steps")
	fs.DurationVar(&o.MaxP99, "max-p99", 50*time.Millisecond, "-find-max: largest acceptable end-to-end p99")
	fs.Float64Var(&o.MaxLateFrac, "max-late-frac", 0.01, "-find-max: largest acceptable fraction of late sends")
	fs.DurationVar(&o.Idle, "idle", 0, "measure server CPU at rest for this long after connecting")
	fs.DurationVar(&o.Settle, "settle", 2*time.Second, "wait after connecting before measuring memory")
	fs.DurationVar(&o.Drain, "drain", 5*time.Second, "after a send phase, wait this long at most for outstanding deliveries")
	fs.DurationVar(&o.ConnectTimeout, "connect-timeout", 90*time.Second, "stop opening sockets after this")
	fs.IntVar(&o.DialConcurrency, "dial-concurrency", 64, "sockets opened at once")
	fs.IntVar(&o.SourceIPs, "source-ips", 0, "spread client sockets over this many 127.0.0.x source addresses (0: one per 5000 sockets when over 5000)")
	fs.BoolVar(&o.Live, "live", false, "each socket also subscribes to inboxUpdated and conversationActivity (3 subscriptions), and the send phase is typing bursts (-typing-*) instead of -rate")
	fs.Float64Var(&o.TypingRate, "typing-rate", 0, "-live: typing bursts started per second over all users, each one TYPING_STARTED and one TYPING_STOPPED for the other participant (default: one burst per user every 20 s, 100/s for 2,000 users; 0 given explicitly: no typing)")
	fs.DurationVar(&o.TypingRenew, "typing-renew", 2500*time.Millisecond, "-live: setTyping(true) renewal interval while a burst lasts (the server's TTL is 6 s by default)")
	fs.DurationVar(&o.TypingMin, "typing-min", time.Second, "-live: shortest burst, setTyping(true) to its end")
	fs.DurationVar(&o.TypingMax, "typing-max", 8*time.Second, "-live: longest burst")
	fs.Float64Var(&o.TypingSendFrac, "typing-send-frac", 0.5, "-live: fraction of bursts that end with sendMessage; the others end with setTyping(false)")
	fs.StringVar(&o.JSONPath, "json", "", "write the JSON report to this file")
	fs.BoolVar(&o.Progress, "progress", true, "print a progress line per second to stderr")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "jobchat-bench: load generator for jobchat (graphql-transport-ws)\n\nScenarios (-scenario):\n")
		for _, name := range []string{"idle", "fanout", "one2one", "latency", "live", "custom"} {
			fmt.Fprintf(stderr, "  %-8s %s\n", name, presets()[name].about)
		}
		fmt.Fprintf(stderr, "\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	p, ok := presets()[o.Scenario]
	if !ok {
		return o, fmt.Errorf("-scenario %q: want idle, fanout, one2one, latency, live or custom", o.Scenario)
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	for name, v := range p.set {
		if !explicit[name] {
			if err := fs.Set(name, v); err != nil {
				return o, fmt.Errorf("scenario %s: %s=%s: %w", o.Scenario, name, v, err)
			}
		}
	}
	if o.Spawn && (explicit["url"] || explicit["server-pid"]) {
		return o, errors.New("-spawn starts a server of its own; drop -url and -server-pid")
	}
	if o.Live {
		// Messages come from the typing bursts; and a burst whose stop
		// call failed ends only at the server's typing TTL (6 s).
		if !explicit["rate"] {
			o.Rate = 0
		}
		if !explicit["drain"] {
			o.Drain = 10 * time.Second
		}
		if !explicit["typing-rate"] && o.TypingRate == 0 {
			o.TypingRate = float64(o.typers()) / typingEvery.Seconds()
		}
	}
	if o.FindMax && !explicit["duration"] {
		// Steps are short so that a full search fits in about two minutes.
		o.Duration = 8 * time.Second
	}
	o.ServerEnv = env
	for _, id := range strings.Split(ids, ",") {
		if id = strings.TrimSpace(id); id != "" {
			o.ConversationIDs = append(o.ConversationIDs, id)
		}
	}
	if len(o.ConversationIDs) > 0 {
		o.Conversations = len(o.ConversationIDs)
	}
	return o, o.validate()
}

func (o *options) validate() error {
	var errs []error
	check := func(ok bool, format string, a ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, a...))
		}
	}
	check(o.Conversations >= 1 && o.Conversations <= maxConversations, "-conversations must be 1..%d", maxConversations)
	check(o.Subscribers >= 0 && o.Subscribers <= maxSockets, "-subscribers must be 0..%d", maxSockets)
	check(o.Rate >= 0 && o.Rate <= maxRate, "-rate must be 0..%d", maxRate)
	check(o.Senders >= 1 && o.Senders <= maxSenders, "-senders must be 1..%d", maxSenders)
	check(o.SendVia == "http" || o.SendVia == "ws", "-send-via must be http or ws")
	check(o.Duration > 0 && o.Duration <= maxDuration, "-duration must be positive and at most %s", maxDuration)
	check(o.MessageBytes >= 1 && o.MessageBytes <= maxMessageBytes, "-message-bytes must be 1..%d", maxMessageBytes)
	check(o.SendTimeout > 0 && o.SendTimeout <= time.Minute, "-send-timeout must be positive and at most 1m")
	check(o.MaxSteps >= 1 && o.MaxSteps <= maxSteps, "-max-steps must be 1..%d", maxSteps)
	check(o.StepFactor > 1 && o.StepFactor <= 10, "-step-factor must be in (1, 10]")
	check(o.Idle >= 0 && o.Idle <= maxDuration, "-idle must be 0..%s", maxDuration)
	check(o.Settle >= 0 && o.Settle <= time.Minute, "-settle must be 0..1m")
	check(o.Drain >= 0 && o.Drain <= time.Minute, "-drain must be 0..1m")
	check(o.ConnectTimeout > 0 && o.ConnectTimeout <= maxDuration, "-connect-timeout must be positive and at most %s", maxDuration)
	check(o.DialConcurrency >= 1 && o.DialConcurrency <= 1024, "-dial-concurrency must be 1..1024")
	check(o.SourceIPs >= 0 && o.SourceIPs <= 250, "-source-ips must be 0..250")
	check(o.Late >= 0 && o.MaxBehind >= 0, "-late and -max-behind must not be negative")
	check(o.FindMax == false || o.Rate > 0, "-find-max needs a starting -rate")
	check(o.Spawn || o.DB == "", "-db only applies with -spawn (point -url at a server that uses the database instead)")
	check(o.Spawn || o.secret != "", "-secret (or $JOBCHAT_JWT_SECRET) is needed to sign tokens for -url; or use -spawn")
	if o.Live {
		check(o.Rate == 0 && !o.FindMax, "-live sends its messages at the end of typing bursts: drop -rate and -find-max")
		check(o.TypingRate >= 0 && o.TypingRate <= maxTypingRate, "-typing-rate must be 0..%d", maxTypingRate)
		check(o.TypingRenew > 0 && o.TypingRenew <= time.Minute, "-typing-renew must be positive and at most 1m")
		check(o.TypingMin > 0 && o.TypingMax >= o.TypingMin && o.TypingMax <= time.Minute, "-typing-min and -typing-max: want 0 < min ≤ max ≤ 1m")
		check(o.TypingSendFrac >= 0 && o.TypingSendFrac <= 1, "-typing-send-frac must be 0..1")
		check(len(o.ConversationIDs) == 0, "-live creates its own conversations (each user in one): drop -conversation-ids")
		check(o.SendVia == "http", "-live makes its calls over HTTP: drop -send-via")
		if len(errs) == 0 && o.TypingRate > 0 {
			// The same check the run makes, before anything starts.
			_, err := newTypingPlan(0, o.TypingRate, o.Duration, o.typers(), o.TypingRenew, o.TypingMin, o.TypingMax, o.TypingSendFrac, 0)
			check(err == nil, "%v", err)
		}
	}
	for _, kv := range o.ServerEnv {
		check(strings.Contains(kv, "="), "-server-env %q: want KEY=VALUE", kv)
	}
	for _, f := range strings.Fields(o.Fields) {
		// Selections are pasted into the query; refuse anything that could
		// break out of the selection set.
		check(!strings.ContainsAny(f, "{}()\"#$"), "-fields %q: give plain field names", f)
	}
	return errors.Join(errs...)
}

// selection is the fields a subscription asks for: always seq and
// clientMessageId, which the accounting and timing need.
func (o *options) selection() string {
	fields := strings.Fields(o.Fields)
	have := map[string]bool{}
	for _, f := range fields {
		have[f] = true
	}
	for _, f := range []string{"clientMessageId", "seq"} {
		if !have[f] {
			fields = append([]string{f}, fields...)
		}
	}
	return strings.Join(fields, " ")
}

// typers is how many users the live scenario has: the distinct participants
// of the requested sockets (socket i is conversation i mod C's client in
// even rounds, its worker in odd ones). Every one of them types.
func (o *options) typers() int {
	return min(o.Subscribers, 2*o.Conversations)
}
