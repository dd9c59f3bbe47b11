package resolvers

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph/model"
)

// reactionCode names the kind of error the presenter would give err, with
// the field for input errors: "BAD_USER_INPUT emoji", "FORBIDDEN", "".
func reactionCode(err error) string {
	var (
		in *inputError
		fb *forbiddenError
		pc *preconditionError
		nf *notFoundError
	)
	switch {
	case err == nil:
		return ""
	case errors.As(err, &in):
		return CodeBadUserInput + " " + in.Field
	case errors.As(err, &fb):
		return CodeForbidden
	case errors.As(err, &pc):
		return CodeFailedPrecond
	case errors.As(err, &nf):
		return CodeNotFound
	}
	return "other: " + err.Error()
}

func TestCheckEmoji(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"👍", ""},
		{"👍🏽", ""},
		{"👩‍💻", ""},
		{"🇵🇹", ""},
		{"1️⃣", ""},
		{"", "BAD_USER_INPUT emoji"},
		{"a", "BAD_USER_INPUT emoji"},
		{"👍👍", "BAD_USER_INPUT emoji"},
		{"🏽", "BAD_USER_INPUT emoji"},
		{"🇦🇦", "BAD_USER_INPUT emoji"},
		{"hi 👍", "BAD_USER_INPUT emoji"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := reactionCode(checkEmoji("emoji", tc.in)); got != tc.want {
				t.Fatalf("checkEmoji(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestCheckReactable(t *testing.T) {
	at := time.Now()
	for _, tc := range []struct {
		name string
		m    db.Message
		want string
	}{
		{"text", db.Message{ID: "m", MessageType: db.MessageText}, ""},
		{"image", db.Message{ID: "m", MessageType: db.MessageImage}, ""},
		{"system", db.Message{ID: "m", MessageType: db.MessageSystem}, CodeFailedPrecond},
		{"deleted", db.Message{ID: "m", MessageType: db.MessageText, DeletedAt: &at}, CodeFailedPrecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := reactionCode(checkReactable(&tc.m)); got != tc.want {
				t.Fatalf("checkReactable = %q, want %q", got, tc.want)
			}
		})
	}
}

// reactionsOf makes n reactions by profile with distinct emoji.
func reactionsOf(profile string, n int) []*db.Reaction {
	pool := []string{"👍", "❤️", "😂", "😮", "😢", "🙏", "🔥", "🎉", "👀", "💯",
		"✅", "🤝", "👏", "😍", "🤔", "😅", "🙌", "💪", "🚀", "⭐", "🌟"}
	rs := make([]*db.Reaction, n)
	for i := range rs {
		rs[i] = &db.Reaction{MessageID: "m", ProfileID: profile, Emoji: pool[i]}
	}
	return rs
}

func TestCheckReactionLimit(t *testing.T) {
	full := reactionsOf("ana", maxReactionsPerUser)
	for _, tc := range []struct {
		name        string
		rs          []*db.Reaction
		emoji       string
		wantPresent bool
		want        string
	}{
		{"none yet", nil, "👍", false, ""},
		{"one below the cap", reactionsOf("ana", maxReactionsPerUser-1), "🌟", false, ""},
		{"at the cap, new emoji", full, "🌟", false, "BAD_USER_INPUT emoji"},
		{"at the cap, one already there", full, "👍", true, ""},
		{"others' reactions do not count", append(reactionsOf("ben", maxReactionsPerUser), reactionsOf("ana", 1)...), "🌟", false, ""},
		{"the same emoji from someone else is new", reactionsOf("ben", 1), "👍", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			present, err := checkReactionLimit(tc.rs, "ana", tc.emoji)
			if present != tc.wantPresent || reactionCode(err) != tc.want {
				t.Fatalf("checkReactionLimit = %v, %q; want %v, %q", present, reactionCode(err), tc.wantPresent, tc.want)
			}
		})
	}
}

func TestGroupReactions(t *testing.T) {
	r := func(profile, e string) *db.Reaction {
		return &db.Reaction{MessageID: "m", ProfileID: profile, Emoji: e}
	}
	// Oldest first, as SelectReactions returns them.
	rs := []*db.Reaction{r("ben", "🎉"), r("ana", "👍"), r("ben", "👍"), r("carl", "🔥"), r("ana", "🔥")}
	for _, tc := range []struct {
		name   string
		rs     []*db.Reaction
		viewer string
		want   []model.ReactionGroup
	}{
		{"none", nil, "ana", []model.ReactionGroup{}},
		{"ana's view", rs, "ana", []model.ReactionGroup{{Emoji: "🎉", Count: 1}, {Emoji: "👍", Count: 2, ReactedByMe: true}, {Emoji: "🔥", Count: 2, ReactedByMe: true}}},
		{"ben's view", rs, "ben", []model.ReactionGroup{{Emoji: "🎉", Count: 1, ReactedByMe: true}, {Emoji: "👍", Count: 2, ReactedByMe: true}, {Emoji: "🔥", Count: 2}}},
		{"the job-service's view", rs, "", []model.ReactionGroup{{Emoji: "🎉", Count: 1}, {Emoji: "👍", Count: 2}, {Emoji: "🔥", Count: 2}}},
		// Once ben's 🎉 is gone, 👍 holds the earliest reaction still present.
		{"after a removal", rs[1:], "carl", []model.ReactionGroup{{Emoji: "👍", Count: 2}, {Emoji: "🔥", Count: 2, ReactedByMe: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := groupReactions(tc.rs, tc.viewer)
			if got == nil {
				t.Fatal("groupReactions returned nil: the field is a non-null list")
			}
			flat := make([]model.ReactionGroup, len(got))
			for i, g := range got {
				flat[i] = *g
			}
			if !reflect.DeepEqual(flat, tc.want) {
				t.Fatalf("groupReactions = %s, want %s", fmt.Sprint(flat), fmt.Sprint(tc.want))
			}
		})
	}
}
