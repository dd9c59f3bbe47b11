package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/graph/model"
	"github.com/jobchat/jobchat/internal/auth"
	"github.com/jobchat/jobchat/internal/config"
	"github.com/jobchat/jobchat/migrations"
)

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, _, err := config.Load("jobchat migrate", args, getenv, stdout, nil)
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
	cfg, _, err := config.Load("jobchat token", args, getenv, stdout, func(fs *flag.FlagSet) {
		fs.StringVar(&sub, "sub", "", "profile id of the user (the token's sub)")
		fs.StringVar(&name, "name", "", "display name of the user")
		fs.BoolVar(&service, "service", false, "issue a service token (role: service) for the job-service")
		fs.DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token lasts")
	})
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
	tok, err := auth.Issue(secret, auth.Caller{ID: sub, Name: name, Service: service}, ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

func demo(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, _, err := config.Load("jobchat demo", args, getenv, stdout, nil)
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
	ana, err := auth.Issue(a.secret, auth.Caller{ID: "demo-ana", Name: "Ana Client"}, 24*time.Hour)
	if err != nil {
		return err
	}
	ben, err := auth.Issue(a.secret, auth.Caller{ID: "demo-ben", Name: "Ben Worker"}, 24*time.Hour)
	if err != nil {
		return err
	}
	svcTok, err := auth.Issue(a.secret, auth.Caller{ID: "job-service", Service: true}, 24*time.Hour)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, `
=== jobchat demo ==========================================================
Conversation %[1]s for job "Fix the kitchen sink"
between Ana (client, demo-ana) and Ben (worker, demo-ben).

Playground: %[2]s/

1. Open the playground, paste into its Headers tab (as Ana):
   {"Authorization": "Bearer %[3]s"}
   and run:
   subscription { messageAdded(conversationId: "%[1]s", afterSeq: 0) { seq senderName messageType messageText timestamp } }

2. Open a second playground tab, paste (as Ben):
   {"Authorization": "Bearer %[4]s"}
   and run:
   mutation { sendMessage(input: {conversationId: "%[1]s", messageText: "Hi Ana, I can start on Monday."}) { seq timestamp } }

   The message appears in Ana's tab at once.

Service token (job-service): %[5]s
Tokens last 24 hours; make more with: jobchat token --sub demo-ana --name "Ana Client"
============================================================================

`, conv.ID, base, ana, ben, svcTok)
	return err
}
