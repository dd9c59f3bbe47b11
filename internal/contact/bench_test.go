package contact

import (
	"strings"
	"testing"
)

// BenchmarkFind is the time the check adds to a send: Find on the text of
// one message. "typical" is an ordinary message with numbers in it, the
// common case; "with_phone" one that has a number to validate; "long" a
// 4,000-character message (the default limit) of ordinary chat.
func BenchmarkFind(b *testing.B) {
	d := mustNew(b, "US")
	for _, bm := range []struct{ name, text string }{
		{"typical", "Hi Ana, I can start on Monday at 9. The new tap is $120 and I'll bring 2 buckets, see you then!"},
		{"with_phone", "Hi Ana, I can start on Monday at 9, call me on (415) 555-2671 if anything changes."},
		{"with_email", "Hi Ana, send the photos to ben.w at gmail dot com and I'll quote by Friday."},
		{"long", strings.Repeat("The sink in unit 12 leaks again; I'll be there at 9:30 with 2 new valves ($45). ", 50)},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bm.text)))
			for b.Loop() {
				d.Find(bm.text)
			}
		})
	}
}
