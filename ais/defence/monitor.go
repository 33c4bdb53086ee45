package defence

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Monitor watches one client's stream of queries to a model for model
// extraction with two tests:
//
//   - PRADA (Juuti et al., EuroS&P 2019): the minimum L2 distance of each
//     query to the client's earlier queries of the same predicted class
//     (a growing set) is recorded; natural queries give roughly normally
//     distributed distances, crafted ones do not. The stream is flagged
//     when the Shapiro-Wilk W of the recent distances falls below
//     PRADAThreshold.
//   - OOD rate: each query is in or out of distribution by the profile's
//     OOD check. A CUSUM of the Bernoulli log-likelihood ratio between the
//     clean rate CleanOODRate and AlertOODRate flags the stream when it
//     reaches CUSUMLimit. Synthetic or foreign-data extraction (which
//     PRADA misses when its queries look natural) raises the rate.
//
// A flagged stream stays flagged for the state's lifetime.
type Monitor struct {
	MinQueries     int     `json:"min_queries"` // distances before PRADA tests
	Window         int     `json:"window"`      // latest distances PRADA tests
	History        int     `json:"history"`     // growing-set queries kept per class
	PRADAThreshold float64 `json:"prada_threshold"`
	CleanOODRate   float64 `json:"clean_ood_rate"`
	AlertOODRate   float64 `json:"alert_ood_rate"`
	CUSUMLimit     float64 `json:"cusum_limit"`
	// QueryBudget is the MEA analysis's query budget the stream replay
	// was measured against.
	QueryBudget int `json:"query_budget"`
}

// Monitor defaults.
const (
	DefaultMinQueries = 50
	DefaultWindow     = 500
	DefaultHistory    = 100
)

// State is one client's stream, JSON-serialisable (it lives in Redis).
type State struct {
	Queries    int                 `json:"queries"`
	Growing    map[int][][]float32 `json:"growing,omitempty"`
	Distances  []float64           `json:"distances,omitempty"`
	CUSUM      float64             `json:"cusum"`
	OODQueries int                 `json:"ood_queries"`
	LastW      float64             `json:"last_w,omitempty"`
	FlaggedAt  int                 `json:"flagged_at,omitempty"` // query number, 1-based; 0: not flagged
	FlaggedBy  string              `json:"flagged_by,omitempty"`
}

// Observe adds one query (its input, the class the model predicted, and
// whether the OOD check fired on it) and returns the stream checks.
func (m *Monitor) Observe(st *State, input []float32, class int, oodFired bool) []CheckResult {
	st.Queries++
	f := Reduce(input, MaxFeatures)
	x := make([]float32, len(f))
	for i, v := range f {
		x[i] = float32(v)
	}
	if st.Growing == nil {
		st.Growing = map[int][][]float32{}
	}
	// PRADA.
	g := st.Growing[class]
	if len(g) == 0 {
		st.Growing[class] = [][]float32{x}
	} else {
		dmin := math.Inf(1)
		for _, y := range g {
			var s float64
			for i := range x {
				if i < len(y) {
					d := float64(x[i] - y[i])
					s += d * d
				}
			}
			dmin = math.Min(dmin, s)
		}
		dmin = math.Sqrt(dmin)
		st.Distances = append(st.Distances, dmin)
		if w := max(m.Window, 3); len(st.Distances) > w {
			st.Distances = append([]float64(nil), st.Distances[len(st.Distances)-w:]...)
		}
		mu, sd := meanStd(st.Distances)
		if dmin > mu-sd {
			g = append(g, x)
			if h := max(m.History, 1); len(g) > h {
				g = append([][]float32(nil), g[len(g)-h:]...)
			}
			st.Growing[class] = g
		}
	}
	prada := CheckResult{Name: CheckPRADA, Score: 1, Threshold: m.PRADAThreshold}
	if len(st.Distances) >= max(m.MinQueries, 3) {
		if w, _, err := ShapiroWilk(st.Distances); err == nil {
			st.LastW = w
			prada.Score = w
			prada.Fired = w < m.PRADAThreshold
		}
	}
	// OOD rate.
	if oodFired {
		st.OODQueries++
	}
	st.CUSUM = math.Max(0, st.CUSUM+m.llr(oodFired))
	rate := CheckResult{Name: CheckOODRate, Score: st.CUSUM, Threshold: m.CUSUMLimit, Fired: st.CUSUM >= m.CUSUMLimit}
	if st.FlaggedAt == 0 {
		switch {
		case prada.Fired:
			st.FlaggedAt, st.FlaggedBy = st.Queries, CheckPRADA
		case rate.Fired:
			st.FlaggedAt, st.FlaggedBy = st.Queries, CheckOODRate
		}
	}
	return []CheckResult{prada, rate}
}

// llr is one query's log-likelihood ratio of the alert rate to the clean rate.
func (m *Monitor) llr(ood bool) float64 {
	if ood {
		return math.Log(m.AlertOODRate / m.CleanOODRate)
	}
	return math.Log((1 - m.AlertOODRate) / (1 - m.CleanOODRate))
}

func meanStd(xs []float64) (float64, float64) {
	var s, ss float64
	for _, v := range xs {
		s += v
	}
	mu := s / float64(len(xs))
	for _, v := range xs {
		ss += (v - mu) * (v - mu)
	}
	return mu, math.Sqrt(ss / float64(len(xs)))
}

// WilsonUpper is the upper end of the Wilson score interval of k
// successes in n trials at normal quantile z (1.645: one-sided 95 %).
func WilsonUpper(k, n int, z float64) float64 {
	if n == 0 {
		return 1
	}
	p := float64(k) / float64(n)
	nf := float64(n)
	c := p + z*z/(2*nf)
	r := z * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf))
	return math.Min(1, (c+r)/(1+z*z/nf))
}

// SetOODRates sets the OOD-rate test from the clean rate k/n: the clean
// rate is its Wilson upper bound (one-sided 95 %), the alert rate
// max(0.5, 3 × that) below 0.95, and the CUSUM limit the (1 − alpha)
// quantile of the CUSUM's maximum over clean streams of length queries,
// simulated (seeded).
func (m *Monitor) SetOODRates(k, n, queries int, alpha float64, seed uint64) {
	m.CleanOODRate = math.Max(WilsonUpper(k, n, normQuantile(0.95)), 1e-4)
	m.AlertOODRate = math.Min(0.95, math.Max(0.5, 3*m.CleanOODRate))
	if m.AlertOODRate <= m.CleanOODRate {
		m.AlertOODRate = (m.CleanOODRate + 1) / 2
	}
	const sims = 2000
	rng := rand.New(rand.NewPCG(seed, 0xc05a))
	up, down := m.llr(true), m.llr(false)
	maxima := make([]float64, sims)
	for s := range maxima {
		var c, top float64
		for i := 0; i < queries; i++ {
			if rng.Float64() < m.CleanOODRate {
				c += up
			} else {
				c = math.Max(0, c+down)
			}
			top = math.Max(top, c)
		}
		maxima[s] = top
	}
	sort.Float64s(maxima)
	m.CUSUMLimit = maxima[min(sims-1, int(math.Ceil((1-alpha)*sims)))] + 1e-9
	// One out-of-distribution query alone never flags a stream.
	m.CUSUMLimit = math.Max(m.CUSUMLimit, 1.5*up)
}
