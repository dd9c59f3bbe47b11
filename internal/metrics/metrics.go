// Package metrics is jobchat's Prometheus instrumentation: a registry the
// app owns (nothing goes to the client library's global one), the /metrics
// handler, the HTTP middleware that counts sockets by protocol, the gqlgen
// extension that counts GraphQL operations, and the histograms the
// resolvers feed through their Observer.
//
// Most series cost nothing on the hot paths: counters the subscription
// engine and the hub keep anyway are read when Prometheus scrapes (Engine),
// and what must be counted as it happens is an atomic add or a histogram
// observation, never a lock, never per delivery.
//
// Labels are bounded by construction: protocols, subscription kinds and
// error codes are fixed sets, and GraphQL operations are labelled by their
// root field as the schema names it (or "other"), never by the client's
// operation name. No label ever carries a conversation, user or message id.
//
// It may import the Prometheus client, gqlgen's graphql package,
// gqlparser's ast and the standard library; nothing of jobchat: what it
// reports of the engine comes through Config.Engine.
package metrics

import (
	"database/sql"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Engine is a snapshot of what the subscription engine and the broadcast
// hub count, taken once per scrape.
type Engine struct {
	// SubscriptionsByKind counts active subscriptions by root field
	// (messageAdded, conversationActivity, inboxUpdated).
	SubscriptionsByKind map[string]int
	// Conversations counts conversations with local subscribers.
	Conversations int
	// Delivered counts events handed to subscriptions; Resyncs the
	// subscriptions that fell behind and resynchronised from the database;
	// CatchUps every catch-up from the database (starts, resyncs, heals);
	// Sweeps the sweeps run and Healed the feeds they caught up; Dropped
	// live-only events a subscription had no room for.
	Delivered, Resyncs, CatchUps, Sweeps, Healed, Dropped uint64
	// The publish queue: its depth and bound now, what the broker took,
	// what failed, what the full queue dropped, and the broker's comebacks.
	Queued, QueueSize                               int
	Published, PublishFailed, QueueDropped, Resumes uint64
}

// Config configures New.
type Config struct {
	// Engine returns the engine's counters; called once per scrape. Nil:
	// those series are left out.
	Engine func() Engine
	// DB, if set, has its pool statistics exported (go_sql_*).
	DB *sql.DB
}

// Metrics holds the registry and everything that records into it. All its
// methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	send     prometheus.Histogram
	delivery prometheus.Histogram
	sweep    prometheus.Histogram

	ops         *prometheus.CounterVec
	opDuration  *prometheus.HistogramVec
	rateLimited *prometheus.CounterVec

	sockets *socketCounts
}

// latencyBuckets span a fast in-process send (0.25 ms) to a stuck one (10 s).
var latencyBuckets = []float64{.00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New builds the registry with jobchat's series and the Go runtime's and
// the process's.
func New(cfg Config) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), sockets: newSocketCounts()}
	m.send = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "jobchat", Name: "send_duration_seconds",
		Help:    "Time from a send's start to its answer, for new messages stored (any transport).",
		Buckets: latencyBuckets,
	})
	m.delivery = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "jobchat", Name: "delivery_latency_seconds",
		Help:    "Time from a message's commit to its frames being queued on this instance's sockets, per message received live.",
		Buckets: latencyBuckets,
	})
	m.sweep = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "jobchat", Name: "sweep_duration_seconds",
		Help:    "Time one sweep of the feeds took, its query and its heals included.",
		Buckets: latencyBuckets,
	})
	m.ops = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "jobchat", Name: "graphql_operations_total",
		Help: "GraphQL operations by root field, type and outcome (ok, an error code, or started for subscriptions).",
	}, []string{"op", "type", "outcome"})
	m.opDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "jobchat", Name: "graphql_operation_duration_seconds",
		Help:    "Time from a query's or mutation's start to its response.",
		Buckets: latencyBuckets,
	}, []string{"type"})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "jobchat", Name: "rate_limited_total",
		Help: "Requests refused for a rate or concurrency limit: graphql (RATE_LIMITED errors in responses), http (429 answers), websocket (sockets over the per-user or per-address bound, operations over a socket's bound).",
	}, []string{"source"})
	for _, s := range []string{"graphql", "http", "websocket"} {
		m.rateLimited.WithLabelValues(s)
	}

	m.reg.MustRegister(m.send, m.delivery, m.sweep, m.ops, m.opDuration, m.rateLimited,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.sockets.collector(),
	)
	if cfg.Engine != nil {
		m.reg.MustRegister(engineCollector{cfg.Engine})
	}
	if cfg.DB != nil {
		m.reg.MustRegister(collectors.NewDBStatsCollector(cfg.DB, "jobchat"))
	}
	return m
}

// Registry is the app's registry, for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in Prometheus's text (or OpenMetrics) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, MaxRequestsInFlight: 4, Timeout: 10 * time.Second})
}

// Send records a send's latency (resolvers.Observer).
func (m *Metrics) Send(d time.Duration) { m.send.Observe(d.Seconds()) }

// Delivery records a live message's commit-to-queue latency
// (resolvers.Observer). The commit's time is the sending instance's clock:
// one running ahead of this one's would make it negative.
func (m *Metrics) Delivery(d time.Duration) { m.delivery.Observe(max(d, 0).Seconds()) }

// SocketRefused counts a socket or a socket's operation refused by the
// sockets' own bounds, which no GraphQL response or HTTP status shows.
func (m *Metrics) SocketRefused() { m.rateLimited.WithLabelValues("websocket").Inc() }

// Sweep records a sweep's duration (resolvers.Observer).
func (m *Metrics) Sweep(d time.Duration) { m.sweep.Observe(d.Seconds()) }

// engineCollector turns one Engine snapshot per scrape into const metrics.
type engineCollector struct{ snap func() Engine }

var (
	descSubs          = prometheus.NewDesc("jobchat_subscriptions", "Active subscriptions by kind.", []string{"kind"}, nil)
	descConvs         = prometheus.NewDesc("jobchat_conversations_with_subscribers", "Conversations with subscribers on this instance.", nil, nil)
	descDelivered     = prometheus.NewDesc("jobchat_deliveries_total", "Events handed to subscriptions live (once per subscription).", nil, nil)
	descResyncs       = prometheus.NewDesc("jobchat_resyncs_total", "Subscriptions that fell behind (a gap, or no room) and resynchronised from the database.", nil, nil)
	descCatchUps      = prometheus.NewDesc("jobchat_catchups_total", "Catch-ups from the database: subscription starts, resyncs and sweep heals.", nil, nil)
	descSweeps        = prometheus.NewDesc("jobchat_sweeps_total", "Sweeps of the feeds against the database.", nil, nil)
	descHealed        = prometheus.NewDesc("jobchat_sweep_healed_total", "Conversations a sweep found behind the database and caught up.", nil, nil)
	descDropped       = prometheus.NewDesc("jobchat_live_events_dropped_total", "Live-only events (activity, inbox) a subscription had no room for.", nil, nil)
	descQueued        = prometheus.NewDesc("jobchat_publish_queue_depth", "Broadcasts waiting in the publish queue.", nil, nil)
	descQueueSize     = prometheus.NewDesc("jobchat_publish_queue_capacity", "The publish queue's bound (JOBCHAT_PUBLISH_QUEUE).", nil, nil)
	descPublished     = prometheus.NewDesc("jobchat_published_total", "Broadcasts the broker accepted.", nil, nil)
	descPublishFailed = prometheus.NewDesc("jobchat_publish_failures_total", "Broadcasts lost: refused or timed out by the broker (failed), or dropped by the full queue (queue_full). The sweep heals them.", []string{"reason"}, nil)
	descResumes       = prometheus.NewDesc("jobchat_broker_resumes_total", "Times the broker's connection came back after a loss.", nil, nil)
)

func (c engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSubs, descConvs, descDelivered, descResyncs, descCatchUps, descSweeps,
		descHealed, descDropped, descQueued, descQueueSize, descPublished, descPublishFailed, descResumes} {
		ch <- d
	}
}

func (c engineCollector) Collect(ch chan<- prometheus.Metric) {
	e := c.snap()
	for kind, n := range e.SubscriptionsByKind {
		ch <- prometheus.MustNewConstMetric(descSubs, prometheus.GaugeValue, float64(n), kind)
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(descConvs, float64(e.Conversations))
	counter(descDelivered, e.Delivered)
	counter(descResyncs, e.Resyncs)
	counter(descCatchUps, e.CatchUps)
	counter(descSweeps, e.Sweeps)
	counter(descHealed, e.Healed)
	counter(descDropped, e.Dropped)
	gauge(descQueued, float64(e.Queued))
	gauge(descQueueSize, float64(e.QueueSize))
	counter(descPublished, e.Published)
	ch <- prometheus.MustNewConstMetric(descPublishFailed, prometheus.CounterValue, float64(e.PublishFailed), "failed")
	ch <- prometheus.MustNewConstMetric(descPublishFailed, prometheus.CounterValue, float64(e.QueueDropped), "queue_full")
	counter(descResumes, e.Resumes)
}
