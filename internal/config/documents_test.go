package config

import (
	"io"
	"testing"
)

// TestIntrospectionFollowsPlayground: JOBCHAT_INTROSPECTION wins when
// set; empty, it follows JOBCHAT_PLAYGROUND.
func TestIntrospectionFollowsPlayground(t *testing.T) {
	tests := []struct {
		playground, introspection string
		want                      bool
	}{
		{"", "", true},
		{"false", "", false},
		{"false", "true", true},
		{"true", "false", false},
	}
	for _, tt := range tests {
		c, _, err := Load("test", nil, env(map[string]string{"JOBCHAT_PLAYGROUND": tt.playground, "JOBCHAT_INTROSPECTION": tt.introspection}), io.Discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.IntrospectionOn(); got != tt.want {
			t.Errorf("playground %q introspection %q: on = %v", tt.playground, tt.introspection, got)
		}
	}
}
