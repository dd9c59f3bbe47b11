package config

import (
	"errors"
	"flag"
	"io"
	"maps"
	"os"
	"regexp"
	"strconv"
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
		{name: "bad bool", args: []string{"--auto-migrate=maybe"}, wantErr: "JOBCHAT_AUTO_MIGRATE"},
		{name: "bad bool in the environment", env: map[string]string{"JOBCHAT_PLAYGROUND": "maybe"}, wantErr: "JOBCHAT_PLAYGROUND"},
		{name: "bool flag alone", args: []string{"--playground"}, env: map[string]string{"JOBCHAT_PLAYGROUND": "false"},
			check: func(t *testing.T, c Config) {
				if !c.Playground {
					t.Fatal("--playground did not win over JOBCHAT_PLAYGROUND=false")
				}
			}},
		{name: "typed flags", args: []string{"--send-rate", "2.5", "--ws-keepalive", "3s", "--max-frame-bytes", "2048"},
			check: func(t *testing.T, c Config) {
				if c.SendRate != 2.5 || c.WSKeepAlive != 3*time.Second || c.MaxFrameBytes != 2048 {
					t.Fatalf("send rate %v, keep-alive %v, max frame %d", c.SendRate, c.WSKeepAlive, c.MaxFrameBytes)
				}
			}},
		{name: "bad number", env: map[string]string{"JOBCHAT_MAX_MESSAGE_CHARS": "-3"}, wantErr: "JOBCHAT_MAX_MESSAGE_CHARS"},
		{name: "notifications off by default", check: func(t *testing.T, c Config) {
			if c.WebhookURL != "" || c.NotifyDelay != 30*time.Second || c.WebhookRetryMin != 5*time.Second || c.WebhookTimeout != 10*time.Second {
				t.Fatalf("notification defaults: %+v", c)
			}
		}},
		{name: "notifications", env: map[string]string{"JOBCHAT_WEBHOOK_URL": "https://notify.example/hooks/chat", "JOBCHAT_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
			"JOBCHAT_NOTIFY_DELAY": "300ms", "JOBCHAT_WEBHOOK_RETRY_MIN": "50ms"},
			check: func(t *testing.T, c Config) {
				if c.WebhookURL != "https://notify.example/hooks/chat" || c.NotifyDelay != 300*time.Millisecond || c.WebhookRetryMin != 50*time.Millisecond {
					t.Fatalf("notifications: %+v", c)
				}
			}},
		{name: "webhook without a secret", env: map[string]string{"JOBCHAT_WEBHOOK_URL": "https://notify.example/hook"}, wantErr: "JOBCHAT_WEBHOOK_SECRET must be set"},
		{name: "webhook secret without its prefix", env: map[string]string{"JOBCHAT_WEBHOOK_URL": "https://notify.example/hook", "JOBCHAT_WEBHOOK_SECRET": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, wantErr: "JOBCHAT_WEBHOOK_SECRET"},
		{name: "webhook URL not absolute", env: map[string]string{"JOBCHAT_WEBHOOK_URL": "notify.example/hook", "JOBCHAT_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, wantErr: "JOBCHAT_WEBHOOK_URL"},
		{name: "zero notify delay", env: map[string]string{"JOBCHAT_NOTIFY_DELAY": "0s"}, wantErr: "JOBCHAT_NOTIFY_DELAY"},
		{name: "attachments on disk by default", check: func(t *testing.T, c Config) {
			if c.S3Endpoint != "" || c.S3Bucket != "jobchat" || c.S3Region != "us-east-1" || c.S3PathStyle || c.S3Redirect ||
				c.FileURLTTL != time.Hour || c.FileURLKey != "" {
				t.Fatalf("attachment defaults: %+v", c)
			}
		}},
		{name: "S3 without keys", env: map[string]string{"JOBCHAT_S3_ENDPOINT": "http://127.0.0.1:8333"}, wantErr: "JOBCHAT_S3_ACCESS_KEY"},
		{name: "S3 endpoint with a path", env: map[string]string{"JOBCHAT_S3_ENDPOINT": "https://s3.example/bucket", "JOBCHAT_S3_ACCESS_KEY": "a", "JOBCHAT_S3_SECRET_KEY": "b"}, wantErr: "JOBCHAT_S3_ENDPOINT"},
		{name: "S3 endpoint with another scheme", env: map[string]string{"JOBCHAT_S3_ENDPOINT": "ftp://s3.example", "JOBCHAT_S3_ACCESS_KEY": "a", "JOBCHAT_S3_SECRET_KEY": "b"}, wantErr: "JOBCHAT_S3_ENDPOINT"},
		{name: "short file URL key", env: map[string]string{"JOBCHAT_FILE_URL_KEY": "short"}, wantErr: "JOBCHAT_FILE_URL_KEY"},
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

// TestReadmeListsEverySetting keeps the README's configuration tables
// complete: each setting must have a row with its variable, flag and
// default, in the table of its group (the bold line above the table).
func TestReadmeListsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	groups := map[string]string{}
	group := ""
	for _, line := range strings.Split(string(b), "\n") {
		if len(line) > 4 && strings.HasPrefix(line, "**") && strings.HasSuffix(line, "**") {
			group = strings.Trim(line, "*")
		}
		if strings.HasPrefix(line, "| `JOBCHAT_") {
			name := strings.Trim(strings.Split(line, "|")[1], " `")
			rows[name] = line
			groups[name] = group
		}
	}
	for _, f := range Fields() {
		row, ok := rows[f.Env]
		if !ok {
			t.Errorf("README has no configuration row for %s", f.Env)
			continue
		}
		if groups[f.Env] != f.Group {
			t.Errorf("README lists %s under %q; want %q", f.Env, groups[f.Env], f.Group)
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

// TestRedisURL: a value the Redis client would refuse for its scheme is
// refused when the settings are read, with an error naming the variable
// and the expected form, and never echoing a password.
func TestRedisURL(t *testing.T) {
	tests := []struct {
		value   string
		wantErr []string
	}{
		{"", nil},
		{"redis://127.0.0.1:6379/0", nil},
		{"rediss://cache.example:6380/1", nil},
		{"unix:///run/redis.sock", nil},
		{"garbage", []string{"JOBCHAT_REDIS_URL", "redis://host:6379/0", "rediss://", `not "garbage"`}},
		{"http://cache.example:6379", []string{"JOBCHAT_REDIS_URL", "redis://host:6379/0", `not "http://cache.example:6379"`}},
		{"redis//:hunter2@cache.example", []string{"JOBCHAT_REDIS_URL", "redis://host:6379/0"}},
		{"rdis://:hunter2@cache.example:6379", []string{"JOBCHAT_REDIS_URL", "xxxxx"}},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			_, _, err := Load("test", nil, env(map[string]string{"JOBCHAT_REDIS_URL": tt.value}), io.Discard, nil)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// TestRedisCluster: JOBCHAT_REDIS_CLUSTER takes a redis:// or rediss://
// node URL, with more seeds as addr parameters, on database 0, and a
// prefix without a hash tag of its own.
func TestRedisCluster(t *testing.T) {
	tests := []struct {
		name    string
		vars    map[string]string
		wantErr []string
	}{
		{"seed node", map[string]string{"JOBCHAT_REDIS_URL": "redis://10.0.0.1:7000"}, nil},
		{"seeds and database 0", map[string]string{"JOBCHAT_REDIS_URL": "rediss://:pw@10.0.0.1:7000/0?addr=10.0.0.2:7000&addr=10.0.0.3:7000"}, nil},
		{"no URL", map[string]string{}, []string{"JOBCHAT_REDIS_CLUSTER needs JOBCHAT_REDIS_URL"}},
		{"socket", map[string]string{"JOBCHAT_REDIS_URL": "unix:///run/redis.sock"}, []string{"not a socket"}},
		{"database 3", map[string]string{"JOBCHAT_REDIS_URL": "redis://10.0.0.1:7000/3"}, []string{"database 0 only"}},
		{"hash tag in prefix", map[string]string{"JOBCHAT_REDIS_URL": "redis://10.0.0.1:7000", "JOBCHAT_REDIS_PREFIX": "{jobchat}:"}, []string{"JOBCHAT_REDIS_PREFIX must not contain '{'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{"JOBCHAT_REDIS_CLUSTER": "true"}
			maps.Copy(vars, tt.vars)
			c, _, err := Load("test", nil, env(vars), io.Discard, nil)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !c.RedisCluster {
					t.Fatal("RedisCluster is false")
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// TestFieldsGroupedAndTyped: every setting has a known group and type, and
// Fields lists them group by group in the order of Groups, as -h and the
// README do.
func TestFieldsGroupedAndTyped(t *testing.T) {
	order := map[string]int{}
	for i, g := range Groups() {
		order[g] = i
	}
	last := 0
	for _, f := range Fields() {
		i, ok := order[f.Group]
		if !ok {
			t.Errorf("%s: unknown group %q", f.Env, f.Group)
			continue
		}
		if i < last {
			t.Errorf("%s: group %q after group %q", f.Env, f.Group, Groups()[last])
		}
		last = i
		switch f.Type {
		case "string", "bool", "int", "float", "duration", "list":
		default:
			t.Errorf("%s: unknown type %q", f.Env, f.Type)
		}
		// The default must be a value of the type.
		var c Config
		if err := f.set(&c, f.Default); err != nil {
			t.Errorf("%s: default %q: %v", f.Env, f.Default, err)
		}
	}
}

func tokenCommandForTest(sub *string) Command {
	return Command{
		Name:     "jobchat token",
		Summary:  "Print a bearer token.",
		Settings: []string{"jwt-secret", "data-dir"},
		Own:      "Token",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(sub, "sub", "", "profile id of the user")
			fs.BoolVar(new(bool), "service", false, "issue a service token")
			fs.DurationVar(new(time.Duration), "ttl", 24*time.Hour, "how long the token lasts")
		},
	}
}

// TestCommandReadsOnlyItsSettings: a command reads its own settings over
// the environment and leaves every other at its default, whatever the
// environment says; flags of other commands are unknown to it.
func TestCommandReadsOnlyItsSettings(t *testing.T) {
	var sub string
	cmd := tokenCommandForTest(&sub)
	vars := env(map[string]string{
		"JOBCHAT_DATA_DIR":   "/srv/jobchat",
		"JOBCHAT_LOG_LEVEL":  "loud", // not token's: ignored, not refused
		"JOBCHAT_SEND_RATE":  "lots",
		"JOBCHAT_ADDR":       ":9000",
		"JOBCHAT_JWT_SECRET": strings.Repeat("s", 32),
	})
	c, err := cmd.Parse([]string{"--sub", "u1"}, vars, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if sub != "u1" || c.DataDir != "/srv/jobchat" || c.JWTSecret != strings.Repeat("s", 32) {
		t.Fatalf("sub %q, data dir %q, secret %q", sub, c.DataDir, c.JWTSecret)
	}
	if c.LogLevel != "info" || c.SendRate != 10 || c.Addr != ":8080" {
		t.Fatalf("settings token does not read: log level %q, send rate %v, addr %q", c.LogLevel, c.SendRate, c.Addr)
	}
	if _, err := cmd.Parse([]string{"--data-dir", "/tmp/x", "--sub", "u1"}, vars, io.Discard); err != nil {
		t.Fatalf("--data-dir: %v", err)
	}
	var out strings.Builder
	if _, err := cmd.Parse([]string{"--addr", ":1"}, vars, &out); err == nil || !strings.Contains(err.Error(), "-addr") {
		t.Fatalf("--addr on token: %v", err)
	}
	// Its own settings are still checked.
	short := env(map[string]string{"JOBCHAT_JWT_SECRET": "short"})
	if _, err := cmd.Parse([]string{"--sub", "u1"}, short, io.Discard); err == nil || !strings.Contains(err.Error(), "JOBCHAT_JWT_SECRET") {
		t.Fatalf("short secret: %v", err)
	}
}

// TestCommandRefusesArguments: words that are not flags are refused, and
// a bool flag given its value after a space is explained.
func TestCommandRefusesArguments(t *testing.T) {
	cmd := Command{Name: "jobchat serve"}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"extra"}, `jobchat serve: unexpected argument "extra"`},
		{[]string{"--playground", "false"}, `a bool flag takes its value after "=", as in --playground=false`},
		{[]string{"--addr", ":1", "-auto-migrate", "false"}, "--auto-migrate=false"},
	}
	for _, tt := range tests {
		_, err := cmd.Parse(tt.args, env(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want an error containing %q", tt.args, err, tt.want)
		}
	}
}

// TestCommandHelp: -h lists the command's own flags first, then its
// settings under their groups, each typed, with its variable and default,
// and nothing else.
func TestCommandHelp(t *testing.T) {
	var sub string
	var out strings.Builder
	_, err := tokenCommandForTest(&sub).Parse([]string{"-h"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	help := out.String()
	for _, want := range []string{
		"Usage: jobchat token [flags]\n\nPrint a bearer token.\n",
		"Token:\n  -service bool\n",
		"  -sub string\n        profile id of the user\n",
		"  -ttl duration        default 24h0m0s\n",
		"Database:\n  -data-dir string     JOBCHAT_DATA_DIR, default \"./data\"\n        directory for the SQLite file",
		"Auth:\n  -jwt-secret string   JOBCHAT_JWT_SECRET\n",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	if strings.Index(help, "Token:") > strings.Index(help, "Database:") || strings.Index(help, "Database:") > strings.Index(help, "Auth:") {
		t.Errorf("sections out of order:\n%s", help)
	}
	for _, f := range Fields() {
		if f.Flag != "jwt-secret" && f.Flag != "data-dir" && strings.Contains(help, "-"+f.Flag+" ") {
			t.Errorf("token's help lists the server's -%s:\n%s", f.Flag, help)
		}
	}

	// The server's: every setting, each with its type, variable and
	// default, under its group.
	out.Reset()
	if _, err := (Command{Name: "jobchat serve"}).Parse([]string{"--help"}, env(nil), &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	help = out.String()
	if strings.Contains(help, " string (default") {
		t.Errorf("help has untyped settings:\n%s", help)
	}
	for _, f := range Fields() {
		line := regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(f.Flag) + ` (\S+) +(\S+)(, default (.*))?$`).FindStringSubmatch(help)
		if line == nil {
			t.Errorf("no line for -%s:\n%s", f.Flag, help)
			continue
		}
		def := f.Default
		if f.Type == "string" || f.Type == "list" {
			def = strconv.Quote(def)
		}
		if line[1] != f.Type || line[2] != f.Env || (f.Default != "" && line[4] != def) {
			t.Errorf("-%s: %q, want type %s, %s, default %s", f.Flag, line[0], f.Type, f.Env, def)
		}
		group := strings.LastIndex(help[:strings.Index(help, line[0])], "\n\n")
		if !strings.HasPrefix(help[group+2:], f.Group+":\n") {
			t.Errorf("-%s is not under %s:", f.Flag, f.Group)
		}
	}
	for _, want := range []string{"  -playground bool ", "  -send-rate float ", "  -ws-keepalive duration ", "  -max-frame-bytes int "} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}
