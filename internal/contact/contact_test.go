package contact

import (
	"strings"
	"testing"
)

func mustNew(tb testing.TB, region string) *Detector {
	tb.Helper()
	d, err := New(Config{Region: region})
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// found renders Find's spans as "kind:text" for comparison.
func found(d *Detector, text string) []string {
	var out []string
	for _, sp := range d.Find(text) {
		out = append(out, sp.Kind.String()+":"+text[sp.Start:sp.End])
	}
	return out
}

func TestFind(t *testing.T) {
	d := mustNew(t, "US")
	tests := []struct {
		name, text string
		want       []string
	}{
		// Phone numbers, national for the region.
		{"us dashes", "my cell is 212-555-0147", []string{"phone:212-555-0147"}},
		{"us brackets", "Call me at (415) 555-2671 when you get this", []string{"phone:(415) 555-2671"}},
		{"us dots", "415.555.2671 anytime", []string{"phone:415.555.2671"}},
		{"us run together", "Text me 6465550198 ok", []string{"phone:6465550198"}},
		{"us trunk prefix", "Here's my number: 1-617-555-0122", []string{"phone:1-617-555-0122"}},
		{"us slashes", "Call me: 415/555/2671", []string{"phone:415/555/2671"}},
		{"two numbers", "Cell: 503.555.0129 | Office: 503.555.0130", []string{"phone:503.555.0129", "phone:503.555.0130"}},
		{"number after a price", "I paid 120 4155552671", []string{"phone:4155552671"}},
		// International.
		{"plus uk", "My WhatsApp is +44 7911 123456", []string{"phone:+44 7911 123456"}},
		{"plus de", "+49 151 23456789", []string{"phone:+49 151 23456789"}},
		{"plus fr", "mon numéro: +33 6 12 34 56 78", []string{"phone:+33 6 12 34 56 78"}},
		{"00 prefix", "Call 0044 7911 123456 from the US", []string{"phone:0044 7911 123456"}},
		{"us idd", "dial 011 44 7911 123456", []string{"phone:011 44 7911 123456"}},
		// Obfuscated.
		{"spelled", "four one five, five five five, two six seven one", []string{"phone:four one five, five five five, two six seven one"}},
		{"spelled oh", "two one two five five five oh one four seven", []string{"phone:two one two five five five oh one four seven"}},
		{"spaced digits", "4 1 5-5 5 5-2 6 7 1 call me", []string{"phone:4 1 5-5 5 5-2 6 7 1"}},
		{"mixed", "call 415 five five five 2671", []string{"phone:415 five five five 2671"}},
		{"glued words", "4one5 5five5 2six7one", []string{"phone:4one5 5five5 2six7one"}},
		{"double triple", "seven one eight, triple five, zero one three three", []string{"phone:seven one eight, triple five, zero one three three"}},
		{"spelled plus", "plus four four seven nine one one one two three four five six", []string{"phone:plus four four seven nine one one one two three four five six"}},
		{"dashes of other widths", "3 1 2 – 5 5 5 – 0 1 6 3", []string{"phone:3 1 2 – 5 5 5 – 0 1 6 3"}},
		// E-mail addresses.
		{"email", "email me at ana.fixes@gmail.com!", []string{"email:ana.fixes@gmail.com"}},
		{"email plus", "carla.p+jobs@outlook.com", []string{"email:carla.p+jobs@outlook.com"}},
		{"email upper", "ANA.SILVA@GMAIL.COM", []string{"email:ANA.SILVA@GMAIL.COM"}},
		{"email at dot", "ana at gmail dot com", []string{"email:ana at gmail dot com"}},
		{"email brackets", "ana (at) gmail [dot] com", []string{"email:ana (at) gmail [dot] com"}},
		{"email braces", "jsmith {at} hotmail {dot} com", []string{"email:jsmith {at} hotmail {dot} com"}},
		{"email spaced @", "mike @ protonmail . com", []string{"email:mike @ protonmail . com"}},
		{"email provider only", "ana_fixes at gmail", []string{"email:ana_fixes at gmail"}},
		{"email dotted local", "email me at ana dot silva at gmail dot com", []string{"email:ana dot silva at gmail dot com"}},
		{"email upper words", "carla AT outlook DOT com", []string{"email:carla AT outlook DOT com"}},
		// Links.
		{"wa.me", "wa.me/14155552671", []string{"link:wa.me/14155552671"}},
		{"t.me with scheme", "join https://t.me/anafixes.", []string{"link:https://t.me/anafixes"}},
		{"subdomain", "chat.whatsapp.com/Gx7sK2Lm9QpR", []string{"link:chat.whatsapp.com/Gx7sK2Lm9QpR"}},
		{"www", "https://www.instagram.com/wes.paints/ ok", []string{"link:https://www.instagram.com/wes.paints/"}},
		{"scheme", "whatsapp://send?phone=14155552671", []string{"link:whatsapp://send?phone=14155552671"}},
		{"tel", "tel:+14155552671", []string{"link:tel:+14155552671"}},
		{"in brackets", "(wa.me/447911123456)", []string{"link:wa.me/447911123456"}},
		// Handles.
		{"ig is", "my IG is @ana.fixes", []string{"handle:@ana.fixes"}},
		{"telegram colon", "telegram: @ben_w", []string{"handle:@ben_w"}},
		{"snap colon", "add me on snap: x", []string{"handle:x"}},
		{"verb on app", "add me on snap benw22", []string{"handle:benw22"}},
		{"app as verb", "kik me at wes_paints", []string{"handle:wes_paints"}},
		{"handle on app", "ana_fixes on insta", []string{"handle:ana_fixes"}},
		{"at handle near app", "@ana.fixes on instagram, dm me there", []string{"handle:@ana.fixes"}},
		{"username is", "on telegram my username is ben_w", []string{"handle:ben_w"}},
		{"as", "I'm on telegram as ben_w", []string{"handle:ben_w"}},
		{"dash", "Insta - ana.fixes", []string{"handle:ana.fixes"}},
		{"split app name", "my whats app is ben_w22", []string{"handle:ben_w22"}},
		// Several.
		{"several", "call 415 555 2671 or write to ana@gmail.com",
			[]string{"phone:415 555 2671", "email:ana@gmail.com"}},
		{"number inside link", "whatsapp me at wa.me/14155552671", []string{"link:wa.me/14155552671"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := found(d, tt.text)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("Find(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

// TestFindNothing: numbers and words that are not contact details.
func TestFindNothing(t *testing.T) {
	d := mustNew(t, "US")
	for _, text := range []string{
		// Prices, dates, times.
		"I can do it for $120", "Total is $1,250.00 including materials", "Would you take 1200 for both rooms?",
		"$4155552671", "can you come on 12/05?", "I'm free 2024-05-12 in the morning",
		"from 12/05/2024 to 12/06/2024", "let's say 12/05/2024 14:30", "between 8 and 5", "from 08:00 to 17:00",
		"Tue 12/10 10:00-12:00", "our lease ends 31.12.2025",
		// Addresses, ids, quantities.
		"I live at 42 Oak Street", "123 Main St, Springfield, IL 62704", "Job #48213 is confirmed",
		"ticket #4155552671", "order 4155552671 shipped", "The serial is SN4155552671", "need 12 tiles 30x30",
		"120 x 80 x 45 cm", "50% deposit", "I counted 1 2 3 4 5 6 7 8 9 10 broken tiles", "4155552671%",
		"see IMG_4155552671.jpg",
		// Phone-shaped but not valid.
		"123-456-7890", "000-000-0000", "999 999 9999", "555-1234", "1234567", "12345678901234567890",
		// Spelled numbers in sentences.
		"I need one or two more days", "one, two, three, done!", "oh no, the pipe burst again",
		// Apps without a handle, "at" and "@".
		"do you have whatsapp?", "my whatsapp is broken", "the signal is weak in the basement",
		"snap the old pipe off", "text me on whatsapp tomorrow", "my instagram is private", "IG is great",
		"insta-famous plumber", "I'll be at the house at 5", "meet me at home depot", "@Ben thanks!",
		"@ 5pm works", "price @ $40/hr", "the plumber at gmail's office", "send me an email",
		// Links that are not messaging apps, or point at no one.
		"https://www.homedepot.com/p/123", "instagram.com is blocked at work", "box.com/s/abc",
		"t.media/x", "contel:123",
		// Nothing at all.
		"", " ", "ok",
	} {
		if got := found(d, text); len(got) > 0 {
			t.Errorf("Find(%q) = %q, want nothing", text, got)
		}
	}
}

// TestRegion: national numbers are read for the detector's region;
// international ones whatever it is.
func TestRegion(t *testing.T) {
	gb := mustNew(t, "gb")
	if gb.Region() != "GB" {
		t.Errorf("Region() = %q", gb.Region())
	}
	if got := found(gb, "ring me on 07911 123456"); len(got) != 1 || got[0] != "phone:07911 123456" {
		t.Errorf("GB national: %q", got)
	}
	if got := found(gb, "or +1 415 555 2671"); len(got) != 1 {
		t.Errorf("international from GB: %q", got)
	}
	us := mustNew(t, "")
	if us.Region() != DefaultRegion {
		t.Errorf("default region %q", us.Region())
	}
	if got := found(us, "ring me on 07911 123456"); len(got) != 0 {
		t.Errorf("a UK national number in the US: %q", got)
	}
	for _, bad := range []string{"XX", "USA", "1"} {
		if _, err := New(Config{Region: bad}); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}

func TestMask(t *testing.T) {
	d := mustNew(t, "US")
	tests := []struct{ in, want string }{
		{"call 415 555 2671 or write to ana@gmail.com, thanks", "call [hidden] or write to [hidden], thanks"},
		{"my IG is @ana.fixes 😀", "my IG is [hidden] 😀"},
		{"café – ana (at) gmail [dot] com – ñ", "café – [hidden] – ñ"},
		{"nothing here", "nothing here"},
	}
	for _, tt := range tests {
		if got := Mask(tt.in, d.Find(tt.in), Hidden); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMerge(t *testing.T) {
	got := merge([]Span{{10, 20, Phone}, {0, 5, Email}, {15, 30, Link}, {30, 32, Handle}, {40, 41, Handle}})
	want := []Span{{0, 5, Email}, {10, 32, Phone}, {40, 41, Handle}}
	if len(got) != len(want) {
		t.Fatalf("merge = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("merge = %v, want %v", got, want)
		}
	}
}

// TestFindLongInput: the worst input for the number scan, a maximal
// message of spaced digits, still takes milliseconds, not seconds (the
// test has no clock: it just has to finish), and finds the number in it.
func TestFindLongInput(t *testing.T) {
	d := mustNew(t, "US")
	text := strings.Repeat("1 2 3 ", 600) + " call 4 1 5 5 5 5 2 6 7 1"
	if got := found(d, text); len(got) == 0 {
		t.Errorf("no number found in a long run")
	}
}

func TestFindConcurrent(t *testing.T) {
	d := mustNew(t, "US")
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 50 {
				if len(d.Find("call (415) 555-2671 or ana at gmail dot com")) != 2 {
					t.Error("concurrent Find differs")
					return
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}
