package main

import (
	"context"
	"fmt"
	"log"
	"strings"
	"sync/atomic"

	"github.com/rs/zerolog"
)

// newStdLog routes net/http's own complaints (TLS handshakes, bad requests)
// into the structured log instead of stderr.
func newStdLog(l zerolog.Logger) *log.Logger {
	return log.New(stdLogWriter{l}, "", 0)
}

type stdLogWriter struct{ l zerolog.Logger }

func (w stdLogWriter) Write(p []byte) (int, error) {
	w.l.Warn().Str("source", "net/http").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// redisLog routes go-redis's log lines into the structured log of the
// server running (redisLogger; none before serve sets it). They are
// warnings: go-redis logs what went wrong (a failed dial, a dropped
// subscription connection) and retries, and the broker, which reconnects
// by itself, logs nothing of its own then. The context go-redis passes is
// mostly not the caller's (dials run on context.Background), so the logger
// is not taken from it; nor from zerolog.DefaultContextLogger, which its
// goroutines would read unsynchronised while serve sets it.
type redisLog struct{}

var redisLogger atomic.Pointer[zerolog.Logger]

func (redisLog) Printf(_ context.Context, format string, v ...any) {
	if l := redisLogger.Load(); l != nil {
		l.Warn().Str("source", "go-redis").Msg(strings.TrimSpace(fmt.Sprintf(format, v...)))
	}
}
