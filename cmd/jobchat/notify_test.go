package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/db/dbtest"
	"github.com/jobchat/jobchat/internal/config"
	"github.com/jobchat/jobchat/internal/webhook"
)

// Notices for offline users (issue 9, section 2), against the real app on
// every dialect, with a real receiver on loopback that verifies every
// signature: one notice for several messages, none for a message
// delivered in time, SYSTEM messages, retries through failures and
// timeouts, restarts, two instances sharing the outbox, and 410. Helpers
// start with "nt".

const ntSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// ntWait is how long any wait of these tests may take: generous, since a
// wait ends as soon as its condition holds.
const ntWait = 20 * time.Second

// ntVars are the settings of a notifying server with receiver r: a short
// delay and retries, so that the tests take a second, not minutes.
func ntVars(r *ntReceiver, extra map[string]string) map[string]string {
	vars := map[string]string{
		"JOBCHAT_WEBHOOK_URL":       r.srv.URL + "/hooks/jobchat?token=t0p",
		"JOBCHAT_WEBHOOK_SECRET":    ntSecret,
		"JOBCHAT_NOTIFY_DELAY":      "300ms",
		"JOBCHAT_WEBHOOK_RETRY_MIN": "50ms",
		"JOBCHAT_WEBHOOK_TIMEOUT":   "2s",
	}
	for k, v := range extra {
		vars[k] = v
	}
	return vars
}

// ntAttempt is one request the receiver got.
type ntAttempt struct {
	ID     string
	Body   string
	Status int // what it answered; 0 when it hung until the sender gave up
	At     time.Time
}

// ntReceiver is the notification service: an HTTP server on loopback that
// checks each request's signature and answers as answer says for the n-th
// attempt (from 1) at a webhook-id: a status, or 0 to hang until the
// sender gives up.
type ntReceiver struct {
	tb      testing.TB
	srv     *httptest.Server
	secret  webhook.Secret
	release chan struct{}

	mu       sync.Mutex
	answer   func(id string, n int) int
	attempts []ntAttempt
	// hanging counts requests being held.
	hanging int
}

func ntNewReceiver(tb testing.TB, answer func(id string, n int) int) *ntReceiver {
	tb.Helper()
	secret, err := webhook.ParseSecret(ntSecret)
	if err != nil {
		tb.Fatal(err)
	}
	r := &ntReceiver{tb: tb, secret: secret, answer: answer, release: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	tb.Cleanup(func() {
		close(r.release)
		r.srv.CloseClientConnections()
		r.srv.Close()
	})
	return r
}

// ntAccept answers every attempt 204.
func ntAccept(string, int) int { return http.StatusNoContent }

func (r *ntReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		return // the sender gave up
	}
	if req.Method != http.MethodPost || req.URL.Path != "/hooks/jobchat" || req.URL.Query().Get("token") != "t0p" {
		r.tb.Errorf("receiver: %s %s", req.Method, req.URL)
	}
	if err := r.secret.Verify(req.Header, body, time.Now(), 0); err != nil {
		r.tb.Errorf("receiver: %v (headers %v)", err, req.Header)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id := req.Header.Get(webhook.HeaderID)
	r.mu.Lock()
	n := 1
	for _, a := range r.attempts {
		if a.ID == id {
			n++
		}
	}
	status := r.answer(id, n)
	i := len(r.attempts)
	r.attempts = append(r.attempts, ntAttempt{ID: id, Body: string(body), Status: status, At: time.Now()})
	if status == 0 {
		r.hanging++
	}
	r.mu.Unlock()
	if status == 0 {
		select {
		case <-req.Context().Done():
		case <-r.release:
		}
		r.mu.Lock()
		r.hanging--
		r.attempts[i].Status = 0
		r.mu.Unlock()
		return
	}
	w.WriteHeader(status)
}

// snapshot returns the attempts so far.
func (r *ntReceiver) snapshot() []ntAttempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ntAttempt(nil), r.attempts...)
}

// accepted returns the notices answered 2xx, decoded, by webhook-id.
func (r *ntReceiver) accepted() map[string]ntEvent {
	r.tb.Helper()
	out := map[string]ntEvent{}
	for _, a := range r.snapshot() {
		if a.Status < 200 || a.Status > 299 {
			continue
		}
		if _, dup := out[a.ID]; dup {
			r.tb.Fatalf("webhook-id %s accepted twice", a.ID)
		}
		out[a.ID] = ntDecode(r.tb, a.Body)
	}
	return out
}

// waitAccepted waits until n notices are accepted and returns them,
// sorted by recipient and conversation.
func (r *ntReceiver) waitAccepted(n int) []ntEvent {
	r.tb.Helper()
	ntWaitFor(r.tb, fmt.Sprintf("%d accepted notices", n), func() bool { return len(r.accepted()) >= n })
	var out []ntEvent
	for _, ev := range r.accepted() {
		out = append(out, ev)
	}
	if len(out) != n {
		r.tb.Fatalf("%d notices accepted, want %d: %+v", len(out), n, out)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Data.RecipientID != out[j].Data.RecipientID {
			return out[i].Data.RecipientID < out[j].Data.RecipientID
		}
		return out[i].Data.ConversationID < out[j].Data.ConversationID
	})
	return out
}

// ntEvent is a notice's body as the README documents it.
type ntEvent struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      struct {
		RecipientID     string  `json:"recipientId"`
		ConversationID  string  `json:"conversationId"`
		JobID           string  `json:"jobId"`
		JobTitle        string  `json:"jobTitle"`
		Count           int     `json:"count"`
		LatestSeq       int     `json:"latestSeq"`
		LatestMessageID string  `json:"latestMessageId"`
		SenderName      *string `json:"senderName"`
		Preview         string  `json:"preview"`
	} `json:"data"`
}

func ntDecode(tb testing.TB, body string) ntEvent {
	tb.Helper()
	var ev ntEvent
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		tb.Fatalf("notice body %s: %v", body, err)
	}
	if ev.Type != "message.undelivered" {
		tb.Fatalf("notice type %q", ev.Type)
	}
	if _, err := time.Parse(time.RFC3339, ev.Timestamp); err != nil {
		tb.Fatalf("notice timestamp %q: %v", ev.Timestamp, err)
	}
	return ev
}

// ntWaitFor polls cond until it holds, failing after ntWait.
func ntWaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(ntWait)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("waited %s for %s", ntWait, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ntOutbox counts the notices in the outbox of e's database.
func (e *env) ntOutbox(tb testing.TB) int {
	tb.Helper()
	n, err := e.app.db.NewSelect().Model((*db.Notice)(nil)).Count(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return int(n)
}

// ntDrained waits until the outbox is empty: every notice sent or dropped.
func (e *env) ntDrained(tb testing.TB) {
	tb.Helper()
	ntWaitFor(tb, "an empty outbox", func() bool { return e.ntOutbox(tb) == 0 })
}

// ntWant checks one notice's data.
func ntWant(tb testing.TB, ev ntEvent, recipient string, conv conversation, count, latestSeq int, latestID string, sender *string, preview string) {
	tb.Helper()
	d := ev.Data
	if d.RecipientID != recipient || d.ConversationID != conv.ID || d.JobID != conv.Job.ID || d.JobTitle != conv.Job.Title ||
		d.Count != count || d.LatestSeq != latestSeq || d.LatestMessageID != latestID || d.Preview != preview ||
		(d.SenderName == nil) != (sender == nil) || sender != nil && *d.SenderName != *sender {
		tb.Fatalf("notice %+v; want recipient %s, conversation %s (%s, %q), count %d, latest %d (%s) by %v, preview %q",
			d, recipient, conv.ID, conv.Job.ID, conv.Job.Title, count, latestSeq, latestID, sender, preview)
	}
}

// ntStart starts a server over dbc with vars and returns it with a stop
// function (also run at cleanup), so that a test can restart jobchat. Its
// log goes to the test's, and to logs when not nil.
func ntStart(tb testing.TB, dbc db.Config, vars map[string]string, logs io.Writer) (*env, func()) {
	tb.Helper()
	var out io.Writer = zerolog.NewTestWriter(tb)
	if logs != nil {
		out = io.MultiWriter(out, logs)
	}
	return startApp(tb, dbc, vars, zerolog.New(out).Level(zerolog.WarnLevel))
}

// TestNotifyOneNoticeForSeveral: three messages Ben has not received make
// one notice, with their count and a preview of the newest as Ben may
// read it (masked); Ana, who sent them, hears nothing. A message Ben
// received in part counts what he has not.
func TestNotifyOneNoticeForSeveral(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			r := ntNewReceiver(t, ntAccept)
			// A longer delay, so that Ben's mark surely comes within it.
			e := newEnv(t, dialect, ntVars(r, map[string]string{"JOBCHAT_NOTIFY_DELAY": "1s"}))
			ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
			conv := e.openJob(t, "job-1", "ana", "ben", "")
			e.ctPolicy(t, conv.ID, "MASK")
			e.sendText(t, ana, conv.ID, "Hi Ben")
			e.sendText(t, ana, conv.ID, "Are you free tomorrow?")
			last := e.sendText(t, ana, conv.ID, ctDetails)

			other := e.openJob(t, "job-2", "ana", "ben", "")
			e.sendText(t, ana, other.ID, "one")
			two := e.sendText(t, ana, other.ID, "two")
			e.dlvDelivered(t, ben, other.ID, 1)

			got := r.waitAccepted(2)
			e.ntDrained(t)
			byConv := map[string]ntEvent{got[0].Data.ConversationID: got[0], got[1].Data.ConversationID: got[1]}
			name := "Name ana"
			ntWant(t, byConv[conv.ID], "ben", conv, 3, 3, last.ID, &name, ctMasked)
			ntWant(t, byConv[other.ID], "ben", other, 1, 2, two.ID, &name, "two")
			if n := len(r.snapshot()); n != 2 {
				t.Fatalf("%d requests, want 2: %+v", n, r.snapshot())
			}
		})
	}
}

// TestNotifyDeliveredWithinDelay: a message delivered (or read) within the
// delay notifies nobody; the notice is dropped without a request.
func TestNotifyDeliveredWithinDelay(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			r := ntNewReceiver(t, ntAccept)
			// A longer delay, so that the marks surely come within it.
			e := newEnv(t, dialect, ntVars(r, map[string]string{"JOBCHAT_NOTIFY_DELAY": "2s"}))
			ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
			delivered := e.openJob(t, "job-1", "ana", "ben", "")
			e.sendText(t, ana, delivered.ID, "one")
			m := e.sendText(t, ana, delivered.ID, "two")
			e.dlvDelivered(t, ben, delivered.ID, m.Seq)
			read := e.openJob(t, "job-2", "ana", "ben", "")
			e.sendText(t, ben, read.ID, "hello")
			e.sendText(t, ana, read.ID, "hi")
			e.dlvRead(t, ben, read.ID, nil)
			answered := e.openJob(t, "job-3", "ana", "ben", "")
			e.sendText(t, ana, answered.ID, "there?")
			e.sendText(t, ben, answered.ID, "yes") // his answer covers what he answers

			if n := e.ntOutbox(t); n != 5 {
				t.Fatalf("%d notices queued, want 5 (ben's three, ana's two)", n)
			}
			e.dlvDelivered(t, ana, answered.ID, 2)
			e.ntDrained(t)
			if got := r.snapshot(); len(got) != 0 {
				t.Fatalf("the receiver got %+v", got)
			}
		})
	}
}

// TestNotifySystemMessages: a SYSTEM message notifies both participants,
// and the job-service, which posted it, is never a recipient.
func TestNotifySystemMessages(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			r := ntNewReceiver(t, ntAccept)
			e := newEnv(t, dialect, ntVars(r, nil))
			conv := e.openJob(t, "job-1", "ana", "ben", "Job 'Fix the sink' accepted. Chat is now active.")
			got := r.waitAccepted(2)
			ntWant(t, got[0], "ana", conv, 1, 1, ntMessageID(t, e, conv.ID, 1), nil, "Job 'Fix the sink' accepted. Chat is now active.")
			ntWant(t, got[1], "ben", conv, 1, 1, ntMessageID(t, e, conv.ID, 1), nil, "Job 'Fix the sink' accepted. Chat is now active.")

			var posted struct {
				Msg message `json:"postSystemMessage"`
			}
			e.do(t, serviceToken(t), apiPostSystem, map[string]any{"c": conv.ID, "text": "The job starts Monday."}).ok(t, &posted)
			got = r.waitAccepted(4)
			e.ntDrained(t)
			for _, ev := range got {
				if ev.Data.RecipientID != "ana" && ev.Data.RecipientID != "ben" {
					t.Fatalf("a notice for %s", ev.Data.RecipientID)
				}
				if ev.Data.LatestSeq == 2 {
					ntWant(t, ev, ev.Data.RecipientID, conv, 2, 2, posted.Msg.ID, nil, "The job starts Monday.")
				}
			}
		})
	}
}

func ntMessageID(tb testing.TB, e *env, conversationID string, seq int64) string {
	tb.Helper()
	ms, err := db.SelectMessages(context.Background(), e.app.db, db.MessageFilter{ConversationID: conversationID, AfterSeq: seq - 1, BeforeSeq: seq + 1})
	if err != nil || len(ms) != 1 {
		tb.Fatalf("message %d: %v %v", seq, ms, err)
	}
	return ms[0].ID
}

// TestNotifyRetries: a receiver that fails (500), then times out, then
// recovers gets every notice exactly once, and every attempt at one
// notice carries the same webhook-id and body.
func TestNotifyRetries(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			r := ntNewReceiver(t, func(id string, n int) int {
				switch n {
				case 1:
					return http.StatusInternalServerError
				case 2:
					return 0 // hang past the sender's timeout
				}
				return http.StatusOK
			})
			e := newEnv(t, dialect, ntVars(r, map[string]string{"JOBCHAT_WEBHOOK_TIMEOUT": "300ms"}))
			ana := userToken(t, "ana", "Ana")
			var convs []conversation
			for i := range 3 {
				c := e.openJob(t, fmt.Sprint("job-", i), "ana", "ben", "")
				e.sendText(t, ana, c.ID, fmt.Sprint("message ", i))
				convs = append(convs, c)
			}
			got := r.waitAccepted(3)
			e.ntDrained(t)
			for i, ev := range got {
				if ev.Data.Count != 1 || ev.Data.RecipientID != "ben" {
					t.Fatalf("notice %d: %+v", i, ev)
				}
			}
			bodies := map[string]string{}
			tries := map[string]int{}
			for _, a := range r.snapshot() {
				if b, ok := bodies[a.ID]; ok && b != a.Body {
					t.Fatalf("attempts at %s differ:\n%s\n%s", a.ID, b, a.Body)
				}
				bodies[a.ID] = a.Body
				tries[a.ID]++
			}
			for id, n := range tries {
				if n != 3 {
					t.Fatalf("%d attempts at %s, want 3 (500, timeout, 200): %+v", n, id, r.snapshot())
				}
			}
			if len(tries) != 3 {
				t.Fatalf("%d webhook-ids, want 3", len(tries))
			}
		})
	}
}

// TestNotifyAcrossRestart: a notice pending when jobchat stops goes out
// once after it starts again on the same database: one never attempted,
// one whose attempt was in flight at the stop, and one held by an
// instance that crashed, after its lease.
func TestNotifyAcrossRestart(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			dbc := dbtest.Config(t, dialect)
			hold := make(chan struct{}) // closed once the first instance has stopped
			r := ntNewReceiver(t, func(id string, n int) int {
				select {
				case <-hold:
					return http.StatusNoContent
				default:
					return 0 // the first instance's attempt hangs
				}
			})
			ana := userToken(t, "ana", "Ana")

			// The first instance: one notice in flight when it stops (its
			// attempt waits for an answer past the shutdown timeout), and
			// two it never gets to, since its one goroutine waits.
			e1, stop1 := ntStart(t, dbc, ntVars(r, map[string]string{"JOBCHAT_WEBHOOK_TIMEOUT": "1m", "JOBCHAT_SHUTDOWN_TIMEOUT": "300ms"}), nil)
			inFlight := e1.openJob(t, "job-1", "ana", "ben", "")
			e1.sendText(t, ana, inFlight.ID, "in flight")
			ntWaitFor(t, "the first attempt", func() bool { return len(r.snapshot()) == 1 })
			pending := e1.openJob(t, "job-2", "ana", "ben", "")
			e1.sendText(t, ana, pending.ID, "pending")
			crashed := e1.openJob(t, "job-3", "ana", "ben", "")
			e1.sendText(t, ana, crashed.ID, "crashed")
			stop1()
			close(hold)
			first := r.snapshot()[0]
			if len(r.snapshot()) != 1 {
				t.Fatalf("the first instance made %+v", r.snapshot())
			}

			// While jobchat is down, one notice is held by an instance
			// that crashed, for another second.
			ctx := context.Background()
			bdb, err := db.Open(ctx, dbc)
			if err != nil {
				t.Fatal(err)
			}
			defer bdb.Close()
			lease := time.Now().Add(time.Second).UTC()
			res, err := bdb.NewUpdate().Model((*db.Notice)(nil)).Set("claimed_by = 'crashed-instance'").Set("claimed_until = ?", lease).
				Where("conversation_id = ?", crashed.ID).Exec(ctx)
			if n, _ := res.RowsAffected(); err != nil || n != 1 {
				t.Fatalf("hold the crashed instance's notice: %d rows, %v", n, err)
			}

			e2, _ := ntStart(t, dbc, ntVars(r, nil), nil)
			got := r.waitAccepted(3)
			e2.ntDrained(t)
			seen := map[string]bool{}
			for _, ev := range got {
				seen[ev.Data.ConversationID] = true
			}
			if !seen[inFlight.ID] || !seen[pending.ID] || !seen[crashed.ID] {
				t.Fatalf("accepted %+v", got)
			}
			for _, a := range r.snapshot() {
				if a.ID == first.ID && a.Status != 0 && a.Body != first.Body {
					t.Fatalf("the retry after the restart sent another body:\n%s\n%s", first.Body, a.Body)
				}
				if a.Status != 0 && ntDecode(t, a.Body).Data.ConversationID == crashed.ID && a.At.Before(lease) {
					t.Fatalf("the crashed instance's notice was sent at %v, before its lease ended at %v", a.At, lease)
				}
			}
			if _, ok := r.accepted()[first.ID]; !ok {
				t.Fatalf("the notice in flight at the stop was not sent again under its webhook-id %s", first.ID)
			}
		})
	}
}

// TestNotifyTwoInstances: two instances on one PostgreSQL database share
// the outbox and send each notice once. (SQLite serves one instance.)
func TestNotifyTwoInstances(t *testing.T) {
	dbc := dbtest.Config(t, dbtest.Postgres)
	// A slow receiver, so that an instance's batch takes a while and the
	// other one claims what becomes due meanwhile.
	r := ntNewReceiver(t, func(string, int) int {
		time.Sleep(20 * time.Millisecond)
		return http.StatusNoContent
	})
	e1, _ := ntStart(t, dbc, ntVars(r, nil), nil)
	e2, _ := ntStart(t, dbc, ntVars(r, nil), nil)
	ana := userToken(t, "ana", "Ana")
	const convs = 30
	for i := range convs {
		e := e1
		if i%2 == 1 {
			e = e2
		}
		c := e.openJob(t, fmt.Sprint("job-", i), "ana", fmt.Sprint("ben-", i), "")
		e.sendText(t, ana, c.ID, "hello")
	}
	got := r.waitAccepted(convs)
	e1.ntDrained(t)
	if n := len(r.snapshot()); n != convs {
		t.Fatalf("%d requests for %d notices", n, convs)
	}
	recipients := map[string]bool{}
	for _, ev := range got {
		recipients[ev.Data.RecipientID] = true
	}
	if len(recipients) != convs {
		t.Fatalf("notices for %d recipients, want %d", len(recipients), convs)
	}
}

// TestNotifyGone: a receiver answering 410 turns notices off, for this
// instance and the next, in the database: nothing more is queued or sent
// until an operator turns them on again.
func TestNotifyGone(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			dbc := dbtest.Config(t, dialect)
			var mu sync.Mutex
			status := http.StatusGone
			r := ntNewReceiver(t, func(string, int) int {
				mu.Lock()
				defer mu.Unlock()
				return status
			})
			ana := userToken(t, "ana", "Ana")
			var logs ntLogs
			e1, stop1 := ntStart(t, dbc, ntVars(r, nil), &logs)
			conv := e1.openJob(t, "job-1", "ana", "ben", "")
			e1.sendText(t, ana, conv.ID, "one")
			ntWaitFor(t, "the 410", func() bool { return len(r.snapshot()) == 1 })
			ntWaitFor(t, "notices off", func() bool { return e1.app.notices.Delay() == 0 })
			e1.ntDrained(t)
			if !logs.has(`"level":"error"`, "turned OFF", "410 Gone", "DELETE FROM notify_webhook_off") {
				t.Fatalf("no loud log line:\n%s", logs.String())
			}
			e1.sendText(t, ana, conv.ID, "two")
			if n := e1.ntOutbox(t); n != 0 {
				t.Fatalf("%d notices queued while off", n)
			}
			stop1()

			// The next start reads the state from the database.
			logs.Reset()
			e2, _ := ntStart(t, dbc, ntVars(r, nil), &logs)
			if e2.app.notices.Delay() != 0 {
				t.Fatal("notices on again after a restart")
			}
			e2.sendText(t, ana, conv.ID, "three")
			if n := e2.ntOutbox(t); n != 0 {
				t.Fatalf("%d notices queued after the restart", n)
			}
			var off []db.WebhookOff
			if err := e2.app.db.NewSelect().Model(&off).Scan(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(off) != 1 || off[0].Status != 410 || off[0].Endpoint != r.srv.URL+"/hooks/jobchat" {
				t.Fatalf("stored state %+v", off)
			}
			if !logs.has(`"level":"error"`, "notifications are OFF") {
				t.Fatalf("the restart does not say notices are off:\n%s", logs.String())
			}

			// An operator turns them on again.
			mu.Lock()
			status = http.StatusNoContent
			mu.Unlock()
			if _, err := e2.app.db.NewDelete().Model((*db.WebhookOff)(nil)).Where("true").Exec(context.Background()); err != nil {
				t.Fatal(err)
			}
			ntWaitFor(t, "notices on", func() bool { return e2.app.notices.Delay() > 0 })
			m := e2.sendText(t, ana, conv.ID, "four")
			got := r.waitAccepted(1)
			e2.ntDrained(t)
			if got[0].Data.LatestMessageID != m.ID || got[0].Data.Count != 4 {
				t.Fatalf("after turning on: %+v", got[0])
			}
			if n := len(r.snapshot()); n != 2 {
				t.Fatalf("%d requests, want the 410 and one notice", n)
			}
			for _, a := range r.snapshot() {
				if !strings.Contains(a.Body, `"recipientId":"ben"`) {
					t.Fatalf("request %+v", a)
				}
			}
		})
	}
}

// ntLogs collects log lines, safe for the app's goroutines.
type ntLogs struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *ntLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *ntLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *ntLogs) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}

// has reports whether one line holds every part.
func (l *ntLogs) has(parts ...string) bool {
	for _, line := range strings.Split(l.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// TestNotifyBadSecret: a secret whose key is not base64, or too short,
// stops the server at its start with an error naming the variable and
// never the secret.
func TestNotifyBadSecret(t *testing.T) {
	for _, secret := range []string{"whsec_c2VjcmV0LXNlY3JldA==", "whsec_not base64!"} {
		vars := map[string]string{
			"JOBCHAT_DATA_DIR":       t.TempDir(),
			"JOBCHAT_JWT_SECRET":     testSecret,
			"JOBCHAT_WEBHOOK_URL":    "http://127.0.0.1:1/hook",
			"JOBCHAT_WEBHOOK_SECRET": secret,
		}
		cfg, _, err := config.Load("test", nil, func(k string) string { return vars[k] }, io.Discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := newApp(context.Background(), cfg, zerolog.Nop())
		if err == nil {
			a.close()
			t.Fatalf("started with secret %q", secret)
		}
		if !strings.Contains(err.Error(), "JOBCHAT_WEBHOOK_SECRET") || strings.Contains(err.Error(), strings.TrimPrefix(secret, "whsec_")) {
			t.Fatalf("secret %q: %v", secret, err)
		}
	}
}
