// Package ssetest reads text/event-stream bodies for tests: the SSE
// transport's own (internal/server) and the whole app's (cmd/jobchat) read
// the same framing, so they share this reader rather than two copies of it.
//
// It imports the standard library only, and only tests import it.
package ssetest

import (
	"bufio"
	"io"
	"strings"
)

// Event is one event of a stream. A comment line (a keep-alive) is an Event
// of Type ":" with no Data.
type Event struct {
	Type string
	Data string
}

// Read sends r's events to events as they arrive, until reading fails. It
// then closes events and returns the error that ended the stream: io.EOF
// when the server ended it cleanly.
func Read(r io.Reader, events chan<- Event) error {
	defer close(events)
	br := bufio.NewReader(r)
	var ev Event
	var data []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			// A blank line dispatches the event gathered so far.
			if ev.Type != "" || data != nil {
				ev.Data = strings.Join(data, "\n")
				events <- ev
			}
			ev, data = Event{}, nil
		case strings.HasPrefix(line, ":"):
			events <- Event{Type: ":"}
		case strings.HasPrefix(line, "event:"):
			ev.Type = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
}
