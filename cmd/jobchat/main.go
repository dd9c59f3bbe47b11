// Command jobchat is the chat server of the job marketplace: a GraphQL API
// for conversations, messages and live subscriptions. It is the only place
// that builds long-lived things (database, hub, HTTP server) and wires them.
//
// Subcommands: serve (the default), migrate, token, demo, version.
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
	"sync"
	"syscall"

	"github.com/redis/go-redis/v9"
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

// command is a subcommand: its name, the one line `jobchat help` shows for
// it, and what runs it.
type command struct {
	name, line string
	run        func(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error
}

// commands lists the subcommands in the order help shows them.
func commands() []command {
	return []command{
		{"serve", "serve the GraphQL API, the playground and the sockets (the default; --demo seeds a demo conversation)", serve},
		{"migrate", "apply pending database migrations and exit", migrate},
		{"token", "print a bearer token signed with the server's secret (--sub ID --name NAME, or --service)", token},
		{"demo", "seed the demo conversation, print its tokens and operations, and exit", demo},
		{"version", "print the version of this build", printVersion},
	}
}

// writeUsage writes the help of jobchat itself: the commands.
func writeUsage(w io.Writer) error {
	var b strings.Builder
	b.WriteString("jobchat: the job marketplace's chat server\n\nUsage:\n  jobchat [command] [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-9s %s\n", c.name, c.line)
	}
	fmt.Fprintf(&b, "  %-9s %s\n", "help", "print this help, or a command's: jobchat help token")
	b.WriteString("\nRun \"jobchat COMMAND -h\" for a command's flags; each has a JOBCHAT_* environment variable.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// libraryLogs routes the logs of libraries with a global logger into
// zerolog; see setLibraryLogs.
var libraryLogs sync.Once

// setLibraryLogs sends go-redis's log lines (failed dials, reconnects)
// through zerolog, to the logger serve stores in redisLogger. go-redis's
// logger is global, so this happens once per process, at the first run.
func setLibraryLogs() {
	libraryLogs.Do(func() { redis.SetLogger(redisLog{}) })
}

// run is main without the process: tests call it with their own arguments,
// environment and output, and cancel ctx to stop the server.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	setLibraryLogs()
	name := "serve"
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			return writeUsage(stdout)
		}
		if len(args[0]) > 0 && args[0][0] != '-' {
			name, args = args[0], args[1:]
		}
	}
	helpOf := name == "help"
	if helpOf {
		if len(args) == 0 {
			return writeUsage(stdout)
		}
		// jobchat help token: the command's own help.
		name, args = args[0], []string{"-h"}
	}
	for _, c := range commands() {
		if c.name == name {
			err := c.run(ctx, args, getenv, stdout)
			if helpOf && errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
	}
	_ = writeUsage(stdout)
	return fmt.Errorf("unknown command %q", name)
}
