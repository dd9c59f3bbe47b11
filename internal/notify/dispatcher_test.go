package notify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/uptrace/bun"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/db/dbtest"
	"github.com/jobchat/jobchat/internal/webhook"
)

// lockedLog collects a dispatcher's log lines.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// seed opens a conversation between ana and ben (once) and has ana post
// text, queueing ben's notice, due after delay.
func seed(tb testing.TB, bdb *bun.DB, text string, delay time.Duration) *db.Message {
	tb.Helper()
	m := &db.Message{SenderID: new("ana"), MessageText: text, MessageType: db.MessageText, NotifyAfter: delay}
	err := bdb.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		for _, id := range []string{"ana", "ben"} {
			if err := db.UpsertProfile(ctx, tx, &db.Profile{ID: id, DisplayName: id}); err != nil {
				return err
			}
		}
		if err := db.UpsertJob(ctx, tx, &db.Job{ID: "job-1", Title: "Fix the sink"}); err != nil {
			return err
		}
		c := &db.Conversation{JobID: "job-1", JobKey: db.JobKey("job-1", "ana", "ben")}
		if _, err := db.InsertConversationIfAbsent(ctx, tx, c); err != nil {
			return err
		}
		for id, role := range map[string]db.Role{"ana": db.RoleClient, "ben": db.RoleWorker} {
			if err := db.InsertParticipant(ctx, tx, &db.Participant{ConversationID: c.ID, ProfileID: id, Role: role}); err != nil {
				return err
			}
		}
		m.ConversationID = c.ID
		return db.PostMessage(ctx, tx, m)
	})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func outbox(tb testing.TB, bdb *bun.DB) int {
	tb.Helper()
	n, err := bdb.NewSelect().Model((*db.Notice)(nil)).Count(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return int(n)
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("waited 20s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDispatcherGivesUp: a notice the receiver never takes is retried
// until MaxAge after its first attempt, then dropped with an error; one
// whose message is older than MaxAge when it comes due is dropped without
// a request.
func TestDispatcherGivesUp(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			bdb := dbtest.New(t, dialect)
			var requests atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				w.WriteHeader(http.StatusBadGateway)
			}))
			defer srv.Close()
			secret, err := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
			if err != nil {
				t.Fatal(err)
			}
			sender, err := webhook.NewSender(webhook.Config{URL: srv.URL, Secret: secret, Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			var logs lockedLog
			log := zerolog.New(&logs)
			d := New(bdb, sender, Config{Delay: time.Millisecond, RetryMin: 20 * time.Millisecond, MaxAge: 400 * time.Millisecond, Poll: 10 * time.Millisecond})

			seed(t, bdb, "hello", time.Millisecond)
			d.Start(log.WithContext(context.Background()))
			defer d.Stop(context.Background())
			waitFor(t, "the notice dropped", func() bool { return outbox(t, bdb) == 0 })
			if n := requests.Load(); n < 3 {
				t.Fatalf("%d attempts before giving up", n)
			}
			if !strings.Contains(logs.String(), "giving up after the last retry") || !strings.Contains(logs.String(), `"level":"error"`) {
				t.Fatalf("no error line:\n%s", logs.String())
			}

			// A notice that comes due after MaxAge tells of nothing.
			before := requests.Load()
			m := seed(t, bdb, "too late", time.Hour)
			_, err = bdb.NewUpdate().Model((*db.Notice)(nil)).
				Set("created_at = ?", time.Now().Add(-time.Hour).UTC()).
				Set("due_at = ?", time.Now().UTC()).
				Where("conversation_id = ?", m.ConversationID).Exec(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the old notice dropped", func() bool { return outbox(t, bdb) == 0 })
			if n := requests.Load(); n != before {
				t.Fatalf("%d requests for a notice too old to tell", n-before)
			}
		})
	}
}
