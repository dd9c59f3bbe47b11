package resolvers

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/db/dbtest"
	"github.com/jobchat/jobchat/graph/model"
	"github.com/jobchat/jobchat/internal/auth"
	"github.com/jobchat/jobchat/internal/contact"
)

// TestDecideContact: the policy decision, every policy with and without
// contact details in the text.
func TestDecideContact(t *testing.T) {
	d, err := contact.New(contact.Config{Region: "US"})
	if err != nil {
		t.Fatal(err)
	}
	const (
		withDetails = "call me on 415 555 2671 or ana at gmail dot com"
		masked      = "call me on [hidden] or [hidden]"
		without     = "I can come at 9, the tap is $120"
	)
	flagged := []string{string(db.FlagContactDetails)}
	for _, tc := range []struct {
		policy   db.ContactPolicy
		text     string
		wantText string
		original bool
		flags    []string
		code     string
	}{
		{db.ContactAllow, without, without, false, nil, ""},
		{db.ContactAllow, withDetails, withDetails, false, nil, ""},
		{db.ContactFlag, without, without, false, nil, ""},
		{db.ContactFlag, withDetails, withDetails, false, flagged, ""},
		{db.ContactMask, without, without, false, nil, ""},
		{db.ContactMask, withDetails, masked, true, flagged, ""},
		{db.ContactBlock, without, without, false, nil, ""},
		{db.ContactBlock, withDetails, "", false, nil, CodeContactBlocked},
	} {
		detected := tc.text == withDetails
		t.Run(string(tc.policy)+map[bool]string{true: "/detected", false: "/clean"}[detected], func(t *testing.T) {
			out, err := decideContact(tc.policy, tc.text, d.Find(tc.text), "input.messageText")
			code := ""
			if err != nil {
				code, _ = Classify(context.Background(), err)
			}
			if code != tc.code {
				t.Fatalf("error %v (code %q), want code %q", err, code, tc.code)
			}
			if tc.code != "" {
				e := ErrorPresenter(context.Background(), err)
				if e.Extensions["field"] != "input.messageText" || !strings.Contains(e.Message, "contact details are not allowed in this conversation") {
					t.Fatalf("refusal %q %v", e.Message, e.Extensions)
				}
				return
			}
			if out.text != tc.wantText {
				t.Errorf("text %q, want %q", out.text, tc.wantText)
			}
			if (out.original != nil) != tc.original || tc.original && *out.original != tc.text {
				t.Errorf("original %v, want the text as written: %v", out.original, tc.original)
			}
			var flags []string
			for _, f := range out.flags {
				flags = append(flags, string(f))
			}
			if strings.Join(flags, ",") != strings.Join(tc.flags, ",") {
				t.Errorf("flags %v, want %v", flags, tc.flags)
			}
		})
	}
}

// TestPolicyDefault: a conversation without a policy of its own follows
// the configured default.
func TestPolicyDefault(t *testing.T) {
	mask := db.ContactMask
	for _, tc := range []struct {
		def    db.ContactPolicy
		stored *db.ContactPolicy
		want   db.ContactPolicy
	}{
		{"", nil, db.ContactFlag},
		{db.ContactBlock, nil, db.ContactBlock},
		{db.ContactBlock, &mask, db.ContactMask},
	} {
		r := New(nil, nil, Config{ContactPolicy: tc.def})
		if got := r.policy(tc.stored); got != tc.want {
			t.Errorf("default %q, stored %v: %q, want %q", tc.def, tc.stored, got, tc.want)
		}
	}
}

// TestTextForViewer: a masked message reads as written for its sender
// and the job-service, masked for anyone else (and without a caller); an
// unmasked one reads the same for all. The old chat socket's frames
// follow the same rule.
func TestTextForViewer(t *testing.T) {
	ana := "ana"
	original := "call 415 555 2671"
	masked := &db.Message{ID: "m", SenderID: &ana, MessageText: "call [hidden]", OriginalText: &original}
	plain := &db.Message{ID: "p", SenderID: &ana, MessageText: "hello"}
	for _, tc := range []struct {
		name   string
		c      *auth.Caller
		m      *db.Message
		want   string
		viewKV string
	}{
		{"sender", &auth.Caller{ID: "ana"}, masked, original, "original"},
		{"recipient", &auth.Caller{ID: "ben"}, masked, "call [hidden]", "masked"},
		{"service", &auth.Caller{ID: "job-service", Service: true}, masked, original, "original"},
		{"no caller", nil, masked, "call [hidden]", "masked"},
		{"plain, recipient", &auth.Caller{ID: "ben"}, plain, "hello", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.c != nil {
				ctx = auth.WithCaller(ctx, *tc.c)
				if got := legacyMessage(tc.m, *tc.c).Text; got != tc.want {
					t.Errorf("old socket frame text %q, want %q", got, tc.want)
				}
			}
			if got := textFor(ctx, tc.m); got != tc.want {
				t.Errorf("textFor = %q, want %q", got, tc.want)
			}
			if got := textView(ctx, tc.m); got != tc.viewKV {
				t.Errorf("textView = %q, want %q", got, tc.viewKV)
			}
		})
	}
}

// TestWireCarriesMasking: the wire keeps both texts and the flags, and a
// payload of an instance that predates them still decodes.
func TestWireCarriesMasking(t *testing.T) {
	ana := "ana"
	original := "call 415 555 2671"
	m := &db.Message{ID: "m", ConversationID: "c", Seq: 3, SenderID: &ana, MessageText: "call [hidden]",
		OriginalText: &original, MessageType: db.MessageText, Flags: db.MessageFlags{db.FlagContactDetails}}
	payload, err := json.Marshal(toWireMessage(m, nil))
	if err != nil {
		t.Fatal(err)
	}
	w, err := decodeWireMessage(payload)
	if err != nil {
		t.Fatal(err)
	}
	got := w.message()
	if got.MessageText != m.MessageText || got.OriginalText == nil || *got.OriginalText != original || !got.Flags.Has(db.FlagContactDetails) {
		t.Fatalf("round trip: %+v from %s", got, payload)
	}
	if !strings.Contains(string(payload), `"messageText":"call [hidden]"`) {
		t.Errorf("an old instance would not read the masked text as messageText: %s", payload)
	}
	old := `{"v":1,"id":"m","conversationId":"c","seq":3,"messageText":"hi","messageType":"TEXT","createdAt":"2026-12-07T10:00:00Z"}`
	w, err = decodeWireMessage([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if got := w.message(); got.OriginalText != nil || got.Flags != nil {
		t.Errorf("old payload: %+v", got)
	}
}

// BenchmarkSendContactDetails: one sender's send whose text carries a
// phone number, under MASK: the detector, the read of the policy and the
// guarded send. Compare BenchmarkSendMessage/<dialect>/senders=1, a send
// without details, which pays only the detector.
func BenchmarkSendContactDetails(b *testing.B) {
	for _, dialect := range dbtest.Dialects(b) {
		b.Run(dialect, func(b *testing.B) {
			r, conv := benchResolver(b, dialect)
			ctx := context.Background()
			if err := db.UpdateContactPolicy(ctx, r.db, conv, db.ContactMask); err != nil {
				b.Fatal(err)
			}
			text := "On my way, call me on (415) 555-2671 if the gate is locked."
			in := model.SendMessageInput{ConversationID: conv, MessageText: &text}
			caller := auth.Caller{ID: "ana", Name: "Ana"}
			b.ReportAllocs()
			for b.Loop() {
				m, err := r.send(ctx, caller, db.MessageText, in)
				if err != nil {
					b.Fatal(err)
				}
				if m.OriginalText == nil {
					b.Fatalf("not masked: %+v", m)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
		})
	}
}
