// Package jsontext decodes JSON without losing what encoding/json silently
// repairs: a string holding a lone surrogate escape (\ud800) or bytes that
// are not UTF-8 becomes U+FFFD there, which would store a character the
// client never sent. Here such a string stays recognisable, so that the
// caller can refuse it naming the field. The GraphQL transports (through
// package coerce) and the old chat socket use it.
//
// It imports the standard library only.
package jsontext

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// InvalidString stands, in decoded variables, for a JSON string that is
// not Unicode text: one holding a lone surrogate escape (\ud800), or bytes
// that are not UTF-8. encoding/json turns both into U+FFFD without a word,
// which would store a character the client never sent; DecodeObject puts
// an InvalidString in its place instead, which no type accepts.
type InvalidString struct {
	// Reason says what is wrong, for the error ("holds a lone surrogate
	// escape \ud800").
	Reason string
}

// DecodeObject decodes a JSON object of GraphQL variables the way gqlgen's
// transports do (numbers as json.Number, so that large ids and Ints are
// not rounded through float64), except that a string which is not Unicode
// text becomes an InvalidString. It fails, as encoding/json does, on
// anything that is not one JSON object; trailing data is the caller's
// concern.
func DecodeObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	// The fast path: almost every body has no \u escape of a surrogate and
	// is valid UTF-8, and then encoding/json lost nothing.
	if utf8.Valid(raw) && !hasSurrogateEscape(raw) {
		return m, nil
	}
	end := int(dec.InputOffset())
	s := &scanner{data: raw[:end], bad: map[string]badString{}}
	s.skipSpace()
	s.value(nil)
	for _, b := range s.order {
		if bad := s.bad[b]; bad.reason != "" {
			mark(m, bad.path, bad.reason)
		}
	}
	return m, nil
}

// CheckString says why lit, one JSON string literal with its quotes as
// encoding/json accepted it, is not Unicode text ("holds a lone surrogate
// escape \ud800", "is not valid UTF-8"), or "" if it is. It is meant for
// an UnmarshalJSON method of a text field.
func CheckString(lit []byte) string {
	if len(lit) == 0 || lit[0] != '"' {
		return ""
	}
	if utf8.Valid(lit) && !hasSurrogateEscape(lit) {
		return ""
	}
	s := &scanner{data: lit}
	return s.str()
}

// hasSurrogateEscape reports a \uD800–\uDFFF escape anywhere in raw
// (inside a string or not: a false alarm only costs the slow path).
func hasSurrogateEscape(raw []byte) bool {
	for {
		i := bytes.Index(raw, []byte(`\u`))
		if i < 0 || i+4 > len(raw) {
			return false
		}
		if c, d := raw[i+2], raw[i+3]; (c == 'd' || c == 'D') && strings.IndexByte("89abcdefABCDEF", d) >= 0 {
			return true
		}
		raw = raw[i+2:]
	}
}

// mark replaces the string at path in m with an InvalidString. A path that
// no longer leads to a string (a later duplicate key replaced it) is left
// alone.
func mark(m map[string]any, path []any, reason string) {
	var cur any = m
	for i, el := range path {
		last := i == len(path)-1
		switch el := el.(type) {
		case string:
			obj, ok := cur.(map[string]any)
			if !ok {
				return
			}
			if last {
				if _, ok := obj[el].(string); ok {
					obj[el] = InvalidString{Reason: reason}
				}
				return
			}
			cur = obj[el]
		case int:
			arr, ok := cur.([]any)
			if !ok || el >= len(arr) {
				return
			}
			if last {
				if _, ok := arr[el].(string); ok {
					arr[el] = InvalidString{Reason: reason}
				}
				return
			}
			cur = arr[el]
		}
	}
}

// badString is the verdict on the last string value seen at one path.
type badString struct {
	path   []any
	reason string
}

// scanner walks JSON text that encoding/json has already accepted and
// notes, for every string value, whether it is Unicode text. Object keys
// are decoded to find the paths; the last value of a duplicate key wins,
// as in encoding/json.
type scanner struct {
	data  []byte
	pos   int
	bad   map[string]badString // by path key
	order []string             // path keys in first-seen order
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\r', '\n':
			s.pos++
		default:
			return
		}
	}
}

// value scans one value at path. Malformed input (which encoding/json would
// have refused) ends the scan early rather than failing.
func (s *scanner) value(path []any) {
	if s.pos >= len(s.data) {
		return
	}
	switch s.data[s.pos] {
	case '{':
		s.pos++
		for {
			s.skipSpace()
			if s.pos >= len(s.data) || s.data[s.pos] == '}' {
				s.pos++
				return
			}
			if s.data[s.pos] == ',' {
				s.pos++
				continue
			}
			start := s.pos
			s.str()
			var key string
			if json.Unmarshal(s.data[start:min(s.pos, len(s.data))], &key) != nil {
				s.pos = len(s.data)
				return
			}
			s.skipSpace()
			if s.pos < len(s.data) && s.data[s.pos] == ':' {
				s.pos++
			}
			s.skipSpace()
			if !s.advances(func() { s.value(append(path[:len(path):len(path)], key)) }) {
				return
			}
		}
	case '[':
		s.pos++
		for i := 0; ; {
			s.skipSpace()
			if s.pos >= len(s.data) || s.data[s.pos] == ']' {
				s.pos++
				return
			}
			if s.data[s.pos] == ',' {
				s.pos++
				continue
			}
			if !s.advances(func() { s.value(append(path[:len(path):len(path)], i)) }) {
				return
			}
			i++
		}
	case '"':
		reason := s.str()
		k := pathKey(path)
		if _, seen := s.bad[k]; !seen {
			s.order = append(s.order, k)
		}
		s.bad[k] = badString{path: path, reason: reason}
	default:
		// A number, true, false or null.
		for s.pos < len(s.data) && !strings.ContainsRune(" \t\r\n,]}", rune(s.data[s.pos])) {
			s.pos++
		}
	}
}

// advances runs scan and reports whether it moved the scanner; if not
// (input encoding/json would have refused), it ends the scan, so that no
// input can make the scanner loop.
func (s *scanner) advances(scan func()) bool {
	before := s.pos
	scan()
	if s.pos == before {
		s.pos = len(s.data)
		return false
	}
	return true
}

// str scans a string from its opening quote past its closing one and says
// why it is not Unicode text, or "" if it is.
func (s *scanner) str() string {
	reason := ""
	note := func(r string) {
		if reason == "" {
			reason = r
		}
	}
	s.pos++ // the opening quote
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return reason
		case c == '\\':
			if s.pos+1 < len(s.data) && s.data[s.pos+1] == 'u' {
				r, n, lone := UnicodeEscape(s.data, s.pos)
				if n == 0 {
					s.pos += 2
					continue
				}
				if lone {
					note(`holds a lone surrogate escape \u` + strconv.FormatInt(int64(r), 16))
				}
				s.pos += n
				continue
			}
			s.pos += 2
		case c < utf8.RuneSelf:
			s.pos++
		default:
			r, n := utf8.DecodeRune(s.data[s.pos:])
			if r == utf8.RuneError && n == 1 {
				note("is not valid UTF-8")
			}
			s.pos += n
		}
	}
	return reason
}

// UnicodeEscape reads the \uXXXX escape at s[i:] (s[i] is the backslash),
// as JSON and GraphQL strings write one: it returns the code point, how
// many bytes the escape takes (12 for a surrogate pair, whose low half it
// takes too; 6 otherwise; 0 when four hex digits do not follow), and
// whether it is a lone surrogate, which no text holds. The JSON reader here
// and the GraphQL document limits share it.
func UnicodeEscape[T string | []byte](s T, i int) (r rune, n int, lone bool) {
	r, ok := hex4(s, i+2)
	if !ok {
		return 0, 0, false
	}
	switch {
	case r >= 0xD800 && r < 0xDC00:
		if i+7 < len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
			if r2, ok := hex4(s, i+8); ok && r2 >= 0xDC00 && r2 <= 0xDFFF {
				return r, 12, false
			}
		}
		return r, 6, true
	case r >= 0xDC00 && r <= 0xDFFF:
		return r, 6, true
	}
	return r, 6, false
}

// hex4 reads four hex digits at s[i:].
func hex4[T string | []byte](s T, i int) (rune, bool) {
	if i < 0 || i+4 > len(s) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(s[i:i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}

// pathKey makes a map key of a path; keys are quoted, so no two paths
// share one.
func pathKey(path []any) string {
	var b strings.Builder
	for _, el := range path {
		switch el := el.(type) {
		case string:
			b.WriteString(strconv.Quote(el))
		case int:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(el))
			b.WriteByte(']')
		}
	}
	return b.String()
}
