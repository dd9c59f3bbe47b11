// Package migrations holds jobchat's versioned SQL migrations, one folder per
// dialect, embedded in the binary so that `jobchat migrate` and the server's
// start-up need nothing beside it. It imports bun's migrate package only.
package migrations

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/migrate"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// forDialect collects the migrations written for bdb's SQL dialect.
func forDialect(bdb *bun.DB) (*migrate.Migrations, error) {
	dir := "sqlite"
	if bdb.Dialect().Name() == dialect.PG {
		dir = "postgres"
	}
	sub, err := fs.Sub(files, dir)
	if err != nil {
		return nil, fmt.Errorf("migrations for %s: %w", dir, err)
	}
	m := migrate.NewMigrations()
	if err := m.Discover(sub); err != nil {
		return nil, fmt.Errorf("discover %s migrations: %w", dir, err)
	}
	return m, nil
}

// Result says what Up did.
type Result struct {
	// Applied names the migrations this call applied, oldest first.
	Applied []string
}

// Up applies every pending migration. It holds bun's migration lock while it
// works, so several instances starting at once apply each migration once.
func Up(ctx context.Context, bdb *bun.DB) (Result, error) {
	m, err := forDialect(bdb)
	if err != nil {
		return Result{}, err
	}
	migrator := migrate.NewMigrator(bdb, m)
	if err := migrator.Init(ctx); err != nil {
		return Result{}, fmt.Errorf("init migrations: %w", err)
	}
	if err := lockWithRetry(ctx, migrator); err != nil {
		return Result{}, err
	}
	defer func() { _ = migrator.Unlock(context.WithoutCancel(ctx)) }()

	group, err := migrator.Migrate(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("apply migrations: %w", err)
	}
	var res Result
	for _, mig := range group.Migrations {
		res.Applied = append(res.Applied, mig.Name+"_"+mig.Comment)
	}
	return res, nil
}

// lockWithRetry waits for another instance's migration to finish: bun's
// Lock fails at once when the lock is taken rather than waiting for it.
func lockWithRetry(ctx context.Context, migrator *migrate.Migrator) error {
	const attempts = 60
	var err error
	for i := 0; i < attempts; i++ {
		if err = migrator.Lock(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lock migrations: %w", ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("lock migrations (held by another instance for 30s; a crashed migration leaves the row in bun_migration_locks): %w", err)
}
