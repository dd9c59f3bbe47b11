// Package dbtest gives tests a migrated database of their own: SQLite in a
// temporary directory always, and PostgreSQL, in a schema made for the test,
// when JOBCHAT_TEST_POSTGRES_URL is set; without it a PostgreSQL test is
// skipped, and with CI=true it fails. It imports db, migrations and
// internal/testsvc.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
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

// Dialects lists the dialects a test runs on, each in a subtest of its
// name: SQLite and PostgreSQL, always, so that a run without PostgreSQL
// reports TestX/postgres as skipped rather than not at all. The subtest
// skips itself when it asks Config or New for its database and
// JOBCHAT_TEST_POSTGRES_URL is not set, or fails there under CI=true; so a
// PostgreSQL subtest must ask for its database before it does anything
// else.
func Dialects(tb testing.TB) []string {
	tb.Helper()
	return []string{SQLite, Postgres}
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
