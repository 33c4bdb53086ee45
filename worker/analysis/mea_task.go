package analysis

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/ais/defence"
	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/worker/torch"
)

// Surrogate families, by task type.
const (
	kindImage    = "image"    // IC: CNN classifier
	kindTable    = "table"    // TC, TS: MLP classifier on standardised features
	kindText     = "text"     // NLP: MLP on hashed bag-of-words features
	kindForecast = "forecast" // TSF: MLP regressor
	kindSegment  = "segment"  // IS: fully convolutional per-pixel classifier
)

// Surrogate training: Adam, batches of trainBatch, enough epochs for about
// trainSteps steps within [minEpochs, maxEpochs].
const (
	trainBatch = 32
	trainSteps = 500
	minEpochs  = 15
	maxEpochs  = 60
	noiseShare = 0.1 // σ of a synthetic query's noise, as a share of the feature's range
)

// Fidelity targets of the verdict.
const (
	fidelityTarget = 0.9 // classification agreement, TSF R²
	miouTarget     = 0.8 // IS mean IoU
)

// meaTask is what depends on the task type: the queries, the surrogate
// and how it is scored.
type meaTask struct {
	kind   string
	ds     *ais.Dataset
	sample []int // one input's shape (not NLP)
	out    []int // one answer's shape
	lo, hi []float32
}

func newMEATask(ds *ais.Dataset, v Victim) (meaTask, error) {
	t := meaTask{ds: ds, out: v.OutputShape()}
	switch ds.Task {
	case ais.TaskIC:
		t.kind = kindImage
	case ais.TaskTC, ais.TaskTS:
		t.kind = kindTable
	case ais.TaskNLP:
		t.kind = kindText
	case ais.TaskTSF:
		t.kind = kindForecast
	case ais.TaskIS:
		t.kind = kindSegment
	default:
		return t, fmt.Errorf("MEA does not support task %q", ds.Task)
	}
	switch {
	case t.kind == kindText:
		if len(ds.Texts) == 0 || len(ds.Labels) != len(ds.Texts) {
			return t, fmt.Errorf("%w: %d texts with %d labels", ais.ErrUserData, len(ds.Texts), len(ds.Labels))
		}
	case len(ds.X.Shape) < 2:
		return t, fmt.Errorf("%w: inputs of shape %v", ais.ErrUserData, ds.X.Shape)
	default:
		t.sample = append([]int(nil), ds.X.Shape[1:]...)
	}
	n := ds.N()
	switch t.kind {
	case kindImage, kindTable, kindText:
		if len(t.out) != 1 || t.out[0] < 2 || len(ds.Labels) != n {
			return t, fmt.Errorf("%w: a classifier with output %v for %d samples and %d labels", ais.ErrUserData, t.out, n, len(ds.Labels))
		}
	case kindForecast:
		if len(t.out) != 1 || ds.Targets.N() != n || ds.Targets.SampleSize() != t.out[0] {
			return t, fmt.Errorf("%w: forecasts of shape %v for targets %v", ais.ErrUserData, t.out, ds.Targets.Shape)
		}
	case kindSegment:
		if len(t.sample) != 3 || len(t.out) != 3 || t.out[1] != t.sample[1] || t.out[2] != t.sample[2] || len(ds.Masks) != n*t.sample[1]*t.sample[2] {
			return t, fmt.Errorf("%w: masks %v for images %v and %d mask values", ais.ErrUserData, t.out, t.sample, len(ds.Masks))
		}
	}
	if t.kind == kindImage && len(t.sample) != 3 {
		return t, fmt.Errorf("%w: images of shape %v, want [C,H,W]", ais.ErrUserData, t.sample)
	}
	t.lo, t.hi = t.ranges()
	return t, nil
}

// ranges are the bounds synthetic queries stay within: per feature for
// tables and series windows, the data's overall range for images.
func (t meaTask) ranges() (lo, hi []float32) {
	if t.kind == kindText {
		return nil, nil
	}
	size := t.ds.X.SampleSize()
	perFeature := t.kind == kindTable || t.kind == kindForecast
	width := 1
	if perFeature {
		width = size
	}
	lo, hi = make([]float32, width), make([]float32, width)
	for j := range lo {
		lo[j], hi[j] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	for i, x := range t.ds.X.Data {
		j := 0
		if perFeature {
			j = i % size
		}
		lo[j], hi[j] = min(lo[j], x), max(hi[j], x)
	}
	return lo, hi
}

func (t meaTask) classifier() bool { return t.kind != kindForecast && t.kind != kindSegment }

func (t meaTask) threshold() float64 {
	if t.kind == kindSegment {
		return miouTarget
	}
	return fidelityTarget
}

// queryBatchSet is a list of inputs for the victim: images or rows, or texts.
type queryBatchSet struct {
	x      []float32
	sample []int
	texts  []string
}

func (q queryBatchSet) size() int {
	n := 1
	for _, d := range q.sample {
		n *= d
	}
	return n
}

func (q queryBatchSet) len() int {
	if q.texts != nil {
		return len(q.texts)
	}
	return len(q.x) / q.size()
}

func (q queryBatchSet) predict(ctx context.Context, v Victim, lo, hi int) ([][]float32, error) {
	if q.texts != nil {
		return v.PredictText(ctx, q.texts[lo:hi])
	}
	s := q.size()
	return v.Predict(ctx, attacks.Batch{Data: q.x[lo*s : hi*s], Shape: append([]int{hi - lo}, q.sample...)})
}

// features are the surrogate's inputs for queries [0, n): the inputs
// themselves, or hashed bag-of-words counts of texts.
func (q queryBatchSet) features(n int) ([]float32, []int64) {
	if q.texts != nil {
		out := make([]float32, n*HashedFeatures)
		for i, text := range q.texts[:n] {
			hashedBagOfWords(text, out[i*HashedFeatures:(i+1)*HashedFeatures])
		}
		return out, []int64{HashedFeatures}
	}
	shape := make([]int64, len(q.sample))
	for i, d := range q.sample {
		shape[i] = int64(d)
	}
	return q.x[:n*q.size()], shape
}

// subset is the dataset's rows as queries.
func (t meaTask) subset(rows []int) queryBatchSet {
	if t.kind == kindText {
		q := queryBatchSet{texts: make([]string, 0, len(rows))}
		for _, r := range rows {
			q.texts = append(q.texts, t.ds.Texts[r])
		}
		return q
	}
	q := queryBatchSet{sample: t.sample}
	s := t.ds.X.SampleSize()
	q.x = make([]float32, 0, len(rows)*s)
	for _, r := range rows {
		q.x = append(q.x, t.ds.X.Data[r*s:(r+1)*s]...)
	}
	return q
}

// queries are the extraction's budget queries: the pool's samples, then
// synthetic ones made from them (alternately a mixup of two pool samples
// and a noisy copy within the data's range; texts: word dropout and word
// shuffles of pool texts).
func (t meaTask) queries(e *extraction, budget int) queryBatchSet {
	pool := e.pool
	q := t.subset(pool[:min(budget, len(pool))])
	extra := budget - len(pool)
	if extra <= 0 {
		return q
	}
	e.notes = append(e.notes, fmt.Sprintf("the query pool holds %d samples; %d synthetic queries were made from them", len(pool), extra))
	rng := e.rng
	if t.kind == kindText {
		for i := 0; i < extra; i++ {
			w := strings.Fields(t.ds.Texts[pool[rng.Intn(len(pool))]])
			if i%2 == 0 {
				kept := w[:0:0]
				for _, x := range w {
					if rng.Float64() >= 0.2 {
						kept = append(kept, x)
					}
				}
				if len(kept) > 0 {
					w = kept
				}
			} else {
				rng.Shuffle(len(w), func(a, b int) { w[a], w[b] = w[b], w[a] })
			}
			q.texts = append(q.texts, strings.Join(w, " "))
		}
		return q
	}
	s := t.ds.X.SampleSize()
	row := func(r int) []float32 { return t.ds.X.Data[r*s : (r+1)*s] }
	for i := 0; i < extra; i++ {
		a := row(pool[rng.Intn(len(pool))])
		if i%2 == 0 {
			b := row(pool[rng.Intn(len(pool))])
			lam := float32(0.2 + 0.6*rng.Float64())
			for j := range a {
				q.x = append(q.x, lam*a[j]+(1-lam)*b[j])
			}
			continue
		}
		for j := range a {
			k := j % len(t.lo)
			x := a[j] + float32(rng.NormFloat64()*noiseShare)*(t.hi[k]-t.lo[k])
			q.x = append(q.x, min(max(x, t.lo[k]), t.hi[k]))
		}
	}
	return q
}

// trainConfig is the surrogate's recipe for n queries.
func (t meaTask) trainConfig(n int, seed int64) torch.TrainConfig {
	perEpoch := (n + trainBatch - 1) / trainBatch
	epochs := min(maxEpochs, max(minEpochs, (trainSteps+perEpoch-1)/perEpoch))
	cfg := torch.TrainConfig{Epochs: epochs, BatchSize: trainBatch, Seed: seed}
	switch t.kind {
	case kindImage:
		cfg.Hidden, cfg.LR = []int64{16, 32}, 3e-3
	case kindTable, kindText:
		cfg.Hidden, cfg.LR = []int64{64}, 3e-3
	case kindForecast:
		cfg.Hidden, cfg.LR = []int64{64, 64}, 3e-3
	case kindSegment:
		cfg.Hidden, cfg.LR = []int64{16, 16, 16}, 3e-3
	}
	return cfg
}

// fitData is the surrogate's spec and training data from the first
// len(answers) queries; mode picks soft or hard labels for classifiers.
func (t meaTask) fitData(q queryBatchSet, answers [][]float32, mode string) (torch.FitSpec, torch.FitData) {
	n := len(answers)
	x, shape := q.features(n)
	spec := torch.FitSpec{InShape: shape, Out: int64(t.out[0])}
	d := torch.FitData{X: x, N: n}
	switch t.kind {
	case kindImage, kindTable, kindText:
		spec.Arch = torch.ArchMLP
		if t.kind == kindImage {
			spec.Arch = torch.ArchCNN
		}
		if t.kind == kindTable {
			spec.Input = standardise(x, n)
		}
		if mode == labelHard {
			spec.Loss = torch.LossCE
			for _, a := range answers {
				d.Labels = append(d.Labels, int64(argmax(a)))
			}
		} else {
			spec.Loss = torch.LossSoftCE
			for _, a := range answers {
				d.Targets = append(d.Targets, defence.Probabilities(a)...)
			}
		}
	case kindForecast:
		spec.Arch, spec.Loss = torch.ArchMLP, torch.LossMSE
		spec.Input = standardise(x, n)
		for _, a := range answers {
			d.Targets = append(d.Targets, a...)
		}
		// The output layer un-standardises: out = z·σ + μ of the answers.
		inv := standardise(d.Targets, n)
		spec.Output = &torch.Affine{Scale: make([]float32, len(inv.Scale)), Shift: make([]float32, len(inv.Scale))}
		for j := range inv.Scale {
			spec.Output.Scale[j] = 1 / inv.Scale[j]
			spec.Output.Shift[j] = -inv.Shift[j] / inv.Scale[j]
		}
	case kindSegment:
		spec.Arch, spec.Loss = torch.ArchFCN, torch.LossPixelCE
		for _, a := range answers {
			d.Labels = append(d.Labels, pixelArgmax(a, t.out)...)
		}
	}
	return spec, d
}

// standardise maps each of the features of n rows x to mean 0 and
// standard deviation 1 (σ below 1e-6 counts as 1).
func standardise(x []float32, n int) *torch.Affine {
	f := len(x) / n
	a := &torch.Affine{Scale: make([]float32, f), Shift: make([]float32, f)}
	for j := 0; j < f; j++ {
		var s, ss float64
		for i := 0; i < n; i++ {
			v := float64(x[i*f+j])
			s += v
			ss += v * v
		}
		mu := s / float64(n)
		sd := math.Sqrt(max(0, ss/float64(n)-mu*mu))
		if sd < 1e-6 {
			sd = 1
		}
		a.Scale[j], a.Shift[j] = float32(1/sd), float32(-mu/sd)
	}
	return a
}

// pixelArgmax is the per-pixel class of a [K, H, W] output, row-major.
func pixelArgmax(o []float32, shape []int) []int64 {
	k, hw := shape[0], shape[1]*shape[2]
	out := make([]int64, hw)
	for p := 0; p < hw; p++ {
		best := 0
		for c := 1; c < k; c++ {
			if o[c*hw+p] > o[best*hw+p] {
				best = c
			}
		}
		out[p] = int64(best)
	}
	return out
}
