package resolvers

import (
	"testing"
	"time"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/internal/auth"
)

func TestCheckEditable(t *testing.T) {
	const window = 15 * time.Minute
	sent := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	ana, ben := "ana", "ben"
	deleted := sent.Add(time.Minute)
	msg := func(typ db.MessageType, sender *string) *db.Message {
		return &db.Message{ID: "m", MessageType: typ, SenderID: sender, CreatedAt: sent}
	}
	for _, tc := range []struct {
		name string
		m    *db.Message
		now  time.Time
		want string
	}{
		{"own text, just sent", msg(db.MessageText, &ana), sent, ""},
		{"own text, at the end of the window", msg(db.MessageText, &ana), sent.Add(window), ""},
		{"own text, past the window", msg(db.MessageText, &ana), sent.Add(window + time.Second), CodeForbidden},
		{"someone else's", msg(db.MessageText, &ben), sent, CodeForbidden},
		{"system", msg(db.MessageSystem, nil), sent, CodeForbidden},
		{"own image", msg(db.MessageImage, &ana), sent, CodeFailedPrecond},
		{"own location", msg(db.MessageLocation, &ana), sent, CodeFailedPrecond},
		{"own file", msg(db.MessageFile, &ana), sent, CodeFailedPrecond},
		{"own deleted", func() *db.Message { m := msg(db.MessageText, &ana); m.DeletedAt = &deleted; return m }(), sent, CodeFailedPrecond},
		{"someone else's deleted", func() *db.Message { m := msg(db.MessageText, &ben); m.DeletedAt = &deleted; return m }(), sent, CodeForbidden},
		{"own non-text past the window", msg(db.MessageImage, &ana), sent.Add(time.Hour), CodeFailedPrecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := reactionCode(checkEditable(tc.m, ana, tc.now, window)); got != tc.want {
				t.Fatalf("checkEditable = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCheckDeletable(t *testing.T) {
	ana, ben := "ana", "ben"
	for _, tc := range []struct {
		name string
		m    *db.Message
		c    auth.Caller
		want string
	}{
		{"own", &db.Message{ID: "m", SenderID: &ana}, auth.Caller{ID: ana}, ""},
		{"someone else's", &db.Message{ID: "m", SenderID: &ben}, auth.Caller{ID: ana}, CodeForbidden},
		{"system, by a user", &db.Message{ID: "m", MessageType: db.MessageSystem}, auth.Caller{ID: ana}, CodeForbidden},
		{"any, by the job-service", &db.Message{ID: "m", SenderID: &ben}, auth.Caller{ID: "job-service", Service: true}, ""},
		{"system, by the job-service", &db.Message{ID: "m", MessageType: db.MessageSystem}, auth.Caller{ID: "job-service", Service: true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := reactionCode(checkDeletable(tc.m, tc.c)); got != tc.want {
				t.Fatalf("checkDeletable = %q, want %q", got, tc.want)
			}
		})
	}
}
