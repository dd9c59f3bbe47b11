package db_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/db/dbtest"
)

// TestCloseReopen: the conditional status updates report whether they
// changed anything, and a closed conversation refuses sends atomically,
// on both send paths (PostgreSQL's single statement, SQLite's transaction).
func TestCloseReopen(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			bdb := dbtest.New(t, dialect)
			conv := seedConversation(t, bdb, "job1", "alice", "bob")
			send := func(sender string, clientID *string) (*db.Message, error) {
				m := &db.Message{ConversationID: conv.ID, SenderID: ptr(sender), SenderName: ptr(sender), MessageText: "hi", MessageType: db.MessageText, ClientMessageID: clientID}
				_, err := db.SendUserMessage(ctx, bdb, m)
				return m, err
			}
			stored, err := send("alice", ptr("cm-1"))
			if err != nil {
				t.Fatal(err)
			}

			changed, err := db.CloseConversation(ctx, bdb, conv.ID, ptr("job done"))
			if err != nil || !changed {
				t.Fatalf("close: changed=%v err=%v", changed, err)
			}
			first, err := db.SelectConversation(ctx, bdb, conv.ID)
			if err != nil {
				t.Fatal(err)
			}
			if first.Status != db.ConversationClosed || first.ClosedAt == nil || first.CloseReason == nil || *first.CloseReason != "job done" {
				t.Fatalf("closed conversation: status=%s closedAt=%v reason=%v", first.Status, first.ClosedAt, first.CloseReason)
			}
			changed, err = db.CloseConversation(ctx, bdb, conv.ID, ptr("again"))
			if err != nil || changed {
				t.Fatalf("second close: changed=%v err=%v", changed, err)
			}
			again, err := db.SelectConversation(ctx, bdb, conv.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !again.ClosedAt.Equal(*first.ClosedAt) || *again.CloseReason != "job done" {
				t.Fatalf("second close rewrote the first: closedAt %v→%v reason %q", first.ClosedAt, again.ClosedAt, *again.CloseReason)
			}

			refusals := []struct {
				name     string
				sender   string
				clientID *string
				want     error
			}{
				{"participant", "bob", nil, db.ErrClosed},
				{"participant with a new client id", "bob", ptr("cm-2"), db.ErrClosed},
				{"retry of a stored message", "alice", ptr("cm-1"), db.ErrConflict},
				{"stranger", "mallory", nil, db.ErrNotFound},
				{"stranger with a client id", "mallory", ptr("cm-3"), db.ErrNotFound},
			}
			for _, tc := range refusals {
				if _, err := send(tc.sender, tc.clientID); !errors.Is(err, tc.want) {
					t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
				}
			}
			if seq, err := db.SelectLastSeq(ctx, bdb, conv.ID); err != nil || seq != stored.Seq {
				t.Fatalf("refused sends moved lastSeq to %d (err %v), want %d", seq, err, stored.Seq)
			}

			changed, err = db.ReopenConversation(ctx, bdb, conv.ID)
			if err != nil || !changed {
				t.Fatalf("reopen: changed=%v err=%v", changed, err)
			}
			if changed, err = db.ReopenConversation(ctx, bdb, conv.ID); err != nil || changed {
				t.Fatalf("second reopen: changed=%v err=%v", changed, err)
			}
			open, err := db.SelectConversation(ctx, bdb, conv.ID)
			if err != nil {
				t.Fatal(err)
			}
			if open.Status != db.ConversationOpen || open.ClosedAt != nil || open.CloseReason != nil {
				t.Fatalf("reopened conversation: status=%s closedAt=%v reason=%v", open.Status, open.ClosedAt, open.CloseReason)
			}
			if m, err := send("bob", ptr("cm-2")); err != nil || m.Seq != stored.Seq+1 {
				t.Fatalf("send after reopen: seq %d err %v", m.Seq, err)
			}

			missing := db.NewID()
			if _, err := db.CloseConversation(ctx, bdb, missing, nil); !errors.Is(err, db.ErrNotFound) {
				t.Errorf("close of an unknown conversation: %v", err)
			}
			if _, err := db.ReopenConversation(ctx, bdb, missing); !errors.Is(err, db.ErrNotFound) {
				t.Errorf("reopen of an unknown conversation: %v", err)
			}
		})
	}
}

// TestCloseRacingSends: sends racing a close either store a message or are
// refused with ErrClosed, and a refused one takes no seq: lastSeq counts
// exactly the stored messages, and nothing is stored after the close.
func TestCloseRacingSends(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			bdb := dbtest.New(t, dialect)
			conv := seedConversation(t, bdb, "job1", "alice", "bob")
			const senders, each = 4, 25
			var (
				wg     sync.WaitGroup
				mu     sync.Mutex
				stored int
				errs   []error
			)
			for i := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sender := []string{"alice", "bob"}[i%2]
					for range each {
						m := &db.Message{ConversationID: conv.ID, SenderID: ptr(sender), MessageText: "hi", MessageType: db.MessageText}
						_, err := db.SendUserMessage(ctx, bdb, m)
						mu.Lock()
						if err == nil {
							stored++
						} else if !errors.Is(err, db.ErrClosed) {
							errs = append(errs, err)
						}
						mu.Unlock()
					}
				}()
			}
			if _, err := db.CloseConversation(ctx, bdb, conv.ID, nil); err != nil {
				t.Fatal(err)
			}
			closed, err := db.SelectConversation(ctx, bdb, conv.ID)
			if err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			if len(errs) > 0 {
				t.Fatalf("sends failed otherwise than closed: %v", errs)
			}
			seq, err := db.SelectLastSeq(ctx, bdb, conv.ID)
			if err != nil {
				t.Fatal(err)
			}
			if seq != int64(stored) || seq != closed.LastSeq {
				t.Fatalf("lastSeq %d, at the close %d, stored %d: want all equal", seq, closed.LastSeq, stored)
			}
			ms, err := db.SelectMessages(ctx, bdb, db.MessageFilter{ConversationID: conv.ID})
			if err != nil || len(ms) != stored {
				t.Fatalf("%d messages stored (err %v), want %d", len(ms), err, stored)
			}
		})
	}
}
