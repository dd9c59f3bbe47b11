package contact

import (
	"strings"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// Phone numbers. The text is cut into number tokens (runs of digits, and
// digits spelled out: "five", "oh", "double five") joined by the
// separators people put in numbers (spaces, dashes, dots, brackets,
// slashes, and commas between spelled digits). Each run is a candidate;
// libphonenumber decides which parts of it are valid numbers, for the
// detector's region or in international form. A regular expression never
// decides that a number is a phone number.

// numTok is one token of a number run.
type numTok struct {
	start, end int    // bytes of the text
	digits     string // what it stands for; "" for a multiplier
	spelled    bool   // a word: "five"
	soft       bool   // "o" or "oh": a zero only between other digits
	mult       int    // "double" 2, "triple" 3
	// glued: a digit token stuck to letters ("SKU12345678"), which makes
	// it part of a code, not a number.
	gluedLeft, gluedRight bool
	// breaks: a word that is not a digit, which ends any run.
	breaks bool
	// plus: the word "plus", which may start an international number.
	plus bool
}

var digitWords = map[string]string{
	"zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
	"five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}

// Limits of a candidate's digits: E.164 numbers have at most 15, plus an
// international or trunk prefix; 7 is the shortest national number that
// any region's metadata might accept.
const (
	minPhoneDigits = 7
	maxPhoneDigits = 17
)

// numberTokens cuts lower (the lowercased text) into number tokens and the
// words that break runs.
func numberTokens(lower string, toks []numTok) []numTok {
	for i := 0; i < len(lower); {
		c := lower[i]
		switch {
		case isDigit(c):
			j := i
			for j < len(lower) && isDigit(lower[j]) {
				j++
			}
			t := numTok{start: i, end: j, digits: lower[i:j]}
			t.gluedLeft = i > 0 && (lower[i-1] >= 0x80 || lower[i-1] == '_')
			t.gluedRight = j < len(lower) && (lower[j] >= 0x80 || lower[j] == '_')
			toks = append(toks, t)
			i = j
		case isLetter(c):
			j := i
			for j < len(lower) && isLetter(lower[j]) {
				j++
			}
			w := lower[i:j]
			// A word stuck to other letters (another script, or '_') is
			// not a digit word.
			inWord := (i > 0 && (lower[i-1] >= 0x80 || lower[i-1] == '_')) || (j < len(lower) && (lower[j] >= 0x80 || lower[j] == '_'))
			t := numTok{start: i, end: j}
			switch d, ok := digitWords[w]; {
			case inWord || !ok && w != "double" && w != "triple" && w != "plus":
				t.breaks = true
			case w == "plus":
				t.plus, t.spelled = true, true
			case ok:
				t.digits, t.spelled, t.soft = d, true, w == "o" || w == "oh"
			case w == "double":
				t.mult, t.spelled = 2, true
			default:
				t.mult, t.spelled = 3, true
			}
			toks = append(toks, t)
			i = j
		case c >= 0x80:
			_, size := utf8.DecodeRuneInString(lower[i:])
			i += size
		default:
			i++
		}
	}
	// Digits stuck to a word that is not a digit are part of a code.
	for k := range toks {
		t := &toks[k]
		if t.digits == "" || t.spelled {
			continue
		}
		if k > 0 && toks[k-1].breaks && toks[k-1].end == t.start {
			t.gluedLeft = true
		}
		if k+1 < len(toks) && toks[k+1].breaks && toks[k+1].start == t.end {
			t.gluedRight = true
		}
	}
	return toks
}

// joins reports whether the gap between two number tokens keeps them in
// one run.
func joins(gap string, a, b *numTok) bool {
	if utf8.RuneCountInString(gap) > 3 {
		return false
	}
	for _, r := range gap {
		switch r {
		case ' ', '\t', '-', '.', '(', ')', '/', '\u00a0', '\u2013', '\u2014', '\u2012', '\u2212':
		case ',':
			// "five five five, one two …", but not "1, 2, 3" or "1,250,000".
			if !a.spelled && !b.spelled {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// findPhones adds every valid phone number in the text.
func (d *Detector) findPhones(s *scan) {
	s.nums = numberTokens(s.lower, s.nums[:0])
	toks := s.nums
	// Cheap exit: fewer than minPhoneDigits digits in all.
	n := 0
	for i := range toks {
		n += len(toks[i].digits)
	}
	if n < minPhoneDigits {
		return
	}
	start := -1
	flush := func(end int) {
		if start >= 0 {
			d.phonesInRun(s, toks[start:end])
		}
		start = -1
	}
	for i := range toks {
		if toks[i].breaks {
			flush(i)
			continue
		}
		if start >= 0 && !joins(s.lower[toks[i-1].end:toks[i].start], &toks[i-1], &toks[i]) {
			flush(i)
		}
		if start < 0 {
			start = i
		}
	}
	flush(len(toks))
}

// phonesInRun finds the valid numbers of one run, longest first from each
// position, so that "call 415 555 2671 x 3" and "I paid 120 4155552671"
// keep the number and leave the rest.
func (d *Detector) phonesInRun(s *scan, run []numTok) {
	total := 0
	for i := range run {
		total += len(run[i].digits)
	}
	if total < minPhoneDigits {
		return
	}
	var num phonenumbers.PhoneNumber
	for i := 0; i < len(run); {
		found := 0
		if d.canStart(s, run, i) {
			// Only windows short enough to be a number: a run of a
			// thousand spaced digits costs a few windows per position,
			// not a thousand.
			last := i
			for n := 0; last < len(run); last++ {
				n += tokenDigits(&run[last])
				if n > maxPhoneDigits {
					break
				}
			}
			for j := last; j > i; j-- {
				digits, plus, ok := windowDigits(run[i:j])
				if !ok || len(digits) < minPhoneDigits || len(digits) > maxPhoneDigits || !canEnd(s, run, j-1) || looksLikeDate(s.lower, run[i:j]) || isCounting(digits) {
					continue
				}
				from := run[i].start
				if !plus && run[i].digits != "" && !run[i].spelled && from > 0 && s.text[from-1] == '+' {
					plus = true
					from--
				}
				if d.valid(&num, digits, plus) {
					// "(415) 555-2671": the bracket opened before it.
					if from > 0 && s.text[from-1] == '(' && strings.Contains(s.text[from:run[j-1].end], ")") {
						from--
					}
					s.add(from, run[j-1].end, Phone)
					found = j
					break
				}
			}
		}
		if found > 0 {
			i = found
		} else {
			i++
		}
	}
}

// tokenDigits is how many digits t adds to a window: a multiplier adds
// the copies of the digit after it.
func tokenDigits(t *numTok) int {
	if t.mult > 0 {
		return t.mult - 1
	}
	return len(t.digits)
}

// valid asks libphonenumber whether digits (after a '+' if plus) is a
// valid number, national for the detector's region or international.
func (d *Detector) valid(num *phonenumbers.PhoneNumber, digits string, plus bool) bool {
	in := digits
	if plus {
		in = "+" + digits
	}
	if phonenumbers.ParseToNumber(in, d.region, num) == nil && phonenumbers.IsValidNumber(num) {
		return true
	}
	// "0044 7911 123456": the international prefix of most of the world,
	// whatever the region's own.
	if !plus && strings.HasPrefix(digits, "00") && len(digits) > 4 {
		num.Reset()
		return phonenumbers.ParseToNumber("+"+digits[2:], d.region, num) == nil && phonenumbers.IsValidNumber(num)
	}
	return false
}

// windowDigits is the digits a window of tokens stands for, with
// "double"/"triple" applied to the single digit after them. ok is false
// for windows that cannot be a number: a multiplier without a digit after
// it, or a soft zero ("oh") at either end.
func windowDigits(w []numTok) (digits string, plus, ok bool) {
	if w[0].plus {
		plus, w = true, w[1:]
	}
	if len(w) == 0 || w[0].soft || w[len(w)-1].soft || w[len(w)-1].mult > 0 {
		return "", false, false
	}
	var b strings.Builder
	for k := 0; k < len(w); k++ {
		t := &w[k]
		if t.plus {
			return "", false, false
		}
		if t.mult > 0 {
			if k+1 >= len(w) || len(w[k+1].digits) != 1 {
				return "", false, false
			}
			b.WriteString(strings.Repeat(w[k+1].digits, t.mult))
			k++
			continue
		}
		b.WriteString(t.digits)
	}
	return b.String(), plus, true
}

// canStart reports whether a number may start at run[i]: not inside a
// code ("SKU12345678"), and not after a sign that makes it something else:
// "#48213999" (an id), "$1200000" (money), "order 4155552671".
func (d *Detector) canStart(s *scan, run []numTok, i int) bool {
	t := &run[i]
	if t.soft || t.gluedLeft {
		return false
	}
	if i > 0 {
		return true // inside a run: the run's start was checked
	}
	before := strings.TrimRight(s.lower[:t.start], " \t+")
	if before == "" {
		return true
	}
	for _, sign := range []string{"#", "$", "€", "£", "¥", "№", "no.", "nº"} {
		if strings.HasSuffix(before, sign) {
			return false
		}
	}
	return !idWords[lastWord(before)]
}

// canEnd reports whether a number may end at run[j]: not stuck to letters
// and not a percentage.
func canEnd(s *scan, run []numTok, j int) bool {
	t := &run[j]
	if t.gluedRight {
		return false
	}
	after := strings.TrimLeft(s.lower[t.end:], " ")
	return !strings.HasPrefix(after, "%")
}

// idWords are words after which a long number is an id, not a phone
// number: "order 4155552671", "tracking 1Z…".
var idWords = map[string]bool{
	"order": true, "invoice": true, "ref": true, "reference": true, "ticket": true, "tracking": true,
	"receipt": true, "confirmation": true, "sku": true, "serial": true, "model": true, "part": true,
	"job": true, "id": true, "booking": true, "case": true, "policy": true, "permit": true,
}

// lastWord returns the last run of letters of s, if s ends with one
// (after trailing punctuation such as ':' or '.').
func lastWord(s string) string {
	s = strings.TrimRight(s, " :.-#")
	i := len(s)
	for i > 0 && isLetter(s[i-1]) {
		i--
	}
	return s[i:]
}

// looksLikeDate reports a window holding a date: three digit tokens such
// as 12/05/2024, 2024-05-12 or 5.12.24, with one separator between them,
// whose values can be a day, a month and a year.
func looksLikeDate(lower string, w []numTok) bool {
	for k := 0; k+2 < len(w); k++ {
		a, b, c := &w[k], &w[k+1], &w[k+2]
		if a.spelled || b.spelled || c.spelled {
			continue
		}
		g1, g2 := lower[a.end:b.start], lower[b.end:c.start]
		if len(g1) != 1 || g1 != g2 || !strings.Contains("/-.", g1) {
			continue
		}
		x, y, z := atoi(a.digits), atoi(b.digits), atoi(c.digits)
		ymd := len(a.digits) == 4 && y >= 1 && y <= 12 && z >= 1 && z <= 31 && len(c.digits) <= 2
		dmy := len(a.digits) <= 2 && len(b.digits) <= 2 && (len(c.digits) == 2 || len(c.digits) == 4) &&
			x >= 1 && x <= 31 && y >= 1 && y <= 31 && (x <= 12 || y <= 12)
		if ymd || dmy {
			return true
		}
	}
	return false
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s) && i < 9; i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// isCounting reports digits that are a count ("1 2 3 4 5 6 7 8 9 10"),
// which libphonenumber may take for a valid number.
func isCounting(digits string) bool {
	return len(digits) >= minPhoneDigits && strings.Contains("0123456789101112131415161718192021222324252627282930", digits)
}
