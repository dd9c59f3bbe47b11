package resolvers

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/db/dbtest"
	"github.com/jobchat/jobchat/graph/model"
	"github.com/jobchat/jobchat/internal/auth"
	"github.com/jobchat/jobchat/internal/broadcast"
)

// sweepWait bounds the waits of these tests; they never assert on speed.
const sweepWait = 10 * time.Second

func sweepResolver(t *testing.T, dialect string) (*Resolver, string) {
	t.Helper()
	hub, err := broadcast.NewHub(broadcast.NewMemoryBroker(), broadcast.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hub.Close() })
	r := New(dbtest.New(t, dialect), hub, Config{})
	conv, _, _, err := r.openConversation(context.Background(), model.CreateConversationInput{
		JobID: "job-sweep", JobTitle: "Sweep",
		Client: &model.ProfileInput{ID: "ana", DisplayName: "Ana"},
		Worker: &model.ProfileInput{ID: "ben", DisplayName: "Ben"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r, conv.ID
}

// storeUnpublished stores a message as a send does but publishes nothing:
// a publisher that died between its commit and its publish.
func storeUnpublished(t *testing.T, r *Resolver, conv, text string) *db.Message {
	t.Helper()
	sender, name := "ana", "Ana"
	m := &db.Message{ConversationID: conv, SenderID: &sender, SenderName: &name, MessageType: db.MessageText, MessageText: text}
	if _, err := db.SendUserMessage(context.Background(), r.db, m); err != nil {
		t.Fatalf("store message: %v", err)
	}
	return m
}

func followFn[T any](t *testing.T, r *Resolver, kind feedKind, id string) <-chan T {
	t.Helper()
	ch := make(chan T, 16)
	ctx, cancel := context.WithCancel(auth.WithCaller(context.Background(), auth.Caller{ID: "ben", Name: "Ben"}))
	stop, err := r.feeds.follow(ctx, kind, id, nil, &follower{ctx: ctx, viewer: "ben", fn: func(v any) bool {
		select {
		case ch <- v.(T):
			return true
		default:
			return false
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(); cancel() })
	if kind == messageFeed {
		waitLive(t, r, id)
	}
	return ch
}

// waitLive waits until every follower of conv's message feed has caught up.
func waitLive(t *testing.T, r *Resolver, conv string) {
	t.Helper()
	f := r.feeds.local(messageFeed, conv)
	deadline := time.Now().Add(sweepWait)
	for {
		f.mu.Lock()
		catching := false
		for fl := range f.followers {
			catching = catching || fl.catching
		}
		f.mu.Unlock()
		if !catching {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("followers still catching up")
		}
		time.Sleep(time.Millisecond)
	}
}

func next[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(sweepWait):
		t.Fatalf("nothing delivered within %v", sweepWait)
		panic("unreachable")
	}
}

// TestSweepHealsLostPublish: a message stored but never published reaches
// the conversation's subscribers and its participants' inboxes by the
// sweep, although the conversation stays quiet; a sweep of a feed that is
// up to date reads nothing more.
func TestSweepHealsLostPublish(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			r, conv := sweepResolver(t, dialect)
			msgs := followFn[*db.Message](t, r, messageFeed, conv)
			inbox := followFn[*model.InboxEvent](t, r, inboxFeed, "ben")
			ctx := context.Background()

			if err := r.feeds.sweep(ctx, 0); err != nil {
				t.Fatal(err)
			}
			if st := r.FeedStats(); st.Healed != 0 {
				t.Fatalf("a sweep of feeds in step healed %d", st.Healed)
			}

			lost := storeUnpublished(t, r, conv, "I'm outside, please open the gate")
			// Younger than the grace: presumed on its way.
			if err := r.feeds.sweep(ctx, time.Hour); err != nil {
				t.Fatal(err)
			}
			if st := r.FeedStats(); st.Healed != 0 {
				t.Fatalf("a change younger than the grace was healed")
			}
			if err := r.feeds.sweep(ctx, 0); err != nil {
				t.Fatal(err)
			}
			if m := next(t, msgs); m.Seq != lost.Seq || m.MessageText != lost.MessageText || m.Known == nil {
				t.Fatalf("healed message %+v, want seq %d", m, lost.Seq)
			}
			if ev := next(t, inbox); ev.Kind != model.InboxEventKindMessageAdded || ev.Conversation.ID != conv || ev.UnreadTotal != 1 {
				t.Fatalf("healed inbox event %+v", ev)
			}
			if err := r.feeds.sweep(ctx, 0); err != nil {
				t.Fatal(err)
			}
			if st := r.FeedStats(); st.Healed != 1 || st.Sweeps != 4 {
				t.Fatalf("after healing once: %+v", st)
			}
			select {
			case m := <-msgs:
				t.Fatalf("delivered twice: seq %d", m.Seq)
			default:
			}
		})
	}
}

// TestCatchUpBringsLiveFollowersAlong: a subscriber that resumes with
// afterSeq reads from the database a message whose publish was lost (its
// instance died after the commit) and so raises the feed's top; the
// feed's live followers, which never got it, are caught up too, without
// waiting for a sweep (which compares the database with top alone and
// would see nothing to heal) or for the conversation's next message. The
// fault suite's kill -9 found this.
func TestCatchUpBringsLiveFollowersAlong(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			r, conv := sweepResolver(t, dialect)
			live := followFn[*db.Message](t, r, messageFeed, conv)
			lost := storeUnpublished(t, r, conv, "I'm outside, please open the gate")

			resumed := make(chan *db.Message, 16)
			ctx, cancel := context.WithCancel(auth.WithCaller(context.Background(), auth.Caller{ID: "ana", Name: "Ana"}))
			defer cancel()
			after := lost.Seq - 1
			stop, err := r.feeds.follow(ctx, messageFeed, conv, &after, &follower{ctx: ctx, viewer: "ana", fn: func(v any) bool {
				resumed <- v.(*db.Message)
				return true
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			if m := next(t, resumed); m.Seq != lost.Seq {
				t.Fatalf("the resuming subscriber got seq %d, want %d", m.Seq, lost.Seq)
			}
			if m := next(t, live); m.Seq != lost.Seq || m.MessageText != lost.MessageText {
				t.Fatalf("the live subscriber got %+v, want seq %d", m, lost.Seq)
			}
		})
	}
}

// TestResumeHealsInboxAndTicks: after a broker outage, local inboxes get
// CONVERSATION_UPDATED for conversations that changed since, and activity
// subscribers the participants' read and delivered pointers.
func TestResumeHealsInboxAndTicks(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			r, conv := sweepResolver(t, dialect)
			inbox := followFn[*model.InboxEvent](t, r, inboxFeed, "ben")
			acts := followFn[*model.ConversationActivity](t, r, activityFeed, conv)
			lostAt := time.Now()
			m := storeUnpublished(t, r, conv, "sent while Redis was away")
			if _, err := r.db.NewUpdate().Model((*db.Participant)(nil)).Set("last_delivered_seq = ?", m.Seq).
				Where("conversation_id = ? AND profile_id = ?", conv, "ben").Exec(context.Background()); err != nil {
				t.Fatal(err)
			}

			if err := r.feeds.healResumed(context.Background(), lostAt); err != nil {
				t.Fatal(err)
			}
			if ev := next(t, inbox); ev.Kind != model.InboxEventKindConversationUpdated || ev.Conversation.ID != conv {
				t.Fatalf("inbox after the outage: %+v", ev)
			}
			got := map[string]int{}
			for range 3 { // ana: delivered and read (her own message); ben: delivered
				a := next(t, acts)
				if a.Actor == nil || a.UpToSeq == nil || *a.UpToSeq != int(m.Seq) {
					t.Fatalf("activity after the outage: %+v", a)
				}
				got[a.Actor.ID+" "+string(a.Kind)]++
			}
			want := map[string]int{"ana DELIVERED": 1, "ana READ": 1, "ben DELIVERED": 1}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("pointers after the outage: %v, want %v", got, want)
			}
		})
	}
}

// BenchmarkSweep: one sweep over 10,000 conversations with local
// subscribers, all in step with the database (the steady state: one query,
// nothing to heal). It reports the process's CPU per sweep (on SQLite the
// database's work is in it, on PostgreSQL it is not) and the query's wall
// time alone.
func BenchmarkSweep(b *testing.B) {
	const conversations = 10000
	for _, dialect := range dbtest.Dialects(b) {
		b.Run(dialect, func(b *testing.B) {
			hub, err := broadcast.NewHub(broadcast.NewMemoryBroker(), broadcast.Config{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = hub.Close() })
			r := New(dbtest.New(b, dialect), hub, Config{})
			ids := seedConversations(b, r.db, conversations)
			// Feeds as follow leaves them once their followers are live; the
			// sweep looks at nothing else.
			ready := make(chan struct{})
			close(ready)
			r.feeds.mu.Lock()
			for _, id := range ids {
				topic := feedTopic(messageFeed, id)
				r.feeds.byKey[topic] = &feed{kind: messageFeed, topic: topic, id: id, ready: ready,
					followers: map[*follower]struct{}{{}: {}}, top: 1}
			}
			r.feeds.mu.Unlock()

			ctx := context.Background()
			var query, cpu time.Duration
			for b.Loop() {
				c0 := cpuTime()
				if err := r.feeds.sweep(ctx, sweepGrace); err != nil {
					b.Fatal(err)
				}
				cpu += cpuTime() - c0
				b.StopTimer()
				at := make([]db.SeqPosition, len(ids))
				for i, id := range ids {
					at[i] = db.SeqPosition{ConversationID: id, Seq: 1}
				}
				q0 := time.Now()
				if _, err := db.SelectConversationsBehind(ctx, r.db, at, time.Now()); err != nil {
					b.Fatal(err)
				}
				query += time.Since(q0)
				b.StartTimer()
			}
			if st := r.FeedStats(); st.Healed != 0 {
				b.Fatalf("healed %d feeds in step", st.Healed)
			}
			n := float64(b.N)
			b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/sweep")
			b.ReportMetric(float64(query.Microseconds())/n, "query-µs")
		})
	}
}

// seedConversations inserts n conversations at seq 1, in bulk.
func seedConversations(b *testing.B, bdb *bun.DB, n int) []string {
	b.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Add(-time.Hour)
	if _, err := bdb.NewInsert().Model(&db.Job{ID: "job-sweep-bench", Title: "Sweep", CreatedAt: now, UpdatedAt: now}).Exec(ctx); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, 0, n)
	for len(ids) < n {
		chunk := make([]*db.Conversation, 0, 500)
		for range min(500, n-len(ids)) {
			id := db.NewID()
			ids = append(ids, id)
			chunk = append(chunk, &db.Conversation{ID: id, JobID: "job-sweep-bench", JobKey: "bench/" + id,
				LastSeq: 1, Status: db.ConversationStatus("OPEN"), CreatedAt: now, UpdatedAt: now})
		}
		if _, err := bdb.NewInsert().Model(&chunk).Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return ids
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
