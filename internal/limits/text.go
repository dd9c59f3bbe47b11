package limits

import (
	"strings"
	"unicode/utf8"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/jobchat/jobchat/internal/jsontext"
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
				r, n, lone := jsontext.UnicodeEscape(doc, i)
				if n == 0 {
					i++
					continue
				}
				if lone {
					return parseError(`a string holds a lone surrogate escape \u%x (at byte offset %d), which is not text`, r, i)
				}
				i += n - 1
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
