// Package dashboards holds what operators look at: Prometheus metrics, the
// asynqmon mount and the Grafana dashboard JSON.
package dashboards

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/wardenlab/warden/storage"
)

// Metrics is one process's Prometheus registry.
type Metrics struct {
	reg         *prometheus.Registry
	httpLatency *prometheus.HistogramVec
	jobsTotal   *prometheus.CounterVec
	jobDuration *prometheus.HistogramVec
	predict     *prometheus.HistogramVec
}

// NewMetrics creates the registry with Go and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		httpLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "warden_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route", "status"}),
		jobsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_jobs_finished_total", Help: "Jobs finished by this process, by kind and final status.",
		}, []string{"kind", "status"}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "warden_job_duration_seconds", Help: "Job processing time by kind and final status.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 12),
		}, []string{"kind", "status"}),
		predict: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "warden_predict_duration_seconds",
			Help:    "Synchronous prediction latency by stage: total (as the API saw it), queue (total less the worker's handling: Redis hops and waiting), handoff (the part of queue between pushing the request and the reply reaching the API: the Redis hops alone), runner (the batch's runner round trip) and forward (the forward pass alone), by outcome: ok or the error's code; guarded predictions (AISpectra's endpoint defence) guarded, flagged, blocked or the error's code.",
			Buckets: []float64{.0001, .00025, .0005, .00075, .001, .0015, .002, .005, .01, .025, .05, .1, .25, 1, 5, 30},
		}, []string{"stage", "outcome"}),
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpLatency, m.jobsTotal, m.jobDuration, m.predict)
	return m
}

// ObserveHTTP records one request.
func (m *Metrics) ObserveHTTP(method, route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.httpLatency.WithLabelValues(method, route, strconv.Itoa(status)).Observe(d.Seconds())
}

// PredictStages are a prediction's latencies by stage.
type PredictStages struct {
	Total, Queue, Handoff, Runner, Forward time.Duration
}

// ObservePredict records one synchronous prediction; stages that did not
// happen (zero) are left out. A guarded prediction's outcome is guarded
// (nothing fired), flagged, blocked, or the error's code.
func (m *Metrics) ObservePredict(outcome string, s PredictStages) {
	if m == nil {
		return
	}
	for stage, d := range map[string]time.Duration{"total": s.Total, "queue": s.Queue, "handoff": s.Handoff, "runner": s.Runner, "forward": s.Forward} {
		if d > 0 || stage == "total" {
			m.predict.WithLabelValues(stage, outcome).Observe(d.Seconds())
		}
	}
}

// JobFinished records a job reaching a final status.
func (m *Metrics) JobFinished(kind, status string, d time.Duration) {
	if m == nil {
		return
	}
	m.jobsTotal.WithLabelValues(kind, status).Inc()
	m.jobDuration.WithLabelValues(kind, status).Observe(d.Seconds())
}

// WatchQueues adds gauges read on each scrape: queue depth per asynq queue
// and state (the named queues always, at zero before first use, plus any
// other queue Redis knows), jobs per kind and status from the database, and
// the stored objects still queued for deletion (tombstones).
func (m *Metrics) WatchQueues(insp *asynq.Inspector, db *storage.DB, queues []string) {
	m.reg.MustRegister(&stateCollector{insp: insp, db: db, queues: queues,
		depth: prometheus.NewDesc("warden_queue_depth", "Tasks in each asynq queue by state.", []string{"queue", "state"}, nil),
		jobs:  prometheus.NewDesc("warden_jobs", "Jobs in the database by kind and status.", []string{"kind", "status"}, nil),
		blobDeletions: prometheus.NewDesc("warden_blob_deletions_pending",
			"Stored objects whose rows were deleted and which are not deleted from the blob store yet (tombstones, retried by the reconciler).", nil, nil),
	})
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

type stateCollector struct {
	insp                       *asynq.Inspector
	db                         *storage.DB
	queues                     []string
	depth, jobs, blobDeletions *prometheus.Desc
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.jobs
	ch <- c.blobDeletions
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	known, err := c.insp.Queues()
	if err != nil {
		slog.Debug("queue list unavailable", "err", err)
		return
	}
	queues := append([]string(nil), c.queues...)
	for _, q := range known {
		if !slices.Contains(queues, q) {
			queues = append(queues, q)
		}
	}
	for _, q := range queues {
		info := &asynq.QueueInfo{} // a queue Redis has not seen yet is empty
		if slices.Contains(known, q) {
			if info, err = c.insp.GetQueueInfo(q); err != nil {
				continue
			}
		}
		for state, n := range map[string]int{"pending": info.Pending, "active": info.Active, "scheduled": info.Scheduled,
			"retry": info.Retry, "archived": info.Archived, "completed": info.Completed} {
			ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(n), q, state)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if counts, err := c.db.CountJobs(ctx); err == nil {
		for k, n := range counts {
			ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(n), k[0], k[1])
		}
	}
	if n, err := c.db.CountBlobDeletions(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.blobDeletions, prometheus.GaugeValue, float64(n))
	}
}
