// Package emoji tells whether a string is exactly one emoji that Unicode's
// emoji-test.txt lists as fully-qualified: the set keyboards offer, with
// skin tones, ZWJ sequences, flags and keycaps, and without the bare
// components (a lone skin-tone modifier) or the text-style forms that lack
// their variation selector. Reactions use it to refuse anything else.
//
// The table is generated from Unicode's data (see gen.go) and committed, so
// builds need nothing from outside. The package imports only the standard
// library and nothing of jobchat's.
package emoji

import "slices"

//go:generate go run gen.go -out table.go

// Valid reports whether s is exactly one fully-qualified emoji sequence.
func Valid(s string) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	_, found := slices.BinarySearch(fullyQualified[:], s)
	return found
}
