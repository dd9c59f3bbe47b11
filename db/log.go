package db

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/rs/zerolog"
	"github.com/uptrace/bun"
)

// slowQuery is when a query is worth a warning: far above what any of
// jobchat's indexed queries take.
const slowQuery = 250 * time.Millisecond

// queryLog logs each query at debug level and slow ones at warn, through the
// request's logger, so a slow page can be traced to its SQL by req_id.
type queryLog struct{}

var _ bun.QueryHook = queryLog{}

func (queryLog) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (queryLog) AfterQuery(ctx context.Context, ev *bun.QueryEvent) {
	log := zerolog.Ctx(ctx)
	d := time.Since(ev.StartTime)
	// bun inlines arguments, so the SQL holds message texts: the warning,
	// logged in production, keeps only its start.
	var e *zerolog.Event
	sqlLen := 500
	switch {
	case d >= slowQuery:
		e, sqlLen = log.Warn(), 120
	case log.GetLevel() > zerolog.DebugLevel:
		return
	default:
		e = log.Debug()
	}
	if ev.Err != nil && !errors.Is(ev.Err, sql.ErrNoRows) {
		e = e.AnErr("query_error", ev.Err)
	}
	e.Str("op", ev.Operation()).Float64("duration_ms", float64(d.Microseconds())/1000).Str("sql", truncate(ev.Query, sqlLen)).Msg("sql query")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
