// Command jobchat is the chat server of the job marketplace: a GraphQL API
// for conversations, messages and live subscriptions. It is the only place
// that builds long-lived things (database, hub, HTTP server) and wires them.
//
// Subcommands: serve (the default), migrate, token, demo.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "jobchat:", err)
		os.Exit(1)
	}
}

const usage = `jobchat: the job marketplace's chat server

Usage:
  jobchat [serve] [flags]     serve the GraphQL API (default); --demo seeds a demo conversation
  jobchat migrate [flags]     apply pending database migrations and exit
  jobchat token [flags]       print a bearer token (--sub ID --name NAME, or --service)
  jobchat demo [flags]        seed a demo conversation, print tokens and a subscription, and exit

Every flag has a JOBCHAT_* environment variable; run "jobchat serve -h" for the list.
`

// run is main without the process: tests call it with their own arguments,
// environment and output, and cancel ctx to stop the server.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout)
	case "migrate":
		return migrate(ctx, args, getenv, stdout)
	case "token":
		return token(ctx, args, getenv, stdout)
	case "demo":
		return demo(ctx, args, getenv, stdout)
	case "help":
		_, err := io.WriteString(stdout, usage)
		return err
	}
	_, _ = io.WriteString(stdout, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
