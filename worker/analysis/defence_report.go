package analysis

import (
	"fmt"
	"slices"

	"github.com/wardenlab/warden/ais/defence"
	"github.com/wardenlab/warden/jobs"
)

// Verdict thresholds of the defence analysis.
const (
	defenceMinDetection = 0.8
)

// report fills the result from the profile's calibration.
func (d *defenceRun) report(r *jobs.AnalysisResult, attacked int) {
	st := d.pr.Stats
	m := d.pr.Monitor
	r.Metrics = []jobs.Metric{
		{Name: "false_positive_rate", Value: st.FPR, Unit: "ratio", Help: fmt.Sprintf("Share of the %d held-out clean samples any input check fired on (target %g).", st.HeldOutSamples, st.TargetFPR)},
		{Name: "detection_rate", Value: st.Detection, Unit: "ratio", Help: "Share of the adversarial examples that fooled the model on which any input check fired: " + st.Adversarial + "."},
		{Name: "adversarial_examples", Value: float64(st.AdvSamples), Unit: "samples", Help: fmt.Sprintf("Adversarial examples that fooled the model, of %d attacked held-out samples.", attacked)},
		{Name: "mea_stream_flagged_at", Value: float64(st.StreamFlaggedAt), Unit: "queries", Help: fmt.Sprintf("Query of MEA's replayed stream at which the extraction monitor flagged it (0: not within the budget of %d).", st.StreamBudget)},
		{Name: "mea_stream_prada_flagged_at", Value: float64(st.PRADAFlaggedAt), Unit: "queries", Help: "The same with PRADA's test alone (0: never)."},
		{Name: "mea_stream_ood_rate_flagged_at", Value: float64(st.OODRateFlagged), Unit: "queries", Help: "The same with the OOD-rate test alone (0: never)."},
		{Name: "clean_stream_flagged_at", Value: float64(st.CleanFlaggedAt), Unit: "queries", Help: fmt.Sprintf("Query of a clean stream of the %d held-out samples at which the monitor flagged it (0: never, as it should).", st.CleanStream)},
	}
	t := &jobs.Table{Title: "Checks of the defence profile", Columns: []string{"check", "threshold", "held_out_false_positive_rate", "detection_rate"}}
	for _, c := range []struct {
		name string
		thr  float64
	}{{defence.CheckRange, d.pr.Range.Threshold}, {defence.CheckOOD, d.pr.OOD.Threshold}, {defence.CheckSqueeze, d.pr.Squeezer.Threshold}} {
		t.Rows = append(t.Rows, []string{c.name, fmt.Sprintf("%.4g", c.thr), fmt.Sprintf("%.4f", st.CheckFPR[c.name]), fmt.Sprintf("%.4f", st.CheckDetection[c.name])})
		r.Metrics = append(r.Metrics, jobs.Metric{Name: "detection_" + c.name, Value: st.CheckDetection[c.name], Unit: "ratio", Help: "Share of the adversarial examples the " + c.name + " check alone fired on."})
	}
	// The monitor's rows: the clean stream's result, then MEA's stream's.
	t.Rows = append(t.Rows,
		[]string{"any input check", "", fmt.Sprintf("%.4f", st.FPR), fmt.Sprintf("%.4f", st.Detection)},
		[]string{defence.CheckPRADA, fmt.Sprintf("W < %.4g", m.PRADAThreshold), flaggedAt(st.CleanFlaggedAt), flaggedAt(st.PRADAFlaggedAt)},
		[]string{defence.CheckOODRate, fmt.Sprintf("CUSUM ≥ %.4g (clean rate %.4g, alert rate %.4g)", m.CUSUMLimit, m.CleanOODRate, m.AlertOODRate), "", flaggedAt(st.OODRateFlagged)},
	)
	r.Table = t
	r.Curves = d.curves
	detected := st.AdvSamples == 0 || st.Detection >= defenceMinDetection
	quiet := st.FPR <= st.TargetFPR
	stream := st.StreamFlaggedAt > 0 && st.CleanFlaggedAt == 0
	fails := 0
	for _, ok := range []bool{detected, quiet, stream} {
		if !ok {
			fails++
		}
	}
	r.Verdict = jobs.Verdict{Vulnerable: fails > 0, Severity: []string{"none", "medium", "high", "high"}[fails],
		Definition: fmt.Sprintf("protected (severity none) when the input checks flag at least %.0f %% of the adversarial examples at a held-out false-positive rate at most the target, and the extraction monitor flags MEA's query stream within its budget but not a clean stream; one failed condition is medium, more high", defenceMinDetection*100),
		Summary: fmt.Sprintf("The profile flags %.1f %% of %d adversarial examples at %.1f %% false positives on %d held-out clean samples; MEA's stream is %s.",
			st.Detection*100, st.AdvSamples, st.FPR*100, st.HeldOutSamples, streamWords(st))}
	r.Notes = append(r.Notes, fmt.Sprintf("The data was split (seed %d) into %d samples that fit the statistics, %d that set the thresholds (each score check at the 1 − %g/3 quantile of its clean scores) and %d held out to measure the rates.",
		d.p.Seed, st.FitSamples, st.TuneSamples, st.TargetFPR, st.HeldOutSamples))
	r.Notes = append(r.Notes, fmt.Sprintf("Feature squeezing: bit depth %d and a %d×%d median filter; the score is the larger L1 distance between the probabilities of the input and of a squeezed copy.", d.sq.BitDepth, d.sq.Median, d.sq.Median))
	r.Notes = append(r.Notes, fmt.Sprintf("The OOD-rate curves show the CUSUM statistic over MEA's replayed stream and over a clean stream; the monitor flags a stream when it reaches %.4g.", m.CUSUMLimit))
	r.Notes = append(r.Notes, slices.Clip(d.notes)...)
}

func flaggedAt(at int) string {
	if at == 0 {
		return "not flagged"
	}
	return fmt.Sprintf("flagged at query %d", at)
}

func streamWords(st defence.Calibrated) string {
	s := fmt.Sprintf("not flagged within its %d queries", st.StreamBudget)
	if st.StreamFlaggedAt > 0 {
		s = fmt.Sprintf("flagged at query %d of %d by %s", st.StreamFlaggedAt, st.StreamBudget, st.StreamFlaggedBy)
	}
	if st.CleanFlaggedAt > 0 {
		s += fmt.Sprintf(", and a clean stream too (at query %d)", st.CleanFlaggedAt)
	}
	return s
}
