package db_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/db/dbtest"
)

const noticeDelay = 30 * time.Second

// noticeRows describes a conversation's notices as "recipient:upto/latest"
// (latest "-" while open), oldest first.
func noticeRows(tb testing.TB, bdb *bun.DB, conversationID string) string {
	tb.Helper()
	ns, err := db.SelectNotices(context.Background(), bdb, conversationID)
	if err != nil {
		tb.Fatal(err)
	}
	out := ""
	for i, n := range ns {
		if i > 0 {
			out += " "
		}
		latest := "-"
		if n.LatestSeq != nil {
			latest = fmt.Sprint(*n.LatestSeq)
		}
		out += fmt.Sprintf("%s:%d/%s", n.RecipientID, n.UptoSeq, latest)
	}
	return out
}

func wantNotices(tb testing.TB, bdb *bun.DB, conversationID, what, want string) {
	tb.Helper()
	if got := noticeRows(tb, bdb, conversationID); got != want {
		tb.Fatalf("%s: notices %q, want %q", what, got, want)
	}
}

// userSend sends text from sender through SendUserMessage (one statement
// on PostgreSQL, sendInTx on SQLite), queueing notices.
func userSend(tb testing.TB, bdb *bun.DB, conversationID, sender, text string, under bool) *db.Message {
	tb.Helper()
	m := &db.Message{ConversationID: conversationID, SenderID: ptr(sender), MessageText: text, MessageType: db.MessageText, NotifyAfter: noticeDelay}
	var err error
	if under {
		_, err = db.SendUserMessageUnder(context.Background(), bdb, m, nil)
	} else {
		_, err = db.SendUserMessage(context.Background(), bdb, m)
	}
	if err != nil {
		tb.Fatalf("send: %v", err)
	}
	return m
}

// freeze does what a notice's first attempt does to the database: claim,
// lock, read what the recipient has not received, and freeze the notice
// at its newest message. It returns the number of notices frozen.
func freeze(ctx context.Context, bdb *bun.DB, by string, now time.Time) (int, error) {
	ids, err := db.ClaimNotices(ctx, bdb, by, now, now.Add(time.Minute), 100)
	if err != nil {
		return 0, err
	}
	frozen := 0
	for _, id := range ids {
		err := bdb.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			n, err := db.LockNotice(ctx, tx, id, by)
			if errors.Is(err, db.ErrNotFound) {
				return nil // superseded meanwhile
			}
			if err != nil {
				return err
			}
			u, err := db.SelectUndelivered(ctx, tx, n.ConversationID, n.RecipientID)
			if err != nil {
				return err
			}
			if n.Frozen() || u.Latest == nil {
				return nil
			}
			n.LatestSeq, n.Payload, n.ExpiresAt, n.Attempts = &u.Latest.Seq, ptr("{}"), ptr(now.Add(time.Hour)), n.Attempts+1
			frozen++
			return db.UpdateNoticeAttempt(ctx, tx, n)
		})
		if err != nil {
			return frozen, err
		}
		// Once frozen, a notice takes no more messages: a message folded
		// into it after the freeze read what bob had not received would
		// be told of by no notice.
		var n db.Notice
		err = bdb.NewSelect().Model(&n).Where("id = ?", id).Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return frozen, err
		}
		if n.LatestSeq != nil && n.UptoSeq > *n.LatestSeq {
			return frozen, fmt.Errorf("notice %s frozen at %d took message %d", id, *n.LatestSeq, n.UptoSeq)
		}
		if err := db.ReleaseNotices(ctx, bdb, by, []string{id}); err != nil {
			return frozen, err
		}
	}
	return frozen, nil
}

// TestNoticesOnEverySendPath: every way a message is stored queues one
// notice per recipient (never the sender), folded into the recipient's
// open notice of the conversation, which keeps its first due time; a
// frozen notice takes no more messages; without NotifyAfter nothing is
// queued.
func TestNoticesOnEverySendPath(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			bdb := dbtest.New(t, dialect)
			ctx := context.Background()
			c := seedConversation(t, bdb, "job1", "alice", "bob")

			post(t, bdb, &db.Message{ConversationID: c.ID, SenderID: ptr("alice"), MessageText: "quiet", MessageType: db.MessageText})
			m := &db.Message{ConversationID: c.ID, SenderID: ptr("alice"), MessageText: "quiet too", MessageType: db.MessageText}
			if _, err := db.SendUserMessage(ctx, bdb, m); err != nil {
				t.Fatal(err)
			}
			wantNotices(t, bdb, c.ID, "without NotifyAfter", "")

			first := userSend(t, bdb, c.ID, "alice", "one", false)
			wantNotices(t, bdb, c.ID, "a user's message", "bob:3/-")
			userSend(t, bdb, c.ID, "alice", "two", true)
			wantNotices(t, bdb, c.ID, "a second one, screened", "bob:4/-")
			post(t, bdb, &db.Message{ConversationID: c.ID, MessageText: "Job started", MessageType: db.MessageSystem, NotifyAfter: noticeDelay})
			wantNotices(t, bdb, c.ID, "a system message", "bob:5/- alice:5/-")

			ns, err := db.SelectNotices(ctx, bdb, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if due := first.CreatedAt.Add(noticeDelay); !ns[0].DueAt.Equal(due) || !ns[0].CreatedAt.Equal(first.CreatedAt) {
				t.Fatalf("bob's notice due %v created %v; want the first message's %v and %v", ns[0].DueAt, ns[0].CreatedAt, due, first.CreatedAt)
			}
			if ns[0].ID == ns[1].ID || ns[0].ID == "" {
				t.Fatalf("ids %q and %q", ns[0].ID, ns[1].ID)
			}

			// The first attempt freezes both; the next messages open new
			// notices, and their freeze supersedes the older ones.
			if n, err := freeze(ctx, bdb, "i1", time.Now().Add(time.Hour)); err != nil || n != 2 {
				t.Fatalf("froze %d: %v", n, err)
			}
			wantNotices(t, bdb, c.ID, "frozen", "bob:5/5 alice:5/5")
			post(t, bdb, &db.Message{ConversationID: c.ID, MessageText: "Job done", MessageType: db.MessageSystem, NotifyAfter: noticeDelay})
			wantNotices(t, bdb, c.ID, "after the freeze", "bob:5/5 alice:5/5 alice:6/- bob:6/-")
			if n, err := freeze(ctx, bdb, "i1", time.Now().Add(2*time.Hour)); err != nil || n != 2 {
				t.Fatalf("froze %d: %v", n, err)
			}
			wantNotices(t, bdb, c.ID, "superseded", "alice:6/6 bob:6/6")
		})
	}
}

// TestClaimNotices: a claim takes due notices nobody holds, the earliest
// first, up to the limit; another instance gets the rest, and a notice
// whose lease ran out; only the holder may lock, retry or delete one.
func TestClaimNotices(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			bdb := dbtest.New(t, dialect)
			ctx := context.Background()
			var convs []*db.Conversation
			for i := range 3 {
				c := seedConversation(t, bdb, fmt.Sprint("job", i), "alice", fmt.Sprint("bob", i))
				convs = append(convs, c)
				userSend(t, bdb, c.ID, "alice", "hello", false)
			}
			now := time.Now()
			if ids, err := db.ClaimNotices(ctx, bdb, "i1", now, now.Add(time.Minute), 10); err != nil || len(ids) != 0 {
				t.Fatalf("claimed %v before they were due: %v", ids, err)
			}
			later := now.Add(noticeDelay + time.Second)
			a, err := db.ClaimNotices(ctx, bdb, "i1", later, later.Add(time.Minute), 2)
			if err != nil || len(a) != 2 {
				t.Fatalf("first claim: %v %v", a, err)
			}
			b, err := db.ClaimNotices(ctx, bdb, "i2", later, later.Add(time.Minute), 10)
			if err != nil || len(b) != 1 || b[0] == a[0] || b[0] == a[1] {
				t.Fatalf("second claim %v after %v: %v", b, a, err)
			}
			if ids, _ := db.ClaimNotices(ctx, bdb, "i3", later, later.Add(time.Minute), 10); len(ids) != 0 {
				t.Fatalf("claimed %v held by others", ids)
			}
			// i1 crashed: after its lease, i3 takes its notices over.
			after := later.Add(2 * time.Minute)
			c, err := db.ClaimNotices(ctx, bdb, "i3", after, after.Add(time.Minute), 10)
			if err != nil || len(c) != 3 {
				t.Fatalf("claim after the leases: %v %v", c, err)
			}
			err = bdb.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				_, err := db.LockNotice(ctx, tx, a[0], "i1")
				return err
			})
			if !errors.Is(err, db.ErrNotFound) {
				t.Fatalf("the old holder locked a notice taken over: %v", err)
			}
			if deleted, err := db.DeleteNotice(ctx, bdb, a[0], "i1"); err != nil || deleted {
				t.Fatalf("the old holder deleted: %v %v", deleted, err)
			}
			if err := db.RetryNotice(ctx, bdb, a[0], "i3", after.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if err := db.ReleaseNotices(ctx, bdb, "i3", nil); err != nil {
				t.Fatal(err)
			}
			d, err := db.ClaimNotices(ctx, bdb, "i4", after, after.Add(time.Minute), 10)
			if err != nil || len(d) != 2 {
				t.Fatalf("after retry and release: %v %v", d, err)
			}
			for _, id := range d {
				if deleted, err := db.DeleteNotice(ctx, bdb, id, "i4"); err != nil || !deleted {
					t.Fatalf("delete %s: %v %v", id, deleted, err)
				}
			}
			if n, err := db.PurgeNotices(ctx, bdb, 10); err != nil || n != 1 {
				t.Fatalf("purged %d: %v", n, err)
			}
			for _, c := range convs {
				wantNotices(t, bdb, c.ID, "at the end", "")
			}
		})
	}
}

// TestSelectUndelivered: what a recipient has not received counts others'
// messages after the further of their pointers, without deleted ones.
func TestSelectUndelivered(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			bdb := dbtest.New(t, dialect)
			ctx := context.Background()
			c := seedConversation(t, bdb, "job1", "alice", "bob")
			post(t, bdb, &db.Message{ConversationID: c.ID, MessageText: "opened", MessageType: db.MessageSystem})                  // 1
			post(t, bdb, &db.Message{ConversationID: c.ID, SenderID: ptr("alice"), MessageText: "a", MessageType: db.MessageText}) // 2
			m3 := post(t, bdb, &db.Message{ConversationID: c.ID, SenderID: ptr("alice"), MessageText: "b", MessageType: db.MessageText})
			m4 := post(t, bdb, &db.Message{ConversationID: c.ID, SenderID: ptr("alice"), MessageText: "c", MessageType: db.MessageText})

			want := func(who string, pointer, count int64, latest *db.Message) {
				t.Helper()
				u, err := db.SelectUndelivered(ctx, bdb, c.ID, who)
				if err != nil {
					t.Fatal(err)
				}
				if u.Pointer != pointer || u.Count != count || (latest == nil) != (u.Latest == nil) ||
					latest != nil && u.Latest.ID != latest.ID || u.JobID != "job1" || u.JobTitle != "job job1" {
					t.Fatalf("%s: %+v, want pointer %d count %d latest %v", who, u, pointer, count, latest)
				}
			}
			want("bob", 0, 4, m4)
			want("alice", 4, 0, nil)
			if _, err := db.MarkDelivered(ctx, bdb, c.ID, "bob", 2); err != nil {
				t.Fatal(err)
			}
			want("bob", 2, 2, m4)
			if _, err := db.UpdateMessageDeleted(ctx, bdb, m4); err != nil {
				t.Fatal(err)
			}
			want("bob", 2, 1, m3)
			if _, err := db.MarkRead(ctx, bdb, c.ID, "bob", 3); err != nil {
				t.Fatal(err)
			}
			want("bob", 3, 0, nil)
			if _, err := db.SelectUndelivered(ctx, bdb, c.ID, "carol"); !errors.Is(err, db.ErrNotFound) {
				t.Fatalf("a stranger: %v", err)
			}
		})
	}
}

// TestNoticeCoversConcurrentSends holds the lock protocol of outbox.go:
// while one sender sends and an instance keeps freezing notices, no
// message is left without a notice that covers it: at the end, the
// newest message is covered by an open notice or a frozen one.
func TestNoticeCoversConcurrentSends(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			bdb := dbtest.New(t, dialect)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c := seedConversation(t, bdb, "job1", "alice", "bob")
			const sends = 150
			var wg sync.WaitGroup
			done := make(chan struct{})
			errc := make(chan error, 2)
			wg.Add(2)
			go func() {
				defer wg.Done()
				defer close(done)
				for i := range sends {
					m := &db.Message{ConversationID: c.ID, SenderID: ptr("alice"), MessageText: fmt.Sprint(i), MessageType: db.MessageText, NotifyAfter: time.Nanosecond}
					if _, err := db.SendUserMessage(ctx, bdb, m); err != nil {
						errc <- err
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				for {
					select {
					case <-done:
						return
					default:
					}
					if _, err := freeze(ctx, bdb, "i1", time.Now().Add(time.Second)); err != nil {
						errc <- err
						return
					}
				}
			}()
			wg.Wait()
			close(errc)
			for err := range errc {
				t.Fatal(err)
			}
			ns, err := db.SelectNotices(ctx, bdb, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			var covered int64
			for _, n := range ns {
				if n.RecipientID != "bob" {
					t.Fatalf("a notice for %s", n.RecipientID)
				}
				seq := n.UptoSeq
				if n.LatestSeq != nil {
					seq = *n.LatestSeq
				}
				covered = max(covered, seq)
			}
			if covered != sends {
				t.Fatalf("notices cover up to %d of %d messages: %s", covered, sends, noticeRows(t, bdb, c.ID))
			}
		})
	}
}
