package contact

import "strings"

// E-mail addresses: plain ones by a scan around each '@', written-out ones
// ("ana at gmail dot com", "ana (at) gmail [dot] com", "ana @ gmail . com")
// by a pattern checked against known top-level domains and mail
// providers, since "meet me at the house" must not count.

// findEmails adds plain and written-out e-mail addresses.
func findEmails(s *scan) {
	findPlainEmails(s)
	findSpelledEmails(s)
}

func isLocalByte(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

func isDomainByte(c byte) bool { return isAlnum(c) || c == '.' || c == '-' }

// findPlainEmails adds local@domain.tld.
func findPlainEmails(s *scan) {
	t := s.lower
	for at := strings.IndexByte(t, '@'); at >= 0; {
		start := at
		for start > 0 && isLocalByte(t[start-1]) {
			start--
		}
		for start < at && !isAlnum(t[start]) {
			start++
		}
		end := at + 1
		for end < len(t) && isDomainByte(t[end]) {
			end++
		}
		for end > at+1 && (t[end-1] == '.' || t[end-1] == '-') {
			end--
		}
		if start < at && plainDomain(t[at+1:end]) {
			s.add(start, end, Email)
		}
		next := strings.IndexByte(t[at+1:], '@')
		if next < 0 {
			break
		}
		at += 1 + next
	}
}

// plainDomain reports a domain with at least two labels, the last of two
// or more letters.
func plainDomain(d string) bool {
	dot := strings.LastIndexByte(d, '.')
	if dot <= 0 || len(d)-dot-1 < 2 {
		return false
	}
	for i := dot + 1; i < len(d); i++ {
		if !isLetter(d[i]) {
			return false
		}
	}
	return true
}

// findSpelledEmails adds written-out addresses: a local part, a stand-in
// for '@' ("at", "(at)", "[at]", " @ "), and a domain whose labels are
// joined by stand-ins for '.' ("dot", "[dot]", " . "). It is a scan from
// each stand-in for '@', not a regular expression over the whole text:
// most messages have an "at" in them, and this runs on every send.
func findSpelledEmails(s *scan) {
	t := s.lower
	for i := 0; i < len(t); i++ {
		sepStart, sepEnd, bracketed, ok := atSepAt(t, i)
		if !ok {
			continue
		}
		local, ok := localBefore(t, sepStart)
		if !ok {
			continue
		}
		end, ok := spelledDomainEnd(t, labelsAfter(t, sepEnd))
		// "the plumber at gmail's office": a provider's name in a sentence.
		if ok && end < len(t) && (t[end] == '\'' || strings.HasPrefix(t[end:], "\u2019")) {
			ok = false
		}
		// A bare "at" must follow something that is not an ordinary word.
		if !ok || !bracketed && !localLooksReal(t[local:sepStart]) {
			continue
		}
		// "ana dot silva at gmail dot com": the local part's own dots.
		for {
			w, wEnd, ok := dottedWordBefore(t, local)
			if !ok || commonWords[t[w:wEnd]] {
				break
			}
			local = w
		}
		s.add(local, end, Email)
		i = end - 1
	}
}

// atSepAt reports a stand-in for '@' starting at t[i]: "(at)", "[ at ]",
// "{at}", "<at>", "(@)", " at " and " @ " (the word "at", or '@' with
// space on at least one side). start and end are its bytes, with the
// spaces before and after it.
func atSepAt(t string, i int) (start, end int, bracketed, ok bool) {
	switch c := t[i]; c {
	case '(', '[', '{', '<':
		j := skipSpaces(t, i+1)
		switch {
		case strings.HasPrefix(t[j:], "at"):
			j += 2
		case strings.HasPrefix(t[j:], "@"):
			j++
		default:
			return 0, 0, false, false
		}
		j = skipSpaces(t, j)
		if j >= len(t) || t[j] != closing(c) {
			return 0, 0, false, false
		}
		return spacesBefore(t, i), skipSpaces(t, j+1), true, true
	case 'a':
		if strings.HasPrefix(t[i:], "at") && i > 0 && isSpace(t[i-1]) && i+2 < len(t) && isSpace(t[i+2]) {
			return spacesBefore(t, i), skipSpaces(t, i+2), false, true
		}
	case '@':
		before := i > 0 && isSpace(t[i-1])
		after := i+1 < len(t) && isSpace(t[i+1])
		if before || after {
			return spacesBefore(t, i), skipSpaces(t, i+1), false, true
		}
	}
	return 0, 0, false, false
}

func closing(open byte) byte {
	switch open {
	case '(':
		return ')'
	case '[':
		return ']'
	case '{':
		return '}'
	}
	return '>'
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpaces(t string, i int) int {
	for i < len(t) && isSpace(t[i]) {
		i++
	}
	return i
}

func spacesBefore(t string, i int) int {
	for i > 0 && isSpace(t[i-1]) {
		i--
	}
	return i
}

// localBefore returns where the local part that ends at end starts: a
// run of local-part bytes starting with a letter or digit, not glued to
// a word of another script.
func localBefore(t string, end int) (int, bool) {
	start := end
	for start > 0 && isLocalByte(t[start-1]) {
		start--
	}
	if start > 0 && t[start-1] >= 0x80 {
		return 0, false
	}
	for start < end && !isAlnum(t[start]) {
		start++
	}
	return start, start < end
}

// labelList is a domain's labels, as byte ranges.
type labelList struct {
	at [8][2]int
	n  int
}

// labelsAfter reads a domain's labels from t[i]: letters, digits and '-',
// joined by stand-ins for '.'.
func labelsAfter(t string, i int) labelList {
	var labels labelList
	for labels.n < len(labels.at) {
		j := i
		if j >= len(t) || !isAlnum(t[j]) {
			break
		}
		for j < len(t) && (isAlnum(t[j]) || t[j] == '-') {
			j++
		}
		labels.at[labels.n] = [2]int{i, j}
		labels.n++
		next, ok := dotSepAt(t, j)
		if !ok {
			break
		}
		i = next
	}
	return labels
}

// dotSepAt reports a stand-in for '.' at t[i] ('.', " dot ", "(dot)",
// "[dot]", "{dot}", "<dot>", spaces around allowed) and where the next
// label starts.
func dotSepAt(t string, i int) (int, bool) {
	j := skipSpaces(t, i)
	if j >= len(t) {
		return 0, false
	}
	switch c := t[j]; c {
	case '.':
		return skipSpaces(t, j+1), true
	case '(', '[', '{', '<':
		k := skipSpaces(t, j+1)
		if !strings.HasPrefix(t[k:], "dot") {
			return 0, false
		}
		k = skipSpaces(t, k+3)
		if k >= len(t) || t[k] != closing(c) {
			return 0, false
		}
		return skipSpaces(t, k+1), true
	case 'd':
		if j > i && strings.HasPrefix(t[j:], "dot") && j+3 < len(t) && isSpace(t[j+3]) {
			return skipSpaces(t, j+3), true
		}
	}
	return 0, false
}

// dottedWordBefore reports a word and a stand-in for '.' just before a
// local part ("ana dot " before "silva"): where the word starts and ends.
func dottedWordBefore(t string, local int) (start, end int, ok bool) {
	i := spacesBefore(t, local)
	switch {
	case i > 0 && t[i-1] == '.':
		i--
	case i > 0 && strings.IndexByte(")]}>", t[i-1]) >= 0:
		j := spacesBefore(t, i-1)
		if j < 3 || t[j-3:j] != "dot" {
			return 0, 0, false
		}
		j = spacesBefore(t, j-3)
		if j == 0 || strings.IndexByte("([{<", t[j-1]) < 0 {
			return 0, 0, false
		}
		i = j - 1
	case i < local && i >= 4 && t[i-3:i] == "dot" && isSpace(t[i-4]):
		i -= 3
	default:
		return 0, 0, false
	}
	end = spacesBefore(t, i)
	start, ok = localBefore(t, end)
	return start, end, ok && end-start >= 2
}

// localLooksReal rejects the words that stand before a plain "at" in
// ordinary sentences ("meet me at gmail's office" aside, "I'm at home dot
// com" is rare; "look at this" is not).
func localLooksReal(local string) bool {
	return len(local) >= 2 && !commonWords[local]
}

// spelledDomainEnd checks a written-out domain's labels and returns
// where the address ends: after the last known top-level domain, or after
// the provider's name when only that is given ("ana at gmail").
func spelledDomainEnd(t string, list labelList) (int, bool) {
	labels := list.at[:list.n]
	if len(labels) == 0 {
		return 0, false
	}
	for k := len(labels) - 1; k >= 1; k-- {
		if topLevelDomains[t[labels[k][0]:labels[k][1]]] {
			return labels[k][1], true
		}
	}
	if mailProviders[t[labels[0][0]:labels[0][1]]] {
		return labels[0][1], true
	}
	return 0, false
}

var topLevelDomains = setOf(`com net org io co uk de fr es it nl be ch at pl pt br mx ar cl pe ca au nz in us me info biz edu gov
	ru ie se no dk fi jp cn kr za ng ke eg tr gr ro hu cz sk ua il ae sa app dev xyz online site email live ai ly tv`)

var mailProviders = setOf(`gmail googlemail yahoo ymail rocketmail hotmail outlook msn icloud aol protonmail proton pm gmx
	yandex zoho fastmail tutanota tuta hey comcast verizon sbcglobal bellsouth btinternet orange web mailbox`)

func setOf(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}
