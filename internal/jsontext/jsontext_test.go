package jsontext

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeObject(t *testing.T) {
	tests := []struct {
		name, raw string
		want      map[string]any
	}{
		{"plain", `{"a":"x","n":1.5}`, map[string]any{"a": "x", "n": json.Number("1.5")}},
		{"pair", `{"a":"\ud83d\ude00"}`, map[string]any{"a": "😀"}},
		{"lone high", `{"a":"x\ud800"}`, map[string]any{"a": InvalidString{`holds a lone surrogate escape \ud800`}}},
		{"lone high then escape", `{"a":"\uD800\n"}`, map[string]any{"a": InvalidString{`holds a lone surrogate escape \ud800`}}},
		{"high then high", `{"a":"\ud800\ud800\udc00"}`, map[string]any{"a": InvalidString{`holds a lone surrogate escape \ud800`}}},
		{"lone low", `{"a":"\udfff"}`, map[string]any{"a": InvalidString{`holds a lone surrogate escape \udfff`}}},
		{"nested in lists and objects", `{"a":[{"b":["ok","\udc00"]}]}`,
			map[string]any{"a": []any{map[string]any{"b": []any{"ok", InvalidString{`holds a lone surrogate escape \udc00`}}}}}},
		{"escaped key", `{"\u0061":"\ud800"}`, map[string]any{"a": InvalidString{`holds a lone surrogate escape \ud800`}}},
		{"escaped backslash is not an escape", `{"a":"\\ud800"}`, map[string]any{"a": `\ud800`}},
		{"later duplicate key wins, good", `{"a":"\ud800","a":"ok"}`, map[string]any{"a": "ok"}},
		{"later duplicate key wins, bad", `{"a":"ok","a":"\ud800"}`, map[string]any{"a": InvalidString{`holds a lone surrogate escape \ud800`}}},
		{"replaced by a number", `{"a":{"b":"\ud800"},"a":5}`, map[string]any{"a": json.Number("5")}},
		{"invalid UTF-8", "{\"a\":\"\xc3\x28\"}", map[string]any{"a": InvalidString{"is not valid UTF-8"}}},
		{"U+FFFD written out is text", `{"a":"\ufffd�"}`, map[string]any{"a": "\ufffd\ufffd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeObject([]byte(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
	for _, bad := range []string{``, `null`, `[]`, `"x"`, `{"a":`, `{"a":"\ud800`} {
		if _, err := DecodeObject([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzDecodeObject holds DecodeObject against encoding/json: it accepts
// exactly what encoding/json accepts and decodes the same values, except
// that strings encoding/json had to repair are InvalidString, and only
// those.
func FuzzDecodeObject(f *testing.F) {
	for _, seed := range []string{
		`{"a":"x"}`, `{"a":"\ud800"}`, `{"a":["\udc00",{"b":"\ud83d\ude00"}]}`,
		`{"a":"ok","a":"\ud800"}`, "{\"a\":\"\xff\"}", `{"\ud800":"\ud800"}`,
		`{"a":{"b":"\ud800"},"a":5}`, `{"a":"\\ud800"}`, `{"a":1e400,"b":[true,null]}`,
		`{"a":"\uD800\uDBFF\uDFFF"}`, ` {"a" : [ "x" , "\ud800" ] } `, `{"a":"\u"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := DecodeObject(raw)
		var want map[string]any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		werr := dec.Decode(&want)
		if werr == nil && want == nil {
			werr = errString("null")
		}
		if (err == nil) != (werr == nil) {
			t.Fatalf("DecodeObject error %v, encoding/json error %v", err, werr)
		}
		if err != nil {
			return
		}
		same(t, got, want, raw)
	})
}

type errString string

func (e errString) Error() string { return string(e) }

// same compares a DecodeObject result with encoding/json's.
func same(t *testing.T, got, want any, raw []byte) {
	t.Helper()
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			t.Fatalf("%q: got %#v, want %#v", raw, got, want)
		}
		for k := range w {
			same(t, g[k], w[k], raw)
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			t.Fatalf("%q: got %#v, want %#v", raw, got, want)
		}
		for i := range w {
			same(t, g[i], w[i], raw)
		}
	case string:
		if bad, ok := got.(InvalidString); ok {
			// Only a string encoding/json repaired may be marked.
			if !strings.ContainsRune(w, utf8.RuneError) {
				t.Fatalf("%q: %q marked %q", raw, w, bad.Reason)
			}
			return
		}
		if got != want {
			t.Fatalf("%q: got %#v, want %#v", raw, got, want)
		}
		// Where the client wrote no U+FFFD, one in a decoded string is
		// encoding/json's repair, which must have been marked.
		if strings.ContainsRune(w, utf8.RuneError) && !bytes.Contains(raw, []byte("\xef\xbf\xbd")) &&
			!bytes.Contains(bytes.ToLower(raw), []byte(`\ufffd`)) {
			t.Fatalf("%q: repaired string %q not marked", raw, w)
		}
	default:
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %#v, want %#v", raw, got, want)
		}
	}
}

// TestScannerEndsOnMalformedInput: the scanner only ever sees JSON that
// encoding/json accepted, but no input, however broken, makes it loop.
func TestScannerEndsOnMalformedInput(t *testing.T) {
	for _, raw := range []string{`[}`, `{"a":}`, `{"a" "b"}`, `[1 }`, `{:}`, `["\u12`, `{"a":[`, `}`, `]`, `{"\ud800":"x"`} {
		s := &scanner{data: []byte(raw), bad: map[string]badString{}}
		s.value(nil)
		if s.pos < 0 {
			t.Fatalf("%q: pos %d", raw, s.pos)
		}
	}
}

// TestCheckString: one string literal, as an UnmarshalJSON method gets it.
func TestCheckString(t *testing.T) {
	for lit, want := range map[string]string{
		`"plain"`:              "",
		`"\ud83d\ude00 pair"`:  "",
		`"\\ud800 escaped"`:    "",
		`"x\ud800"`:            `holds a lone surrogate escape \ud800`,
		`"\udfff"`:             `holds a lone surrogate escape \udfff`,
		`"\ud800\ud800\udc00"`: `holds a lone surrogate escape \ud800`,
		"\"a\xffb\"":           "is not valid UTF-8",
		`5`:                    "", // not a string: nothing to say
		``:                     "",
	} {
		if got := CheckString([]byte(lit)); got != want {
			t.Errorf("CheckString(%s) = %q; want %q", lit, got, want)
		}
	}
}

// TestUnicodeEscape: the escape at the start of each string, as both the
// JSON reader and the GraphQL document limits read it.
func TestUnicodeEscape(t *testing.T) {
	tests := []struct {
		s    string
		r    rune
		n    int
		lone bool
	}{
		{`\u0041`, 'A', 6, false},
		{`\ud83d\ude00`, 0xD83D, 12, false},
		{`\uD83D\uDE00 and more`, 0xD83D, 12, false},
		{`\ud800`, 0xD800, 6, true},
		{`\ud800\u0041`, 0xD800, 6, true},
		{`\ud800\ud800\udc00`, 0xD800, 6, true},
		{`\ud800\`, 0xD800, 6, true},
		{`\udfff`, 0xDFFF, 6, true},
		{`\u00`, 0, 0, false},
		{`\uzzzz`, 0, 0, false},
	}
	for _, tt := range tests {
		r, n, lone := UnicodeEscape(tt.s, 0)
		if r != tt.r || n != tt.n || lone != tt.lone {
			t.Errorf("UnicodeEscape(%s) = %U, %d, %v; want %U, %d, %v", tt.s, r, n, lone, tt.r, tt.n, tt.lone)
		}
		if r2, n2, lone2 := UnicodeEscape([]byte(tt.s), 0); r2 != r || n2 != n || lone2 != lone {
			t.Errorf("UnicodeEscape([]byte(%s)) differs from the string form", tt.s)
		}
	}
}
