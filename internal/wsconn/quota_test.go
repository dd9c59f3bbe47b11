package wsconn

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/gorilla/websocket"
)

// TestFrameRules: a data message the protocol would not understand never
// reaches it: binary closes with 1003, text that is not UTF-8 with 1007.
func TestFrameRules(t *testing.T) {
	tests := []struct {
		name string
		typ  int
		data string
		code int // 0: handed to the protocol
	}{
		{"text", websocket.TextMessage, `{"type":"ping"}`, 0},
		{"empty text", websocket.TextMessage, ``, 0},
		{"multi-byte text", websocket.TextMessage, `{"m":"héllo 😀"}`, 0},
		{"binary", websocket.BinaryMessage, `{"type":"ping"}`, websocket.CloseUnsupportedData},
		{"empty binary", websocket.BinaryMessage, ``, websocket.CloseUnsupportedData},
		{"invalid byte", websocket.TextMessage, "{\"m\":\"\xff\"}", websocket.CloseInvalidFramePayloadData},
		{"overlong encoding", websocket.TextMessage, "\xc0\xaf", websocket.CloseInvalidFramePayloadData},
		{"surrogate", websocket.TextMessage, "\xed\xa0\x80", websocket.CloseInvalidFramePayloadData},
		{"truncated rune", websocket.TextMessage, "ok \xe2\x82", websocket.CloseInvalidFramePayloadData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEndpoint(Config{})
			srv, protos := serve(t, e, nil)
			ws := dial(t, srv)
			p := next(t, protos)
			if err := ws.WriteMessage(tt.typ, []byte(tt.data)); err != nil {
				t.Fatal(err)
			}
			if tt.code == 0 {
				if got := <-p.received; string(got) != tt.data {
					t.Fatalf("received %q, want %q", got, tt.data)
				}
				return
			}
			if ce := readClose(t, ws); ce.Code != tt.code {
				t.Fatalf("close %d %q, want %d", ce.Code, ce.Text, tt.code)
			}
			if len(p.received) != 0 {
				t.Fatalf("the protocol received %q", <-p.received)
			}
		})
	}
}

func TestClientAddr(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{name: "IPv4 peer", remote: "192.0.2.7:5555", want: "192.0.2.7"},
		{name: "IPv6 peer by its /64", remote: "[2001:db8:1:2:3:4:5:6]:5555", want: "2001:db8:1:2::/64"},
		{name: "IPv4-mapped IPv6", remote: "[::ffff:192.0.2.7]:5555", want: "192.0.2.7"},
		{name: "forwarded, but the peer is not trusted", remote: "192.0.2.7:1", xff: []string{"198.51.100.1"}, want: "192.0.2.7"},
		{name: "trusted proxy", remote: "10.1.2.3:1", xff: []string{"198.51.100.1"}, trusted: proxies, want: "198.51.100.1"},
		{name: "the client's own header is not believed", remote: "10.1.2.3:1", xff: []string{"203.0.113.9, 198.51.100.1"}, trusted: proxies, want: "198.51.100.1"},
		{name: "a chain of trusted proxies", remote: "10.1.2.3:1", xff: []string{"198.51.100.1, 10.9.9.9", "10.8.8.8"}, trusted: proxies, want: "198.51.100.1"},
		{name: "IPv6 client behind a proxy", remote: "[fd00::1]:1", xff: []string{"2001:db8:aa:bb::1"}, trusted: proxies, want: "2001:db8:aa:bb::/64"},
		{name: "garbage stops the walk at the last hop", remote: "10.1.2.3:1", xff: []string{"evil, 10.9.9.9"}, trusted: proxies, want: "10.9.9.9"},
		{name: "trusted proxy without the header", remote: "10.1.2.3:1", trusted: proxies, want: "10.1.2.3"},
		{name: "unparsable peer", remote: "pipe", want: "pipe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := NewQuota(QuotaConfig{TrustedProxies: tt.trusted})
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := q.ClientAddr(r); got != tt.want {
				t.Fatalf("ClientAddr = %q, want %q", got, tt.want)
			}
		})
	}
}

type userKey struct{}

// TestQuotaClaims: claims count up to the bound, a refused one counts
// nothing, End gives every claim back once, and a claim after End (a
// socket that ended while its init ran) counts nothing either.
func TestQuotaClaims(t *testing.T) {
	q := NewQuota(QuotaConfig{PerUser: 2, PerAddr: 3, User: func(ctx context.Context) string {
		s, _ := ctx.Value(userKey{}).(string)
		return s
	}})
	e := NewEndpoint(Config{Quota: q})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "192.0.2.1:1"
	ana := context.WithValue(context.Background(), userKey{}, "ana")

	var socks []*proto
	claim := func(ctx context.Context) (*proto, *OverQuota) {
		p := newProto(e)
		if over := p.sock.ClaimAddr(r); over != nil {
			return p, over
		}
		return p, p.sock.ClaimUser(ctx)
	}
	for range 2 {
		p, over := claim(ana)
		if over != nil {
			t.Fatalf("refused: %v", over)
		}
		socks = append(socks, p)
	}
	if p, over := claim(ana); over == nil || over.Code != CloseTooManyForUser {
		t.Fatalf("third for ana: %v, want %d", over, CloseTooManyForUser)
	} else {
		p.sock.End() // gives back its address
	}
	if p, over := claim(context.Background()); over != nil {
		t.Fatalf("anonymous: %v", over)
	} else {
		socks = append(socks, p)
	}
	if _, over := claim(context.Background()); over == nil || over.Code != CloseTooManyFromAddr {
		t.Fatalf("fourth from the address: %v, want %d", over, CloseTooManyFromAddr)
	}
	if u, a := q.Counts("ana", "192.0.2.1"); u != 2 || a != 3 {
		t.Fatalf("counts %d, %d; want 2, 3", u, a)
	}
	for _, p := range socks {
		p.sock.End()
		p.sock.End()
	}
	if u, a := q.Counts("ana", "192.0.2.1"); u != 0 || a != 0 {
		t.Fatalf("counts %d, %d after End; want 0, 0", u, a)
	}
	ended := newProto(e)
	ended.sock.End()
	if over := ended.sock.ClaimUser(ana); over != nil {
		t.Fatal(over)
	}
	if u, _ := q.Counts("ana", ""); u != 0 {
		t.Fatalf("an ended socket claimed: %d", u)
	}
}
