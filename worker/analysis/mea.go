package analysis

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/worker/torch"
)

// MEA (model extraction, Knockoff-style): the user's data is split into a
// query pool and a held-out evaluation set; the extraction spends its
// query budget on the pool (then on synthetic queries made from it), trains
// a surrogate on the victim's answers after each budget of the curve, and
// measures on the held-out set how closely the surrogate copies the victim.
const (
	evalShare    = 0.3  // of the data held out for evaluation
	maxEval      = 1000 // held-out samples at most
	minSamples   = 10   // data needed to split
	queryBatch   = 256  // victim queries per call
	labelSoft    = "soft"
	labelHard    = "hard"
	progressQry  = 5  // progress when querying starts
	progressFit  = 40 // progress when training starts
	progressDone = 98
)

// extraction is one MEA run's state.
type extraction struct {
	v      Victim
	ds     *ais.Dataset
	p      jobs.AnalysisParams
	env    Env
	task   meaTask
	pool   []int // dataset rows the queries start from
	eval   []int // held-out rows
	dir    string
	used   int // extraction queries spent (≤ budget)
	evalQ  int // queries spent answering the held-out set
	rng    *rand.Rand
	notes  []string
	points []curvePoint
}

// curvePoint is the surrogate trained on the first Queries answers.
type curvePoint struct {
	Queries   int
	Score     score
	Labels    string // soft or hard (classification)
	Epochs    int
	Seconds   float64
	ModelPath string
}

func extract(ctx context.Context, v Victim, ds *ais.Dataset, p jobs.AnalysisParams, env Env) (jobs.AnalysisResult, error) {
	if ds == nil || ds.N() < minSamples {
		return jobs.AnalysisResult{}, fmt.Errorf("%w: MEA needs at least %d samples", ais.ErrUserData, minSamples)
	}
	task, err := newMEATask(ds, v)
	if err != nil {
		return jobs.AnalysisResult{}, err
	}
	dir := env.Scratch
	if dir == "" {
		dir = os.TempDir()
	}
	if dir, err = os.MkdirTemp(dir, "mea-"); err != nil {
		return jobs.AnalysisResult{}, fmt.Errorf("scratch: %w", err)
	}
	defer os.RemoveAll(dir)
	e := &extraction{v: v, ds: ds, p: p, env: env, task: task, dir: dir, rng: rand.New(rand.NewSource(p.Seed))}
	e.split()
	return e.run(ctx)
}

// split holds out evalShare of the rows (at most maxEval), seeded.
func (e *extraction) split() {
	perm := e.rng.Perm(e.ds.N())
	nEval := min(maxEval, max(1, int(evalShare*float64(len(perm)))))
	e.eval, e.pool = perm[:nEval], perm[nEval:]
}

// budgets are the curve's query counts: p.CurvePoints within the budget,
// sorted, ending with the whole budget.
func (e *extraction) budgets() []int {
	seen := map[int]bool{}
	var out []int
	for _, n := range append(append([]int(nil), e.p.CurvePoints...), e.p.QueryBudget) {
		if n <= 0 || seen[n] {
			continue
		}
		if n > e.p.QueryBudget {
			e.notes = append(e.notes, fmt.Sprintf("curve point %d is over the query budget of %d and was skipped", n, e.p.QueryBudget))
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

func (e *extraction) progress(pct int, stage string) {
	if e.env.Progress != nil {
		e.env.Progress(pct, stage)
	}
}

func (e *extraction) run(ctx context.Context) (jobs.AnalysisResult, error) {
	budgets := e.budgets()
	budget := budgets[len(budgets)-1]
	e.progress(progressQry, "querying_victim")
	queries := e.task.queries(e, budget)
	answers, err := e.ask(ctx, queries, &e.used, progressQry, progressFit-5)
	if err != nil {
		return jobs.AnalysisResult{}, err
	}
	if e.used != budget {
		return jobs.AnalysisResult{}, fmt.Errorf("MEA spent %d queries for a budget of %d", e.used, budget)
	}
	e.progress(progressFit-5, "querying_held_out")
	held := e.task.subset(e.eval)
	victimEval, err := e.ask(ctx, held, &e.evalQ, progressFit-5, progressFit)
	if err != nil {
		return jobs.AnalysisResult{}, err
	}
	ev := e.task.evaluation(e.eval, victimEval)
	for i, n := range budgets {
		lo := progressFit + (progressDone-progressFit)*i/len(budgets)
		e.progress(lo, "training_surrogate")
		pt, err := e.point(ctx, queries, answers, n, ev, i == len(budgets)-1)
		if err != nil {
			return jobs.AnalysisResult{}, err
		}
		e.points = append(e.points, pt)
	}
	return e.report(ctx, ev)
}

// ask sends the queries to the victim in batches of queryBatch, counting
// each query in *count, and returns one answer row per query.
func (e *extraction) ask(ctx context.Context, q queryBatchSet, count *int, from, to int) ([][]float32, error) {
	n := q.len()
	out := make([][]float32, 0, n)
	for lo := 0; lo < n; lo += queryBatch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+queryBatch, n)
		rows, err := q.predict(ctx, e.v, lo, hi)
		if err != nil {
			return nil, fmt.Errorf("query the victim: %w", err)
		}
		if len(rows) != hi-lo {
			return nil, fmt.Errorf("the victim answered %d of %d queries", len(rows), hi-lo)
		}
		*count += hi - lo
		out = append(out, rows...)
		e.progress(from+(to-from)*hi/n, "querying_victim")
	}
	return out, nil
}

// point trains the surrogate on the first n queries and scores it on the
// held-out set. At the last point a classifier trained on soft labels
// that misses the fidelity target is trained again on hard labels, and the
// better of the two is kept.
func (e *extraction) point(ctx context.Context, q queryBatchSet, answers [][]float32, n int, ev *evaluation, last bool) (curvePoint, error) {
	modes := []string{labelSoft}
	if last && e.task.classifier() {
		modes = append(modes, labelHard)
	}
	var best curvePoint
	for i, mode := range modes {
		start := time.Now()
		path := filepath.Join(e.dir, fmt.Sprintf("surrogate-%d-%s.pt", n, mode))
		spec, data := e.task.fitData(q, answers[:n], mode)
		spec.Config = e.task.trainConfig(n, e.p.Seed)
		if _, err := torch.Fit(ctx, spec, data, path); err != nil {
			return curvePoint{}, fmt.Errorf("train the surrogate on %d queries: %w", n, err)
		}
		sc, err := ev.score(ctx, path)
		if err != nil {
			return curvePoint{}, err
		}
		pt := curvePoint{Queries: n, Score: sc, Labels: mode, Epochs: spec.Config.Epochs,
			Seconds: time.Since(start).Seconds(), ModelPath: path}
		if i == 0 || pt.Score.Fidelity > best.Score.Fidelity {
			best = pt
		}
		if best.Score.Fidelity >= e.task.threshold() {
			break
		}
	}
	if best.Labels == labelHard {
		e.notes = append(e.notes, "the final surrogate was trained on the victim's hard labels (argmax), which copied it better than its probabilities")
	}
	return best, nil
}
