package db_test

import (
	"context"
	"errors"
	"testing"

	"github.com/uptrace/bun"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/db/dbtest"
)

// TestSendUnderContactPolicy: a screened send stores the masked text, the
// original and the flags, and only while the conversation's stored policy
// is the one it was decided under; edits and deletions keep the columns
// in step.
func TestSendUnderContactPolicy(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			bdb := dbtest.New(t, dialect)
			ctx := context.Background()
			c := seedConversation(t, bdb, "job1", "alice", "bob")
			screened := func(client string) *db.Message {
				m := &db.Message{ConversationID: c.ID, SenderID: ptr("alice"), MessageText: "call [hidden]",
					OriginalText: ptr("call 415 555 2671"), MessageType: db.MessageText,
					Flags: db.MessageFlags{db.FlagContactDetails}}
				if client != "" {
					m.ClientMessageID = ptr(client)
				}
				return m
			}

			status, stored, err := db.SelectSendState(ctx, bdb, c.ID, "alice")
			if err != nil || status != db.ConversationOpen || stored != nil {
				t.Fatalf("send state: %v %v %v", status, stored, err)
			}
			if _, _, err := db.SelectSendState(ctx, bdb, c.ID, "carol"); !errors.Is(err, db.ErrNotFound) {
				t.Fatalf("a stranger's send state: %v", err)
			}

			m := screened("")
			if _, err := db.SendUserMessageUnder(ctx, bdb, m, nil); err != nil {
				t.Fatal(err)
			}
			got, err := db.SelectMessage(ctx, bdb, m.ID)
			if err != nil || got.MessageText != "call [hidden]" || got.OriginalText == nil || *got.OriginalText != "call 415 555 2671" ||
				!got.Flags.Has(db.FlagContactDetails) || got.AsWritten() != "call 415 555 2671" {
				t.Fatalf("stored %+v (%v)", got, err)
			}

			// The policy changes: a send decided under the old one stores
			// nothing, with or without a client id.
			err = bdb.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				if _, err := db.LockContactPolicyForUpdate(ctx, tx, c.ID); err != nil {
					return err
				}
				return db.UpdateContactPolicy(ctx, tx, c.ID, db.ContactMask)
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, client := range []string{"", "c-1"} {
				if _, err := db.SendUserMessageUnder(ctx, bdb, screened(client), nil); !errors.Is(err, db.ErrPolicyChanged) {
					t.Fatalf("client id %q: got %v, want ErrPolicyChanged", client, err)
				}
			}
			if seq, _ := db.SelectLastSeq(ctx, bdb, c.ID); seq != 1 {
				t.Fatalf("refused sends moved seq to %d", seq)
			}
			mask := db.ContactMask
			if _, err := db.SendUserMessageUnder(ctx, bdb, screened("c-1"), &mask); err != nil {
				t.Fatalf("under the stored policy: %v", err)
			}
			if p, err := db.LockContactPolicy(ctx, bdb, c.ID); err != nil || p == nil || *p != db.ContactMask {
				t.Fatalf("stored policy %v %v", p, err)
			}
			if err := db.UpdateContactPolicy(ctx, bdb, "nope", db.ContactAllow); !errors.Is(err, db.ErrNotFound) {
				t.Fatalf("unknown conversation: %v", err)
			}

			// An edit replaces text, original and flags; a deletion clears them.
			if changed, err := db.UpdateMessageText(ctx, bdb, got, "see you at 9", nil, nil); err != nil || !changed {
				t.Fatalf("edit: %v %v", changed, err)
			}
			if e, _ := db.SelectMessage(ctx, bdb, m.ID); e.OriginalText != nil || e.Flags != nil || e.MessageText != "see you at 9" {
				t.Fatalf("edited %+v", e)
			}
			if _, err := db.UpdateMessageText(ctx, bdb, got, "x [hidden]", ptr("x a@b.co"), db.MessageFlags{db.FlagContactDetails}); err != nil {
				t.Fatal(err)
			}
			if changed, err := db.UpdateMessageDeleted(ctx, bdb, got); err != nil || !changed {
				t.Fatalf("delete: %v %v", changed, err)
			}
			if d, _ := db.SelectMessage(ctx, bdb, m.ID); d.OriginalText != nil || d.Flags != nil || d.MessageText != "" {
				t.Fatalf("deleted %+v", d)
			}
		})
	}
}
