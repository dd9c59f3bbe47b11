package contact

import "strings"

// Links to messaging apps and social profiles: a known host with a path
// ("wa.me/14155552671", "https://t.me/ben_w", "instagram.com/ana.fixes"),
// or an app's own URL scheme ("whatsapp://send?phone=…", "tg://resolve?…",
// "tel:+1…"). A bare host ("instagram.com") points at no one and is not a
// contact detail.

// messagingHosts are matched as the whole host or its last labels
// ("chat.whatsapp.com", "www.facebook.com"), never inside another name
// ("box.com" is not "x.com").
var messagingHosts = setOf(`wa.me wa.link whatsapp.com t.me telegram.me telegram.dog telegram.org
	signal.me signal.group viber.com vb.me m.me messenger.com instagram.com instagr.am ig.me facebook.com
	fb.com fb.me snapchat.com tiktok.com twitter.com x.com linkedin.com discord.gg discord.com discordapp.com
	skype.com line.me wechat.com kik.me threads.net calendly.com`)

// messagingSchemes open an app or a channel directly: "whatsapp://…",
// "tel:+1…". true: the scheme is followed by "//".
var messagingSchemes = map[string]bool{
	"whatsapp": true, "tg": true, "viber": true, "sgnl": true, "fb-messenger": true, "weixin": true,
	"line": true, "snapchat": true, "instagram": true,
	"skype": false, "mailto": false, "tel": false, "sms": false, "facetime": false, "facetime-audio": false,
}

// findLinks adds links to messaging apps: it looks at each ':' for a
// scheme before it and at each '/' for a known host before it.
func findLinks(s *scan) {
	t := s.lower
	for c := strings.IndexByte(t, ':'); c >= 0; {
		start := c
		for start > 0 && (isAlnum(t[start-1]) || t[start-1] == '-') {
			start--
		}
		slashes, known := messagingSchemes[t[start:c]]
		from := c + 1
		if slashes {
			if !strings.HasPrefix(t[from:], "//") {
				known = false
			}
			from += 2
		}
		if known && start < c {
			if end := linkEnd(t, from); end > from {
				s.add(start, end, Link)
			}
		}
		next := strings.IndexByte(t[c+1:], ':')
		if next < 0 {
			break
		}
		c += 1 + next
	}
	for c := strings.IndexByte(t, '/'); c >= 0; {
		start := c
		for start > 0 && isDomainByte(t[start-1]) {
			start--
		}
		if host := t[start:c]; messagingHost(host) {
			if end := linkEnd(t, c+1); end > c+1 {
				s.add(withScheme(t, start), end, Link)
				c = end - 1
			}
		}
		next := strings.IndexByte(t[c+1:], '/')
		if next < 0 {
			break
		}
		c += 1 + next
	}
}

// messagingHost reports a known host or a subdomain of one.
func messagingHost(host string) bool {
	for {
		if messagingHosts[host] {
			return true
		}
		dot := strings.IndexByte(host, '.')
		if dot < 0 {
			return false
		}
		host = host[dot+1:]
	}
}

// withScheme moves a link's start back over "https://" or "http://".
func withScheme(t string, start int) int {
	for _, sch := range []string{"https://", "http://"} {
		if start >= len(sch) && t[start-len(sch):start] == sch {
			return start - len(sch)
		}
	}
	return start
}

// linkEnd is where a link that continues at from ends: at a space or a
// quote, without the punctuation that ends a sentence.
func linkEnd(t string, from int) int {
	end := from
	for end < len(t) {
		c := t[end]
		if c <= ' ' || c == '"' || c == '\'' || c == '<' || c == '>' || c == '`' {
			break
		}
		end++
	}
	for end > from && strings.IndexByte(".,;:!?)]}", t[end-1]) >= 0 {
		end--
	}
	return end
}
