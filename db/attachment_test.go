package db_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/db/dbtest"
)

func TestAttachments(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			bdb := dbtest.New(t, dialect)
			ctx := context.Background()
			c := seedConversation(t, bdb, "job1", "alice", "bob")
			other := seedConversation(t, bdb, "job2", "alice", "carol")
			upload := func(conv, who string) *db.UploadedFile {
				t.Helper()
				id := db.NewID()
				a := &db.UploadedFile{ID: id, ConversationID: conv, UploaderID: who, FileKey: conv + "/" + id + "/p.jpg",
					ThumbKey: ptr(conv + "/" + id + "/thumb.jpg"), ContentType: "image/jpeg", Name: "p.jpg", SizeBytes: 1234,
					Width: ptr(640), Height: ptr(480)}
				if err := db.InsertAttachment(ctx, bdb, a); err != nil {
					t.Fatal(err)
				}
				return a
			}
			send := func(conv, who string, a *db.UploadedFile) (*db.Message, error) {
				m := &db.Message{ConversationID: conv, SenderID: ptr(who), MessageType: db.MessageImage}
				m.WithAttachment(a)
				_, err := db.SendUserMessage(ctx, bdb, m)
				return m, err
			}

			a := upload(c.ID, "alice")
			m, err := send(c.ID, "alice", a)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := db.SelectAttachment(ctx, bdb, a.ID)
			if err != nil || stored.MessageID == nil || *stored.MessageID != m.ID {
				t.Fatalf("attachment after send: %+v, %v", stored, err)
			}
			ms, err := db.SelectMessages(ctx, bdb, db.MessageFilter{ConversationID: c.ID})
			if err != nil || len(ms) != 1 {
				t.Fatal(ms, err)
			}
			got := ms[0]
			if got.AttachmentURL != nil || *got.AttachmentKey != a.FileKey || *got.AttachmentThumbKey != *a.ThumbKey ||
				*got.AttachmentWidth != 640 || *got.AttachmentHeight != 480 || *got.AttachmentFileName != "p.jpg" ||
				*got.AttachmentMimeType != "image/jpeg" || *got.AttachmentSizeBytes != 1234 || !got.HasAttachment() {
				t.Fatalf("message attachment: %+v", got)
			}

			// Sent once only; never by someone else or to another
			// conversation; a refused send stores nothing and keeps the seq.
			for _, tc := range []struct {
				name, conv, who string
				a               *db.UploadedFile
			}{
				{"again", c.ID, "alice", a},
				{"by the other participant", c.ID, "bob", upload(c.ID, "alice")},
				{"to another conversation", other.ID, "alice", upload(c.ID, "alice")},
			} {
				if _, err := send(tc.conv, tc.who, tc.a); !errors.Is(err, db.ErrAttachmentTaken) {
					t.Fatalf("%s: err = %v, want ErrAttachmentTaken", tc.name, err)
				}
			}
			if seq, err := db.SelectLastSeq(ctx, bdb, c.ID); err != nil || seq != 1 {
				t.Fatalf("last seq %d, %v after refused sends", seq, err)
			}

			// The sweep: unsent uploads before the cutoff, oldest first;
			// a sent one is never deleted.
			cutoff := time.Now().Add(time.Hour)
			unsent, err := db.SelectUnsentAttachments(ctx, bdb, cutoff, 10)
			if err != nil || len(unsent) != 2 {
				t.Fatalf("unsent: %d, %v", len(unsent), err)
			}
			if early, _ := db.SelectUnsentAttachments(ctx, bdb, time.Now().Add(-time.Hour), 10); len(early) != 0 {
				t.Fatalf("uploads younger than the cutoff listed: %d", len(early))
			}
			if deleted, err := db.DeleteUnsentAttachment(ctx, bdb, a.ID); err != nil || deleted {
				t.Fatalf("sent attachment deleted: %v, %v", deleted, err)
			}
			for _, u := range unsent {
				if deleted, err := db.DeleteUnsentAttachment(ctx, bdb, u.ID); err != nil || !deleted {
					t.Fatalf("delete unsent: %v, %v", deleted, err)
				}
			}
			if _, err := db.SelectAttachment(ctx, bdb, unsent[0].ID); !errors.Is(err, db.ErrNotFound) {
				t.Fatalf("swept attachment still there: %v", err)
			}

			// Deleting the message clears its attachment for everyone, and
			// its upload's row goes, once.
			if changed, err := db.UpdateMessageDeleted(ctx, bdb, m); err != nil || !changed || m.HasAttachment() {
				t.Fatalf("delete message: %v, %v, %+v", changed, err, m)
			}
			if gone, err := db.DeleteSentAttachment(ctx, bdb, a.ID, "another-message"); err != nil || gone != nil {
				t.Fatalf("deleted for another message: %+v, %v", gone, err)
			}
			if gone, err := db.DeleteSentAttachment(ctx, bdb, a.ID, m.ID); err != nil || gone == nil || gone.FileKey != a.FileKey {
				t.Fatalf("delete sent attachment: %+v, %v", gone, err)
			}
			if gone, err := db.DeleteSentAttachment(ctx, bdb, a.ID, m.ID); err != nil || gone != nil {
				t.Fatalf("deleted twice: %+v, %v", gone, err)
			}
			ms, _ = db.SelectMessages(ctx, bdb, db.MessageFilter{ConversationID: c.ID})
			if ms[0].HasAttachment() || ms[0].AttachmentWidth != nil {
				t.Fatalf("deleted message keeps its attachment: %+v", ms[0])
			}
		})
	}
}
