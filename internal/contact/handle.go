package contact

import "strings"

// Handles offered as a way to talk: a name on a messaging app or social
// network, next to that app's name, as people write them:
//
//	"my IG is ana.fixes", "telegram: @ben_w", "add me on snap: benw22",
//	"@ana.fixes on insta", "ana_fixes on instagram", "hit me up on IG @ana"
//
// A handle needs the app's name nearby; a bare "@ben" is a mention, and
// "my WhatsApp is broken" or "the signal is weak" are not handles (after
// "is", the word must not be an ordinary one, and ambiguous app names such
// as "signal" or "snap" need "my" before them or a colon after them).

// wordTok is a word of the text: letters, digits, '_', '.' and '@'.
type wordTok struct {
	start, end int
	w          string // lowercased, without a sentence's final dots
}

func isHandleByte(c byte) bool { return isAlnum(c) || c == '_' || c == '.' || c == '@' }

func wordTokens(lower string, toks []wordTok) []wordTok {
	for i := 0; i < len(lower); {
		if !isHandleByte(lower[i]) {
			i++
			continue
		}
		j := i
		for j < len(lower) && isHandleByte(lower[j]) {
			j++
		}
		end := j
		for end > i && lower[end-1] == '.' {
			end--
		}
		if end > i {
			toks = append(toks, wordTok{start: i, end: end, w: lower[i:end]})
		}
		i = j
	}
	return toks
}

// platform strength: strong names are unambiguous ("instagram"), weak
// ones are also ordinary words ("signal", "snap").
const (
	notPlatform = iota
	weakPlatform
	strongPlatform
)

var platformNames = map[string]int{
	"whatsapp": strongPlatform, "watsapp": strongPlatform, "whatsap": strongPlatform, "wapp": strongPlatform,
	"telegram": strongPlatform, "viber": strongPlatform, "instagram": strongPlatform, "insta": strongPlatform,
	"ig": strongPlatform, "snapchat": strongPlatform, "facebook": strongPlatform, "fb": strongPlatform,
	"messenger": strongPlatform, "tiktok": strongPlatform, "twitter": strongPlatform, "discord": strongPlatform,
	"skype": strongPlatform, "wechat": strongPlatform, "kik": strongPlatform, "linkedin": strongPlatform,
	"imessage": strongPlatform, "gmail": strongPlatform, "hotmail": strongPlatform, "yahoo": strongPlatform,
	"outlook": strongPlatform, "icloud": strongPlatform, "email": weakPlatform,
	"signal": weakPlatform, "snap": weakPlatform, "sc": weakPlatform, "threads": weakPlatform, "line": weakPlatform,
	"wa": weakPlatform, "tg": weakPlatform, "gram": weakPlatform, "tele": weakPlatform,
}

// platformAt reports whether toks[k] names an app, joining the names
// people split: "whats app", "face book", "insta gram", "snap chat".
func platformAt(toks []wordTok, k int) int {
	w := strings.TrimPrefix(toks[k].w, "@")
	if k > 0 {
		if first, ok := splitNames[w]; ok && toks[k-1].w == first {
			return strongPlatform
		}
	}
	return platformNames[w]
}

// splitNames are apps' names written as two words, by their second word.
var splitNames = map[string]string{"app": "whats", "book": "face", "gram": "insta", "chat": "snap", "tok": "tik"}

// fillers may stand between an app's name and the handle.
var fillers = map[string]bool{
	"handle": true, "username": true, "user": true, "name": true, "id": true, "account": true, "acc": true,
	"profile": true, "is": true, "@": true, "me": true, "at": true, "on": true, "as": true, "under": true,
	"my": true, "address": true,
}

// contactVerbs ask the other side to reach out: "add me on snap …".
var contactVerbs = map[string]bool{
	"add": true, "dm": true, "message": true, "msg": true, "text": true, "txt": true, "ping": true, "find": true,
	"follow": true, "hmu": true, "contact": true, "reach": true, "call": true, "write": true, "chat": true,
	"hit": true, "search": true, "friend": true, "look": true, "catch": true, "talk": true,
}

// findHandles adds handles offered next to an app's name.
func findHandles(s *scan) {
	s.words = wordTokens(s.lower, s.words[:0])
	toks := s.words
	var platforms []int
	for k := range toks {
		if platformAt(toks, k) != notPlatform {
			platforms = append(platforms, k)
		}
	}
	if len(platforms) == 0 && !strings.Contains(s.lower, "@") {
		return
	}
	for _, k := range platforms {
		if h, ok := handleAfter(s.lower, toks, k); ok {
			s.add(toks[h].start, toks[h].end, Handle)
		}
		if h, ok := handleBefore(toks, k); ok {
			s.add(toks[h].start, toks[h].end, Handle)
		}
	}
	// "@ana.fixes" near an app's name or an invitation ("add me @ana").
	for k := range toks {
		t := toks[k]
		if len(t.w) < 3 || t.w[0] != '@' || !isHandle(t.w[1:]) || s.covered(t.start, t.end) {
			continue
		}
		if nearPlatform(platforms, k, 8) || invitedNear(toks, k, 6) {
			s.add(t.start, t.end, Handle)
		}
	}
}

// handleAfter looks for "<app> [handle|username|…] [is|:|@] <handle>".
func handleAfter(lower string, toks []wordTok, k int) (int, bool) {
	strength := platformAt(toks, k)
	n := k + 1
	colon, sawIs, sawAs, sawMy, sawMe, named := false, false, false, false, false, false
	for ; n < len(toks) && n <= k+4; n++ {
		if marks(lower[toks[n-1].end:toks[n].start]) {
			colon = true
		}
		if !fillers[toks[n].w] {
			break
		}
		switch toks[n].w {
		case "is":
			sawIs = true
		case "as", "under":
			sawAs = true
		case "my":
			sawMy = true
		case "me":
			sawMe = sawMe || n == k+1
		case "handle", "username", "user", "id", "account", "acc", "profile":
			named = true
		}
	}
	if n >= len(toks) || n > k+4 {
		return 0, false
	}
	// A sentence ends between the name and the word: "…on IG. Thanks".
	if strings.ContainsAny(lower[toks[k].end:toks[n].start], ".!?\n") && !colon {
		return 0, false
	}
	cand := toks[n].w
	at := strings.HasPrefix(cand, "@")
	name := strings.TrimPrefix(cand, "@")
	if !isHandle(name) || platformNames[name] != notPlatform {
		return 0, false
	}
	marked := looksMarked(name)
	switch {
	case at:
		return n, true
	case colon:
		return n, !commonWords[name]
	case sawIs:
		// "my IG is ana.fixes", "on telegram my username is ben_w",
		// "whatsapp, username is wes_paints"; not "instagram is great".
		return n, (sawMy || named || possessiveBefore(toks, k)) && !commonWords[name]
	case sawAs:
		// "I'm on telegram as ben_w".
		return n, !commonWords[name] && (marked || strength == strongPlatform)
	default:
		// "add me on snap benw22", "hmu on insta ana_fixes", and the
		// app's name as the verb: "kik me at wes_paints".
		if !(sawMe || verbBefore(toks, k, 4)) || commonWords[name] {
			return 0, false
		}
		return n, marked || strength == strongPlatform && len(name) >= 4
	}
}

// marks reports a gap that introduces what follows, as a colon does:
// "IG: ana", "insta - ana", "telegram -> ben_w", "id=ben".
func marks(gap string) bool {
	if strings.ContainsAny(gap, ":=") || strings.Contains(gap, "->") {
		return true
	}
	// A dash between spaces, not one inside a word ("insta-famous").
	g := strings.TrimSpace(gap)
	return (g == "-" || g == "\u2013" || g == "\u2014") && g != gap
}

// handleBefore looks for "<handle> on <app>" and "<handle> is my <app>",
// where the handle must look like one ("ana_fixes", "ben.w22").
func handleBefore(toks []wordTok, k int) (int, bool) {
	var h int
	switch {
	case k >= 2 && (toks[k-1].w == "on" || toks[k-1].w == "via"):
		h = k - 2
	case k >= 3 && toks[k-1].w == "my" && toks[k-2].w == "is":
		h = k - 3
	default:
		return 0, false
	}
	name := strings.TrimPrefix(toks[h].w, "@")
	if !isHandle(name) || commonWords[name] || platformNames[name] != notPlatform {
		return 0, false
	}
	return h, strings.HasPrefix(toks[h].w, "@") || looksMarked(name)
}

// isHandle reports a name a handle can be: letters, digits, '_' and '.',
// at most 30, with a letter, no '@' inside (that is an e-mail address).
func isHandle(name string) bool {
	if name == "" || len(name) > 30 || strings.Contains(name, "@") {
		return false
	}
	letter := false
	for i := 0; i < len(name); i++ {
		if isLetter(name[i]) {
			letter = true
		}
	}
	return letter
}

// looksMarked reports a name with what sets handles apart from words: a
// digit, '_' or '.' inside.
func looksMarked(name string) bool {
	return strings.ContainsAny(name, "0123456789_") || strings.Contains(strings.Trim(name, "."), ".")
}

func possessiveBefore(toks []wordTok, k int) bool {
	for i := k - 1; i >= 0 && i >= k-3; i-- {
		switch toks[i].w {
		case "my", "our", "mine":
			return true
		}
	}
	return false
}

func verbBefore(toks []wordTok, k, within int) bool {
	for i := k - 1; i >= 0 && i >= k-within; i-- {
		if contactVerbs[toks[i].w] {
			return true
		}
	}
	return false
}

func nearPlatform(platforms []int, k, within int) bool {
	for _, p := range platforms {
		if p != k && p >= k-within && p <= k+within {
			return true
		}
	}
	return false
}

// invitedNear reports an invitation such as "add me", "follow me", "dm me"
// or "hmu" near toks[k].
func invitedNear(toks []wordTok, k, within int) bool {
	for i := max(0, k-within); i < len(toks) && i <= k+within; i++ {
		if i == k {
			continue
		}
		w := toks[i].w
		if w == "hmu" {
			return true
		}
		if contactVerbs[w] && i+1 < len(toks) && toks[i+1].w == "me" {
			return true
		}
	}
	return false
}
