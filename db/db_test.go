package db_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/uptrace/bun"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/db/dbtest"
)

func ptr[T any](v T) *T { return &v }

// seedConversation opens a job conversation between client and worker.
func seedConversation(tb testing.TB, bdb *bun.DB, job, client, worker string) *db.Conversation {
	tb.Helper()
	ctx := context.Background()
	var conv *db.Conversation
	err := bdb.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		for _, id := range []string{client, worker} {
			if err := db.UpsertProfile(ctx, tx, &db.Profile{ID: id, DisplayName: "name " + id}); err != nil {
				return err
			}
		}
		if err := db.UpsertJob(ctx, tx, &db.Job{ID: job, Title: "job " + job}); err != nil {
			return err
		}
		conv = &db.Conversation{JobID: job, JobKey: db.JobKey(job, client, worker)}
		if _, err := db.InsertConversationIfAbsent(ctx, tx, conv); err != nil {
			return err
		}
		for id, role := range map[string]db.Role{client: db.RoleClient, worker: db.RoleWorker} {
			if err := db.InsertParticipant(ctx, tx, &db.Participant{ConversationID: conv.ID, ProfileID: id, Role: role}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("seed conversation: %v", err)
	}
	return conv
}

func post(tb testing.TB, bdb *bun.DB, m *db.Message) *db.Message {
	tb.Helper()
	err := bdb.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		return db.PostMessage(ctx, tx, m)
	})
	if err != nil {
		tb.Fatalf("post message: %v", err)
	}
	return m
}

func TestQueries(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			bdb := dbtest.New(t, dialect)
			c1 := seedConversation(t, bdb, "job1", "alice", "bob")
			c2 := seedConversation(t, bdb, "job2", "alice", "carol")

			again := &db.Conversation{JobID: "job1", JobKey: db.JobKey("job1", "alice", "bob")}
			created, err := db.InsertConversationIfAbsent(ctx, bdb, again)
			if err != nil || created || again.ID != c1.ID {
				t.Fatalf("second insert: created=%v id=%s want %s err=%v", created, again.ID, c1.ID, err)
			}

			post(t, bdb, &db.Message{ConversationID: c1.ID, SenderID: ptr("alice"), MessageText: "hi", MessageType: db.MessageText, ClientMessageID: ptr("c-1")})
			m2 := post(t, bdb, &db.Message{ConversationID: c1.ID, SenderID: ptr("bob"), MessageText: "hello", MessageType: db.MessageText})
			m3 := post(t, bdb, &db.Message{ConversationID: c2.ID, MessageText: "opened", MessageType: db.MessageSystem, IdempotencyKey: ptr("k")})
			if m2.Seq != 2 || m3.Seq != 1 {
				t.Fatalf("seqs: got %d and %d, want 2 and 1", m2.Seq, m3.Seq)
			}

			dup := &db.Message{ConversationID: c1.ID, SenderID: ptr("alice"), MessageText: "hi", MessageType: db.MessageText, ClientMessageID: ptr("c-1")}
			err = bdb.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return db.PostMessage(ctx, tx, dup) })
			if !errors.Is(err, db.ErrConflict) {
				t.Fatalf("duplicate client id: got %v, want ErrConflict", err)
			}
			if seq, _ := db.SelectLastSeq(ctx, bdb, c1.ID); seq != 2 {
				t.Fatalf("rolled-back send moved seq to %d", seq)
			}
			got, err := db.SelectMessageByClientID(ctx, bdb, "alice", "c-1")
			if err != nil || got.Seq != 1 {
				t.Fatalf("by client id: %+v %v", got, err)
			}
			if _, err := db.SelectMessageByIdempotencyKey(ctx, bdb, c2.ID, "k"); err != nil {
				t.Fatalf("by idempotency key: %v", err)
			}
			if _, err := db.SelectParticipant(ctx, bdb, c1.ID, "carol"); !errors.Is(err, db.ErrNotFound) {
				t.Fatalf("non-member: got %v, want ErrNotFound", err)
			}

			conv, err := db.SelectConversation(ctx, bdb, c1.ID)
			if err != nil {
				t.Fatal(err)
			}
			if conv.Job.Title != "job job1" || len(conv.Participants) != 2 || conv.Participants[0].Profile == nil || conv.LastMessage == nil || conv.LastMessage.ID != m2.ID {
				t.Fatalf("details not loaded: %+v", conv)
			}
			// Bob sent last, so his pointer is at 2 and alice's at 1.
			if p := conv.Member("bob"); p.LastReadSeq != 2 {
				t.Fatalf("bob read pointer %d", p.LastReadSeq)
			}
			if n, _ := db.UnreadTotal(ctx, bdb, "alice"); n != 2 {
				t.Fatalf("alice unread total %d, want 2 (one in each)", n)
			}

			list, err := db.SelectConversations(ctx, bdb, db.ConversationFilter{ProfileID: "alice", Limit: 1})
			if err != nil || len(list) != 1 || list[0].ID != c2.ID {
				t.Fatalf("first page: %v %v", list, err)
			}
			next, err := db.SelectConversations(ctx, bdb, db.ConversationFilter{ProfileID: "alice", Limit: 5,
				After: &db.ConversationCursor{ActivityAt: list[0].ActivityAt, ID: list[0].ID}})
			if err != nil || len(next) != 1 || next[0].ID != c1.ID {
				t.Fatalf("second page: %v %v", next, err)
			}
			if moved, err := db.MarkRead(ctx, bdb, c1.ID, "alice", 2); err != nil || !moved {
				t.Fatalf("mark read forward: moved %v, %v", moved, err)
			}
			if moved, err := db.MarkRead(ctx, bdb, c1.ID, "alice", 1); err != nil || moved {
				t.Fatalf("mark read backward: moved %v, %v", moved, err)
			}
			unread, err := db.SelectConversations(ctx, bdb, db.ConversationFilter{ProfileID: "alice", UnreadOnly: true})
			if err != nil || len(unread) != 1 || unread[0].ID != c2.ID {
				t.Fatalf("unread only: %v %v", unread, err)
			}
			all, err := db.SelectConversations(ctx, bdb, db.ConversationFilter{JobID: "job1"})
			if err != nil || len(all) != 1 {
				t.Fatalf("by job: %v %v", all, err)
			}
			ms, err := db.SelectMessages(ctx, bdb, db.MessageFilter{ConversationID: c1.ID, Limit: 1, Newest: true})
			if err != nil || len(ms) != 1 || ms[0].Seq != 2 {
				t.Fatalf("newest message: %v %v", ms, err)
			}
		})
	}
}

// TestQueryLog checks that queries reach the request's logger, so a slow
// page can be traced to its SQL by req_id.
func TestQueryLog(t *testing.T) {
	bdb := dbtest.New(t, dbtest.SQLite)
	var buf bytes.Buffer
	ctx := zerolog.New(&buf).Level(zerolog.DebugLevel).WithContext(context.Background())
	if _, err := db.SelectLastSeq(ctx, bdb, "no-such-conversation"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	if !strings.Contains(buf.String(), `"message":"sql query"`) || !strings.Contains(buf.String(), "no-such-conversation") {
		t.Fatalf("query not logged at debug: %q", buf.String())
	}
}

// TestSendUserMessage: the send fills the message, returns the sender's
// profile as it read it, refuses strangers and reused client ids without
// moving seq, and on every dialect reaches the query log.
func TestSendUserMessage(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			bdb := dbtest.New(t, dialect)
			c := seedConversation(t, bdb, "job1", "alice", "bob")
			var buf bytes.Buffer
			ctx := zerolog.New(&buf).Level(zerolog.DebugLevel).WithContext(context.Background())
			send := func(sender, client string, loc bool) (*db.Message, *db.Profile, error) {
				m := &db.Message{ConversationID: c.ID, SenderID: ptr(sender), SenderName: ptr("fallback"),
					MessageText: "hi", MessageType: db.MessageText}
				if client != "" {
					m.ClientMessageID = ptr(client)
				}
				if loc {
					m.MessageType = db.MessageLocation
					m.LocationLatitude, m.LocationLongitude, m.LocationLabel = ptr(52.5), ptr(13.4), ptr("here")
				}
				p, err := db.SendUserMessage(ctx, bdb, m)
				return m, p, err
			}

			m, p, err := send("alice", "c-1", true)
			if err != nil {
				t.Fatal(err)
			}
			if m.Seq != 1 || m.ID == "" || m.CreatedAt.IsZero() || m.SenderName == nil || *m.SenderName != "name alice" {
				t.Fatalf("message not filled: %+v", m)
			}
			if p == nil || p.ID != "alice" || p.DisplayName != "name alice" || p.CreatedAt.IsZero() {
				t.Fatalf("sender profile: %+v", p)
			}
			stored, err := db.SelectMessageByClientID(ctx, bdb, "alice", "c-1")
			if err != nil || stored.ID != m.ID || stored.LocationLatitude == nil || *stored.LocationLatitude != 52.5 ||
				stored.LocationLabel == nil || *stored.LocationLabel != "here" || !stored.CreatedAt.Equal(m.CreatedAt) {
				t.Fatalf("stored %+v, %v; sent %+v", stored, err, m)
			}
			if m, _, err := send("bob", "", false); err != nil || m.Seq != 2 {
				t.Fatalf("second send: %+v %v", m, err)
			}

			if _, _, err := send("alice", "c-1", false); !errors.Is(err, db.ErrConflict) {
				t.Fatalf("reused client id: got %v, want ErrConflict", err)
			}
			if _, _, err := send("carol", "", false); !errors.Is(err, db.ErrNotFound) {
				t.Fatalf("stranger: got %v, want ErrNotFound", err)
			}
			if seq, _ := db.SelectLastSeq(ctx, bdb, c.ID); seq != 2 {
				t.Fatalf("refused sends moved seq to %d", seq)
			}
			if !strings.Contains(buf.String(), `"message":"sql query"`) {
				t.Fatalf("send not logged at debug: %q", buf.String())
			}
		})
	}
}
