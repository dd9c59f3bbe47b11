package config

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{name: "defaults", check: func(t *testing.T, c Config) {
			if c.Addr != ":8080" || c.DataDir != "./data" || c.DatabaseURL != "" || !c.AutoMigrate || !c.Playground ||
				c.MaxMessageChars != 4000 || c.WSKeepAlive != 15*time.Second || c.SubscriberBuf != 256 || c.LogLevel != "info" {
				t.Fatalf("defaults: %+v", c)
			}
		}},
		{name: "environment", env: map[string]string{"JOBCHAT_ADDR": ":9000", "JOBCHAT_ALLOWED_ORIGINS": "https://a.example, https://b.example", "JOBCHAT_PLAYGROUND": "false"},
			check: func(t *testing.T, c Config) {
				if c.Addr != ":9000" || len(c.AllowedOrigins) != 2 || c.AllowedOrigins[1] != "https://b.example" || c.Playground {
					t.Fatalf("env: %+v", c)
				}
			}},
		{name: "flag wins over environment", args: []string{"--addr", ":7000"}, env: map[string]string{"JOBCHAT_ADDR": ":9000"},
			check: func(t *testing.T, c Config) {
				if c.Addr != ":7000" {
					t.Fatalf("addr %q", c.Addr)
				}
			}},
		{name: "short secret", env: map[string]string{"JOBCHAT_JWT_SECRET": "short"}, wantErr: "JOBCHAT_JWT_SECRET"},
		{name: "bad level", env: map[string]string{"JOBCHAT_LOG_LEVEL": "loud"}, wantErr: "JOBCHAT_LOG_LEVEL"},
		{name: "bad duration", env: map[string]string{"JOBCHAT_WS_KEEPALIVE": "soon"}, wantErr: "JOBCHAT_WS_KEEPALIVE"},
		{name: "bad bool", args: []string{"--auto-migrate", "maybe"}, wantErr: "JOBCHAT_AUTO_MIGRATE"},
		{name: "bad number", env: map[string]string{"JOBCHAT_MAX_MESSAGE_CHARS": "-3"}, wantErr: "JOBCHAT_MAX_MESSAGE_CHARS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Load("test", tt.args, env(tt.env), io.Discard, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want error naming %s, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// TestReadmeListsEverySetting keeps the README's configuration table
// complete: each setting must have a row with its variable, flag and default.
func TestReadmeListsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "| `JOBCHAT_") {
			name := strings.Trim(strings.Split(line, "|")[1], " `")
			rows[name] = line
		}
	}
	for _, f := range Fields() {
		row, ok := rows[f.Env]
		if !ok {
			t.Errorf("README has no configuration row for %s", f.Env)
			continue
		}
		def := "(empty)"
		if f.Default != "" {
			def = "`" + f.Default + "`"
		}
		cells := strings.Split(row, "|")
		if strings.TrimSpace(cells[2]) != "`--"+f.Flag+"`" || strings.TrimSpace(cells[3]) != def {
			t.Errorf("README row for %s says flag %s default %s; want --%s and %s", f.Env, cells[2], cells[3], f.Flag, def)
		}
	}
	if len(rows) != len(Fields()) {
		t.Errorf("README lists %d settings, the code has %d", len(rows), len(Fields()))
	}
}
