// Package contact finds contact details in chat messages, so that a
// conversation's contact policy can flag, mask or refuse a message that
// would move a job off the platform: phone numbers (international, and
// national for one default region, validated with libphonenumber's
// metadata through github.com/nyaruka/phonenumbers), e-mail addresses,
// links to messaging apps (wa.me, t.me, m.me, …), handles offered as a way
// to talk ("my IG is @ana.fixes", "telegram: @ben_w"), and the obfuscated
// forms people use to get past a filter: digits spelled out or spaced
// ("four one five, five five five …", "4 1 5-5 5 5 …") and e-mail
// addresses written out ("ana at gmail dot com", "ana (at) gmail [dot] com").
//
// A Detector reports where each detail is, as byte ranges of the text, so
// that Mask can replace exactly those. Plain numbers (prices, dates, times,
// street numbers, job ids, quantities, numbers that look like phone
// numbers but are not valid ones) are not contact details.
//
// It imports the standard library and github.com/nyaruka/phonenumbers only,
// and knows nothing of messages, storage or GraphQL.
package contact

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// Kind is what a span holds.
type Kind uint8

// The kinds of contact details.
const (
	Phone Kind = iota + 1
	Email
	Link
	Handle
)

func (k Kind) String() string {
	switch k {
	case Phone:
		return "phone"
	case Email:
		return "email"
	case Link:
		return "link"
	case Handle:
		return "handle"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Span is one contact detail: text[Start:End], in bytes.
type Span struct {
	Start, End int
	Kind       Kind
}

// DefaultRegion is the region national phone numbers are read for when
// Config.Region is empty.
const DefaultRegion = "US"

// Hidden is what Mask puts in place of a contact detail.
const Hidden = "[hidden]"

// Config configures a Detector. Its zero value means the defaults.
type Config struct {
	// Region is the ISO 3166-1 alpha-2 code of the region whose national
	// phone number formats are recognised ("US": "(415) 555-2671");
	// numbers in international form (+44 …) are recognised whatever it
	// is. Empty: DefaultRegion.
	Region string
}

// Detector finds contact details. It is safe for concurrent use.
type Detector struct {
	region string
}

// New returns a Detector for cfg, or an error if its region is not one
// libphonenumber knows.
func New(cfg Config) (*Detector, error) {
	region := strings.ToUpper(strings.TrimSpace(cfg.Region))
	if region == "" {
		region = DefaultRegion
	}
	if !phonenumbers.GetSupportedRegions()[region] {
		return nil, fmt.Errorf("contact: %q is not a region with phone number metadata (want an ISO 3166-1 alpha-2 code such as US, GB or DE)", cfg.Region)
	}
	return &Detector{region: region}, nil
}

// Region is the region national phone numbers are read for.
func (d *Detector) Region() string { return d.region }

// Find returns the contact details in text, in order and not overlapping
// (details that overlap, such as a phone number inside a wa.me link, are
// one span, of the kind of the one that starts first). Nil: none.
func (d *Detector) Find(text string) []Span {
	if len(text) == 0 {
		return nil
	}
	s := scans.Get().(*scan)
	s.text, s.lower, s.spans = text, asciiLower(text), s.spans[:0]
	d.findPhones(s)
	findEmails(s)
	findLinks(s)
	findHandles(s)
	var out []Span
	if len(s.spans) > 0 {
		out = slices.Clone(merge(s.spans))
	}
	s.text, s.lower = "", ""
	scans.Put(s)
	return out
}

// scans keeps the buffers of finished scans: Find runs on every send.
var scans = sync.Pool{New: func() any { return new(scan) }}

// scan is one Find: the text, its ASCII-lowercased copy (the same length,
// so offsets hold in both) and the spans found so far.
type scan struct {
	text, lower string
	spans       []Span
	// Buffers of the number and word scans.
	nums  []numTok
	words []wordTok
}

func (s *scan) add(start, end int, k Kind) {
	if start < end {
		s.spans = append(s.spans, Span{Start: start, End: end, Kind: k})
	}
}

// covered reports whether [start, end) lies inside a span already found.
func (s *scan) covered(start, end int) bool {
	for _, sp := range s.spans {
		if sp.Start <= start && end <= sp.End {
			return true
		}
	}
	return false
}

// merge sorts spans and joins those that overlap or touch.
func merge(spans []Span) []Span {
	if len(spans) < 2 {
		return spans
	}
	slices.SortFunc(spans, func(a, b Span) int {
		if a.Start != b.Start {
			return a.Start - b.Start
		}
		return b.End - a.End
	})
	out := spans[:1]
	for _, sp := range spans[1:] {
		last := &out[len(out)-1]
		if sp.Start <= last.End {
			last.End = max(last.End, sp.End)
			continue
		}
		out = append(out, sp)
	}
	return out
}

// Mask returns text with each span replaced by with. Spans must be in
// order and not overlap, as Find returns them.
func Mask(text string, spans []Span, with string) string {
	if len(spans) == 0 {
		return text
	}
	var b strings.Builder
	b.Grow(len(text))
	at := 0
	for _, sp := range spans {
		if sp.Start < at || sp.End > len(text) || sp.Start > sp.End {
			continue // not from Find on this text
		}
		b.WriteString(text[at:sp.Start])
		b.WriteString(with)
		at = sp.End
	}
	b.WriteString(text[at:])
	return b.String()
}

// asciiLower lowercases ASCII letters only, so that every byte offset of
// the result is the same as in s.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool  { return isDigit(c) || isLetter(c) }

// isWordByte reports bytes that continue a word: ASCII letters and digits,
// '_' and any byte of a non-ASCII character (letters of other scripts).
func isWordByte(c byte) bool { return isAlnum(c) || c == '_' || c >= 0x80 }
