package main

import (
	"context"
	"net"
	"strings"
	"testing"
)

func TestParseTargetLoopbackOnly(t *testing.T) {
	cases := []struct {
		url         string
		allowRemote bool
		wantErr     string // "" for accepted
	}{
		{"http://127.0.0.1:8080", false, ""},
		{"http://127.9.9.9:8080", false, ""},
		{"http://[::1]:8080", false, ""},
		{"http://localhost:8080", false, ""},
		{"http://LOCALHOST.:8080", false, ""},
		{"http://api.localhost:8080", false, ""},
		{"http://10.0.0.5:8080", false, "not a loopback"},
		{"http://[2001:db8::1]:8080", false, "not a loopback"},
		{"http://0.0.0.0:8080", false, "not a loopback"},
		{"http://10.0.0.5:8080", true, ""},
		{"ws://127.0.0.1:8080", false, "want an http"},
		{"http://:8080", false, "no host"},
		// Names other than localhost need resolving; the test passes no
		// resolver, so they are refused rather than trusted.
		{"http://chat.example.com", false, "without resolving"},
		{"http://chat.example.com", true, ""},
	}
	for _, c := range cases {
		t.Run(c.url, func(t *testing.T) {
			_, err := parseTarget(context.Background(), "url", c.url, c.allowRemote, nil)
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.wantErr != "" && err == nil:
				t.Fatalf("accepted, want an error with %q", c.wantErr)
			case c.wantErr != "" && !strings.Contains(err.Error(), c.wantErr):
				t.Fatalf("error %q, want %q", err, c.wantErr)
			}
		})
	}
}

func TestSourceIPs(t *testing.T) {
	if got := sourceIPs("127.0.0.1", 4000, 5000, 0); got != nil {
		t.Fatalf("small run spread over %v", got)
	}
	got := sourceIPs("127.0.0.1", 19000, 5000, 0)
	if len(got) != 4 || !got[0].Equal(net.IPv4(127, 0, 0, 1)) || !got[3].Equal(net.IPv4(127, 0, 0, 4)) {
		t.Fatalf("19000 sockets: %v, want 127.0.0.1-4", got)
	}
	if got := sourceIPs("localhost", 100, 5000, 3); len(got) != 3 {
		t.Fatalf("-source-ips 3: %v", got)
	}
	if got := sourceIPs("::1", 19000, 5000, 0); got != nil {
		t.Fatalf("IPv6 target must not get IPv4 sources: %v", got)
	}
	if got := sourceIPs("127.0.0.1", 99999, 1, 0); len(got) != 250 {
		t.Fatalf("sources must be capped at 250, got %d", len(got))
	}
}
