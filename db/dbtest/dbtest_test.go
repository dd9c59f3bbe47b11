package dbtest

import (
	"testing"

	"github.com/jobchat/jobchat/internal/testsvc"
)

// TestPostgresSkippedWithoutURL: without JOBCHAT_TEST_POSTGRES_URL (and
// outside CI) a test still runs a postgres subtest, which skips itself
// when it asks for its database, so that `go test -v` reports
// TestX/postgres as skipped instead of leaving it out.
func TestPostgresSkippedWithoutURL(t *testing.T) {
	t.Setenv(testsvc.PostgresURLEnv, "")
	t.Setenv("CI", "")
	dialects := Dialects(t)
	if len(dialects) != 2 || dialects[0] != SQLite || dialects[1] != Postgres {
		t.Fatalf("Dialects = %v, want [sqlite postgres]", dialects)
	}
	var skipped, reached bool
	t.Run(Postgres, func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Config(t, Postgres)
		reached = true
	})
	if !skipped || reached {
		t.Fatalf("postgres subtest without a URL: skipped %v, went on past Config %v", skipped, reached)
	}
}
