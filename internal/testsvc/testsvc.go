// Package testsvc tells tests where the external services they need are,
// and holds the project's one rule about them: outside CI a service that is
// not configured skips the test; with CI=true it fails it, so coverage of
// PostgreSQL and Redis can never silently vanish. It imports the standard
// library only.
package testsvc

import (
	"os"
	"testing"
)

// The variables that point the tests at real services.
const (
	PostgresURLEnv = "JOBCHAT_TEST_POSTGRES_URL"
	RedisURLEnv    = "JOBCHAT_TEST_REDIS_URL"
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
