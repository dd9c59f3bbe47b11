package notify

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jobchat/jobchat/db"
)

func TestBackoff(t *testing.T) {
	const minWait, maxWait = 5 * time.Second, time.Hour
	tests := []struct {
		attempt int
		r       float64
		want    time.Duration
	}{
		{1, 0.5, 5 * time.Second},
		{2, 0.5, 10 * time.Second},
		{3, 0.5, 20 * time.Second},
		{10, 0.5, 2560 * time.Second},
		{11, 0.5, time.Hour}, // 5120s, capped
		{40, 0.5, time.Hour},
		{1000, 0.5, time.Hour}, // no overflow
		{1, 0, 4 * time.Second},
		{1, 0.999999, 6 * time.Second},
		{11, 0, 48 * time.Minute},
		{11, 0.999999, 72 * time.Minute},
	}
	for _, tt := range tests {
		got := backoff(tt.attempt, minWait, maxWait, tt.r)
		if d := got - tt.want; d > 10*time.Millisecond || d < -10*time.Millisecond {
			t.Errorf("backoff(%d, r=%v) = %s, want %s", tt.attempt, tt.r, got, tt.want)
		}
	}
	// The whole schedule: about 34 attempts in the first day.
	var total time.Duration
	attempts := 1
	for total+backoff(attempts, minWait, maxWait, 0.5) <= 24*time.Hour {
		total += backoff(attempts, minWait, maxWait, 0.5)
		attempts++
	}
	if attempts < 30 || attempts > 40 {
		t.Errorf("%d attempts in a day", attempts)
	}
}

func TestPreview(t *testing.T) {
	long := strings.Repeat("é", 200)
	tests := []struct {
		name string
		m    db.Message
		want string
	}{
		{"text", db.Message{MessageType: db.MessageText, MessageText: "Can you come at 9?"}, "Can you come at 9?"},
		{"one line", db.Message{MessageType: db.MessageText, MessageText: "  line one\n\nline\ttwo  "}, "line one line two"},
		{"masked: what the recipient reads", db.Message{MessageType: db.MessageText, MessageText: "call me on [hidden]", OriginalText: new("call me on 415 555 2671")}, "call me on [hidden]"},
		{"system", db.Message{MessageType: db.MessageSystem, MessageText: "The job is marked complete."}, "The job is marked complete."},
		{"photo", db.Message{MessageType: db.MessageImage}, "Photo"},
		{"photo with a caption", db.Message{MessageType: db.MessageImage, MessageText: "the leak"}, "the leak"},
		{"file", db.Message{MessageType: db.MessageFile, AttachmentFileName: new("quote.pdf")}, "File: quote.pdf"},
		{"file without a name", db.Message{MessageType: db.MessageFile}, "File"},
		{"location", db.Message{MessageType: db.MessageLocation, LocationLabel: new("12 Elm St")}, "Location: 12 Elm St"},
		{"location without a label", db.Message{MessageType: db.MessageLocation}, "Location"},
		{"long", db.Message{MessageType: db.MessageText, MessageText: long}, strings.Repeat("é", previewRunes-1) + "…"},
		{"exactly the limit", db.Message{MessageType: db.MessageText, MessageText: long[:2*previewRunes]}, long[:2*previewRunes]},
		{"cut before a space", db.Message{MessageType: db.MessageText, MessageText: strings.Repeat("a", previewRunes-2) + " b" + long}, strings.Repeat("a", previewRunes-2) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := preview(&tt.m)
			if got != tt.want {
				t.Fatalf("preview = %q, want %q", got, tt.want)
			}
			if utf8.RuneCountInString(got) > previewRunes || !utf8.ValidString(got) {
				t.Fatalf("preview of %d characters", utf8.RuneCountInString(got))
			}
		})
	}
}

// TestEncodeUndelivered: the body has the Standard Webhooks shape and
// every field the README documents, by its JSON name.
func TestEncodeUndelivered(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 30, 0, 123456789, time.UTC)
	n := &db.Notice{ID: "n1", RecipientID: "ben", ConversationID: "c1"}
	u := &db.Undelivered{Count: 3, JobID: "job-42", JobTitle: "Fix the sink",
		Latest: &db.Message{ID: "m17", Seq: 17, SenderName: new("Ana"), MessageType: db.MessageText, MessageText: "See you at 9 <3"}}
	body, err := encodeUndelivered(n, u, at)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"message.undelivered","timestamp":"2026-12-07T10:30:00.123Z","data":{"recipientId":"ben","conversationId":"c1",` +
		`"jobId":"job-42","jobTitle":"Fix the sink","count":3,"latestSeq":17,"latestMessageId":"m17","senderName":"Ana","preview":"See you at 9 <3"}}`
	if string(body) != want {
		t.Fatalf("body\n%s\nwant\n%s", body, want)
	}
	u.Latest = &db.Message{ID: "m18", Seq: 18, MessageType: db.MessageSystem, MessageText: "Job started"}
	body, _ = encodeUndelivered(n, u, at)
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.Data.SenderName != nil || !strings.Contains(string(body), `"senderName":null`) {
		t.Fatalf("system message: %s (%v)", body, err)
	}
}
