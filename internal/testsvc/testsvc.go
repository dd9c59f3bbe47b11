// Package testsvc tells tests where the external services they need are,
// and holds the project's one rule about them: outside CI a service that is
// not configured skips the test; with CI=true it fails it, so coverage of
// PostgreSQL, Redis and the S3 store can never silently vanish. It imports
// the standard library only.
package testsvc

import (
	"os"
	"strings"
	"testing"
)

// The variables that point the tests at real services.
const (
	PostgresURLEnv = "JOBCHAT_TEST_POSTGRES_URL"
	RedisURLEnv    = "JOBCHAT_TEST_REDIS_URL"
	// A Redis Cluster's nodes, comma-separated host:port seeds
	// (.ci/redis-cluster.sh starts one: 127.0.0.1:7101,...).
	RedisClusterAddrsEnv = "JOBCHAT_TEST_REDIS_CLUSTER_ADDRS"
	// The S3-compatible server (.ci/s3.sh starts one): its endpoint
	// (http://127.0.0.1:8333) and keys.
	S3EndpointEnv  = "JOBCHAT_TEST_S3_ENDPOINT"
	S3AccessKeyEnv = "JOBCHAT_TEST_S3_ACCESS_KEY"
	S3SecretKeyEnv = "JOBCHAT_TEST_S3_SECRET_KEY"
)

// InCI reports whether this run is CI's, where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") == "true" }

// PostgresURL returns the test PostgreSQL URL, skipping or failing tb
// without one.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	return require(tb, PostgresURLEnv, "PostgreSQL")
}

// RedisURL returns the test Redis URL, skipping or failing tb without one.
func RedisURL(tb testing.TB) string {
	tb.Helper()
	return require(tb, RedisURLEnv, "Redis")
}

// RedisClusterAddrs returns the addresses of the test Redis Cluster's
// nodes, skipping or failing tb without them.
func RedisClusterAddrs(tb testing.TB) []string {
	tb.Helper()
	var addrs []string
	for a := range strings.SplitSeq(require(tb, RedisClusterAddrsEnv, "Redis Cluster"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		tb.Fatalf("%s lists no address", RedisClusterAddrsEnv)
	}
	return addrs
}

// S3 is a running S3-compatible server: an endpoint with its scheme, and
// keys that may make buckets.
type S3 struct {
	Endpoint, AccessKey, SecretKey string
}

// S3Server returns the test S3 server, skipping or failing tb without one.
func S3Server(tb testing.TB) S3 {
	tb.Helper()
	return S3{
		Endpoint:  require(tb, S3EndpointEnv, "S3"),
		AccessKey: require(tb, S3AccessKeyEnv, "S3"),
		SecretKey: require(tb, S3SecretKeyEnv, "S3"),
	}
}

func require(tb testing.TB, env, what string) string {
	tb.Helper()
	v := os.Getenv(env)
	if v == "" {
		if InCI() {
			tb.Fatalf("CI=true but %s is not set: CI must run the %s tests", env, what)
		}
		tb.Skipf("%s is not set: skipping %s tests", env, what)
	}
	return v
}
