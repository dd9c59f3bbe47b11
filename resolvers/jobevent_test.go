package resolvers

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/internal/auth"
)

// TestJobEventAndCloseInput: the rules on postJobEvent's and
// closeConversation's arguments, and who may call them. Every refused case
// goes through the mutation itself and must stop before the database (the
// resolver has none here); the accepted edges go through the checks alone.
func TestJobEventAndCloseInput(t *testing.T) {
	r := New(nil, nil, Config{MaxMessageChars: 10})
	m := r.Mutation()
	svc := auth.WithCaller(context.Background(), auth.Caller{ID: "job-service", Service: true})
	user := auth.WithCaller(context.Background(), auth.Caller{ID: "ana", Name: "Ana"})
	reason := func(s string) *string { return &s }

	postJobEvent := func(ctx context.Context, conv string, ev db.JobEvent, text, key string) func() error {
		return func() error {
			_, err := m.PostJobEvent(ctx, conv, ev, text, key)
			return err
		}
	}
	closeConv := func(ctx context.Context, conv string, why *string) func() error {
		return func() error {
			_, err := m.CloseConversation(ctx, conv, why)
			return err
		}
	}
	reopenConv := func(ctx context.Context, conv string) func() error {
		return func() error {
			_, err := m.ReopenConversation(ctx, conv)
			return err
		}
	}

	refused := []struct {
		name string
		call func() error
		// field is the argument named by BAD_USER_INPUT; empty means
		// FORBIDDEN.
		field string
	}{
		{"postJobEvent by a user", postJobEvent(user, "c1", db.JobCompleted, "done", "k1"), ""},
		{"closeConversation by a user", closeConv(user, "c1", nil), ""},
		{"reopenConversation by a user", reopenConv(user, "c1"), ""},
		{"postJobEvent blank conversationId", postJobEvent(svc, " ", db.JobCompleted, "done", "k1"), "conversationId"},
		{"postJobEvent long conversationId", postJobEvent(svc, strings.Repeat("c", maxIDLen+1), db.JobCompleted, "done", "k1"), "conversationId"},
		{"postJobEvent unknown event", postJobEvent(svc, "c1", db.JobEvent("JOB_EXPLODED"), "done", "k1"), "event"},
		{"postJobEvent empty event", postJobEvent(svc, "c1", "", "done", "k1"), "event"},
		{"postJobEvent blank text", postJobEvent(svc, "c1", db.JobCompleted, " \n\t", "k1"), "messageText"},
		{"postJobEvent text over the limit", postJobEvent(svc, "c1", db.JobCompleted, strings.Repeat("é", 11), "k1"), "messageText"},
		{"postJobEvent text with NUL", postJobEvent(svc, "c1", db.JobCompleted, "do\x00ne", "k1"), "messageText"},
		{"postJobEvent invalid UTF-8", postJobEvent(svc, "c1", db.JobCompleted, "\xff", "k1"), "messageText"},
		{"postJobEvent blank key", postJobEvent(svc, "c1", db.JobCompleted, "done", ""), "idempotencyKey"},
		{"postJobEvent long key", postJobEvent(svc, "c1", db.JobCompleted, "done", strings.Repeat("k", maxKeyLen+1)), "idempotencyKey"},
		{"closeConversation blank conversationId", closeConv(svc, "", nil), "conversationId"},
		{"closeConversation reason over the limit", closeConv(svc, "c1", reason(strings.Repeat("r", maxReasonLen+1))), "reason"},
		{"closeConversation reason with NUL", closeConv(svc, "c1", reason("fraud\x00")), "reason"},
		{"closeConversation reason invalid UTF-8", closeConv(svc, "c1", reason("\xc3")), "reason"},
		{"reopenConversation blank conversationId", reopenConv(svc, "  "), "conversationId"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if tc.field == "" {
				var fe *forbiddenError
				if !errors.As(err, &fe) {
					t.Fatalf("want FORBIDDEN, got %v", err)
				}
				return
			}
			var ie *inputError
			if !errors.As(err, &ie) || ie.Field != tc.field {
				t.Fatalf("want BAD_USER_INPUT on %s, got %v", tc.field, err)
			}
		})
	}

	accepted := []struct {
		name  string
		check func() error
	}{
		{"every event", func() error {
			for _, ev := range []db.JobEvent{db.JobApplicationAccepted, db.JobStarted, db.JobCompleted, db.JobCancelled,
				db.JobPaymentReleased, db.JobDisputeOpened, db.JobDisputeResolved} {
				if err := r.checkJobEvent("c1", ev, "done", "k1"); err != nil {
					return err
				}
			}
			return nil
		}},
		{"text at the limit", func() error { return r.checkJobEvent("c1", db.JobStarted, strings.Repeat("é", 10), "k1") }},
		{"id and key at the limit", func() error {
			return r.checkJobEvent(strings.Repeat("c", maxIDLen), db.JobStarted, "go", strings.Repeat("k", maxKeyLen))
		}},
		{"no reason", func() error { return checkClose("c1", nil) }},
		{"empty reason", func() error { return checkClose("c1", reason("")) }},
		{"reason at the limit", func() error { return checkClose("c1", reason(strings.Repeat("é", maxReasonLen))) }},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.check(); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

// TestClosedErrorShared: the send statement's refusal and requireOpen's say
// the same thing, as FAILED_PRECONDITION.
func TestClosedErrorShared(t *testing.T) {
	err := closedError("c1")
	var pe *preconditionError
	if !errors.As(err, &pe) || !strings.Contains(pe.Msg, `"c1" is closed`) {
		t.Fatalf("closedError: %v", err)
	}
}
