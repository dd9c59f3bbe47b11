package faults

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/db/dbtest"
	"github.com/jobchat/jobchat/internal/auth"
	"github.com/jobchat/jobchat/internal/testsvc"
)

const secret = "faults-secret-0123456789-0123456789-abcdef"

// The instances, by index in world.insts.
const (
	instA = 0
	instB = 1
)

// world is one round's system: a throwaway PostgreSQL schema reached
// through a fault proxy, a private redis-server reached by each instance
// through a fault proxy of its own (so that one instance's link can be
// broken alone), and two jobchat processes, A and B.
type world struct {
	redis     *testsvc.PrivateRedis
	pg        *testsvc.FaultProxy
	redisLink []*testsvc.FaultProxy // per instance
	insts     []*instance
	db        *bun.DB // direct, not through the proxy: the test's own reads
}

// newWorld starts a round's system and stops it when tb ends.
func newWorld(tb testing.TB) *world {
	tb.Helper()
	direct := dbtest.Config(tb, dbtest.Postgres).URL
	w := &world{redis: testsvc.StartPrivateRedis(tb)}

	u, err := url.Parse(direct)
	if err != nil {
		tb.Fatal(err)
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	w.pg = testsvc.NewFaultProxy(tb, target)
	u.Host = w.pg.Addr()
	proxied := u.String()

	for range 2 {
		w.redisLink = append(w.redisLink, testsvc.NewFaultProxy(tb, w.redis.Addr()))
	}
	settings := func(i int) map[string]string {
		return map[string]string{
			"JOBCHAT_DATABASE_URL":     proxied,
			"JOBCHAT_REDIS_URL":        "redis://" + w.redisLink[i].Addr() + "/0",
			"JOBCHAT_JWT_SECRET":       secret,
			"JOBCHAT_SEND_RATE":        "0", // the senders' pace is the test's
			"JOBCHAT_SHUTDOWN_TIMEOUT": "3s",
		}
	}
	// A migrates the fresh schema; B starts once it has, after the
	// commit-time trigger is in place.
	w.insts = append(w.insts, startInstance(tb, "A", settings(instA)))
	w.db, err = db.Open(context.Background(), db.Config{URL: direct, MaxOpenConns: 2})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = w.db.Close() })
	recordCommitTimes(tb, w.db, u.Query().Get("search_path"))
	w.insts = append(w.insts, startInstance(tb, "B", settings(instB)))
	return w
}

// recordCommitTimes makes PostgreSQL note when each message commits: a
// deferred constraint trigger runs at COMMIT, in the committing
// transaction, and writes clock_timestamp() beside the message's id. The
// stall bound is measured from a message's commit (or the fault's end,
// whichever is later), and the timestamp a message carries is taken
// before its transaction, which may wait, as when a paused instance holds
// the conversation's row lock. It is the test schema's only addition.
func recordCommitTimes(tb testing.TB, bdb *bun.DB, schema string) {
	tb.Helper()
	if schema == "" {
		tb.Fatal("the test database URL has no search_path")
	}
	for _, q := range []string{
		`CREATE TABLE fault_commits (id text PRIMARY KEY, at timestamptz NOT NULL)`,
		`CREATE FUNCTION fault_commit_time() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO ` + schema + `.fault_commits (id, at) VALUES (NEW.id, clock_timestamp());
	RETURN NULL;
END $$`,
		`CREATE CONSTRAINT TRIGGER fault_commit_time AFTER INSERT ON messages
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fault_commit_time()`,
	} {
		if _, err := bdb.ExecContext(context.Background(), q); err != nil {
			tb.Fatalf("commit-time trigger: %v", err)
		}
	}
}

func userToken(tb testing.TB, id string) string {
	tb.Helper()
	tok, err := auth.Issue([]byte(secret), auth.Caller{ID: id, Name: "Name " + id}, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// openConversation opens a conversation between client and worker through
// the job-service's mutation, on instance A.
func (w *world) openConversation(tb testing.TB, job, client, worker string) string {
	tb.Helper()
	tok, err := auth.Issue([]byte(secret), auth.Caller{ID: "job-service", Service: true}, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	input := map[string]any{
		"jobId": job, "jobTitle": "Title of " + job,
		"client": map[string]any{"id": client, "displayName": "Name " + client},
		"worker": map[string]any{"id": worker, "displayName": "Name " + worker},
	}
	var out struct {
		Conv struct {
			ID string `json:"id"`
		} `json:"createConversationForJob"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := post(ctx, w.insts[instA].url, tok, createConversationOp, map[string]any{"input": input}, &out); err != nil {
		tb.Fatalf("open conversation %s: %v", job, err)
	}
	return out.Conv.ID
}

// stored is a message as the database has it.
type stored struct {
	conv, id, cid string
	seq           int
	commit        time.Time // from the commit-time trigger
}

// storedMessages reads every message, by conversation and seq.
func (w *world) storedMessages(tb testing.TB) map[string][]stored {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := w.db.QueryContext(ctx, `SELECT m.conversation_id, m.seq, m.id, coalesce(m.client_message_id, ''), c.at
		FROM messages m LEFT JOIN fault_commits c ON c.id = m.id ORDER BY m.conversation_id, m.seq`)
	if err != nil {
		tb.Fatalf("read messages: %v", err)
	}
	defer rows.Close()
	out := map[string][]stored{}
	for rows.Next() {
		var m stored
		var at sql.NullTime
		if err := rows.Scan(&m.conv, &m.seq, &m.id, &m.cid, &at); err != nil {
			tb.Fatalf("read messages: %v", err)
		}
		if !at.Valid {
			tb.Fatalf("message %s (seq %d) has no commit time", m.id, m.seq)
		}
		m.commit = at.Time
		out[m.conv] = append(out[m.conv], m)
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("read messages: %v", err)
	}
	return out
}

func (m stored) String() string { return fmt.Sprintf("seq %d %s (%s)", m.seq, m.cid, m.id) }
