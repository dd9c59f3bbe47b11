package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/jobchat/jobchat/internal/metrics"
)

// newMetrics builds the app's Prometheus registry. What the engine and the
// hub count is read from a when Prometheus scrapes, so a must have its hub
// and resolver by then (newApp returns before the first request).
func newMetrics(a *app) *metrics.Metrics {
	return metrics.New(metrics.Config{
		DB: a.db.DB,
		Engine: func() metrics.Engine {
			fs, hs := a.resolver.FeedStats(), a.hub.Stats()
			return metrics.Engine{
				SubscriptionsByKind: fs.FollowersByKind,
				Conversations:       fs.Conversations,
				Delivered:           fs.Delivered,
				Resyncs:             fs.Resyncs,
				CatchUps:            fs.CatchUps,
				Sweeps:              fs.Sweeps,
				Healed:              fs.Healed,
				Dropped:             fs.Dropped,
				Queued:              hs.Queued,
				QueueSize:           hs.QueueSize,
				Published:           hs.Published,
				PublishFailed:       hs.PublishFailed,
				QueueDropped:        hs.QueueDropped,
				Resumes:             hs.Resumes,
			}
		},
	})
}

// background runs loop on a goroutine of its own, with log in its
// context, until the returned stop, which waits for it to return.
func background(log zerolog.Logger, loop func(ctx context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(log.WithContext(context.Background()))
	done := make(chan struct{})
	go func() {
		defer close(done)
		loop(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// serveMetrics serves /metrics on its own listener (JOBCHAT_METRICS_ADDR),
// so that it need not be reachable where the API is. It returns a function
// that stops the listener.
func serveMetrics(addr string, m *metrics.Metrics, log zerolog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info().Str("addr", ln.Addr().String()).Msg("metrics listening at /metrics")
	return func() { _ = srv.Close() }, nil
}
