package analysis

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/jobs"
)

// Model poisoning looks for a backdoor (a trigger that sends any input to
// one class) the way Neural Cleanse does (Wang et al., S&P 2019): for
// every class c it reverse-engineers the smallest trigger, a mask m (H×W)
// and a pattern p (C×H×W), that makes the model answer c on inputs of the
// other classes, stamping x' = (1−m)·x + m·p. A backdoor's target needs a
// much smaller mask than the other classes: its L1 norm is an outlier
// below the median (anomaly index > 2). The two clean reference models
// then tell a backdoor from a class that is easy to reach: stamped with
// the recovered trigger, held-out inputs go to c on the model but not on
// the references.

// Trigger optimisation constants (Neural Cleanse's defaults where it has
// one: Adam with β = (0.5, 0.9), initial cost 1e-3, success threshold
// 0.99, cost multiplied by 1.5 up and divided by 1.5^1.5 down).
const (
	mpoisLR        = 0.1
	mpoisBeta1     = 0.5
	mpoisBeta2     = 0.9
	mpoisInitCost  = 1e-3
	mpoisCostUp    = 1.5
	mpoisSuccess   = 0.99
	mpoisBatch     = 32 // samples per optimisation step
	mpoisRound     = 10 // steps between success checks and cost updates
	mpoisAnomaly   = 2.0
	mpoisDisagree  = 0.8 // disagreement with the references that makes an outlier a backdoor
	mpoisShown     = 3   // classes whose triggers the report shows
	mpoisMinSample = 4
)

// mpoisCostDown divides the cost when the attack falls below the threshold.
var mpoisCostDown = math.Pow(mpoisCostUp, 1.5)

// trigger is a class's reverse-engineered trigger and what it does.
type trigger struct {
	class   int
	mask    []float32 // H×W in (0, 1)
	pattern []float32 // C×H×W in (0, 1)
	l1      float64   // sum of the mask
	success float64   // share of the optimisation samples (other classes) sent to class
	reached bool      // success ≥ mpoisSuccess at some check (else the last mask is kept)
	cost    float64   // λ at the end
	// On the held-out samples of the other classes: the share the model
	// sends to class, each reference's share, and the share the model
	// sends to class while no reference does.
	heldSuccess  float64
	refSuccess   []float64
	disagreement float64
}

// poisonSearch is the data of a model-poisoning run.
type poisonSearch struct {
	v                Victim
	refs             []Victim
	k, c, h, w       int
	opt, held        attacks.Batch
	optLbl, heldLbl  []int
	heldIdx          []int // the held-out samples' indices in the data
	steps            int
	env              Env
	progressLo, span int
}

// poisoning runs the model-poisoning analysis (IC).
func poisoning(ctx context.Context, v Victim, ds *ais.Dataset, p jobs.AnalysisParams, env Env) (jobs.AnalysisResult, error) {
	var r jobs.AnalysisResult
	if ds.Task != ais.TaskIC {
		return r, fmt.Errorf("model poisoning is implemented for IC, not %q", ds.Task)
	}
	if len(env.References) == 0 {
		return r, fmt.Errorf("model poisoning needs the clean reference models, and none was loaded")
	}
	if len(ds.X.Shape) != 4 || ds.X.Validate() != nil {
		return r, fmt.Errorf("%w: images must be [N, C, H, W], have %v", ais.ErrUserData, ds.X.Shape)
	}
	if p.TriggerSteps < 1 || p.Samples < 1 {
		return r, fmt.Errorf("model poisoning needs trigger_steps ≥ 1 and samples ≥ 1, have %d and %d", p.TriggerSteps, p.Samples)
	}
	n := ds.N()
	if n < mpoisMinSample || len(ds.Labels) != n {
		return r, fmt.Errorf("%w: model poisoning needs at least %d labelled images, have %d images and %d labels", ais.ErrUserData, mpoisMinSample, n, len(ds.Labels))
	}
	k := numClasses(v)
	if k < 2 {
		return r, fmt.Errorf("%w: the model answers %d value(s) per image, not class scores", ais.ErrUserData, k)
	}
	for j, ref := range env.References {
		if kr := numClasses(ref); kr != k {
			return r, fmt.Errorf("%w: clean reference model %d answers %d classes, the model %d", ais.ErrUserData, j+1, kr, k)
		}
	}
	for i, l := range ds.Labels {
		if l < 0 || l >= k {
			return r, fmt.Errorf("%w: label %d of sample %d outside the model's %d classes", ais.ErrUserData, l, i, k)
		}
	}
	s := &poisonSearch{v: v, refs: env.References, k: k, c: ds.X.Shape[1], h: ds.X.Shape[2], w: ds.X.Shape[3],
		steps: p.TriggerSteps, env: env, progressLo: 5, span: 80}
	optIdx, heldIdx := splitSamples(n, p.Samples, p.Seed)
	s.opt, s.held, s.heldIdx = subset(ds.X, optIdx), subset(ds.X, heldIdx), heldIdx
	for _, i := range optIdx {
		s.optLbl = append(s.optLbl, ds.Labels[i])
	}
	for _, i := range heldIdx {
		s.heldLbl = append(s.heldLbl, ds.Labels[i])
	}
	env.progress(2, "predicting_clean")
	accs, err := s.accuracies(ctx)
	if err != nil {
		return r, err
	}
	trig := make([]trigger, k)
	for c := 0; c < k; c++ {
		env.progress(s.progressLo+s.span*c/k, fmt.Sprintf("reverse_engineering class %d/%d", c+1, k))
		if trig[c], err = s.reverse(ctx, c); err != nil {
			return r, err
		}
	}
	env.progress(86, "comparing_references")
	for c := range trig {
		if err := s.disagreement(ctx, &trig[c]); err != nil {
			return r, err
		}
	}
	return s.report(ctx, ds, trig, accs, p)
}

// splitSamples draws (seeded) up to max optimisation samples from about
// half of the data and up to max held-out samples from the rest, each in
// data order.
func splitSamples(n, max int, seed int64) (opt, held []int) {
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed_9015))
	rng.Shuffle(n, func(i, j int) { all[i], all[j] = all[j], all[i] })
	nOpt := min(max, (n+1)/2)
	opt = slices.Sorted(slices.Values(all[:nOpt]))
	rest := all[nOpt:]
	held = slices.Sorted(slices.Values(rest[:min(max, len(rest))]))
	return opt, held
}

// accuracies is the model's and each reference's accuracy on the held-out
// samples (reported: disagreement means little with poor references).
func (s *poisonSearch) accuracies(ctx context.Context) ([]float64, error) {
	var out []float64
	for j, m := range append([]Victim{s.v}, s.refs...) {
		rows, err := m.Predict(ctx, s.held)
		if err != nil {
			return nil, fmt.Errorf("predict the held-out samples (model %d): %w", j, err)
		}
		if len(rows) != s.held.N() {
			return nil, fmt.Errorf("model %d answered %d rows for %d samples", j, len(rows), s.held.N())
		}
		right := 0
		for i, row := range rows {
			if argmax(row) == s.heldLbl[i] {
				right++
			}
		}
		out = append(out, float64(right)/float64(len(rows)))
	}
	return out, nil
}

// others is the indices of the labels not equal to c (all of them when
// every label is c).
func others(labels []int, c int) []int {
	var idx []int
	for i, l := range labels {
		if l != c {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		for i := range labels {
			idx = append(idx, i)
		}
	}
	return idx
}

// stamp writes (1−m)·x + m·p for the samples idx of x into out.
func (s *poisonSearch) stamp(out []float32, x attacks.Batch, idx []int, mask, pattern []float32) {
	hw, size := s.h*s.w, x.SampleSize()
	for j, i := range idx {
		src, dst := x.Data[i*size:(i+1)*size], out[j*size:(j+1)*size]
		for ch := 0; ch < s.c; ch++ {
			o := ch * hw
			for q := 0; q < hw; q++ {
				m := mask[q]
				dst[o+q] = (1-m)*src[o+q] + m*pattern[o+q]
			}
		}
	}
}

// reverse optimises class c's trigger: Adam on free parameters a (mask =
// σ(a)) and b (pattern = σ(b)), both starting at 0, minimising the mean
// cross-entropy towards c of a batch of stamped samples of the other
// classes plus λ·|m|₁. The input gradient comes from the model; the chain
// rule to a and b is done here. Every mpoisRound steps the trigger's
// success on all those samples is measured: λ is raised when it reaches
// 0.99 (and the mask is kept when it is the smallest so far) and lowered
// otherwise.
func (s *poisonSearch) reverse(ctx context.Context, c int) (trigger, error) {
	hw, chw := s.h*s.w, s.c*s.h*s.w
	idx := others(s.optLbl, c)
	bs := min(mpoisBatch, len(idx))
	params := make([]float64, hw+chw) // a then b
	grads := make([]float64, hw+chw)
	opt := newAdam(len(params), mpoisLR, mpoisBeta1, mpoisBeta2)
	mask, pattern := make([]float32, hw), make([]float32, chw)
	batch := attacks.Batch{Data: make([]float32, bs*chw), Shape: []int{bs, s.c, s.h, s.w}}
	labels := make([]int, bs)
	for i := range labels {
		labels[i] = c
	}
	rows := make([]int, bs)
	cost := mpoisInitCost
	best := trigger{class: c, l1: math.Inf(1)}
	var last trigger
	decode := func() {
		for q := range mask {
			mask[q] = float32(sigmoid(params[q]))
		}
		for q := range pattern {
			pattern[q] = float32(sigmoid(params[hw+q]))
		}
	}
	decode()
	for step := 0; step < s.steps; step++ {
		for j := range rows {
			rows[j] = idx[(step*bs+j)%len(idx)]
		}
		if _, err := s.gradient(ctx, batch, rows, labels, mask, pattern, cost, grads); err != nil {
			return trigger{}, fmt.Errorf("class %d trigger: %w", c, err)
		}
		opt.step(params, grads)
		decode()
		if (step+1)%mpoisRound != 0 && step+1 != s.steps {
			continue
		}
		succ, err := s.share(ctx, s.v, s.opt, idx, c, mask, pattern, nil)
		if err != nil {
			return trigger{}, err
		}
		last = trigger{class: c, mask: append([]float32(nil), mask...), pattern: append([]float32(nil), pattern...),
			l1: l1(mask), success: succ, reached: succ >= mpoisSuccess, cost: cost}
		if last.reached && last.l1 < best.l1 {
			best = last
		}
		if succ >= mpoisSuccess {
			cost *= mpoisCostUp
		} else {
			cost /= mpoisCostDown
		}
	}
	if best.reached {
		best.cost = cost
		return best, nil
	}
	last.cost = cost
	return last, nil
}

// gradient stamps the optimisation samples rows into batch and returns
// the objective, mean cross-entropy towards labels plus cost·|m|₁, with
// its gradient w.r.t. the free parameters (a then b, mask = σ(a), pattern
// = σ(b)) in grads: the model's input gradient g chain-ruled through
// x' = (1−m)·x + m·p, ∂x'/∂m = p − x (summed over channels), ∂x'/∂p = m.
func (s *poisonSearch) gradient(ctx context.Context, batch attacks.Batch, rows, labels []int, mask, pattern []float32, cost float64, grads []float64) (float64, error) {
	hw, chw := s.h*s.w, s.c*s.h*s.w
	s.stamp(batch.Data, s.opt, rows, mask, pattern)
	g, losses, err := s.v.LossGradient(ctx, batch, labels)
	if err != nil {
		return 0, fmt.Errorf("input gradient: %w", err)
	}
	if len(g.Data) != len(batch.Data) || len(losses) != len(rows) {
		return 0, fmt.Errorf("the model's input gradient has %d values and %d losses for %d inputs", len(g.Data), len(losses), len(rows))
	}
	clear(grads)
	size := float64(len(rows))
	var obj float64
	for j, i := range rows {
		obj += float64(losses[j]) / size
		x, gj := s.opt.Sample(i), g.Data[j*chw:(j+1)*chw]
		for ch := 0; ch < s.c; ch++ {
			o := ch * hw
			for q := 0; q < hw; q++ {
				gv := float64(gj[o+q]) / size
				grads[q] += gv * float64(pattern[o+q]-x[o+q])
				grads[hw+o+q] += gv * float64(mask[q])
			}
		}
	}
	for q := 0; q < hw; q++ {
		m := float64(mask[q])
		obj += cost * m
		grads[q] = (grads[q] + cost) * m * (1 - m)
	}
	for q := 0; q < chw; q++ {
		pv := float64(pattern[q])
		grads[hw+q] *= pv * (1 - pv)
	}
	return obj, nil
}

// share predicts with m the samples idx of x stamped with the trigger and
// returns the share answered c; with hit it also records which were.
func (s *poisonSearch) share(ctx context.Context, m Victim, x attacks.Batch, idx []int, c int, mask, pattern []float32, hit []bool) (float64, error) {
	size := x.SampleSize()
	b := attacks.Batch{Data: make([]float32, len(idx)*size), Shape: append([]int{len(idx)}, x.Shape[1:]...)}
	s.stamp(b.Data, x, idx, mask, pattern)
	rows, err := m.Predict(ctx, b)
	if err != nil {
		return 0, fmt.Errorf("predict stamped samples: %w", err)
	}
	if len(rows) != len(idx) {
		return 0, fmt.Errorf("a model answered %d rows for %d samples", len(rows), len(idx))
	}
	n := 0
	for j, row := range rows {
		ok := argmax(row) == c
		if ok {
			n++
		}
		if hit != nil {
			hit[j] = ok
		}
	}
	return float64(n) / float64(len(rows)), nil
}

// disagreement stamps the trigger on the held-out samples of the other
// classes and compares the model's answers with the references'.
func (s *poisonSearch) disagreement(ctx context.Context, t *trigger) error {
	idx := others(s.heldLbl, t.class)
	model := make([]bool, len(idx))
	var err error
	if t.heldSuccess, err = s.share(ctx, s.v, s.held, idx, t.class, t.mask, t.pattern, model); err != nil {
		return err
	}
	alone := append([]bool(nil), model...)
	hit := make([]bool, len(idx))
	t.refSuccess = nil
	for _, ref := range s.refs {
		share, err := s.share(ctx, ref, s.held, idx, t.class, t.mask, t.pattern, hit)
		if err != nil {
			return fmt.Errorf("reference: %w", err)
		}
		t.refSuccess = append(t.refSuccess, share)
		for j, h := range hit {
			alone[j] = alone[j] && !h
		}
	}
	t.disagreement = float64(count(alone)) / float64(len(idx))
	return nil
}

func l1(xs []float32) float64 {
	var s float64
	for _, x := range xs {
		s += math.Abs(float64(x))
	}
	return s
}
