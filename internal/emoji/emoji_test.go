package emoji

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    string
		want bool
	}{
		{"thumbs up", "👍", true},
		{"skin tone", "👍🏽", true},
		{"zwj sequence", "👩‍💻", true},
		{"flag with variation selector and zwj", "🏳️‍🌈", true},
		{"country flag", "🇵🇹", true},
		{"keycap", "1️⃣", true},
		{"red heart", "❤️", true},
		{"multi-person skin tones", "🧑🏻‍🤝‍🧑🏿", true},
		{"tag sequence", "🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F", true},
		{"new in 15.1", "🙂‍↔️", true},

		{"empty", "", false},
		{"letter", "a", false},
		{"two emoji", "👍👍", false},
		{"lone skin tone", "🏽", false},
		{"lone hair style", "🦰", false},
		{"unlisted flag pair", "🇦🇦", false},
		{"lone regional indicator", "🇵", false},
		{"heart without VS16 (unqualified)", "❤", false},
		{"keycap without VS16 (unqualified)", "1⃣", false},
		{"minimally-qualified", "🙂‍↔", false},
		{"text around", "hi 👍", false},
		{"trailing space", "👍 ", false},
		{"text presentation selector", "❤\ufe0e", false},
		{"digit", "1", false},
		{"invalid UTF-8", "\xff", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Valid(tc.s); got != tc.want {
				t.Fatalf("Valid(%q) = %v, want %v", tc.s, got, tc.want)
			}
		})
	}
}

// TestTable guards the generated table: the version the contract requires,
// the order binary search needs, and the bound Valid checks first.
func TestTable(t *testing.T) {
	major, minor, _ := strings.Cut(Version, ".")
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(minor)
	if err1 != nil || err2 != nil || ma < 15 || (ma == 15 && mi < 1) {
		t.Fatalf("Version %q: Emoji 15.1 or later is required", Version)
	}
	if !slices.IsSorted(fullyQualified[:]) {
		t.Fatal("fullyQualified is not sorted")
	}
	for _, s := range fullyQualified {
		if len(s) > maxLen {
			t.Fatalf("%q is longer than maxLen %d", s, maxLen)
		}
	}
	// Emoji 15.1 lists 3773 fully-qualified emoji; later versions only add.
	if n := len(fullyQualified); n < 3773 {
		t.Fatalf("table has %d entries, want at least 3773", n)
	}
}
