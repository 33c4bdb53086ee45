package attacks

import (
	"math"
	"sort"
)

// LinfNorm is max_i |b_i − a_i|.
func LinfNorm(a, b []float32) float32 {
	var m float32
	for i := range a {
		d := b[i] - a[i]
		if d < 0 {
			d = -d
		}
		if d > m {
			m = d
		}
	}
	return m
}

// L2Norm is sqrt(Σ (b_i − a_i)²), accumulated in float64.
func L2Norm(a, b []float32) float32 {
	var s float64
	for i := range a {
		d := float64(b[i]) - float64(a[i])
		s += d * d
	}
	return float32(math.Sqrt(s))
}

// SuccessRate is the fraction of true flags (0 for an empty slice).
func SuccessRate(success []bool) float64 {
	if len(success) == 0 {
		return 0
	}
	n := 0
	for _, s := range success {
		if s {
			n++
		}
	}
	return float64(n) / float64(len(success))
}

// NormStats summarises perturbation norms over the successful samples.
type NormStats struct {
	Count  int     `json:"count"`
	Mean   float64 `json:"mean"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

// Stats summarises norms[i] over the samples with success[i] set (all
// samples when success is nil).
func Stats(norms []float32, success []bool) NormStats {
	var v []float64
	for i, n := range norms {
		if success == nil || success[i] {
			v = append(v, float64(n))
		}
	}
	if len(v) == 0 {
		return NormStats{}
	}
	sort.Float64s(v)
	s := NormStats{Count: len(v), Max: v[len(v)-1]}
	for _, x := range v {
		s.Mean += x
	}
	s.Mean /= float64(len(v))
	if len(v)%2 == 1 {
		s.Median = v[len(v)/2]
	} else {
		s.Median = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return s
}

// Summary is a JSON-friendly digest of a Result.
type Summary struct {
	Samples     int       `json:"samples"`
	SuccessRate float64   `json:"success_rate"`
	Queries     int64     `json:"queries"`
	Gradients   int64     `json:"gradients"`
	Linf        NormStats `json:"linf"`
	L2          NormStats `json:"l2"`
}

// Summarize digests r; norm statistics cover successful samples only.
func (r *Result) Summarize() Summary {
	return Summary{
		Samples:     len(r.Success),
		SuccessRate: r.SuccessRate,
		Queries:     r.Queries,
		Gradients:   r.Gradients,
		Linf:        Stats(r.LinfNorms, r.Success),
		L2:          Stats(r.L2Norms, r.Success),
	}
}
