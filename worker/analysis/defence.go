package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"slices"
	"time"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/ais/defence"
	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/jobs"
)

// The defence analysis (a Warden extension of spec 000's "customized
// endpoint defence") builds a model's endpoint-defence profile from its
// owner's clean data: the data is split (seeded) into a part that fits the
// statistics (per-pixel range, class means and covariance), a part that
// sets the thresholds at the target false-positive rate, and a held-out
// part that measures it. The held-out samples are then attacked as EVA
// attacks them (PGD at EVA's largest ε, seeded) to measure detection, and
// MEA's query stream (its pool then synthetic queries, its budget) is
// replayed through the extraction monitor.
const (
	defenceFitShare  = 0.5
	defenceTuneShare = 0.25
	// DefaultTargetFPR is the profile's false-positive target.
	DefaultTargetFPR = 0.05
	// defenceStreamAlpha is the OOD-rate test's false-alarm probability
	// over a clean stream of the query budget.
	defenceStreamAlpha = 0.01
	// Squeezers for images (Xu et al. use 1–5 bits and 2×2 or 3×3 medians).
	defenceBitDepth = 4
	defenceMedian   = 2
	// PRADA's δ is the clean stream's smallest W less this margin, at most
	// pradaMaxDelta.
	pradaMargin   = 0.05
	pradaMaxDelta = 0.95
	// ProfileArtifact is the profile's artifact name.
	ProfileArtifact = "profile.json"
)

// defenceRun is one defence analysis's state.
type defenceRun struct {
	v      Victim
	ds     *ais.Dataset
	p      jobs.AnalysisParams
	env    Env
	k      int
	pr     *defence.Profile
	sq     defence.Squeezer
	notes  []string
	curves []jobs.Curve // the monitor's statistics over the replayed streams
}

func defend(ctx context.Context, v Victim, ds *ais.Dataset, in jobs.AnalysisInput, p jobs.AnalysisParams, env Env) (jobs.AnalysisResult, error) {
	if ds.Task != ais.TaskIC {
		return jobs.AnalysisResult{}, fmt.Errorf("the defence analysis is implemented for IC, not %q", ds.Task)
	}
	if len(ds.X.Shape) != 4 || ds.X.Validate() != nil {
		return jobs.AnalysisResult{}, fmt.Errorf("%w: images must be [N, C, H, W], have %v", ais.ErrUserData, ds.X.Shape)
	}
	if ds.N() < 4*minSamples || len(ds.Labels) != ds.N() {
		return jobs.AnalysisResult{}, fmt.Errorf("%w: the defence needs at least %d labelled samples, have %d with %d labels", ais.ErrUserData, 4*minSamples, ds.N(), len(ds.Labels))
	}
	target := p.TargetFPR
	if target == 0 {
		target = DefaultTargetFPR
	}
	if !(target > 0 && target < 0.5) {
		return jobs.AnalysisResult{}, fmt.Errorf("target false-positive rate %g outside (0, 0.5)", target)
	}
	mode := p.Mode
	if mode == "" {
		mode = defence.ModeFlag
	}
	if mode != defence.ModeFlag && mode != defence.ModeBlock {
		return jobs.AnalysisResult{}, fmt.Errorf("defence mode %q: want flag or block", mode)
	}
	p.TargetFPR, p.Mode = target, mode
	eps, err := evaEpsilons(p.Epsilons)
	if err != nil {
		return jobs.AnalysisResult{}, err
	}
	k := numClasses(v)
	for i, y := range ds.Labels {
		if y < 0 || y >= k {
			return jobs.AnalysisResult{}, fmt.Errorf("%w: label %d of sample %d outside the model's %d classes", ais.ErrUserData, y, i, k)
		}
	}
	lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
	for _, x := range ds.X.Data {
		lo, hi = min(lo, x), max(hi, x)
	}
	d := &defenceRun{v: v, ds: ds, p: p, env: env, k: k,
		sq: defence.Squeezer{BitDepth: defenceBitDepth, Median: defenceMedian, Lo: min(lo, 0), Hi: max(hi, 1)}}
	d.pr = &defence.Profile{Version: defence.ProfileVersion, ModelID: in.AISModelID, TaskType: ds.Task, Mode: mode,
		Created: time.Now().UTC(), InputShape: slices.Clone(ds.X.Shape[1:]), Classes: k, Squeezer: &d.sq}
	seen := map[string]bool{}
	for c := 0; c < k; c++ {
		name := className(ds, c)
		if seen[name] {
			name = fmt.Sprint(c)
		}
		seen[name] = true
		d.pr.Labels = append(d.pr.Labels, name)
	}
	return d.run(ctx, eps[len(eps)-1])
}

func (d *defenceRun) run(ctx context.Context, eps float64) (jobs.AnalysisResult, error) {
	var r jobs.AnalysisResult
	n := d.ds.N()
	perm := rand.New(rand.NewSource(d.p.Seed)).Perm(n)
	nFit, nTune := int(defenceFitShare*float64(n)), int(defenceTuneShare*float64(n))
	fitIdx, tuneIdx, heldIdx := perm[:nFit], perm[nFit:nFit+nTune], perm[nFit+nTune:]
	slices.Sort(fitIdx)
	slices.Sort(tuneIdx)
	slices.Sort(heldIdx)

	d.env.progress(2, "fitting_statistics")
	fitX := subset(d.ds.X, fitIdx)
	d.pr.Range = defence.FitRange(fitX.Data, fitX.SampleSize())
	feats := make([][]float64, len(fitIdx))
	labels := make([]int, len(fitIdx))
	for j, i := range fitIdx {
		feats[j] = defence.Features(defence.SpaceInput, fitX.Sample(j), nil)
		labels[j] = d.ds.Labels[i]
	}
	ood, err := defence.FitOOD(defence.SpaceInput, feats, labels, d.k)
	if err != nil {
		return r, err
	}
	d.pr.OOD = ood

	d.env.progress(10, "calibrating_thresholds")
	tune, err := d.answer(ctx, subset(d.ds.X, tuneIdx))
	if err != nil {
		return r, err
	}
	if err := d.pr.Calibrate(tune, d.p.TargetFPR); err != nil {
		return r, err
	}
	d.env.progress(20, "measuring_false_positives")
	held, err := d.answer(ctx, subset(d.ds.X, heldIdx))
	if err != nil {
		return r, err
	}
	clean, cleanDec, err := d.pr.Evaluate(held)
	if err != nil {
		return r, err
	}
	st := &d.pr.Stats
	st.FitSamples, st.TuneSamples, st.HeldOutSamples = len(fitIdx), len(tuneIdx), len(heldIdx)
	st.FPR, st.CheckFPR = clean.Any, clean.ByCheck

	d.env.progress(30, "attacking_held_out")
	adv, attacked, err := d.adversarial(ctx, heldIdx, eps)
	if err != nil {
		return r, err
	}
	st.Adversarial = fmt.Sprintf("%s ε = %g (L∞, [0,1] scale, %d steps, seed %d) on the correctly classified held-out samples; detection counts the examples that fooled the model", d.p.Attack, eps, d.p.Steps, d.p.Seed)
	st.AdvSamples = len(adv)
	if len(adv) > 0 {
		det, _, err := d.pr.Evaluate(adv)
		if err != nil {
			return r, err
		}
		st.Detection, st.CheckDetection = det.Any, det.ByCheck
	}

	d.env.progress(60, "replaying_query_streams")
	oodClean := 0
	for _, dec := range cleanDec {
		if fired(dec, defence.CheckOOD) {
			oodClean++
		}
	}
	if err := d.monitor(ctx, tuneIdx, heldIdx, oodClean); err != nil {
		return r, err
	}

	d.env.progress(95, "storing_profile")
	b, err := json.MarshalIndent(d.pr, "", "  ")
	if err != nil {
		return r, err
	}
	if d.env.Artifact != nil {
		name, err := d.env.Artifact(ctx, ProfileArtifact, "application/json", b)
		if err != nil {
			return r, fmt.Errorf("store the profile: %w", err)
		}
		r.Artifacts = append(r.Artifacts, jobs.Download{Name: name, ContentType: "application/json",
			Description: "The endpoint-defence profile: input checks with calibrated thresholds, feature-squeezing configuration and the extraction monitor's thresholds."})
	}
	d.report(&r, attacked)
	r.Params = d.p
	d.env.progress(100, "completed")
	return r, nil
}

func fired(d defence.Decision, name string) bool {
	for _, c := range d.Checks {
		if c.Name == name {
			return c.Fired
		}
	}
	return false
}

// answer predicts x and its squeezed copies and pairs them per sample.
func (d *defenceRun) answer(ctx context.Context, x attacks.Batch) ([]defence.Sample, error) {
	out := make([]defence.Sample, x.N())
	shape := x.Shape[1:]
	for lo := 0; lo < x.N(); lo += evaChunk {
		hi := min(lo+evaChunk, x.N())
		s := x.SampleSize()
		part := attacks.Batch{Data: x.Data[lo*s : hi*s], Shape: append([]int{hi - lo}, shape...)}
		sq, err := d.sq.Squeeze(part)
		if err != nil {
			return nil, err
		}
		for _, b := range append([]attacks.Batch{part}, sq...) {
			rows, err := d.v.Predict(ctx, b)
			if err != nil {
				return nil, fmt.Errorf("predict: %w", err)
			}
			if len(rows) != hi-lo {
				return nil, fmt.Errorf("the model answered %d rows for %d samples", len(rows), hi-lo)
			}
			for j, row := range rows {
				out[lo+j].Outs = append(out[lo+j].Outs, row)
			}
		}
		for j := lo; j < hi; j++ {
			out[j].Shape, out[j].X = shape, part.Sample(j-lo)
		}
	}
	return out, nil
}

// adversarial attacks the correctly classified held-out samples (at most
// p.Samples) and returns the examples that fool the model (re-checked by
// a fresh prediction) with their answers, and how many were attacked.
func (d *defenceRun) adversarial(ctx context.Context, heldIdx []int, eps float64) ([]defence.Sample, int, error) {
	held := &ais.Dataset{Task: d.ds.Task, X: subset(d.ds.X, heldIdx)}
	for _, i := range heldIdx {
		held.Labels = append(held.Labels, d.ds.Labels[i])
	}
	idx, _, _, err := correctSamples(ctx, d.v, held, d.p.Samples, d.p.Seed)
	if err != nil {
		return nil, 0, err
	}
	x0 := subset(held.X, idx)
	labels := make([]int, len(idx))
	for j, i := range idx {
		labels[j] = held.Labels[i]
	}
	clf := gradientVictim{v: d.v, k: d.k}
	adv := attacks.Batch{Shape: slices.Clone(x0.Shape)}
	s := x0.SampleSize()
	for lo := 0; lo < len(idx); lo += evaChunk {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		hi := min(lo+evaChunk, len(idx))
		in := attacks.Input{X: attacks.Batch{Data: x0.Data[lo*s : hi*s], Shape: append([]int{hi - lo}, x0.Shape[1:]...)}, Labels: labels[lo:hi]}
		res, err := imageAttack(ctx, clf, in, d.p, eps)
		if err != nil {
			return nil, 0, fmt.Errorf("attack: %w", err)
		}
		adv.Data = append(adv.Data, res.Adversarial.Data...)
		d.env.progress(30+25*hi/len(idx), "attacking_held_out")
	}
	all, err := d.answer(ctx, adv)
	if err != nil {
		return nil, 0, err
	}
	var out []defence.Sample
	for j, a := range all {
		if argmax(a.Outs[0]) != labels[j] {
			out = append(out, a)
		}
	}
	return out, len(idx), nil
}

// queryStream is queries replayed through the monitor: each input, the
// class the model answers and whether the OOD check fires on it.
type queryStream struct {
	x     attacks.Batch
	class []int
	ood   []bool
}

// stream answers the queries x (one batch per evaChunk) for a replay.
func (d *defenceRun) stream(ctx context.Context, x attacks.Batch) (queryStream, error) {
	q := queryStream{x: x}
	s := x.SampleSize()
	for lo := 0; lo < x.N(); lo += evaChunk {
		hi := min(lo+evaChunk, x.N())
		rows, err := d.v.Predict(ctx, attacks.Batch{Data: x.Data[lo*s : hi*s], Shape: append([]int{hi - lo}, x.Shape[1:]...)})
		if err != nil {
			return q, fmt.Errorf("predict: %w", err)
		}
		if len(rows) != hi-lo {
			return q, fmt.Errorf("the model answered %d rows for %d samples", len(rows), hi-lo)
		}
		for j, row := range rows {
			q.class = append(q.class, argmax(row))
			sc, err := d.pr.OOD.Score(defence.Features(defence.SpaceInput, x.Sample(lo+j), nil))
			if err != nil {
				return q, err
			}
			q.ood = append(q.ood, sc > d.pr.OOD.Threshold)
		}
	}
	return q, nil
}

// replay feeds the stream to a fresh state of m and returns the state,
// the smallest PRADA W tested, and the OOD-rate CUSUM after each query.
func replay(m *defence.Monitor, q queryStream) (*defence.State, float64, []float64) {
	st := &defence.State{}
	minW := math.Inf(1)
	cusum := make([]float64, 0, q.x.N())
	for i := 0; i < q.x.N(); i++ {
		for _, c := range m.Observe(st, q.x.Sample(i), q.class[i], q.ood[i]) {
			if c.Name == defence.CheckPRADA && len(st.Distances) >= m.MinQueries {
				minW = math.Min(minW, c.Score)
			}
		}
		cusum = append(cusum, st.CUSUM)
	}
	return st, minW, cusum
}

// cusumCurve is a replay's CUSUM as a curve of at most 200 points.
func cusumCurve(name string, cusum []float64) jobs.Curve {
	c := jobs.Curve{Name: name, XLabel: "queries", YLabel: "OOD-rate CUSUM"}
	step := max(1, len(cusum)/200)
	for i := step - 1; i < len(cusum); i += step {
		c.X, c.Y = append(c.X, float64(i+1)), append(c.Y, cusum[i])
	}
	return c
}

// shuffled is the samples idx of the data in a seeded random order.
func (d *defenceRun) shuffled(idx []int, seed int64) attacks.Batch {
	c := slices.Clone(idx)
	rand.New(rand.NewSource(seed)).Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
	return subset(d.ds.X, c)
}

// monitor sets the extraction monitor's thresholds and replays MEA's
// query stream and a clean stream through it. PRADA's δ comes from a
// clean stream of the tuning samples (with the held-out ones when they
// are too few), the OOD-rate test from the held-out samples' OOD rate.
func (d *defenceRun) monitor(ctx context.Context, tuneIdx, heldIdx []int, oodClean int) error {
	m := &defence.Monitor{MinQueries: defence.DefaultMinQueries, Window: defence.DefaultWindow, History: defence.DefaultHistory,
		QueryBudget: d.p.QueryBudget}
	d.pr.Monitor = m
	m.SetOODRates(oodClean, len(heldIdx), d.p.QueryBudget, defenceStreamAlpha, uint64(d.p.Seed))
	calib := tuneIdx
	if len(calib) < 2*m.MinQueries {
		calib = append(slices.Clone(tuneIdx), heldIdx...)
		d.notes = append(d.notes, fmt.Sprintf("PRADA's threshold was set on a clean stream of the tuning and held-out samples together (%d queries): the tuning samples alone were too few", len(calib)))
	}
	cs, err := d.stream(ctx, d.shuffled(calib, d.p.Seed))
	if err != nil {
		return err
	}
	off := *m
	off.PRADAThreshold, off.CUSUMLimit = 0, math.Inf(1)
	_, minW, _ := replay(&off, cs)
	if math.IsInf(minW, 1) {
		d.notes = append(d.notes, fmt.Sprintf("PRADA is off: the clean stream (%d queries) is shorter than the %d distances it needs", len(calib), m.MinQueries))
	} else {
		m.PRADAThreshold = math.Max(0, math.Min(pradaMaxDelta, minW-pradaMargin))
	}
	st := &d.pr.Stats
	hs, err := d.stream(ctx, d.shuffled(heldIdx, d.p.Seed+1))
	if err != nil {
		return err
	}
	cst, _, cleanCUSUM := replay(m, hs)
	st.CleanStream, st.CleanFlaggedAt = len(heldIdx), cst.FlaggedAt

	task, err := newMEATask(d.ds, d.v)
	if err != nil {
		return err
	}
	e := &extraction{v: d.v, ds: d.ds, p: d.p, env: d.env, task: task, rng: rand.New(rand.NewSource(d.p.Seed))}
	e.split()
	q := task.queries(e, d.p.QueryBudget)
	x := attacks.Batch{Data: q.x, Shape: append([]int{q.len()}, q.sample...)}
	ms, err := d.stream(ctx, x)
	if err != nil {
		return err
	}
	full, _, meaCUSUM := replay(m, ms)
	pradaOnly := *m
	pradaOnly.CUSUMLimit = math.Inf(1)
	ps, _, _ := replay(&pradaOnly, ms)
	oodOnly := *m
	oodOnly.PRADAThreshold = 0
	oodSt, _, _ := replay(&oodOnly, ms)
	st.StreamBudget, st.StreamFlaggedAt, st.StreamFlaggedBy = d.p.QueryBudget, full.FlaggedAt, full.FlaggedBy
	st.PRADAFlaggedAt, st.OODRateFlagged = ps.FlaggedAt, oodSt.FlaggedAt
	d.curves = append(d.curves, cusumCurve("mea_stream_ood_rate_cusum", meaCUSUM), cusumCurve("clean_stream_ood_rate_cusum", cleanCUSUM))
	d.notes = append(d.notes, fmt.Sprintf("MEA's query stream was replayed as MEA builds it: %d pool samples of the data, then synthetic queries (mixups and noisy copies) up to the budget of %d", len(e.pool), d.p.QueryBudget))
	return nil
}
