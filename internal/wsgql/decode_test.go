package wsgql

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jobchat/jobchat/internal/jsontext"
)

// decodeCases are client messages and what each protocol makes of them:
// the kind decoded, or the refusal. They seed the fuzzers too.
var decodeCases = []struct {
	name string
	data string
	// graphql-transport-ws: the kind, or the close reason's tail (the code
	// is always 4400).
	ws       kind
	wsReason string
	// legacy: the kind, or the refusal: connErr, the close code (0: the
	// socket stays).
	legacy     kind
	legacyErr  bool
	legacyConn bool
	legacyCode int
}{
	{name: "init", data: `{"type":"connection_init"}`, ws: kindInit, legacy: kindInit},
	{name: "init with null payload", data: `{"type":"connection_init","payload":null}`, ws: kindInit, legacy: kindInit},
	{name: "init with token", data: `{"type":"connection_init","payload":{"authorization":"Bearer x"}}`, ws: kindInit, legacy: kindInit},
	{name: "init payload a string", data: `{"type":"connection_init","payload":"Bearer x"}`, wsReason: "payload must be an object",
		legacyErr: true, legacyConn: true, legacyCode: CloseBadRequest},
	{name: "init payload an array", data: `{"type":"connection_init","payload":[{"authorization":"Bearer x"}]}`, wsReason: "payload must be an object",
		legacyErr: true, legacyConn: true, legacyCode: CloseBadRequest},
	{name: "init payload a number", data: `{"type":"connection_init","payload":5}`, wsReason: "payload must be an object",
		legacyErr: true, legacyConn: true, legacyCode: CloseBadRequest},
	{name: "init payload truncated object", data: `{"type":"connection_init","payload":{"a":}`, wsReason: "",
		legacyErr: true, legacyConn: true},
	{name: "ping", data: `{"type":"ping"}`, ws: kindPing, legacyErr: true},
	{name: "ping payload not object", data: `{"type":"ping","payload":1}`, wsReason: `"ping" payload must be an object`, legacyErr: true},
	{name: "pong", data: `{"type":"pong","payload":{}}`, ws: kindPong, legacyErr: true},
	{name: "subscribe", data: `{"type":"subscribe","id":"1","payload":{"query":"{ a }","variables":{"n":1.5},"extensions":null,"operationName":null}}`,
		ws: kindSubscribe, legacyErr: true},
	{name: "start", data: `{"type":"start","id":"1","payload":{"query":"{ a }"}}`, wsReason: `unexpected type "start"`, legacy: kindSubscribe},
	{name: "subscribe without id", data: `{"type":"subscribe","payload":{"query":"{ a }"}}`, wsReason: "needs a non-empty string id", legacyErr: true},
	{name: "subscribe with numeric id", data: `{"type":"subscribe","id":1,"payload":{"query":"{ a }"}}`, wsReason: "needs a non-empty string id", legacyErr: true},
	{name: "subscribe with a long id", data: `{"type":"subscribe","id":"` + strings.Repeat("x", maxIDBytes+1) + `","payload":{"query":"{ a }"}}`,
		wsReason: "at most 128 bytes", legacyErr: true},
	{name: "start with a long id", data: `{"type":"start","id":"` + strings.Repeat("x", maxIDBytes+1) + `","payload":{"query":"{ a }"}}`,
		wsReason: "unexpected type", legacyErr: true},
	{name: "subscribe without query", data: `{"type":"subscribe","id":"1","payload":{}}`, wsReason: "payload.query must be a string", legacyErr: true},
	{name: "subscribe by persisted hash", data: `{"type":"subscribe","id":"1","payload":{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"ab"}}}}`,
		ws: kindSubscribe, legacyErr: true},
	{name: "start by persisted hash", data: `{"type":"start","id":"1","payload":{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"ab"}}}}`,
		wsReason: "unexpected type", legacy: kindSubscribe},
	{name: "subscribe with a null persistedQuery", data: `{"type":"subscribe","id":"1","payload":{"extensions":{"persistedQuery":null}}}`,
		wsReason: "payload.query must be a string", legacyErr: true},
	{name: "subscribe with a lone surrogate", data: `{"type":"subscribe","id":"1","payload":{"query":"{ a }","variables":{"t":"\ud800"}}}`,
		ws: kindSubscribe, legacyErr: true},
	{name: "start with query a number", data: `{"type":"start","id":"1","payload":{"query":5}}`, wsReason: "unexpected type", legacyErr: true},
	{name: "subscribe variables an array", data: `{"type":"subscribe","id":"1","payload":{"query":"{ a }","variables":[]}}`,
		wsReason: "payload.variables must be an object", legacyErr: true},
	{name: "subscribe extensions a string", data: `{"type":"subscribe","id":"1","payload":{"query":"{ a }","extensions":"x"}}`,
		wsReason: "payload.extensions must be an object", legacyErr: true},
	{name: "complete", data: `{"type":"complete","id":"1"}`, ws: kindComplete, legacyErr: true},
	{name: "stop", data: `{"type":"stop","id":"1"}`, wsReason: `unexpected type "stop"`, legacy: kindComplete},
	{name: "stop without id", data: `{"type":"stop"}`, wsReason: "unexpected type", legacyErr: true},
	{name: "terminate", data: `{"type":"connection_terminate"}`, wsReason: "unexpected type", legacy: kindTerminate},
	{name: "missing type", data: `{"id":"1"}`, wsReason: "missing type", legacyErr: true},
	{name: "type a number", data: `{"type":1}`, wsReason: "", legacyErr: true, legacyConn: true},
	{name: "not JSON", data: `not json`, wsReason: "", legacyErr: true, legacyConn: true},
	{name: "an array", data: `[1,2]`, wsReason: "", legacyErr: true, legacyConn: true},
	{name: "null", data: `null`, wsReason: "missing type", legacyErr: true},
	{name: "empty", data: ``, wsReason: "", legacyErr: true, legacyConn: true},
}

// TestDecodeTransportWS holds the graphql-transport-ws decoder to the
// protocol: what it accepts and with which close reason it refuses.
func TestDecodeTransportWS(t *testing.T) {
	for _, tt := range decodeCases {
		t.Run(tt.name, func(t *testing.T) {
			m, bad := decodeTransportWS([]byte(tt.data))
			checkDecoded(t, []byte(tt.data), m, bad, false)
			if tt.ws != 0 {
				if bad != nil || m.kind != tt.ws {
					t.Fatalf("got %+v, %+v; want kind %d", m, bad, tt.ws)
				}
				return
			}
			if bad == nil || bad.code != CloseBadRequest || !strings.HasSuffix(bad.reason, tt.wsReason) && !strings.Contains(bad.reason, tt.wsReason) {
				t.Fatalf("got %+v, %+v; want 4400 mentioning %q", m, bad, tt.wsReason)
			}
		})
	}
}

// Variables are decoded as over HTTP: a string that is not Unicode text
// stays recognisable for the guard to refuse, not repaired to U+FFFD.
func TestDecodeVariablesKeepWhatIsNotText(t *testing.T) {
	for _, data := range []string{
		`{"type":"subscribe","id":"1","payload":{"query":"{ a }","variables":{"in":{"t":"a\ud800b"}}}}`,
		`{"type":"start","id":"1","payload":{"query":"{ a }","variables":{"in":{"t":"a\ud800b"}}}}`,
	} {
		m, bad := decodeTransportWS([]byte(data))
		if bad != nil {
			m, bad = decodeLegacy([]byte(data))
		}
		if bad != nil {
			t.Fatalf("%s: refused %+v", data, bad)
		}
		in, _ := m.params.Variables["in"].(map[string]any)
		if _, ok := in["t"].(jsontext.InvalidString); !ok {
			t.Fatalf("%s: variable decoded as %#v", data, in["t"])
		}
	}
	m, bad := decodeTransportWS([]byte(`{"type":"subscribe","id":"1","payload":{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"ab"}}}}`))
	if bad != nil || m.params.Query != "" || m.params.Extensions["persistedQuery"] == nil {
		t.Fatalf("hash only: %+v %+v", m, bad)
	}
}

// TestDecodeLegacy holds the legacy decoder to subscriptions-transport-ws:
// connection_error for what does not parse, error for the rest, and a
// close only for a connection_init payload of the wrong shape.
func TestDecodeLegacy(t *testing.T) {
	for _, tt := range decodeCases {
		t.Run(tt.name, func(t *testing.T) {
			m, bad := decodeLegacy([]byte(tt.data))
			checkDecoded(t, []byte(tt.data), m, bad, true)
			if !tt.legacyErr {
				if bad != nil || m.kind != tt.legacy {
					t.Fatalf("got %+v, %+v; want kind %d", m, bad, tt.legacy)
				}
				return
			}
			if bad == nil || bad.connErr != tt.legacyConn || bad.code != tt.legacyCode {
				t.Fatalf("got %+v, %+v; want connErr %v, code %d", m, bad, tt.legacyConn, tt.legacyCode)
			}
		})
	}
}

// checkDecoded holds what any decoded message must satisfy, whatever the
// input: the invariants the fuzzers check.
func checkDecoded(tb testing.TB, data []byte, m message, bad *refusal, legacy bool) {
	tb.Helper()
	if (bad == nil) == (m.kind == 0) {
		tb.Fatalf("%q: kind %d with refusal %+v: want exactly one", data, m.kind, bad)
	}
	if bad != nil {
		switch {
		case !legacy && (bad.code != CloseBadRequest || !strings.HasPrefix(bad.reason, "Invalid message received")):
			tb.Fatalf("%q: refused with %d %q", data, bad.code, bad.reason)
		case legacy && bad.code != 0 && (bad.code != CloseBadRequest || !bad.connErr):
			tb.Fatalf("%q: legacy refusal %+v closes other than with connection_error and 4400", data, bad)
		case !utf8.ValidString(bad.reason) && utf8.Valid(data):
			tb.Fatalf("%q: reason %q is not UTF-8", data, bad.reason)
		case len(bad.id) > maxIDBytes:
			tb.Fatalf("%q: error frame for an id of %d bytes", data, len(bad.id))
		}
		// What the server answers must encode.
		if legacy {
			if f := legacyMessageError(bad.id, bad.reason); !json.Valid(f) {
				tb.Fatalf("%q: error frame %q is not JSON", data, f)
			}
		}
		return
	}
	if !json.Valid(data) {
		tb.Fatalf("%q: accepted, but is not JSON", data)
	}
	switch m.kind {
	case kindSubscribe:
		if m.params == nil {
			tb.Fatalf("%q: subscribe without params", data)
		}
		for _, v := range []map[string]any{m.params.Variables, m.params.Extensions} {
			if _, err := json.Marshal(v); err != nil {
				tb.Fatalf("%q: decoded payload does not encode: %v", data, err)
			}
		}
		fallthrough
	case kindComplete:
		if m.id == "" || len(m.id) > maxIDBytes {
			tb.Fatalf("%q: id %q", data, m.id)
		}
		if f := framePrefix(m.id, legacy); !json.Valid(append(append(f, '1'), '}')) {
			tb.Fatalf("%q: result frame for id %q is not JSON", data, m.id)
		}
	case kindInit:
		if _, err := json.Marshal(m.init); err != nil {
			tb.Fatalf("%q: init payload does not encode: %v", data, err)
		}
	case kindPing, kindPong:
		if legacy {
			tb.Fatalf("%q: legacy decoded %d", data, m.kind)
		}
	case kindTerminate:
		if !legacy {
			tb.Fatalf("%q: graphql-transport-ws decoded connection_terminate", data)
		}
	default:
		tb.Fatalf("%q: unknown kind %d", data, m.kind)
	}
}

func seedDecoders(f *testing.F) {
	for _, tt := range decodeCases {
		f.Add([]byte(tt.data))
	}
	// Shapes the cases above leave out.
	f.Add([]byte(`{"type":"subscribe","id":"\u00e9\ud800","payload":{"query":"{ a }","variables":{"a":[1,{"b":null}],"c":1e400}}}`))
	f.Add([]byte(`{"type":"connection_init","payload":{"headers":{"Authorization":5}},"type":"ping"}`))
	f.Add([]byte(`{"type":"start","id":"x","payload":{"query":"q","variables":{"n":-0.0e-5}},"extra":[{}]}`))
}

// FuzzDecodeTransportWS: no client message makes the graphql-transport-ws
// decoder panic or break its invariants (checkDecoded). Its seeds run as
// part of go test; go test -fuzz=FuzzDecodeTransportWS explores further.
func FuzzDecodeTransportWS(f *testing.F) {
	seedDecoders(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, bad := decodeTransportWS(data)
		checkDecoded(t, data, m, bad, false)
	})
}

// FuzzDecodeLegacy is FuzzDecodeTransportWS for the legacy protocol.
func FuzzDecodeLegacy(f *testing.F) {
	seedDecoders(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, bad := decodeLegacy(data)
		checkDecoded(t, data, m, bad, true)
	})
}
