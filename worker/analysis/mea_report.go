package analysis

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/wardenlab/warden/jobs"
)

// Severity of an extraction: high when the target fidelity is reached
// within half the budget, medium when it is reached only with more,
// low when the final fidelity is within lowMargin of the target.
const lowMargin = 0.2

func (e *extraction) report(ctx context.Context, ev *evaluation) (jobs.AnalysisResult, error) {
	t := e.task
	last := e.points[len(e.points)-1]
	target := t.threshold()
	budget := last.Queries
	reached, at90 := -1, -1
	for _, pt := range e.points {
		if reached < 0 && pt.Score.Fidelity >= target {
			reached = pt.Queries
		}
		if at90 < 0 && pt.Score.Fidelity >= 0.9 {
			at90 = pt.Queries
		}
	}
	fidName, accName := "agreement with the victim's class", "accuracy"
	switch t.kind {
	case kindSegment:
		fidName, accName = "mean IoU with the victim's masks", "mean IoU with the true masks"
	case kindForecast:
		fidName, accName = "R² against the victim's forecasts", "R² against the true targets"
	}
	var r jobs.AnalysisResult
	v := &r.Verdict
	v.Vulnerable = last.Score.Fidelity >= target
	switch {
	case v.Vulnerable && reached*2 <= budget:
		v.Severity = "high"
	case v.Vulnerable:
		v.Severity = "medium"
	case last.Score.Fidelity >= target-lowMargin:
		v.Severity = "low"
	default:
		v.Severity = "none"
	}
	v.Definition = fmt.Sprintf("Fidelity is the surrogate's %s on %d held-out samples. Vulnerable when the surrogate trained on the whole budget of %d queries reaches fidelity ≥ %.2f; "+
		"severity high when that fidelity is reached within half the budget (the first curve point at or below %d queries), medium when it is reached only with more queries, "+
		"low when the final fidelity is within %.2f of %.2f, none otherwise.", fidName, len(ev.rows), budget, target, budget/2, lowMargin, target)
	if v.Vulnerable {
		v.Summary = fmt.Sprintf("A surrogate trained on %d of the victim's answers copies it with fidelity %.3f (target %.2f first reached with %d queries).", budget, last.Score.Fidelity, target, reached)
	} else {
		v.Summary = fmt.Sprintf("After %d queries the surrogate copies the victim with fidelity %.3f, below the target of %.2f.", budget, last.Score.Fidelity, target)
	}
	r.Metrics = []jobs.Metric{
		{Name: "fidelity", Value: last.Score.Fidelity, Unit: "ratio", Help: "The final surrogate's " + fidName + " on the held-out set."},
		{Name: "surrogate_accuracy", Value: last.Score.Accuracy, Unit: "ratio", Help: "The final surrogate's " + accName + " on the held-out set."},
		{Name: "victim_accuracy", Value: ev.vscore.Accuracy, Unit: "ratio", Help: "The victim's own " + accName + " on the held-out set, for comparison."},
		{Name: "queries_used", Value: float64(e.used), Unit: "queries", Help: "Victim queries the extraction spent to train the surrogates (never more than the budget)."},
		{Name: "evaluation_queries", Value: float64(e.evalQ), Unit: "queries", Help: "Victim queries spent answering the held-out set to measure fidelity; an attacker would not need them, so they are counted apart from the budget."},
		{Name: "queries_to_90_fidelity", Value: float64(at90), Unit: "queries", Help: "The first curve point whose surrogate reached fidelity ≥ 0.90, or -1 if none did."},
	}
	switch t.kind {
	case kindSegment:
		r.Metrics = append(r.Metrics,
			jobs.Metric{Name: "miou", Value: last.Score.Fidelity, Unit: "ratio", Help: "Mean IoU over classes of the final surrogate's masks against the victim's masks."},
			jobs.Metric{Name: "pixel_agreement", Value: last.Score.Agreement, Unit: "ratio", Help: "Share of held-out pixels where the final surrogate's class equals the victim's."})
	case kindForecast:
		r.Metrics = append(r.Metrics,
			jobs.Metric{Name: "r2", Value: last.Score.Fidelity, Unit: "ratio", Help: "R² of the final surrogate's forecasts against the victim's."},
			jobs.Metric{Name: "mae", Value: last.Score.MAE, Unit: "target units", Help: "Mean absolute difference between the final surrogate's and the victim's forecasts."})
	}
	curve := jobs.Curve{Name: "fidelity", XLabel: "victim queries", YLabel: "fidelity (" + fidName + ")"}
	acc := jobs.Curve{Name: "surrogate_accuracy", XLabel: "victim queries", YLabel: "surrogate " + accName}
	tab := &jobs.Table{Title: "Fidelity versus queries", Columns: []string{"queries", "fidelity", "surrogate_accuracy"}}
	switch t.kind {
	case kindSegment:
		tab.Columns = append(tab.Columns, "pixel_agreement")
	case kindForecast:
		tab.Columns = append(tab.Columns, "mae")
	default:
		tab.Columns = append(tab.Columns, "labels")
	}
	tab.Columns = append(tab.Columns, "epochs", "train_seconds")
	for _, pt := range e.points {
		curve.X, curve.Y = append(curve.X, float64(pt.Queries)), append(curve.Y, pt.Score.Fidelity)
		acc.X, acc.Y = append(acc.X, float64(pt.Queries)), append(acc.Y, pt.Score.Accuracy)
		row := []string{strconv.Itoa(pt.Queries), f4(pt.Score.Fidelity), f4(pt.Score.Accuracy)}
		switch t.kind {
		case kindSegment:
			row = append(row, f4(pt.Score.Agreement))
		case kindForecast:
			row = append(row, f4(pt.Score.MAE))
		default:
			row = append(row, pt.Labels)
		}
		tab.Rows = append(tab.Rows, append(row, strconv.Itoa(pt.Epochs), fmt.Sprintf("%.2f", pt.Seconds)))
	}
	r.Curves, r.Table = []jobs.Curve{curve, acc}, tab
	r.Notes = append(r.Notes, fmt.Sprintf("The data was split (seed %d) into a query pool of %d samples and %d held-out samples; the victim answered %d extraction queries and %d held-out samples.",
		e.p.Seed, len(e.pool), len(ev.rows), e.used, e.evalQ))
	r.Notes = append(r.Notes, e.notes...)
	if err := e.sendSurrogate(ctx, &r, last); err != nil {
		return r, err
	}
	e.progress(100, "done")
	return r, nil
}

// sendSurrogate stores the final surrogate as the report's surrogate.pt.
func (e *extraction) sendSurrogate(ctx context.Context, r *jobs.AnalysisResult, last curvePoint) error {
	if e.env.Artifact == nil {
		r.Notes = append(r.Notes, "no artifact store: the surrogate was not kept")
		return nil
	}
	b, err := os.ReadFile(last.ModelPath)
	if err != nil {
		return fmt.Errorf("read the surrogate: %w", err)
	}
	name, err := e.env.Artifact(ctx, "surrogate.pt", "application/octet-stream", b)
	if err != nil {
		return fmt.Errorf("store the surrogate: %w", err)
	}
	r.Artifacts = append(r.Artifacts, jobs.Download{Name: name, ContentType: "application/octet-stream", Description: e.task.surrogateDescription(last)})
	return nil
}

func (t meaTask) surrogateDescription(pt curvePoint) string {
	s := fmt.Sprintf("The extracted surrogate (TorchScript, trained on %d victim queries, fidelity %.3f)", pt.Queries, pt.Score.Fidelity)
	switch t.kind {
	case kindImage:
		return s + ": a CNN that takes images [N, C, H, W] as the victim does and returns class logits."
	case kindTable:
		return s + ": an MLP that takes the raw feature rows [N, F] (it standardises them itself) and returns class logits."
	case kindText:
		return s + fmt.Sprintf(": an MLP that takes hashed bag-of-words features, not texts: a float tensor [N, %d] where each text is lowercased, split on every non-letter, "+
			"and each word counted in bucket FNV-1a-32(word) mod %d. It returns class logits.", HashedFeatures, HashedFeatures)
	case kindForecast:
		return s + ": an MLP regressor that takes raw windows [N, F] and returns forecasts [N, H] in the data's units."
	case kindSegment:
		return s + ": a fully convolutional net that takes images [N, C, H, W] and returns per-pixel class logits [N, K, H, W]."
	}
	return s + "."
}

func f4(x float64) string { return strconv.FormatFloat(x, 'f', 4, 64) }
