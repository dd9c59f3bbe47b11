package main

import (
	"log"
	"strings"

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
