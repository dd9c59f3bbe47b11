package main

import (
	"encoding/json"
	"testing"
	"time"
)

func TestNextFields(t *testing.T) {
	id := appendClientID(nil, "ab12cd34", 1500*time.Millisecond, 1502*time.Millisecond, 77)
	frame := []byte(`{"payload":{"data":{"messageAdded":{"seq":42,"clientMessageId":"` + string(id) +
		`","messageText":"say \"seq\":7 and \"type\":\"x\"","senderName":"W","messageType":"TEXT","timestamp":"2026-11-25T21:00:00Z"}}},"id":"1","type":"next"}`)
	if got := string(frameType(frame)); got != "next" {
		t.Fatalf("type %q", got)
	}
	seq, due, started, timed, ok := nextFields(frame, "ab12cd34")
	if !ok || !timed || seq != 42 || due != 1500*time.Millisecond || started != 1502*time.Millisecond {
		t.Fatalf("got seq %d due %v started %v timed %v ok %v", seq, due, started, timed, ok)
	}
	// Another run's message still counts for seq, but not for latency.
	if seq, _, _, timed, ok := nextFields(frame, "ffffffff"); !ok || timed || seq != 42 {
		t.Fatalf("foreign tag: seq %d timed %v ok %v", seq, timed, ok)
	}
	// A message without clientMessageId (a SYSTEM message).
	sys := []byte(`{"payload":{"data":{"messageAdded":{"seq":1,"clientMessageId":null}}},"id":"1","type":"next"}`)
	if seq, _, _, timed, ok := nextFields(sys, "ab12cd34"); !ok || timed || seq != 1 {
		t.Fatalf("system message: seq %d timed %v ok %v", seq, timed, ok)
	}
	if _, _, _, _, ok := nextFields([]byte(`{"payload":{"errors":[{"message":"x"}]},"id":"1","type":"next"}`), "t"); ok {
		t.Fatal("a next frame without seq must not parse")
	}
}

func TestFrameTypeAndID(t *testing.T) {
	cases := []struct{ frame, typ, id string }{
		{`{"type":"connection_ack"}`, "connection_ack", ""},
		{`{"type":"ping","payload":{}}`, "ping", ""},
		{`{"payload":{"data":{"sendMessage":{"seq":3}}},"id":"17","type":"next"}`, "next", "17"},
		{`{"id":"9","type":"complete"}`, "complete", "9"},
		{`{"payload":{"data":{"messageAdded":{"messageType":"TEXT"}}},"id":"1","type":"next"}`, "next", "1"},
		// jobchat's transport opens every frame with its envelope; keys of
		// the same name in the payload must not be taken for it.
		{`{"id":"2","type":"next","payload":{"data":{"inboxUpdated":{"kind":"READ","conversation":{"id":"c9","type":"x"}}}}}`, "next", "2"},
		{`{"id":"12","type":"complete"}`, "complete", "12"},
		{`{"type":"ka"}`, "ka", ""},
	}
	for _, c := range cases {
		if got := string(frameType([]byte(c.frame))); got != c.typ {
			t.Errorf("%s: type %q, want %q", c.frame, got, c.typ)
		}
		if got := string(frameID([]byte(c.frame))); got != c.id {
			t.Errorf("%s: id %q, want %q", c.frame, got, c.id)
		}
	}
}

func TestLeadingEnvelope(t *testing.T) {
	for _, c := range []struct {
		frame, id, typ string
		ok             bool
	}{
		{`{"id":"3","type":"next","payload":{}}`, "3", "next", true},
		{`{"type":"pong"}`, "", "pong", true},
		{`{"payload":{},"id":"1","type":"next"}`, "", "", false},
		{`{"id":"3","payload":{},"type":"next"}`, "", "", false},
		{`{"id":"3`, "", "", false},
		{`{"type":"next`, "", "", false},
		{``, "", "", false},
	} {
		id, typ, ok := leadingEnvelope([]byte(c.frame))
		if string(id) != c.id || string(typ) != c.typ || ok != c.ok {
			t.Errorf("%s: %q %q %v, want %q %q %v", c.frame, id, typ, ok, c.id, c.typ, c.ok)
		}
	}
}

func TestEventKindAndActor(t *testing.T) {
	f := activityFrame("TYPING_STOPPED", "bench-ab-w3")
	if k, a := eventKind(f), activityActor(f); string(k) != "TYPING_STOPPED" || string(a) != "bench-ab-w3" {
		t.Fatalf("kind %q actor %q", k, a)
	}
	if a := activityActor(activityFrame("CONVERSATION_CLOSED", "")); a != nil {
		t.Fatalf("null actor read as %q", a)
	}
	if k := eventKind(inboxFrame("CONVERSATION_OPENED")); string(k) != "CONVERSATION_OPENED" {
		t.Fatalf("inbox kind %q", k)
	}
	if k := eventKind([]byte(`{"id":"2","type":"next","payload":{"errors":[]}}`)); k != nil {
		t.Fatalf("kind %q in a frame without one", k)
	}
}

func TestClientIDRoundTrip(t *testing.T) {
	for _, c := range []struct{ due, started time.Duration }{{0, 0}, {time.Hour, time.Hour + time.Nanosecond}, {123456789, 987654321}} {
		id := appendClientID(nil, "0011aabb", c.due, c.started, 123456)
		if len(id) > 128 {
			t.Fatalf("id %q longer than the server's 128", id)
		}
		due, started, ok := parseClientID(id, "0011aabb")
		if !ok || due != c.due || started != c.started {
			t.Fatalf("%q: %v %v %v", id, due, started, ok)
		}
		if _, _, ok := parseClientID(id, "0011aabc"); ok {
			t.Fatalf("%q parsed with the wrong tag", id)
		}
	}
	for _, bad := range []string{"", "jb.", "jb.0011aabb", "jb.0011aabb.", "jb.0011aabb.12", "jb.0011aabbX12.3.4", "x.0011aabb.1.2.3"} {
		if _, _, ok := parseClientID([]byte(bad), "0011aabb"); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseSendAnswer(t *testing.T) {
	cases := []struct {
		status int
		body   string
		seq    int64
		class  string
	}{
		{200, `{"data":{"sendMessage":{"seq":12}}}`, 12, ""},
		{200, `{"errors":[{"message":"slow down","extensions":{"code":"RATE_LIMITED","retryAfterMs":100}}],"data":null}`, 0, "RATE_LIMITED"},
		{422, `{"errors":[{"message":"bad"}],"data":null}`, 0, "error: bad"},
		{503, `busy`, 0, "http 503"},
		{200, `{"data":{"sendMessage":null}}`, 0, "answer without seq"},
	}
	for _, c := range cases {
		seq, class := parseSendAnswer(c.status, []byte(c.body))
		if seq != c.seq || class != c.class {
			t.Errorf("%d %s: got %d %q, want %d %q", c.status, c.body, seq, class, c.seq, c.class)
		}
	}
}

func TestAppendSendBodyIsValidJSON(t *testing.T) {
	b := appendSendBody(nil, `conv"1`, "hello", []byte("jb.x.1.2.3"))
	want := `{"query":"mutation($in:SendMessageInput!){sendMessage(input:$in){seq}}","variables":{"in":{"conversationId":"conv\"1","messageText":"hello","clientMessageId":"jb.x.1.2.3"}}}`
	if string(b) != want {
		t.Fatalf("body\n%s\nwant\n%s", b, want)
	}
}

func TestProcParsers(t *testing.T) {
	// A command name with spaces and a ')' must not shift the fields.
	stat := []byte("4242 (job chat) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 17 0 123 456789 1234 18446744073709551615\n")
	cpu, threads, err := parseStat(stat)
	if err != nil || cpu != 3.25 || threads != 17 {
		t.Fatalf("parseStat: cpu %v threads %d err %v; want 3.25, 17", cpu, threads, err)
	}
	status := []byte("Name:\tjobchat\nVmPeak:\t  999 kB\nVmRSS:\t   51234 kB\nThreads:\t17\n")
	if rss, err := parseStatusKB(status, "VmRSS:"); err != nil || rss != 51234 {
		t.Fatalf("VmRSS %d %v", rss, err)
	}
	if n := parseGoroutineTotal([]byte("goroutine profile: total 3012\n1500 @ 0x1 0x2\n")); n != 3012 {
		t.Fatalf("goroutines %d", n)
	}
	if n := parseGoroutineTotal([]byte("404 page not found\n")); n != -1 {
		t.Fatalf("not a profile: %d", n)
	}
	heap := []byte("heap profile: 1: 2 [3: 4] @ heap/1048576\n\n# runtime.MemStats\n# Alloc = 100\n# HeapInuse = 8642560\n# HeapIdle = 1\n")
	if n := parseHeapInuse(heap); n != 8642560 {
		t.Fatalf("HeapInuse %d", n)
	}
}

// BenchmarkSubscriberFrame is a subscriber's work per delivery: it must not
// allocate, or the bench would compete with the server for CPU at high
// delivery rates.
func BenchmarkSubscriberFrame(b *testing.B) {
	id := appendClientID(nil, "ab12cd34", 1500*time.Millisecond, 1502*time.Millisecond, 77)
	frame := []byte(`{"payload":{"data":{"messageAdded":{"seq":42,"clientMessageId":"` + string(id) +
		`","messageText":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","senderName":"Worker 7","messageType":"TEXT","timestamp":"2026-11-25T21:00:00.123456Z"}}},"id":"1","type":"next"}`)
	var h histogram
	tr := newSeqTracker(0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if string(frameType(frame)) != "next" {
			b.Fatal("type")
		}
		_, due, _, timed, ok := nextFields(frame, "ab12cd34")
		if !ok || !timed {
			b.Fatal("parse")
		}
		tr.add(int64(i + 1))
		h.record(2*time.Second - due)
	}
}

func TestParseHostCPU(t *testing.T) {
	// user 100, nice 10, system 50, idle 1000, iowait 40, irq 5, softirq 5,
	// steal 0, guest 30 (inside user), guest_nice 0: busy 170 ticks.
	busy, ok := parseHostCPU([]byte("cpu  100 10 50 1000 40 5 5 0 30 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"))
	if !ok || busy != 1.7 {
		t.Fatalf("busy %v ok %v, want 1.7s", busy, ok)
	}
	if _, ok := parseHostCPU([]byte("intr 1 2 3\n")); ok {
		t.Fatal("a file without the cpu line parsed")
	}
}

func TestSetTypingBodyAndAnswer(t *testing.T) {
	b := appendSetTypingBody(nil, `conv"1`, false)
	var v struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if v.Query != setTypingQuery || v.Variables["c"] != `conv"1` || v.Variables["t"] != false {
		t.Fatalf("%+v", v)
	}
	for _, c := range []struct {
		status int
		body   string
		class  string
	}{
		{200, `{"data":{"setTyping":true}}`, ""},
		{200, `{"data":{"setTyping":false}}`, "setTyping: answer not true"},
		{200, `{"errors":[{"message":"closed","extensions":{"code":"FAILED_PRECONDITION"}}],"data":null}`, "FAILED_PRECONDITION"},
		{502, `bad gateway`, "http 502"},
	} {
		if got := parseSetTypingAnswer(c.status, []byte(c.body)); got != c.class {
			t.Errorf("%d %s: %q, want %q", c.status, c.body, got, c.class)
		}
	}
}
