package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/graph/model"
	"github.com/jobchat/jobchat/internal/auth"
	"github.com/jobchat/jobchat/internal/config"
	"github.com/jobchat/jobchat/migrations"
)

// The commands' settings and help. serve and demo read every setting (demo
// builds the whole server but the listener, so that it seeds through the
// same database and broker); migrate and token only what they use.
var (
	serveCommand = config.Command{
		Name: "jobchat serve",
		Summary: "Serve the GraphQL API on /query (HTTP, WebSocket, Server-Sent Events), the\n" +
			"playground on / and the old chat socket, until SIGINT or SIGTERM.",
		Own: "Serve",
	}
	migrateCommand = config.Command{
		Name:     "jobchat migrate",
		Summary:  "Apply pending database migrations and exit (with JOBCHAT_AUTO_MIGRATE=false,\nthe server leaves them to this command).",
		Settings: []string{"data-dir", "database-url", "db-max-conns"},
	}
	tokenCommand = config.Command{
		Name: "jobchat token",
		Summary: "Print a bearer token signed with the server's secret: JOBCHAT_JWT_SECRET, or\n" +
			"the development secret in the data dir. A user token needs --sub (and\n" +
			"--name); --service makes the job-service's.",
		Settings: []string{"jwt-secret", "data-dir", "jwt-issuer", "jwt-audience"},
		Own:      "Token",
	}
	demoCommand = config.Command{
		Name: "jobchat demo",
		Summary: "Seed the demo conversation between Ana and Ben (once: it is idempotent),\n" +
			"print their tokens and the operations to try, and exit.",
	}
	versionCommand = config.Command{
		Name:     "jobchat version",
		Summary:  "Print the version of this build.",
		Settings: []string{},
	}
)

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := migrateCommand.Parse(args, getenv, stdout)
	if err != nil {
		return err
	}
	bdb, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer bdb.Close()
	res, err := migrations.Up(ctx, bdb)
	if err != nil {
		return err
	}
	if len(res.Applied) == 0 {
		_, err = fmt.Fprintln(stdout, "database is up to date")
		return err
	}
	_, err = fmt.Fprintf(stdout, "applied: %s\n", strings.Join(res.Applied, ", "))
	return err
}

func token(_ context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var (
		sub, name string
		service   bool
		ttl       time.Duration
	)
	cmd := tokenCommand
	cmd.Flags = func(fs *flag.FlagSet) {
		fs.StringVar(&sub, "sub", "", "profile id of the user (the token's sub)")
		fs.StringVar(&name, "name", "", "display name of the user")
		fs.BoolVar(&service, "service", false, "issue a service token (role: service) for the job-service")
		fs.DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token lasts")
	}
	cfg, err := cmd.Parse(args, getenv, stdout)
	if err != nil {
		return err
	}
	if service && sub == "" {
		sub = "job-service"
	}
	if sub == "" {
		return errors.New("token: --sub is required for a user token (or pass --service)")
	}
	secret, err := loadSecret(cfg, zerolog.Nop())
	if err != nil {
		return err
	}
	tok, err := auth.IssueScoped(secret, auth.Caller{ID: sub, Name: name, Service: service}, ttl, tokenScope(cfg))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

func demo(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := demoCommand.Parse(args, getenv, stdout)
	if err != nil {
		return err
	}
	cfg.AutoMigrate = true
	a, err := newApp(ctx, cfg, zerolog.Nop())
	if err != nil {
		return err
	}
	defer a.close()
	return printDemo(ctx, a, "http://localhost"+portOf(cfg.Addr), stdout)
}

func printVersion(_ context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if _, err := versionCommand.Parse(args, getenv, stdout); err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, "jobchat", buildVersion())
	return err
}

func portOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return addr[i:]
	}
	return ""
}

// printDemo opens a demo job conversation between two demo users and prints
// what a newcomer needs to watch a message arrive live in the playground.
func printDemo(ctx context.Context, a *app, base string, out io.Writer) error {
	svc := auth.WithCaller(ctx, auth.Caller{ID: "demo-seeder", Service: true})
	text := "Job 'Fix the kitchen sink' has been accepted. Chat is now active."
	conv, err := a.resolver.Mutation().CreateConversationForJob(svc, model.CreateConversationInput{
		JobID:         "demo-job-1",
		JobTitle:      "Fix the kitchen sink",
		Client:        &model.ProfileInput{ID: "demo-ana", DisplayName: "Ana Client"},
		Worker:        &model.ProfileInput{ID: "demo-ben", DisplayName: "Ben Worker"},
		SystemMessage: &text,
	})
	if err != nil {
		return fmt.Errorf("seed demo: %w", err)
	}
	ana, err := auth.IssueScoped(a.secret, auth.Caller{ID: "demo-ana", Name: "Ana Client"}, 24*time.Hour, tokenScope(a.cfg))
	if err != nil {
		return err
	}
	ben, err := auth.IssueScoped(a.secret, auth.Caller{ID: "demo-ben", Name: "Ben Worker"}, 24*time.Hour, tokenScope(a.cfg))
	if err != nil {
		return err
	}
	svcTok, err := auth.IssueScoped(a.secret, auth.Caller{ID: "job-service", Service: true}, 24*time.Hour, tokenScope(a.cfg))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, `
=== jobchat demo ==========================================================
Conversation %[1]s for job "Fix the kitchen sink"
between Ana (client, demo-ana) and Ben (worker, demo-ben).

Playground: %[2]s/ (paste each operation over the editor's content, one at a time)

1. Open the playground, paste into its Headers tab (as Ana):
   {"Authorization": "Bearer %[3]s"}
   and run:
   subscription { messageAdded(conversationId: "%[1]s", afterSeq: 0) { seq senderName messageType messageText timestamp } }

2. Open a second playground tab, paste (as Ben):
   {"Authorization": "Bearer %[4]s"}
   and run:
   mutation { sendMessage(input: {conversationId: "%[1]s", messageText: "Hi Ana, I can start on Monday."}) { seq timestamp } }

   The message appears in Ana's tab at once.

3. Back in Ana's tab, stop the subscription, look at her inbox, then mark it read:
   query { conversations { edges { node { id job { title } otherParticipant { displayName } unreadCount lastMessage { messageText } } } } unreadTotal }
   mutation { markRead(conversationId: "%[1]s") { unreadCount } }

4. Watch Ben type: run the first in Ana's tab, then the second in Ben's:
   subscription { conversationActivity(conversationId: "%[1]s") { kind actor { displayName } } }
   mutation { setTyping(conversationId: "%[1]s", typing: true) }

Service token (job-service): %[5]s
Tokens last 24 hours; make more with:
   %[6]s
============================================================================

`, conv.ID, base, ana, ben, svcTok, tokenCommandLine(self(os.Args[0]), a.cfg))
	return err
}

// self is how to run this program again, judged from how it was started
// (arg0 is os.Args[0]): "go run ./cmd/jobchat" when go run built it into
// its temporary directory, where it is deleted on exit; otherwise the path
// it was started by ("./jobchat", or "jobchat" found on the PATH).
func self(arg0 string) string {
	dir := filepath.Dir(arg0)
	if filepath.Base(dir) == "exe" && strings.HasPrefix(filepath.Base(filepath.Dir(filepath.Dir(dir))), "go-build") {
		// go run: $TMPDIR/go-build…/b001/exe/jobchat
		return "go run ./cmd/jobchat"
	}
	if arg0 == "" || strings.HasSuffix(strings.TrimSuffix(filepath.Base(arg0), ".exe"), ".test") {
		// A test binary; a person runs the built one.
		return "jobchat"
	}
	return shellQuote(arg0)
}

// tokenCommandLine is the command that makes another token for Ana, with
// the data dir when the secret is the development one kept there and the
// data dir is not the default, so that it signs with the server's secret.
func tokenCommandLine(self string, cfg config.Config) string {
	line := self + ` token --sub demo-ana --name "Ana Client"`
	if cfg.JWTSecret == "" && cfg.DataDir != "./data" {
		line += " --data-dir " + shellQuote(cfg.DataDir)
	}
	return line
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
