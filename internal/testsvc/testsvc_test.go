package testsvc

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records how a test ended instead of
// ending it: FailNow and SkipNow panic with a stop, caught by ended.
type recorder struct {
	testing.TB
	fatal, skip string
}

type stop struct{}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	panic(stop{})
}
func (r *recorder) Skipf(format string, args ...any) {
	r.skip = fmt.Sprintf(format, args...)
	panic(stop{})
}

func (r *recorder) ended(f func()) {
	defer func() {
		if p := recover(); p != nil && p != (stop{}) {
			panic(p)
		}
	}()
	f()
}

// TestMissingService: outside CI a service that is not configured skips
// the test; under CI=true it fails it, naming the variable.
func TestMissingService(t *testing.T) {
	t.Setenv(PostgresURLEnv, "")
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		r := &recorder{TB: t}
		r.ended(func() { PostgresURL(r) })
		ended, other := r.skip, r.fatal
		if ci == "true" {
			ended, other = r.fatal, r.skip
		}
		if !strings.Contains(ended, PostgresURLEnv) || other != "" {
			t.Errorf("CI=%q: fatal %q, skip %q", ci, r.fatal, r.skip)
		}
	}
	t.Setenv(PostgresURLEnv, "postgres://example/db")
	r := &recorder{TB: t}
	if got := PostgresURL(r); got != "postgres://example/db" || r.fatal != "" || r.skip != "" {
		t.Errorf("configured: %q, fatal %q, skip %q", got, r.fatal, r.skip)
	}
}

// TestS3Server: the S3 server needs all three variables; any missing one
// skips outside CI and fails under it, like the other services.
func TestS3Server(t *testing.T) {
	t.Setenv("CI", "true")
	t.Setenv(S3EndpointEnv, "http://127.0.0.1:8333")
	t.Setenv(S3AccessKeyEnv, "key")
	t.Setenv(S3SecretKeyEnv, "")
	r := &recorder{TB: t}
	r.ended(func() { S3Server(r) })
	if !strings.Contains(r.fatal, S3SecretKeyEnv) {
		t.Errorf("without the secret key: fatal %q", r.fatal)
	}
	t.Setenv(S3SecretKeyEnv, "secret")
	r = &recorder{TB: t}
	if got := S3Server(r); got != (S3{Endpoint: "http://127.0.0.1:8333", AccessKey: "key", SecretKey: "secret"}) || r.fatal != "" {
		t.Errorf("configured: %+v, fatal %q", got, r.fatal)
	}
}

// TestRedisClusterAddrs: the cluster's seeds are a comma-separated list;
// unset, it skips outside CI and fails under it, like the other services.
func TestRedisClusterAddrs(t *testing.T) {
	t.Setenv("CI", "true")
	t.Setenv(RedisClusterAddrsEnv, "")
	r := &recorder{TB: t}
	r.ended(func() { RedisClusterAddrs(r) })
	if !strings.Contains(r.fatal, RedisClusterAddrsEnv) {
		t.Errorf("unset: fatal %q", r.fatal)
	}
	t.Setenv(RedisClusterAddrsEnv, "127.0.0.1:7101, 127.0.0.1:7102,127.0.0.1:7103")
	r = &recorder{TB: t}
	got := RedisClusterAddrs(r)
	if strings.Join(got, " ") != "127.0.0.1:7101 127.0.0.1:7102 127.0.0.1:7103" || r.fatal != "" {
		t.Errorf("configured: %q, fatal %q", got, r.fatal)
	}
}
