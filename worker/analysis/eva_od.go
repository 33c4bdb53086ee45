package analysis

import (
	"context"
	"fmt"
	"image/color"
	"math"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/jobs"
)

// A detector answers per image D rows (x_min, y_min, x_max, y_max, score,
// class) in pixels; score 0 marks padding.
const detCols = 6

// Detection matching rules.
const (
	matchIoU   = 0.5 // a detection matches a ground-truth box from this IoU …
	matchScore = 0.5 // … with this score and the same class
	targetIoU  = 0.3 // the attack lowers the scores of detections overlapping a box this much
	odChunk    = 64  // images attacked together
	odShown    = 3   // images the report shows
	scoreCol   = 4   // the score's column in a detection row
	classCol   = 5   // the class's column
	padScore   = 0.0 // rows with a score at most this are padding
)

// detection is one output row that is not padding.
type detection struct {
	box   ais.Box
	score float32
	row   int
}

// detections decodes an image's output rows.
func detections(out []float32) []detection {
	var ds []detection
	for r := 0; (r+1)*detCols <= len(out); r++ {
		d := out[r*detCols : (r+1)*detCols]
		if !(d[scoreCol] > padScore) {
			continue
		}
		ds = append(ds, detection{row: r, score: d[scoreCol], box: ais.Box{XMin: d[0], YMin: d[1], XMax: d[2], YMax: d[3], Label: int(math.Round(float64(d[classCol])))}})
	}
	return ds
}

// iou is the intersection over union of two boxes.
func iou(a, b ais.Box) float64 {
	iw := math.Min(float64(a.XMax), float64(b.XMax)) - math.Max(float64(a.XMin), float64(b.XMin))
	ih := math.Min(float64(a.YMax), float64(b.YMax)) - math.Max(float64(a.YMin), float64(b.YMin))
	if iw <= 0 || ih <= 0 {
		return 0
	}
	inter := iw * ih
	area := func(x ais.Box) float64 {
		return math.Max(0, float64(x.XMax-x.XMin)) * math.Max(0, float64(x.YMax-x.YMin))
	}
	return inter / (area(a) + area(b) - inter)
}

// detected says which ground-truth boxes a detection matches: IoU ≥ 0.5,
// the same class, score ≥ 0.5.
func detected(gts []ais.Box, dets []detection) []bool {
	out := make([]bool, len(gts))
	for g, gt := range gts {
		for _, d := range dets {
			if d.box.Label == gt.Label && d.score >= matchScore && iou(d.box, gt) >= matchIoU {
				out[g] = true
				break
			}
		}
	}
	return out
}

// stillDetected counts the boxes flagged in was that now are too.
func stillDetected(was, now []bool) int {
	n := 0
	for g := range was {
		if was[g] && now[g] {
			n++
		}
	}
	return n
}

func count(b []bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}

// scoreWeights puts weight 1 on the score of every detection of an
// image's output that overlaps one of its ground-truth boxes of the same
// class (IoU ≥ 0.3): the loss the attack lowers is the sum of those scores.
func scoreWeights(out []float32, gts []ais.Box) []float32 {
	w := make([]float32, len(out))
	for _, d := range detections(out) {
		for _, gt := range gts {
			if d.box.Label == gt.Label && iou(d.box, gt) >= targetIoU {
				w[d.row*detCols+scoreCol] = 1
				break
			}
		}
	}
	return w
}

// detectorAttack lowers the scores of the detections of the ground-truth
// objects: sign-gradient descent steps of 2.5·ε/steps (FGSM: one of ε) on
// the sum of those scores, projected onto the L∞ ball and [0, 1]. The
// detections to lower are re-chosen at each step.
func detectorAttack(ctx context.Context, v Victim, x0 attacks.Batch, gts [][]ais.Box, p jobs.AnalysisParams, eps float64) (attacks.Batch, error) {
	steps, alpha := p.Steps, pgdStep(eps, p.Steps)
	if p.Attack == "fgsm" {
		steps, alpha = 1, eps
	}
	s := x0.Clone()
	e, a := float32(eps), float32(alpha)
	for it := 0; it < steps; it++ {
		out, err := v.Predict(ctx, s)
		if err != nil {
			return attacks.Batch{}, err
		}
		w := make([][]float32, len(out))
		for i := range out {
			w[i] = scoreWeights(out[i], gts[i])
		}
		grad, err := v.OutputGradient(ctx, s, w)
		if err != nil {
			return attacks.Batch{}, err
		}
		for q, g := range grad.Data {
			s.Data[q] = clampf(x0.Data[q]+clampf(s.Data[q]-a*signf(g)-x0.Data[q], -e, e), 0, 1)
		}
	}
	return s, nil
}

// evadeDetections is EVA for object detectors (OD).
func evadeDetections(ctx context.Context, v Victim, ds *ais.Dataset, p jobs.AnalysisParams, env Env) (jobs.AnalysisResult, error) {
	var r jobs.AnalysisResult
	if len(ds.X.Shape) != 4 {
		return r, fmt.Errorf("%w: images must be [N, C, H, W], have %v", ais.ErrUserData, ds.X.Shape)
	}
	if len(ds.Boxes) != ds.N() {
		return r, fmt.Errorf("%w: ground-truth boxes for %d of %d images", ais.ErrUserData, len(ds.Boxes), ds.N())
	}
	if sh := v.OutputShape(); len(sh) != 2 || sh[1] != detCols {
		return r, fmt.Errorf("a detector must answer [D, 6] rows (x_min, y_min, x_max, y_max, score, class) per image, this model answers %v", sh)
	}
	env.progress(2, "predicting_clean")
	cleanOut, err := v.Predict(ctx, ds.X)
	if err != nil {
		return r, fmt.Errorf("predict the data: %w", err)
	}
	var cands []int
	gtTotal, gtFound, imgs, imgsAll := 0, 0, 0, 0
	found := make([][]bool, ds.N())
	for i := range cleanOut {
		found[i] = detected(ds.Boxes[i], detections(cleanOut[i]))
		k := count(found[i])
		gtTotal, gtFound = gtTotal+len(found[i]), gtFound+k
		if len(found[i]) > 0 {
			imgs++
			if k == len(found[i]) {
				imgsAll++
			}
		}
		if k > 0 {
			cands = append(cands, i)
		}
	}
	if len(cands) == 0 {
		return r, fmt.Errorf("%w: the model detects none of the %d ground-truth objects, so there is nothing to attack", ais.ErrUserData, gtTotal)
	}
	idx := pick(cands, p.Samples, p.Seed)
	n := len(idx)
	x0 := subset(ds.X, idx)
	gts := make([][]ais.Box, n)
	for j, i := range idx {
		gts[j] = ds.Boxes[i]
	}
	// left[j]: clean-detected objects of image j the counted adversarial
	// still lets through; fewer is a better adversarial.
	best, left := x0.Clone(), make([]int, n)
	fooled := make([]bool, n)
	gtAttacked := 0
	for j, i := range idx {
		left[j] = count(found[i])
		gtAttacked += len(gts[j])
	}
	type shownImage struct {
		j   int
		eps float64
		adv []float32
		out []float32
	}
	var pts []evaPoint
	var shown []shownImage
	for ei, eps := range p.Epsilons {
		env.progress(5+90*ei/len(p.Epsilons), fmt.Sprintf("attacking eps=%g", eps))
		for lo := 0; eps > 0 && lo < n; lo += odChunk {
			hi := min(lo+odChunk, n)
			s := x0.SampleSize()
			chunk := attacks.Batch{Data: x0.Data[lo*s : hi*s], Shape: append([]int{hi - lo}, x0.Shape[1:]...)}
			adv, err := detectorAttack(ctx, v, chunk, gts[lo:hi], p, eps)
			if err != nil {
				return r, fmt.Errorf("%s at ε=%g: %w", p.Attack, eps, err)
			}
			out, err := v.Predict(ctx, adv)
			if err != nil {
				return r, fmt.Errorf("predict the adversarial images at ε=%g: %w", eps, err)
			}
			for k := range out {
				j := lo + k
				if now := stillDetected(found[idx[j]], detected(gts[j], detections(out[k]))); now <= left[j] {
					copy(best.Sample(j), adv.Sample(k))
				}
			}
		}
		out, err := v.Predict(ctx, best)
		if err != nil {
			return r, fmt.Errorf("predict the adversarial images at ε=%g: %w", eps, err)
		}
		pt := evaPoint{eps: eps}
		linf, l2 := make([]float64, n), make([]float64, n)
		recalled := 0
		for j := range out {
			now := detected(gts[j], detections(out[j]))
			recalled += count(now)
			left[j] = stillDetected(found[idx[j]], now)
			was := fooled[j]
			fooled[j] = left[j] < count(found[idx[j]])
			linf[j] = float64(attacks.LinfNorm(x0.Sample(j), best.Sample(j)))
			l2[j] = float64(attacks.L2Norm(x0.Sample(j), best.Sample(j)))
			if fooled[j] && !was && len(shown) < odShown {
				shown = append(shown, shownImage{j: j, eps: eps, adv: append([]float32(nil), best.Sample(j)...), out: append([]float32(nil), out[j]...)})
			}
		}
		pt.success = attacks.SuccessRate(fooled)
		pt.robust = float64(recalled) / float64(gtAttacked)
		pt.linf, pt.l2 = meanOf(linf, fooled), meanOf(l2, fooled)
		pts = append(pts, pt)
	}
	r.Metrics = []jobs.Metric{
		{Name: "clean_accuracy", Value: float64(imgsAll) / float64(max(imgs, 1)), Unit: "ratio", Help: fmt.Sprintf("Share of the %d images with ground-truth objects on which the model detects every object before any attack (a detection matches a box at IoU ≥ %g, the same class and score ≥ %g).", imgs, matchIoU, matchScore)},
		{Name: "clean_recall", Value: float64(gtFound) / float64(max(gtTotal, 1)), Unit: "ratio", Help: fmt.Sprintf("Share of all %d ground-truth objects the model detects before any attack.", gtTotal)},
		{Name: "samples_attacked", Value: float64(n), Unit: "samples", Help: "Images attacked: drawn at random (seeded) among those with at least one object detected before the attack."},
	}
	evaCurves(&r, pts, "L∞ in the [0,1] pixel scale", "recall",
		"Share of the attacked images' ground-truth objects still detected under attack.", false)
	stepNote := fmt.Sprintf("PGD, %d steps of size 2.5·ε/%d from the clean image (no random start)", p.Steps, p.Steps)
	if p.Attack == "fgsm" {
		stepNote = "FGSM, one step of size ε"
	}
	r.Notes = append(r.Notes,
		fmt.Sprintf("Detection attack: %s, descending the sum of the scores of the detections that overlap a ground-truth box of the same class (IoU ≥ %g, re-chosen at each step), L∞, clipped to [0, 1]. An image counts as fooled when one of the objects detected before the attack is no longer matched (IoU ≥ %g, same class, score ≥ %g): missed or given another class.", stepNote, targetIoU, matchIoU, matchScore),
		"The attack runs anew at every ε. An image keeps the adversarial example of a smaller ε when the new one lets more of its objects through (a smaller ball lies inside a larger one), so success never decreases and recall never increases with ε. Both are re-checked by a fresh prediction.")
	env.progress(96, "rendering_samples")
	if env.Artifact == nil && len(shown) > 0 {
		r.Notes = append(r.Notes, "No sample images: this run has no artifact store.")
		shown = nil
	}
	f := max(1, min(8, 128/max(1, min(x0.Shape[2], x0.Shape[3]))))
	green, red, blue := color.NRGBA{0, 200, 0, 255}, color.NRGBA{230, 0, 0, 255}, color.NRGBA{40, 90, 255, 255}
	for k, s := range shown {
		i := idx[s.j]
		one := append([]int{1}, x0.Shape[1:]...)
		orig := attacks.Batch{Data: x0.Sample(s.j), Shape: one}
		adv := attacks.Batch{Data: s.adv, Shape: one}
		pert, err := attacks.RenderPerturbationPNG(enlarge(orig, f), enlarge(adv, f), 0)
		if err != nil {
			r.Notes = append(r.Notes, fmt.Sprintf("No sample images: %v.", err))
			break
		}
		origPNG, err := drawBoxes(orig, f, boxLayer{gts[s.j], blue}, boxLayer{confident(detections(cleanOut[i])), green})
		if err != nil {
			r.Notes = append(r.Notes, fmt.Sprintf("No sample images: %v.", err))
			break
		}
		advPNG, err := drawBoxes(adv, f, boxLayer{gts[s.j], blue}, boxLayer{confident(detections(s.out)), red})
		if err != nil {
			return r, err
		}
		images := map[string]string{}
		for what, b := range map[string][]byte{"original": origPNG, "adversarial": advPNG, "perturbation": pert} {
			name, err := env.Artifact(ctx, fmt.Sprintf("eva_sample_%d_%s.png", k+1, what), "image/png", b)
			if err != nil {
				return r, fmt.Errorf("store a sample image: %w", err)
			}
			images[what] = name
		}
		after := count(detected(gts[s.j], detections(s.out)))
		r.Samples = append(r.Samples, jobs.Sample{Images: images, Caption: fmt.Sprintf("%s: %d of %d objects detected before the attack, %d at ε = %g (blue: ground truth; green: detections before, red: after, score ≥ %g; perturbation amplified)",
			sampleName(ds, i), count(found[i]), len(gts[s.j]), after, s.eps, matchScore)})
	}
	env.progress(100, "completed")
	return r, nil
}

// confident keeps the detections scoring at least matchScore.
func confident(ds []detection) []ais.Box {
	var out []ais.Box
	for _, d := range ds {
		if d.score >= matchScore {
			out = append(out, d.box)
		}
	}
	return out
}
