package analysis

import (
	"context"
	"fmt"
	"math"

	"github.com/wardenlab/warden/worker/torch"
)

// score is a surrogate measured on the held-out set.
type score struct {
	// Fidelity: agreement of the surrogate's class with the victim's
	// (classifiers), mean IoU of their masks (IS), R² of the surrogate
	// against the victim's forecasts (TSF).
	Fidelity float64
	// Accuracy: the surrogate against the user's labels: accuracy, mean
	// IoU with the true masks (IS), R² against the true targets (TSF).
	Accuracy float64
	// Agreement: IS's pixel agreement with the victim's masks.
	Agreement float64
	// MAE: TSF's mean absolute difference from the victim's forecasts.
	MAE float64
}

// evaluation is the held-out set with the victim's answers on it.
type evaluation struct {
	task    meaTask
	rows    []int
	x       []float32
	shape   []int64 // one surrogate input
	victim  [][]float32
	vscore  score // the victim against the truth (Accuracy only)
	vmasks  []int64
	classes int // IS: classes scored by mean IoU
}

func (t meaTask) evaluation(rows []int, answers [][]float32) *evaluation {
	q := t.subset(rows)
	x, shape := q.features(len(rows))
	ev := &evaluation{task: t, rows: rows, x: x, shape: shape, victim: answers}
	switch t.kind {
	case kindSegment:
		ev.classes = max(t.out[0], t.ds.MaskClasses)
		for _, a := range answers {
			ev.vmasks = append(ev.vmasks, pixelArgmax(a, t.out)...)
		}
		ev.vscore.Accuracy = meanIoU(ev.vmasks, ev.trueMasks(), ev.classes)
	case kindForecast:
		ev.vscore.Accuracy = r2(flatten(answers), ev.trueTargets(), t.out[0])
	default:
		right := 0
		for i, a := range answers {
			if argmax(a) == t.ds.Labels[rows[i]] {
				right++
			}
		}
		ev.vscore.Accuracy = float64(right) / float64(len(rows))
	}
	return ev
}

func (ev *evaluation) trueMasks() []int64 {
	hw := ev.task.sample[1] * ev.task.sample[2]
	out := make([]int64, 0, len(ev.rows)*hw)
	for _, r := range ev.rows {
		for _, m := range ev.task.ds.Masks[r*hw : (r+1)*hw] {
			out = append(out, int64(m))
		}
	}
	return out
}

func (ev *evaluation) trueTargets() []float32 {
	h := ev.task.ds.Targets.SampleSize()
	out := make([]float32, 0, len(ev.rows)*h)
	for _, r := range ev.rows {
		out = append(out, ev.task.ds.Targets.Data[r*h:(r+1)*h]...)
	}
	return out
}

// outputs runs the surrogate at path on the held-out inputs.
func (ev *evaluation) outputs(ctx context.Context, path string) ([]float32, error) {
	m, err := torch.LoadModule(path, torch.CPU)
	if err != nil {
		return nil, fmt.Errorf("load the surrogate: %w", err)
	}
	defer m.Close()
	per := 1
	for _, d := range ev.shape {
		per *= int(d)
	}
	n := len(ev.rows)
	var out []float32
	for lo := 0; lo < n; lo += queryBatch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+queryBatch, n)
		y, err := m.Forward(&torch.Tensor{Data: ev.x[lo*per : hi*per], Shape: append([]int64{int64(hi - lo)}, ev.shape...)})
		if err != nil {
			return nil, fmt.Errorf("run the surrogate: %w", err)
		}
		out = append(out, y.Data...)
	}
	return out, nil
}

// score measures the surrogate at path against the victim and the truth.
func (ev *evaluation) score(ctx context.Context, path string) (score, error) {
	o, err := ev.outputs(ctx, path)
	if err != nil {
		return score{}, err
	}
	t := ev.task
	per := 1
	for _, d := range t.out {
		per *= d
	}
	if len(o) != per*len(ev.rows) {
		return score{}, fmt.Errorf("the surrogate gave %d values for %d samples of %v", len(o), len(ev.rows), t.out)
	}
	var sc score
	switch t.kind {
	case kindSegment:
		var masks []int64
		for i := range ev.rows {
			masks = append(masks, pixelArgmax(o[i*per:(i+1)*per], t.out)...)
		}
		sc.Fidelity = meanIoU(masks, ev.vmasks, ev.classes)
		sc.Accuracy = meanIoU(masks, ev.trueMasks(), ev.classes)
		same := 0
		for i, m := range masks {
			if m == ev.vmasks[i] {
				same++
			}
		}
		sc.Agreement = float64(same) / float64(len(masks))
	case kindForecast:
		v := flatten(ev.victim)
		sc.Fidelity = r2(o, v, per)
		sc.Accuracy = r2(o, ev.trueTargets(), per)
		for i := range o {
			sc.MAE += math.Abs(float64(o[i] - v[i]))
		}
		sc.MAE /= float64(len(o))
	default:
		agree, right := 0, 0
		for i, r := range ev.rows {
			c := argmax(o[i*per : (i+1)*per])
			if c == argmax(ev.victim[i]) {
				agree++
			}
			if c == t.ds.Labels[r] {
				right++
			}
		}
		sc.Fidelity = float64(agree) / float64(len(ev.rows))
		sc.Accuracy = float64(right) / float64(len(ev.rows))
	}
	return sc, nil
}

func flatten(rows [][]float32) []float32 {
	var out []float32
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}

// r2 is the coefficient of determination of predictions pred against
// reference ref (rows of width h): 1 − Σ(pred−ref)² / Σ(ref−mean_col(ref))².
func r2(pred, ref []float32, h int) float64 {
	n := len(ref) / h
	mean := make([]float64, h)
	for i, v := range ref {
		mean[i%h] += float64(v) / float64(n)
	}
	var res, tot float64
	for i, v := range ref {
		d := float64(pred[i] - v)
		res += d * d
		c := float64(v) - mean[i%h]
		tot += c * c
	}
	if tot == 0 {
		if res == 0 {
			return 1
		}
		return 0
	}
	return 1 - res/tot
}

// meanIoU is the mean over classes present in a or b of |a∩b| / |a∪b|,
// counted over every pixel of the set.
func meanIoU(a, b []int64, classes int) float64 {
	inter, union := make([]int, classes), make([]int, classes)
	for i := range a {
		x, y := a[i], b[i]
		if x == y {
			inter[x]++
			union[x]++
			continue
		}
		union[x]++
		union[y]++
	}
	var s float64
	k := 0
	for c := range union {
		if union[c] > 0 {
			s += float64(inter[c]) / float64(union[c])
			k++
		}
	}
	if k == 0 {
		return 1
	}
	return s / float64(k)
}
