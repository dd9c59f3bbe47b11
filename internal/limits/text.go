package limits

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vektah/gqlparser/v2/gqlerror"
)

// checkText refuses a document that is not UTF-8 or whose strings hold a
// \u escape of a lone surrogate, which the GraphQL spec does not allow and
// gqlparser turns into U+FFFD. Block strings take no escapes, so a \u in
// one is text; they are skipped.
func checkText(doc string) *gqlerror.Error {
	if !utf8.ValidString(doc) {
		i := 0
		for i < len(doc) {
			r, n := utf8.DecodeRuneInString(doc[i:])
			if r == utf8.RuneError && n == 1 {
				break
			}
			i += n
		}
		return parseError("the document is not valid UTF-8 (at byte offset %d)", i)
	}
	if !strings.Contains(doc, `\u`) {
		return nil
	}
	// A small lexer of strings and comments: enough to know where a \u
	// escape is one.
	for i := 0; i < len(doc); i++ {
		switch c := doc[i]; {
		case c == '#':
			for i < len(doc) && doc[i] != '\n' && doc[i] != '\r' {
				i++
			}
		case strings.HasPrefix(doc[i:], `"""`):
			end := blockEnd(doc, i+3)
			i = end - 1
		case c == '"':
			for i++; i < len(doc) && doc[i] != '"' && doc[i] != '\n'; i++ {
				if doc[i] != '\\' || i+1 >= len(doc) {
					continue
				}
				if doc[i+1] != 'u' {
					i++ // the escaped character
					continue
				}
				r, ok := hex4(doc, i+2)
				if !ok {
					i++
					continue
				}
				switch {
				case r >= 0xD800 && r < 0xDC00:
					if r2, ok := hex4(doc, i+8); ok && strings.HasPrefix(doc[i+6:], `\u`) && r2 >= 0xDC00 && r2 <= 0xDFFF {
						i += 11
						continue
					}
					return parseError(`a string holds a lone surrogate escape \u%x (at byte offset %d), which is not text`, r, i)
				case r >= 0xDC00 && r <= 0xDFFF:
					return parseError(`a string holds a lone surrogate escape \u%x (at byte offset %d), which is not text`, r, i)
				}
				i += 5
			}
		}
	}
	return nil
}

// blockEnd returns the offset just past the block string whose content
// starts at i; \""" inside is escaped.
func blockEnd(doc string, i int) int {
	for i < len(doc) {
		switch {
		case strings.HasPrefix(doc[i:], `\"""`):
			i += 4
		case strings.HasPrefix(doc[i:], `"""`):
			return i + 3
		default:
			i++
		}
	}
	return len(doc)
}

func hex4(s string, i int) (rune, bool) {
	if i < 0 || i+4 > len(s) {
		return 0, false
	}
	n, err := strconv.ParseUint(s[i:i+4], 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}
