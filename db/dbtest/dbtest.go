// Package dbtest gives tests a migrated database of their own: SQLite in a
// temporary directory always, and PostgreSQL, in a schema made for the test,
// when JOBCHAT_TEST_POSTGRES_URL is set. With CI=true a missing PostgreSQL is
// a failure, never a skip. It imports db, migrations and internal/testsvc.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/uptrace/bun"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/internal/testsvc"
	"github.com/jobchat/jobchat/migrations"
)

// The dialects New accepts.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Dialects lists the dialects this run must cover: SQLite always, and
// PostgreSQL when it is configured. Under CI it must be.
func Dialects(tb testing.TB) []string {
	tb.Helper()
	if os.Getenv(testsvc.PostgresURLEnv) != "" {
		return []string{SQLite, Postgres}
	}
	if testsvc.InCI() {
		tb.Fatalf("CI=true but %s is not set: the PostgreSQL suite must run in CI", testsvc.PostgresURLEnv)
	}
	tb.Logf("%s not set: running on SQLite only", testsvc.PostgresURLEnv)
	return []string{SQLite}
}

// Config returns a db.Config for a fresh, migrated database of the dialect,
// dropped when the test ends.
func Config(tb testing.TB, dialect string) db.Config {
	tb.Helper()
	switch dialect {
	case SQLite:
		return db.Config{DataDir: tb.TempDir()}
	case Postgres:
		return db.Config{URL: postgresSchema(tb)}
	}
	tb.Fatalf("dbtest: unknown dialect %q", dialect)
	return db.Config{}
}

// New opens and migrates a throwaway database of the dialect.
func New(tb testing.TB, dialect string) *bun.DB {
	tb.Helper()
	cfg := Config(tb, dialect)
	bdb, err := db.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("dbtest: %v", err)
	}
	tb.Cleanup(func() { _ = bdb.Close() })
	if _, err := migrations.Up(context.Background(), bdb); err != nil {
		tb.Fatalf("dbtest: %v", err)
	}
	return bdb
}

// postgresSchema makes a schema of its own for the test and returns a URL
// whose connections use it; a schema is much cheaper than a database.
func postgresSchema(tb testing.TB) string {
	tb.Helper()
	base := testsvc.PostgresURL(tb)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])

	admin, err := db.Open(context.Background(), db.Config{URL: base, MaxOpenConns: 1})
	if err != nil {
		tb.Fatalf("dbtest: PostgreSQL at %s: %v", base, err)
	}
	if _, err := admin.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		_ = admin.Close()
		tb.Fatalf("dbtest: create schema: %v", err)
	}
	tb.Cleanup(func() {
		_, _ = admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		_ = admin.Close()
	})

	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("dbtest: parse %s: %v", testsvc.PostgresURLEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
