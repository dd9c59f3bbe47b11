package resolvers

import (
	"context"
	"testing"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph/model"
	"github.com/jobchat/jobchat/internal/auth"
)

// statusPointers is one participant's (read, delivered) pair.
type statusPointers struct{ read, delivered int64 }

func statusParticipants(ana, ben statusPointers) []*db.Participant {
	return []*db.Participant{
		{ProfileID: "ana", LastReadSeq: ana.read, LastDeliveredSeq: ana.delivered},
		{ProfileID: "ben", LastReadSeq: ben.read, LastDeliveredSeq: ben.delivered},
	}
}

// TestStatusOfMessage holds Message.status to Semantics 3: the pointers of
// everyone but the sender decide (both, for a SYSTEM message), read beats
// delivered, READ is exactly isRead, and pushed messages get the same.
func TestStatusOfMessage(t *testing.T) {
	ana := "ana"
	tests := []struct {
		name     string
		sender   *string // nil: a SYSTEM message
		seq      int64
		ana, ben statusPointers
		want     model.MessageStatus
	}{
		{"sent: the recipient has neither", &ana, 5, statusPointers{5, 5}, statusPointers{4, 4}, model.MessageStatusSent},
		{"sent: nothing at all", &ana, 1, statusPointers{1, 1}, statusPointers{0, 0}, model.MessageStatusSent},
		{"delivered, not read", &ana, 5, statusPointers{5, 5}, statusPointers{4, 5}, model.MessageStatusDelivered},
		{"delivered past it", &ana, 5, statusPointers{5, 5}, statusPointers{0, 9}, model.MessageStatusDelivered},
		{"read", &ana, 5, statusPointers{5, 5}, statusPointers{5, 5}, model.MessageStatusRead},
		{"read past it", &ana, 5, statusPointers{5, 5}, statusPointers{7, 7}, model.MessageStatusRead},
		// A row whose delivered pointer lags (written before it existed)
		// still counts what was read as received.
		{"read with a lagging delivered pointer", &ana, 5, statusPointers{5, 5}, statusPointers{5, 0}, model.MessageStatusRead},
		{"a lagging delivered pointer, a newer message", &ana, 6, statusPointers{6, 6}, statusPointers{5, 0}, model.MessageStatusSent},
		{"the sender's own pointers do not count", &ana, 5, statusPointers{0, 0}, statusPointers{5, 5}, model.MessageStatusRead},
		{"system: both read", nil, 3, statusPointers{3, 3}, statusPointers{3, 3}, model.MessageStatusRead},
		{"system: one has read, the other received", nil, 3, statusPointers{3, 3}, statusPointers{2, 3}, model.MessageStatusDelivered},
		{"system: one has read, the other nothing", nil, 3, statusPointers{3, 3}, statusPointers{2, 2}, model.MessageStatusSent},
		{"system: both received", nil, 3, statusPointers{1, 3}, statusPointers{2, 4}, model.MessageStatusDelivered},
		{"system: neither", nil, 3, statusPointers{0, 0}, statusPointers{0, 0}, model.MessageStatusSent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &db.Message{ConversationID: "c", Seq: tt.seq, SenderID: tt.sender}
			ps := statusParticipants(tt.ana, tt.ben)
			got := messageStatus(m, ps)
			if got != tt.want {
				t.Fatalf("messageStatus = %s, want %s", got, tt.want)
			}
			if read := readByOthers(m, ps); read != (got == model.MessageStatusRead) {
				t.Fatalf("isRead = %v but status = %s: the two must agree", read, got)
			}
			// The feed computes the state of pushed messages itself; it must
			// not drift from the resolver's rule.
			if pushed := statusOf(stateOf(m, ps, nil)); pushed != got {
				t.Fatalf("pushed messages get status %s, the resolver %s", pushed, got)
			}
		})
	}
}

// TestStatusPointerFields covers the Conversation pointer fields: members
// see their own pointers and the other participant's, services and
// strangers see null.
func TestStatusPointerFields(t *testing.T) {
	conv := &db.Conversation{ID: "c", Participants: statusParticipants(statusPointers{3, 4}, statusPointers{1, 2})}
	conv.Participants[1].LastDeliveredSeq = 0 // ben's row lags its read pointer
	type pointers struct{ myDelivered, otherRead, otherDelivered *int }
	n := func(v int) *int { return &v }
	tests := []struct {
		name   string
		caller auth.Caller
		want   pointers
	}{
		{"ana", auth.Caller{ID: "ana"}, pointers{n(4), n(1), n(1)}},
		{"ben", auth.Caller{ID: "ben"}, pointers{n(1), n(3), n(4)}},
		{"stranger", auth.Caller{ID: "mallory"}, pointers{}},
		{"service", auth.Caller{ID: "ana", Service: true}, pointers{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := auth.WithCaller(context.Background(), tt.caller)
			var got pointers
			var err error
			if got.myDelivered, err = myPointer(ctx, conv, deliveredPointer); err != nil {
				t.Fatal(err)
			}
			if got.otherRead, err = otherPointer(ctx, conv, readPointer); err != nil {
				t.Fatal(err)
			}
			if got.otherDelivered, err = otherPointer(ctx, conv, deliveredPointer); err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct {
				name      string
				got, want *int
			}{
				{"myLastDeliveredSeq", got.myDelivered, tt.want.myDelivered},
				{"otherLastReadSeq", got.otherRead, tt.want.otherRead},
				{"otherLastDeliveredSeq", got.otherDelivered, tt.want.otherDelivered},
			} {
				if (f.got == nil) != (f.want == nil) || (f.got != nil && *f.got != *f.want) {
					t.Errorf("%s = %v, want %v", f.name, statusDeref(f.got), statusDeref(f.want))
				}
			}
		})
	}
}

func statusDeref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
