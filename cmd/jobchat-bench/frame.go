package main

import (
	"bytes"
	"strconv"
	"time"
)

// The readers see tens of thousands of frames a second on a machine the
// server shares, so they do not decode JSON: they find the few values they
// need by key. A key pattern such as `"seq":` cannot match inside a JSON
// string value, where every quote is escaped, so a search is exact as long as
// the key appears once in the frame, which holds for the fields the bench
// selects.

var (
	keyType     = []byte(`"type":"`)
	keyID       = []byte(`"id":"`)
	keySeq      = []byte(`"seq":`)
	keyClientID = []byte(`"clientMessageId":"`)
)

// leadingEnvelope reads the operation id and the message type of a frame
// that opens with them, as jobchat's transport writes every frame:
// {"id":"1","type":"next","payload":…} or {"type":"ping"}. That layout is
// read from the front, so that keys inside the payload (a conversation's
// "id") cannot be mistaken for the envelope's. ok is false for any other
// layout.
func leadingEnvelope(b []byte) (id, typ []byte, ok bool) {
	rest := b
	if r, found := bytes.CutPrefix(rest, []byte(`{"id":"`)); found {
		j := bytes.IndexByte(r, '"')
		if j < 0 {
			return nil, nil, false
		}
		id, rest = r[:j], r[j+1:]
		if rest, found = bytes.CutPrefix(rest, []byte(`,"type":"`)); !found {
			return nil, nil, false
		}
	} else if rest, found = bytes.CutPrefix(rest, []byte(`{"type":"`)); !found {
		return nil, nil, false
	}
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil, nil, false
	}
	return id, rest[:j], true
}

// frameType returns the graphql-transport-ws message type: from the front
// when the frame opens with its envelope (jobchat), else from the back,
// since the envelope's keys follow the payload in gqlgen's own encoding and
// the last match is then the envelope's even if a payload carried a "type"
// key.
func frameType(b []byte) []byte {
	if _, typ, ok := leadingEnvelope(b); ok {
		return typ
	}
	i := bytes.LastIndex(b, keyType)
	if i < 0 {
		return nil
	}
	rest := b[i+len(keyType):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil
	}
	return rest[:j]
}

// frameID returns the envelope's operation id (from the front or the back,
// as above).
func frameID(b []byte) []byte {
	if id, _, ok := leadingEnvelope(b); ok {
		return id
	}
	i := bytes.LastIndex(b, keyID)
	if i < 0 {
		return nil
	}
	rest := b[i+len(keyID):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil
	}
	return rest[:j]
}

// jsonIntAfter parses the integer following the first key in b.
func jsonIntAfter(b, key []byte) (int64, bool) {
	i := bytes.Index(b, key)
	if i < 0 {
		return 0, false
	}
	return parseInt(b[i+len(key):])
}

func parseInt(b []byte) (int64, bool) {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	var n int64
	digits := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		if digits == 18 {
			return 0, false // would overflow; no seq or time gets here
		}
		n = n*10 + int64(c-'0')
		digits++
	}
	if digits == 0 {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// jsonStringAfter returns the string value following key (a pattern ending
// in the opening quote), undecoded: good for codes and the bench's own ids.
func jsonStringAfter(b []byte, key string) string {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return ""
	}
	rest := b[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// A bench message carries its timing in its clientMessageId:
//
//	jb.<run tag>.<due ns>.<started ns>.<send number>
//
// Times are nanoseconds since the run's monotonic base, so a receiver in the
// same process can subtract them from its own clock with no wall-clock skew.
// The run tag keeps messages of other runs and other clients out of the
// latency figures (they still count for seq checks). The send number makes
// the id unique, which sendMessage's idempotency requires.
func appendClientID(b []byte, tag string, due, started time.Duration, g int64) []byte {
	b = append(b, "jb."...)
	b = append(b, tag...)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(due), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(started), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, g, 10)
	return b
}

// parseClientID reads back the times appendClientID wrote, if id is from the
// run tagged tag.
func parseClientID(id []byte, tag string) (due, started time.Duration, ok bool) {
	rest, found := bytes.CutPrefix(id, []byte("jb."))
	if !found || len(rest) <= len(tag) || string(rest[:len(tag)]) != tag || rest[len(tag)] != '.' {
		return 0, 0, false
	}
	rest = rest[len(tag)+1:]
	d, ok1 := parseInt(rest)
	i := bytes.IndexByte(rest, '.')
	if !ok1 || i < 0 {
		return 0, 0, false
	}
	s, ok2 := parseInt(rest[i+1:])
	if !ok2 {
		return 0, 0, false
	}
	return time.Duration(d), time.Duration(s), true
}

// nextFields extracts what a subscriber needs from a "next" frame of
// messageAdded: the seq and, when the message is one of this run's, the
// times its send was due and started.
func nextFields(b []byte, tag string) (seq int64, due, started time.Duration, timed, ok bool) {
	seq, ok = jsonIntAfter(b, keySeq)
	if !ok {
		return 0, 0, 0, false, false
	}
	i := bytes.Index(b, keyClientID)
	if i < 0 {
		return seq, 0, 0, false, true
	}
	rest := b[i+len(keyClientID):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return seq, 0, 0, false, true
	}
	due, started, timed = parseClientID(rest[:j], tag)
	return seq, due, started, timed, true
}

// The live scenario's other two subscriptions select kind first, so the
// first "kind" in a frame is the event's own; the activity's actor is
// selected as actor { id }.
var (
	keyKind    = []byte(`"kind":"`)
	keyActorID = []byte(`"actor":{"id":"`)
)

// bytesAfter returns the string value following key (a pattern ending in
// the opening quote) without copying it; nil when key is absent.
func bytesAfter(b, key []byte) []byte {
	i := bytes.Index(b, key)
	if i < 0 {
		return nil
	}
	rest := b[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil
	}
	return rest[:j]
}

// eventKind returns the kind of an inboxUpdated or conversationActivity
// event in a next frame.
func eventKind(b []byte) []byte { return bytesAfter(b, keyKind) }

// activityActor returns the actor's id in a conversationActivity next
// frame; nil when the actor is null (the job-service acted).
func activityActor(b []byte) []byte { return bytesAfter(b, keyActorID) }
