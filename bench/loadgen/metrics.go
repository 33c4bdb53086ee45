package main

import (
	"bufio"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// hist is one latency histogram series: cumulative bucket counts by upper
// bound, sum and count.
type hist struct {
	buckets map[float64]float64
	sum     float64
	count   float64
}

const (
	predictMetric = "warden_predict_duration_seconds"
	httpMetric    = "warden_http_request_duration_seconds"
	predictRoute  = "/v1/models/:model_id/predict"
)

// stageOf names the series a line belongs to: the stages of the ok
// predictions (total, queue, runner, forward) and "http", the API's own
// request timing of the predict route's 200s (middleware included); "" for
// any other line.
func stageOf(name string, labels map[string]string) string {
	switch {
	case strings.HasPrefix(name, predictMetric+"_") && labels["outcome"] == "ok":
		return labels["stage"]
	case strings.HasPrefix(name, httpMetric+"_") && labels["route"] == predictRoute && labels["status"] == "200":
		return "http"
	}
	return ""
}

// scrape reads the predict latency histograms from /metrics, by stage.
func scrape(base string) (map[string]*hist, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(strings.TrimRight(base, "/") + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("scrape /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape /metrics: status %d", resp.StatusCode)
	}
	out := map[string]*hist{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, predictMetric+"_") && !strings.HasPrefix(line, httpMetric+"_") {
			continue
		}
		name, labels, value, ok := parseSample(line)
		stage := stageOf(name, labels)
		if !ok || stage == "" {
			continue
		}
		h := out[stage]
		if h == nil {
			h = &hist{buckets: map[float64]float64{}}
			out[stage] = h
		}
		switch name[strings.LastIndexByte(name, '_')+1:] {
		case "bucket":
			le, err := strconv.ParseFloat(labels["le"], 64)
			if err == nil {
				h.buckets[le] = value
			}
		case "sum":
			h.sum = value
		case "count":
			h.count = value
		}
	}
	return out, sc.Err()
}

// parseSample splits `name{k="v",…} value` (Prometheus text format, no
// escaped quotes in our labels).
func parseSample(line string) (string, map[string]string, float64, bool) {
	open, close := strings.IndexByte(line, '{'), strings.LastIndexByte(line, '}')
	if open < 0 || close < open {
		return "", nil, 0, false
	}
	labels := map[string]string{}
	for _, kv := range strings.Split(line[open+1:close], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			labels[k] = strings.Trim(v, `"`)
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(line[close+1:]), 64)
	return line[:open], labels, v, err == nil
}

// printStages prints, per stage, the mean and the p50/p99 (linear within
// the bucket, as Prometheus' histogram_quantile does) of the observations
// between the two scrapes.
func printStages(before, after map[string]*hist) {
	fmt.Print("STAGES")
	for _, stage := range []string{"http", "total", "queue", "handoff", "runner", "forward"} {
		a := after[stage]
		if a == nil {
			continue
		}
		b := before[stage]
		if b == nil {
			b = &hist{buckets: map[float64]float64{}}
		}
		n := a.count - b.count
		if n <= 0 {
			continue
		}
		d := map[float64]float64{}
		for le, c := range a.buckets {
			d[le] = c - b.buckets[le]
		}
		fmt.Printf(" %s_n=%.0f %s_mean_ms=%.3f %s_p50_ms=%.3f %s_p99_ms=%.3f", stage, n,
			stage, (a.sum-b.sum)/n*1000, stage, quantile(d, n, 0.5)*1000, stage, quantile(d, n, 0.99)*1000)
	}
	fmt.Println()
}

// quantile of cumulative buckets holding n observations.
func quantile(buckets map[float64]float64, n, q float64) float64 {
	les := make([]float64, 0, len(buckets))
	for le := range buckets {
		les = append(les, le)
	}
	sort.Float64s(les)
	rank := q * n
	lower, below := 0.0, 0.0
	for _, le := range les {
		c := buckets[le]
		if c >= rank {
			if math.IsInf(le, 1) {
				return lower // beyond the last finite bound: report that bound
			}
			if c == below {
				return le
			}
			return lower + (le-lower)*(rank-below)/(c-below)
		}
		lower, below = le, c
	}
	return lower
}
