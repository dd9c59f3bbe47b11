package legacy

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzDecodeSend: no client frame makes the old socket's decoder panic,
// and what it accepts is what the frame says: a JSON object whose message
// is a string that is not blank, with its type upper-cased and trimmed
// (TEXT when missing). The seeds are TestDecodeSend's frames, and run as
// part of go test; go test -fuzz=FuzzDecodeSend explores further.
func FuzzDecodeSend(f *testing.F) {
	for _, s := range []string{
		`{"message": "Hello, when can we start?", "type": "TEXT"}`,
		`{"message": "no type"}`, `{"message": "null type", "type": null}`,
		`{"message": "lower", "type": " text "}`, `{"message": "  padded  "}`,
		`not json`, `{"message": "unterminated"`, `["message"]`, `null`, `{}`,
		`{"message": " \n\t\u00a0 "}`, `{"message": 5}`, `{"message": {"text": "nested"}}`,
		`{"message": "typed", "type": 1}`, `{"message": "a", "message": "b", "type": "ß"}`,
		`{"message": "\ud800 lone", "type": "ǆ"}`, `{"Message": "case", "TYPE": "location"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		text, msgType, notText, ok := decodeSend(data)
		if !ok {
			if text != "" || msgType != "" || notText != "" {
				t.Fatalf("%q: refused but returned (%q, %q, %q)", data, text, msgType, notText)
			}
			return
		}
		// The oracle is encoding/json into plain strings, which repairs
		// what is not text with U+FFFD.
		var f struct {
			Message string `json:"message"`
			Type    string `json:"type"`
		}
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("%q: accepted, but does not decode: %v", data, err)
		}
		if text != f.Message {
			t.Fatalf("%q: text %q, frame says %q", data, text, f.Message)
		}
		if notText == "" && strings.TrimFunc(text, unicode.IsSpace) == "" {
			t.Fatalf("%q: blank text %q accepted", data, text)
		}
		if notText != "" && !strings.ContainsRune(text, utf8.RuneError) {
			t.Fatalf("%q: said not text (%s), but encoding/json repaired nothing in %q", data, notText, text)
		}
		if msgType == "" || msgType != strings.TrimSpace(msgType) || msgType != strings.ToUpper(msgType) {
			t.Fatalf("%q: type %q is not trimmed, upper-case and set", data, msgType)
		}
		if want := strings.ToUpper(strings.TrimSpace(f.Type)); want != "" && msgType != want {
			t.Fatalf("%q: type %q, frame says %q", data, msgType, f.Type)
		}
	})
}
