// Package defence is AISpectra's customized endpoint defence: a profile
// generated from a model's analyses and its owner's clean data, the checks
// a guarded prediction endpoint applies to each input (shape, range, an
// out-of-distribution score, feature squeezing), and a per-client monitor
// of the query stream against model extraction (PRADA's distance test and
// an OOD-rate test). It is pure Go: the worker builds profiles, the API
// applies them; model outputs come from the confined runner.
package defence

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"
)

// Check names, as the guarded endpoint reports them.
const (
	CheckShape   = "shape"
	CheckRange   = "range"
	CheckOOD     = "ood"
	CheckSqueeze = "feature_squeezing"
	CheckPRADA   = "prada"
	CheckOODRate = "ood_rate"
)

// Modes of the guarded endpoint.
const (
	ModeFlag  = "flag"  // answer, and say which check fired
	ModeBlock = "block" // refuse an input a check fires on
)

// ProfileVersion is the profile format's version.
const ProfileVersion = 1

// Profile is a model's endpoint defence.
type Profile struct {
	Version  int       `json:"version"`
	ModelID  string    `json:"model_id"`
	TaskType string    `json:"task_type"`
	Mode     string    `json:"mode"`
	Created  time.Time `json:"created"`
	// InputShape is one sample's shape (e.g. [1, 8, 8]).
	InputShape []int `json:"input_shape"`
	// Classes is the number of classes the model answers; Labels names
	// them (the data's class names, else their indices).
	Classes  int        `json:"classes"`
	Labels   []string   `json:"labels"`
	Range    *Range     `json:"range"`
	OOD      *OOD       `json:"ood"`
	Squeezer *Squeezer  `json:"squeezer"`
	Monitor  *Monitor   `json:"monitor"`
	Stats    Calibrated `json:"calibration"`
}

// Range is the per-feature range of the clean data; a sample's score is
// its largest excursion outside it, as a share of the data's overall span.
type Range struct {
	Lo        []float32 `json:"lo"`
	Hi        []float32 `json:"hi"`
	Span      float32   `json:"span"`
	Threshold float64   `json:"threshold"`
}

// Score is x's largest excursion outside the range over the span.
func (r *Range) Score(x []float32) float64 {
	var worst float32
	for j, v := range x {
		worst = max(worst, r.Lo[j]-v, v-r.Hi[j])
	}
	if r.Span <= 0 {
		return float64(worst)
	}
	return float64(worst / r.Span)
}

// FitRange is the per-feature range of the samples (rows of size values).
func FitRange(data []float32, size int) *Range {
	r := &Range{Lo: make([]float32, size), Hi: make([]float32, size)}
	for j := range r.Lo {
		r.Lo[j], r.Hi[j] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	glo, ghi := float32(math.Inf(1)), float32(math.Inf(-1))
	for i, v := range data {
		j := i % size
		r.Lo[j], r.Hi[j] = min(r.Lo[j], v), max(r.Hi[j], v)
		glo, ghi = min(glo, v), max(ghi, v)
	}
	r.Span = ghi - glo
	return r
}

// Calibrated are the profile's measured numbers.
type Calibrated struct {
	// TargetFPR is the false-positive rate the thresholds aim at.
	TargetFPR float64 `json:"target_fpr"`
	// FitSamples, TuneSamples, HeldOutSamples: clean samples that fitted
	// the statistics, set the thresholds, measured the rates.
	FitSamples     int `json:"fit_samples"`
	TuneSamples    int `json:"tune_samples"`
	HeldOutSamples int `json:"held_out_samples"`
	// FPR is the share of held-out clean samples any check fired on;
	// CheckFPR per check.
	FPR      float64            `json:"fpr"`
	CheckFPR map[string]float64 `json:"check_fpr"`
	// Detection is the share of adversarial examples any check fired on;
	// CheckDetection per check; Adversarial says which attack made them.
	Detection      float64            `json:"detection"`
	CheckDetection map[string]float64 `json:"check_detection"`
	Adversarial    string             `json:"adversarial"`
	AdvSamples     int                `json:"adversarial_samples"`
	// MEA query-stream replay: the query at which the monitor flagged the
	// stream (0: never) within its budget, and by which check; and
	// whether a clean stream was flagged.
	StreamBudget    int    `json:"stream_budget"`
	StreamFlaggedAt int    `json:"stream_flagged_at"`
	StreamFlaggedBy string `json:"stream_flagged_by"`
	PRADAFlaggedAt  int    `json:"prada_flagged_at"`
	OODRateFlagged  int    `json:"ood_rate_flagged_at"`
	CleanStream     int    `json:"clean_stream_queries"`
	CleanFlaggedAt  int    `json:"clean_stream_flagged_at"`
}

// CheckResult is one check on one input.
type CheckResult struct {
	Name      string  `json:"name"`
	Score     float64 `json:"score"`
	Threshold float64 `json:"threshold"`
	Fired     bool    `json:"fired"`
}

// Decision is the checks on one input.
type Decision struct {
	Flagged bool          `json:"flagged"`
	Checks  []CheckResult `json:"checks"`
}

// Fired names the checks that fired.
func (d Decision) Fired() []string {
	var out []string
	for _, c := range d.Checks {
		if c.Fired {
			out = append(out, c.Name)
		}
	}
	return out
}

// add appends a check; it fires when the score is above the threshold.
func (d *Decision) add(name string, score, threshold float64) {
	fired := score > threshold
	d.Checks = append(d.Checks, CheckResult{Name: name, Score: score, Threshold: threshold, Fired: fired})
	d.Flagged = d.Flagged || fired
}

// Sample is one input with the model's answers on it and on its squeezed
// copies (outs[0]: the input; outs[1:]: Squeezer.Squeeze's order).
type Sample struct {
	Shape []int
	X     []float32
	Outs  [][]float32
}

// Check applies the per-input checks. A wrong shape fires alone (the
// other checks cannot score such an input).
func (p *Profile) Check(s Sample) (Decision, error) {
	var d Decision
	if !slices.Equal(s.Shape, p.InputShape) || len(s.X) != size(p.InputShape) {
		d.add(CheckShape, 1, 0)
		return d, nil
	}
	d.add(CheckShape, 0, 0)
	if p.Range != nil {
		d.add(CheckRange, p.Range.Score(s.X), p.Range.Threshold)
	}
	if p.OOD != nil {
		if len(s.Outs) == 0 && p.OOD.Space == SpaceOutput {
			return d, fmt.Errorf("the OOD check needs the model's answer")
		}
		var out []float32
		if len(s.Outs) > 0 {
			out = s.Outs[0]
		}
		sc, err := p.OOD.Score(Features(p.OOD.Space, s.X, out))
		if err != nil {
			return d, err
		}
		d.add(CheckOOD, sc, p.OOD.Threshold)
	}
	if p.Squeezer != nil {
		if want := 1 + p.Squeezer.Count(p.InputShape); len(s.Outs) != want {
			return d, fmt.Errorf("feature squeezing needs %d answers, have %d", want, len(s.Outs))
		}
		d.add(CheckSqueeze, SqueezeScore(s.Outs), p.Squeezer.Threshold)
	}
	return d, nil
}

func size(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Quantile is the q-quantile of xs (linear interpolation between order
// statistics); NaN for no values.
func Quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(s)-1)
	return s[lo] + (pos-float64(lo))*(s[hi]-s[lo])
}

// Rates are the shares of samples each check fired on, and any check.
type Rates struct {
	Any     float64
	ByCheck map[string]float64
	N       int
}

// Evaluate applies the per-input checks to every sample.
func (p *Profile) Evaluate(samples []Sample) (Rates, []Decision, error) {
	r := Rates{ByCheck: map[string]float64{}, N: len(samples)}
	ds := make([]Decision, len(samples))
	for i, s := range samples {
		d, err := p.Check(s)
		if err != nil {
			return r, nil, fmt.Errorf("sample %d: %w", i, err)
		}
		ds[i] = d
		if d.Flagged {
			r.Any++
		}
		for _, c := range d.Checks {
			if _, ok := r.ByCheck[c.Name]; !ok {
				r.ByCheck[c.Name] = 0
			}
			if c.Fired {
				r.ByCheck[c.Name]++
			}
		}
	}
	if n := float64(len(samples)); n > 0 {
		r.Any /= n
		for k := range r.ByCheck {
			r.ByCheck[k] /= n
		}
	}
	return r, ds, nil
}

// Calibrate sets the thresholds of the score checks (range, OOD, feature
// squeezing) on clean samples: each at the (1 − target/m) quantile of its
// clean scores, m the number of score checks, so that their union fires on
// about target of clean inputs (a Bonferroni split of the budget).
func (p *Profile) Calibrate(tune []Sample, target float64) error {
	if len(tune) == 0 {
		return fmt.Errorf("calibration needs clean samples")
	}
	m := 0
	for _, on := range []bool{p.Range != nil, p.OOD != nil, p.Squeezer != nil} {
		if on {
			m++
		}
	}
	if m == 0 {
		return nil
	}
	q := 1 - target/float64(m)
	var rs, os, ss []float64
	for i, s := range tune {
		if !slices.Equal(s.Shape, p.InputShape) {
			return fmt.Errorf("calibration sample %d has shape %v, want %v", i, s.Shape, p.InputShape)
		}
		if p.Range != nil {
			rs = append(rs, p.Range.Score(s.X))
		}
		if p.OOD != nil {
			var out []float32
			if len(s.Outs) > 0 {
				out = s.Outs[0]
			}
			sc, err := p.OOD.Score(Features(p.OOD.Space, s.X, out))
			if err != nil {
				return err
			}
			os = append(os, sc)
		}
		if p.Squeezer != nil {
			ss = append(ss, SqueezeScore(s.Outs))
		}
	}
	if p.Range != nil {
		p.Range.Threshold = Quantile(rs, q)
	}
	if p.OOD != nil {
		p.OOD.Threshold = Quantile(os, q)
	}
	if p.Squeezer != nil {
		p.Squeezer.Threshold = Quantile(ss, q)
	}
	p.Stats.TargetFPR = target
	return nil
}
