package resolvers

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph/model"
)

// wantField checks that err is BAD_USER_INPUT on field, or nil when field
// is "".
func wantField(t *testing.T, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		return
	}
	var ie *inputError
	if !errors.As(err, &ie) || ie.Field != field {
		t.Fatalf("want BAD_USER_INPUT on %s, got %v", field, err)
	}
}

// TestCheckText: one row per rule a stored text follows.
func TestCheckText(t *testing.T) {
	tests := []struct {
		name, s  string
		required bool
		refused  bool
		want     string
	}{
		{"plain", "Hi Ana, I can start on Monday.", true, false, ""},
		{"right-to-left text with marks", "שלום \u200fעולם\u200e مرحبا", true, false, ""},
		{"emoji and accents", "olá 👋🏽 café", true, false, ""},
		{"at the limit", strings.Repeat("é", 10), true, false, ""},
		{"over the limit", strings.Repeat("é", 11), true, true, "at most 10 characters (got 11)"},
		{"NUL", "a\x00b", true, true, "NUL"},
		{"invalid UTF-8", "a\xffb", true, true, "valid UTF-8"},
		{"a surrogate encoded as UTF-8", "a\xed\xa0\x80b", true, true, "valid UTF-8"},
		{"U+FFFD is a character", "a\ufffdb", true, false, ""},
		{"blank", " \t\n", true, true, "blank"},
		{"blank but optional", " ", false, false, ""},
		{"empty but optional", "", false, false, ""},
		{"LRE", "a\u202ab", true, true, "U+202A"},
		{"RLE", "a\u202bb", true, true, "U+202B"},
		{"PDF", "a\u202cb", true, true, "U+202C"},
		{"LRO", "a\u202db", true, true, "U+202D"},
		{"RLO, the invoice trick", "invoice \u202efdp.exe", true, true, "bidirectional control characters (U+202E)"},
		{"LRI", "a\u2066b", true, true, "U+2066"},
		{"RLI", "a\u2067b", true, true, "U+2067"},
		{"FSI", "a\u2068b", true, true, "U+2068"},
		{"PDI", "a\u2069b", true, true, "U+2069"},
		{"just past the controls", "a\u2029\u206ab", true, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := 40
			if strings.Contains(tt.name, "limit") {
				limit = 10
			}
			err := checkText("input.messageText", tt.s, limit, tt.required)
			if !tt.refused {
				wantField(t, err, "")
				return
			}
			wantField(t, err, "input.messageText")
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "input.messageText: ") {
				t.Errorf("message %q, want it to name the field and say %q", err, tt.want)
			}
		})
	}
}

// TestCheckKey: clientMessageId and idempotencyKey are 1–128 printable
// ASCII characters.
func TestCheckKey(t *testing.T) {
	tests := []struct {
		name, s string
		ok      bool
	}{
		{"uuid", "0193a5c1-7b2e-7c41-9d1e-3f5a6b7c8d9e", true},
		{"one character", "k", true},
		{"every printable", " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~", true},
		{"at the limit", strings.Repeat("k", 128), true},
		{"over the limit", strings.Repeat("k", 129), false},
		{"empty", "", false},
		{"spaces only", "   ", false},
		{"a control character", "job-42\ncompleted", false},
		{"tab", "a\tb", false},
		{"DEL", "a\x7fb", false},
		{"NUL", "a\x00b", false},
		{"non-ASCII", "clé", false},
		{"bidi override", "a\u202eb", false},
		{"invalid UTF-8", "a\xff", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkKey("input.clientMessageId", tt.s)
			if tt.ok {
				wantField(t, err, "")
			} else {
				wantField(t, err, "input.clientMessageId")
			}
		})
	}
}

// TestCheckID: ids are 1–64 characters of text.
func TestCheckID(t *testing.T) {
	wantField(t, checkID("conversationId", strings.Repeat("c", 64)), "")
	wantField(t, checkID("conversationId", strings.Repeat("c", 65)), "conversationId")
	wantField(t, checkID("conversationId", ""), "conversationId")
	wantField(t, checkID("conversationId", "a\u202eb"), "conversationId")
	if MaxIDLength != 64 {
		t.Fatalf("MaxIDLength %d", MaxIDLength)
	}
}

// TestValidateSendKeysAndText: the send's own fields follow the rules
// above, each error naming its field.
func TestValidateSendKeysAndText(t *testing.T) {
	r := &Resolver{cfg: Config{MaxMessageChars: 100}}
	text := func(s string) *string { return &s }
	tests := []struct {
		name  string
		in    model.SendMessageInput
		field string
	}{
		{"fine", model.SendMessageInput{ConversationID: "c1", MessageText: text("hi"), ClientMessageID: text("m-1")}, ""},
		{"bidi in the text", model.SendMessageInput{ConversationID: "c1", MessageText: text("invoice \u202efdp.exe")}, "input.messageText"},
		{"NUL in the text", model.SendMessageInput{ConversationID: "c1", MessageText: text("a\x00")}, "input.messageText"},
		{"control character in clientMessageId", model.SendMessageInput{ConversationID: "c1", MessageText: text("hi"), ClientMessageID: text("m\x01")}, "input.clientMessageId"},
		{"long clientMessageId", model.SendMessageInput{ConversationID: "c1", MessageText: text("hi"), ClientMessageID: text(strings.Repeat("m", 129))}, "input.clientMessageId"},
		{"long conversationId", model.SendMessageInput{ConversationID: strings.Repeat("c", 65), MessageText: text("hi")}, "input.conversationId"},
		{"bidi in a location label", model.SendMessageInput{ConversationID: "c1", MessageType: ptr(db.MessageLocation),
			Location: &model.LocationInput{Latitude: 1, Longitude: 2, Label: text("\u2067x")}}, "input.location.label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.validateSend(tt.in)
			wantField(t, err, tt.field)
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestCursors: cursors round-trip, and anything else is BAD_USER_INPUT on
// the argument.
func TestCursors(t *testing.T) {
	c := messageCursor(42)
	if seq, err := parseMessageCursor("after", &c); err != nil || seq != 42 {
		t.Fatalf("message cursor: %d %v", seq, err)
	}
	conv := &db.Conversation{ID: "conv-1", ActivityAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}
	cc := conversationCursor(conv)
	got, err := parseConversationCursor("after", &cc)
	if err != nil || got.ID != "conv-1" || !got.ActivityAt.Equal(conv.ActivityAt) {
		t.Fatalf("conversation cursor: %+v %v", got, err)
	}
	for _, bad := range []string{"", "!!", "bTo", "bTow", "bTotMQ", "YzpgfGE", cc + "x", c[:len(c)-1]} {
		wantField(t, func() error { _, err := parseMessageCursor("after", &bad); return err }(), "after")
		wantField(t, func() error { _, err := parseConversationCursor("before", &bad); return err }(), "before")
	}
}

// FuzzCheckText: whatever checkText accepts is text a screen shows as
// written: valid UTF-8, no NUL, no bidi control, not over the limit, and
// for a required text not blank. It never panics.
func FuzzCheckText(f *testing.F) {
	for _, s := range []string{"hi", "", " ", "a\x00b", "\xff", "invoice \u202efdp.exe", "\u2066", "שלום\u200f", "\xed\xa0\x80", strings.Repeat("é", 11)} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, required bool) {
		err := checkText("f", s, 10, required)
		if err != nil {
			wantField(t, err, "f")
			return
		}
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) || strings.IndexFunc(s, isBidiControl) >= 0 || utf8.RuneCountInString(s) > 10 {
			t.Fatalf("%q accepted", s)
		}
		if required && strings.TrimSpace(s) == "" && strings.TrimFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' }) == "" {
			t.Fatalf("blank %q accepted", s)
		}
	})
}

// FuzzCheckKey: what checkKey accepts is 1–128 bytes of printable ASCII.
func FuzzCheckKey(f *testing.F) {
	for _, s := range []string{"k", "", " ", "m-1\n", "clé", strings.Repeat("k", 129)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if checkKey("k", s) != nil {
			return
		}
		if len(s) < 1 || len(s) > 128 || strings.TrimSpace(s) == "" {
			t.Fatalf("%q accepted", s)
		}
		for _, c := range []byte(s) {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("%q accepted", s)
			}
		}
	})
}

// FuzzCursors: parsing any string never panics, refuses with
// BAD_USER_INPUT on the argument, and what it accepts is a cursor this API
// makes: encoding the result gives the same cursor back.
func FuzzCursors(f *testing.F) {
	f.Add(messageCursor(1))
	f.Add(messageCursor(1 << 62))
	f.Add(conversationCursor(&db.Conversation{ID: "c|1", ActivityAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}))
	for _, s := range []string{"", "bTow", "bTotMQ", "YzpgfGE", "Yzp8", "bTox\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if seq, err := parseMessageCursor("after", &s); err != nil {
			wantField(t, err, "after")
		} else if seq <= 0 {
			t.Fatalf("%q: seq %d", s, seq)
		} else if again, err := parseMessageCursor("after", ptr(messageCursor(seq))); err != nil || again != seq {
			t.Fatalf("%q: seq %d does not round-trip (%d, %v)", s, seq, again, err)
		}
		cc, err := parseConversationCursor("after", &s)
		if err != nil {
			wantField(t, err, "after")
			return
		}
		back := conversationCursor(&db.Conversation{ID: cc.ID, ActivityAt: cc.ActivityAt})
		again, err := parseConversationCursor("after", &back)
		if err != nil || again.ID != cc.ID || !again.ActivityAt.Equal(cc.ActivityAt) {
			t.Fatalf("%q: %+v does not round-trip (%+v, %v)", s, cc, again, err)
		}
	})
}

// TestUploadNameNoBidi: an uploaded file's name, which its client chose,
// keeps no bidi control ("invoice\u202efdp.png" would read as
// "invoicegnp.pdf"); they become underscores like control characters.
func TestUploadNameNoBidi(t *testing.T) {
	name, _ := fileNames("invoice\u202efdp\u2066x.png", ".png")
	if strings.IndexFunc(name, isBidiControl) >= 0 || name != "invoice_fdp_x.png" {
		t.Fatalf("name %q", name)
	}
}
