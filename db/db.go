// Package db holds jobchat's storage: the bun models of profiles, jobs,
// conversations, participants and messages, the outbox of notices for
// offline users (outbox.go), and the queries over them.
//
// Every query takes a bun.IDB so that callers can compose several inside one
// transaction (bun.DB.RunInTx). Queries map "no rows" to ErrNotFound and
// unique violations to ErrConflict, wrapped with context, so that callers can
// tell them apart with errors.Is without knowing the SQL dialect.
//
// db may import migrations and the database drivers; nothing GraphQL.
package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var (
	// ErrNotFound means the row asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a unique constraint refused the write.
	ErrConflict = errors.New("conflict")
	// ErrClosed means the conversation is closed: read-only for its
	// participants.
	ErrClosed = errors.New("conversation closed")
)

// Config says where the database is.
type Config struct {
	// URL is a postgres:// (or postgresql://) URL, or empty for SQLite.
	URL string
	// DataDir holds the SQLite file when URL is empty. Zero means "./data".
	DataDir string
	// MaxOpenConns caps the pool. Zero means 20 for PostgreSQL and 8 for SQLite.
	MaxOpenConns int
}

// Open connects to PostgreSQL when cfg.URL is a postgres URL and to an
// embedded SQLite file in cfg.DataDir otherwise, and checks the connection.
func Open(ctx context.Context, cfg Config) (*bun.DB, error) {
	var (
		sqldb *sql.DB
		bdb   *bun.DB
	)
	switch {
	case strings.HasPrefix(cfg.URL, "postgres://"), strings.HasPrefix(cfg.URL, "postgresql://"):
		pgcfg, err := pgx.ParseConfig(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		if !strings.Contains(cfg.URL, "default_query_exec_mode") {
			// bun writes values into the SQL text, so nearly every query
			// is new: pgx's default would prepare each one (a round trip),
			// cache it (holding its text: tens of MB across the pool) and
			// deallocate it later. Run them unprepared instead; the one
			// hot statement with parameters (the send) asks for the cache
			// itself.
			pgcfg.DefaultQueryExecMode = pgx.QueryExecModeExec
		}
		sqldb = stdlib.OpenDB(*pgcfg)
		maxConns := cfg.MaxOpenConns
		if maxConns == 0 {
			maxConns = 20
		}
		sqldb.SetMaxOpenConns(maxConns)
		sqldb.SetMaxIdleConns(maxConns)
		sqldb.SetConnMaxIdleTime(5 * time.Minute)
		bdb = bun.NewDB(sqldb, pgdialect.New())
	case cfg.URL == "" || strings.HasPrefix(cfg.URL, "sqlite:") || strings.HasPrefix(cfg.URL, "file:"):
		dsn, err := sqliteDSN(cfg)
		if err != nil {
			return nil, err
		}
		sqldb, err = sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		maxConns := cfg.MaxOpenConns
		if maxConns == 0 {
			maxConns = 8
		}
		sqldb.SetMaxOpenConns(maxConns)
		sqldb.SetMaxIdleConns(maxConns)
		bdb = bun.NewDB(sqldb, sqlitedialect.New())
	default:
		return nil, fmt.Errorf("open database: unsupported URL scheme in %q (want postgres:// or empty for SQLite)", redactURL(cfg.URL))
	}
	bdb = bdb.WithQueryHook(queryLog{})
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := bdb.PingContext(pingCtx); err != nil {
		_ = bdb.Close()
		return nil, fmt.Errorf("connect to database %s: %w", redactURL(cfg.URL), err)
	}
	return bdb, nil
}

// sqliteDSN builds the modernc.org/sqlite DSN. WAL lets readers run beside
// the one writer; immediate transactions take the write lock at BEGIN, so two
// senders queue on busy_timeout instead of deadlocking on a lock upgrade.
func sqliteDSN(cfg Config) (string, error) {
	path := strings.TrimPrefix(strings.TrimPrefix(cfg.URL, "sqlite:"), "file:")
	if path == "" {
		dir := cfg.DataDir
		if dir == "" {
			dir = "./data"
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("create data dir: %w", err)
		}
		path = filepath.Join(dir, "jobchat.db")
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	q.Set("_time_format", "sqlite")
	return "file:" + path + "?" + q.Encode(), nil
}

// Ping checks that the database answers; /readyz uses it.
func Ping(ctx context.Context, bdb *bun.DB) error {
	if err := bdb.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// queryRowPG runs a one-row query with bind parameters on a pooled
// PostgreSQL connection through pgx itself and scans the row into dest.
// database/sql would do the same, but it starts a goroutine per query to
// watch ctx, which pgx already watches without one; on the send path that
// goroutine and the switches to it were about a fifth of the client side's
// CPU. Like database/sql, it retries on another connection when the
// failure happened before anything was sent.
func queryRowPG(ctx context.Context, sqldb *sql.DB, query string, args []any, dest ...any) error {
	for attempt := 0; ; attempt++ {
		conn, err := sqldb.Conn(ctx)
		if err != nil {
			return err
		}
		err = conn.Raw(func(dc any) error {
			pc, ok := dc.(interface{ Conn() *pgx.Conn })
			if !ok {
				return fmt.Errorf("query: driver connection %T is not pgx", dc)
			}
			// Prepared once per connection and cached: the pool's default
			// mode (see Open) prepares nothing.
			args := append([]any{pgx.QueryExecModeCacheStatement}, args...)
			err := pc.Conn().QueryRow(ctx, query, args...).Scan(dest...)
			if err != nil && pgconn.SafeToRetry(err) {
				// Tells Raw to drop the connection, as database/sql does.
				return driver.ErrBadConn
			}
			return err
		})
		_ = conn.Close()
		if errors.Is(err, driver.ErrBadConn) && attempt < 2 {
			continue
		}
		return err
	}
}

// mapErr turns driver errors into the package's sentinels, keeping the cause.
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%s: %w: %s", op, ErrConflict, pgErr.ConstraintName)
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%s: %w: %v", op, ErrConflict, err)
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// redactURL keeps passwords out of logs and errors.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// now is the one clock of the package: UTC, at the microsecond both
// databases keep, so that what is written is what is read back.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}
