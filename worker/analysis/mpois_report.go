package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/jobs"
)

// mpoisFinding is what the verdict is built from.
type mpoisFinding struct {
	index     []float64 // anomaly index per class
	median    float64   // median mask L1 norm
	suspect   int       // suspected target class, -1 when none
	candidate int       // the suspect, else the class with the smallest mask
	outlier   float64   // the suspect's index, else the largest index below the median
}

// findTarget applies the anomaly rule to the mask norms: a class whose
// norm lies below the median with an anomaly index above 2 is a suspected
// target; of several, the one with the largest index.
func findTarget(trig []trigger) mpoisFinding {
	norms := make([]float64, len(trig))
	for c, t := range trig {
		norms[c] = t.l1
	}
	f := mpoisFinding{suspect: -1, candidate: 0}
	f.index, f.median = anomalyIndices(norms)
	for c := range trig {
		if norms[c] < norms[f.candidate] {
			f.candidate = c
		}
		if norms[c] >= f.median {
			continue
		}
		f.outlier = max(f.outlier, f.index[c])
		if f.index[c] > mpoisAnomaly && (f.suspect < 0 || f.index[c] > f.index[f.suspect]) {
			f.suspect = c
		}
	}
	if f.suspect >= 0 {
		f.candidate = f.suspect
	}
	return f
}

// mpoisVerdict: vulnerable (backdoored) when a suspected target exists and
// its recovered trigger sends at least half of the held-out inputs of the
// other classes to it on the model while no reference model follows.
func mpoisVerdict(ds *ais.Dataset, trig []trigger, f mpoisFinding) jobs.Verdict {
	v := jobs.Verdict{Definition: fmt.Sprintf("Neural Cleanse: for every class the smallest trigger (mask L1 norm) that sends the other classes' inputs to it is reverse-engineered; "+
		"anomaly index = |norm − median| / (1.4826 · MAD) over the classes. Vulnerable (backdoored) when a class whose norm is below the median has an anomaly index > %g "+
		"AND its trigger, stamped on held-out inputs of the other classes, makes the model answer that class while none of the clean reference models does on at least %.0f %% of them (disagreement ≥ %g); "+
		"severity high then, low when only one of the two holds (an outlier the references follow too, or a smallest trigger the references do not follow), none otherwise",
		mpoisAnomaly, mpoisDisagree*100, mpoisDisagree)}
	cand := trig[f.candidate]
	name := className(ds, cand.class)
	switch {
	case f.suspect >= 0 && cand.disagreement >= mpoisDisagree:
		v.Vulnerable, v.Severity = true, "high"
		v.Summary = fmt.Sprintf("Class %s is a backdoor target: its trigger's mask norm %.3g is an outlier below the median %.3g (anomaly index %.2f), and stamped on held-out inputs it sends %.0f %% of them to %s on the model but not on the clean references.",
			name, cand.l1, f.median, f.index[f.candidate], cand.disagreement*100, name)
	case f.suspect >= 0:
		v.Severity = "low"
		v.Summary = fmt.Sprintf("Class %s needs an unusually small trigger (mask norm %.3g against a median of %.3g, anomaly index %.2f), but the clean references follow it too (disagreement %.0f %% < %.0f %%): a class that is easy to reach rather than a backdoor.",
			name, cand.l1, f.median, f.index[f.candidate], cand.disagreement*100, mpoisDisagree*100)
	case cand.disagreement >= mpoisDisagree:
		v.Severity = "low"
		v.Summary = fmt.Sprintf("No class's trigger is an outlier (largest anomaly index below the median %.2f ≤ %g); the smallest, of class %s (mask norm %.3g), moves %.0f %% of held-out inputs on the model alone.",
			f.outlier, mpoisAnomaly, name, cand.l1, cand.disagreement*100)
	default:
		v.Severity = "none"
		v.Summary = fmt.Sprintf("No backdoor found: no class's trigger is an outlier (largest anomaly index below the median %.2f ≤ %g; smallest mask norm %.3g, class %s, median %.3g) and the smallest trigger moves %.0f %% of held-out inputs on the model alone.",
			f.outlier, mpoisAnomaly, cand.l1, name, f.median, cand.disagreement*100)
	}
	return v
}

// report builds the model-poisoning report.
func (s *poisonSearch) report(ctx context.Context, ds *ais.Dataset, trig []trigger, accs []float64, p jobs.AnalysisParams) (jobs.AnalysisResult, error) {
	var r jobs.AnalysisResult
	f := findTarget(trig)
	r.Verdict = mpoisVerdict(ds, trig, f)
	cand := trig[f.candidate]
	maxDis := 0.0
	for _, t := range trig {
		maxDis = max(maxDis, t.disagreement)
	}
	r.Metrics = []jobs.Metric{
		{Name: "anomaly_index", Value: f.outlier, Unit: "index", Help: "Anomaly index of the suspected target's mask norm, |norm − median| / (1.4826 · MAD); without a suspect, the largest index among the classes whose norm is below the median."},
		{Name: "suspected_target", Value: float64(f.suspect), Unit: "class", Help: "Index of the class suspected to be a backdoor target (norm below the median, anomaly index > 2); -1 when none."},
		{Name: "target_mask_l1", Value: cand.l1, Unit: "pixels", Help: "L1 norm of the mask of the suspected target (without one, of the smallest mask): how many pixels the trigger covers."},
		{Name: "median_mask_l1", Value: f.median, Unit: "pixels", Help: "Median of the classes' mask L1 norms."},
		{Name: "disagreement", Value: cand.disagreement, Unit: "ratio", Help: "Share of held-out inputs of the other classes that the suspected target's trigger (without one, the smallest trigger) sends to that class on the model while no clean reference model answers it."},
		{Name: "target_attack_success", Value: cand.heldSuccess, Unit: "ratio", Help: "Share of held-out inputs of the other classes the same trigger sends to its class on the model."},
		{Name: "max_disagreement", Value: maxDis, Unit: "ratio", Help: "Largest disagreement over all classes' triggers."},
		{Name: "model_accuracy", Value: accs[0], Unit: "ratio", Help: fmt.Sprintf("Accuracy of the model on the %d held-out samples.", s.held.N())},
	}
	for j := range s.refs {
		r.Metrics = append(r.Metrics,
			jobs.Metric{Name: fmt.Sprintf("reference_%d_accuracy", j+1), Value: accs[j+1], Unit: "ratio", Help: fmt.Sprintf("Accuracy of clean reference model %d on the held-out samples.", j+1)},
			jobs.Metric{Name: fmt.Sprintf("reference_%d_target_success", j+1), Value: cand.refSuccess[j], Unit: "ratio", Help: fmt.Sprintf("Share of held-out inputs of the other classes the suspected target's trigger sends to that class on clean reference model %d.", j+1)})
	}
	xs := make([]float64, len(trig))
	norms, dis := make([]float64, len(trig)), make([]float64, len(trig))
	cols := []string{"class", "mask_l1", "anomaly_index", "attack_success", "held_out_success"}
	for j := range s.refs {
		cols = append(cols, fmt.Sprintf("reference_%d_success", j+1))
	}
	cols = append(cols, "disagreement", "reached_0.99", "suspected")
	r.Table = &jobs.Table{Title: "Reverse-engineered trigger per class", Columns: cols}
	var unreached []string
	for c, t := range trig {
		xs[c], norms[c], dis[c] = float64(c), t.l1, t.disagreement
		row := []string{className(ds, c), f4(t.l1), f4(f.index[c]), f4(t.success), f4(t.heldSuccess)}
		for _, rs := range t.refSuccess {
			row = append(row, f4(rs))
		}
		row = append(row, f4(t.disagreement), fmt.Sprint(t.reached), fmt.Sprint(c == f.suspect))
		r.Table.Rows = append(r.Table.Rows, row)
		if !t.reached {
			unreached = append(unreached, className(ds, c))
		}
	}
	r.Curves = []jobs.Curve{
		{Name: "mask_l1_norm", XLabel: "class index", YLabel: "trigger mask L1 norm", X: xs, Y: norms},
		{Name: "anomaly_index", XLabel: "class index", YLabel: "anomaly index", X: xs, Y: append([]float64(nil), f.index...)},
		{Name: "disagreement", XLabel: "class index", YLabel: "model-only success on held-out inputs", X: xs, Y: dis},
	}
	r.Notes = append(r.Notes,
		fmt.Sprintf("Triggers: per class, %d Adam steps (lr %g, β = (%g, %g)) on a mask σ(a) (H×W) and a pattern σ(b) (C×H×W), both starting at 0.5, minimising the mean cross-entropy towards the class of batches of %d stamped optimisation samples of the other classes, (1 − m)·x + m·p, plus λ·|m|₁; input gradients from the model, chain-ruled to a and b.",
			p.TriggerSteps, mpoisLR, mpoisBeta1, mpoisBeta2, mpoisBatch),
		fmt.Sprintf("λ starts at %g; every %d steps the trigger's success on all optimisation samples of the other classes is measured: λ × %g when it is ≥ %g (and the mask is kept when it is the smallest so far), λ ÷ %.3g otherwise (Neural Cleanse's schedule, checked every %d steps instead of with a patience of epochs).",
			mpoisInitCost, mpoisRound, mpoisCostUp, mpoisSuccess, mpoisCostDown, mpoisRound),
		fmt.Sprintf("Data: %d optimisation samples and %d held-out samples (disagreement, accuracies), drawn at random (seed %d) from the %d uploaded.", s.opt.N(), s.held.N(), p.Seed, ds.N()),
	)
	if len(unreached) > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("No trigger reached %.0f %% success within the steps for class(es) %s: their last mask is used.", mpoisSuccess*100, strings.Join(unreached, ", ")))
	}
	s.env.progress(95, "rendering_triggers")
	if err := s.triggerImages(ctx, &r, ds, trig, f); err != nil {
		return r, err
	}
	s.env.progress(100, "completed")
	return r, nil
}

// shownClasses are the classes whose triggers the report shows: the
// candidate, then the smallest masks.
func shownClasses(trig []trigger, f mpoisFinding) []int {
	order := make([]int, len(trig))
	for c := range order {
		order[c] = c
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case a == f.candidate:
			return -1
		case b == f.candidate:
			return 1
		}
		if trig[a].l1 < trig[b].l1 {
			return -1
		} else if trig[a].l1 > trig[b].l1 {
			return 1
		}
		return 0
	})
	return order[:min(mpoisShown, len(order))]
}

// triggerImages stores the shown triggers (mask, pattern, masked pattern,
// a held-out input before and after stamping) as PNGs and the candidate's
// mask and pattern as JSON.
func (s *poisonSearch) triggerImages(ctx context.Context, r *jobs.AnalysisResult, ds *ais.Dataset, trig []trigger, f mpoisFinding) error {
	if s.env.Artifact == nil {
		r.Notes = append(r.Notes, "No trigger images: this run has no artifact store.")
		return nil
	}
	hw, chw := s.h*s.w, s.c*s.h*s.w
	one := func(data []float32, c int) attacks.Batch {
		return attacks.Batch{Data: data, Shape: []int{1, c, s.h, s.w}}
	}
	fac := enlargeFactor(s.held.Shape)
	for _, c := range shownClasses(trig, f) {
		t := trig[c]
		masked := make([]float32, chw)
		for q := range masked {
			masked[q] = t.mask[q%hw] * t.pattern[q]
		}
		idx := others(s.heldLbl, c)[:1]
		stamped := make([]float32, chw)
		s.stamp(stamped, s.held, idx, t.mask, t.pattern)
		images := map[string]string{}
		for _, im := range []struct {
			what string
			x    attacks.Batch
		}{
			{"mask", one(t.mask, 1)},
			{"pattern", one(t.pattern, s.c)},
			{"trigger", one(masked, s.c)},
			{"original", one(s.held.Sample(idx[0]), s.c)},
			{"stamped", one(stamped, s.c)},
		} {
			b, err := attacks.RenderPNG(enlarge(im.x, fac), 0, 0, 1)
			if err != nil {
				r.Notes = append(r.Notes, fmt.Sprintf("No trigger images: %v.", err))
				return nil
			}
			name, err := s.env.Artifact(ctx, fmt.Sprintf("mpois_class_%d_%s.png", c, im.what), "image/png", b)
			if err != nil {
				return fmt.Errorf("store a trigger image: %w", err)
			}
			images[im.what] = name
			if c == f.candidate && (im.what == "mask" || im.what == "pattern" || im.what == "stamped") {
				r.Artifacts = append(r.Artifacts, jobs.Download{Name: name, ContentType: "image/png",
					Description: fmt.Sprintf("Recovered trigger of class %s: %s (enlarged %d×).", className(ds, c), im.what, fac)})
			}
		}
		kind := "smallest"
		if c == f.suspect {
			kind = "suspected backdoor target"
		}
		r.Samples = append(r.Samples, jobs.Sample{Images: images, Caption: fmt.Sprintf("Class %s (%s): mask L1 %.3g, anomaly index %.2f; stamped on %s it is answered %s by the model on %.0f %% of held-out inputs (disagreement %.0f %%)",
			className(ds, c), kind, t.l1, f.index[c], sampleName(ds, s.heldIdx[idx[0]]), className(ds, c), t.heldSuccess*100, t.disagreement*100)})
	}
	t := trig[f.candidate]
	b, err := json.Marshal(map[string]any{"class": t.class, "class_name": className(ds, t.class), "shape": []int{s.c, s.h, s.w},
		"mask": t.mask, "pattern": t.pattern, "mask_l1": t.l1})
	if err != nil {
		return err
	}
	name, err := s.env.Artifact(ctx, "mpois_trigger.json", "application/json", b)
	if err != nil {
		return fmt.Errorf("store the trigger: %w", err)
	}
	r.Artifacts = append(r.Artifacts, jobs.Download{Name: name, ContentType: "application/json",
		Description: "The recovered trigger of the suspected target (without one, the smallest): mask [H, W] and pattern [C, H, W] in [0, 1], stamped as (1 − mask)·x + mask·pattern."})
	return nil
}
