package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/attacks/wordnet"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/modelspec"
	"github.com/wardenlab/warden/records"
)

// maxArtifactSamples bounds how many samples of a batch get PNG artifacts.
const maxArtifactSamples = 16

func intShape(s []int64) []int {
	out := make([]int, len(s))
	for i, d := range s {
		out[i] = int(d)
	}
	return out
}

// activeModel loads a job's model, which must be active.
func (w *Worker) activeModel(ctx context.Context, id string) (model, records.Model, error) {
	m, err := w.DB.ModelByID(ctx, id)
	if err != nil {
		return nil, m, Permanent("model %s no longer exists", id)
	}
	if m.Status != records.ModelActive {
		return nil, m, Permanent("model %s is %s, not active", id, m.Status)
	}
	clf, err := w.openModel(ctx, m)
	return clf, m, err
}

// wordNet loads WordNet once per worker.
func (w *Worker) wordNet() (*wordnet.WordNet, error) {
	w.wnOnce.Do(func() { w.wn, w.wnErr = wordnet.Open(w.Config.WordNetDir) })
	if w.wnErr != nil {
		return nil, Permanent("WordNet is not available (%v); install Debian's wordnet-base or set WARDEN_WORDNET_DIR", w.wnErr)
	}
	return w.wn, nil
}

type wordnetState struct {
	wnOnce sync.Once
	wn     *wordnet.WordNet
	wnErr  error
}

// processCPU is this process's user+system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// attack runs an adversarial attack against a registered model and stores
// the adversarial examples, their predictions, norms and PNG artifacts.
func (w *Worker) attack(ctx context.Context, r *Run, in jobs.AttackInput) (jobs.AttackResult, error) {
	var none jobs.AttackResult
	// Keep the whole attack on one OS thread. Engine calls pin a thread
	// only for their own duration; between calls the goroutine may move,
	// and libgomp keeps one OpenMP worker pool per calling thread, so with
	// TORCH_THREADS > 1 the steps of one attack would hop between pools
	// (measured: 1.7x the wall time of PyTorch for FGSM at 2 threads, 1.07x
	// with this lock; bench/RESULTS.md). The attacks start no goroutines.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r.Progress(ctx, 2, "loading_model")
	clf, _, err := w.activeModel(ctx, in.ModelID)
	if err != nil {
		return none, err
	}
	start, cpu0 := time.Now(), processCPU()
	progress := func(pct int, stage string) { r.Progress(ctx, 5+pct*90/100, stage) }
	var res jobs.AttackResult
	if in.AttackMethodID == attacks.IDTextFooler {
		res, err = w.attackText(ctx, clf, in, progress)
	} else {
		res, err = w.attackImage(ctx, r, clf, in, progress)
	}
	if err != nil {
		if ctx.Err() != nil {
			return none, ctx.Err()
		}
		var perm *permanentError
		if errors.As(err, &perm) {
			return none, err
		}
		return none, Permanent("attack failed: %v", err)
	}
	wall := time.Since(start)
	cpuPct := 100 * float64(processCPU()-cpu0) / float64(wall) / float64(runtime.NumCPU())
	res.Metrics = jobs.AttackMetrics{AttackTimeSeconds: wall.Seconds(), CPUUsageAvg: fmt.Sprintf("%.0f%%", cpuPct),
		Device: w.device.String(), TorchThreads: w.threads} // GPUUsageAvg stays null: no NVML binding
	res.ModelID, res.AttackMethodID = in.ModelID, in.AttackMethodID
	return res, nil
}

// withTarget returns the attack parameters with the target label added.
func withTarget(in jobs.AttackInput) map[string]any {
	params := in.Params
	if params == nil {
		params = map[string]any{}
	}
	if in.TargetLabel != nil {
		params["target_label"] = *in.TargetLabel
	}
	return params
}

func (w *Worker) attackText(ctx context.Context, clf model, in jobs.AttackInput, progress attacks.Progress) (jobs.AttackResult, error) {
	wn, err := w.wordNet()
	if err != nil {
		return jobs.AttackResult{}, err
	}
	texts := make([]string, len(in.Inputs))
	for i, raw := range in.Inputs {
		if err := json.Unmarshal(raw, &texts[i]); err != nil {
			return jobs.AttackResult{}, Permanent("input %d is not a string", i)
		}
	}
	out, err := attacks.RunText(ctx, withTarget(in), clf, wn, texts, in.TrueLabels, progress)
	if err != nil {
		return jobs.AttackResult{}, err
	}
	samples := make([]jobs.AttackSample, len(out))
	for i, t := range out {
		lev, queries := t.LevenshteinDistance, t.Queries
		samples[i] = jobs.AttackSample{
			OriginalInput: jobs.TextValue(t.OriginalText), OriginalPrediction: t.OriginalPrediction, OriginalConfidence: t.OriginalConfidence,
			AdversarialExample: jobs.TextValue(t.AdversarialText), AdversarialPrediction: t.AdversarialPrediction, AdversarialConfidence: t.AdversarialConfidence,
			AttackSuccess: t.Success,
			Perturbation:  jobs.Perturbation{WordsChanged: t.WordsChanged, LevenshteinDistance: &lev},
			Queries:       &queries,
		}
	}
	res := batchResult(samples)
	res.Queries = *samples[0].Queries
	return res, nil
}

// batchResult shapes per-sample results as spec 002's result document: the
// first sample's fields at the top level, the whole batch under
// BatchResults with its success rate.
func batchResult(samples []jobs.AttackSample) jobs.AttackResult {
	fooled := 0
	for _, s := range samples {
		if s.AttackSuccess {
			fooled++
		}
	}
	res := jobs.AttackResult{AttackSample: samples[0], BatchSize: len(samples), BatchSuccessRate: float64(fooled) / float64(len(samples))}
	if len(samples) > 1 {
		res.BatchResults = samples
	}
	return res
}

// maxInlineValues bounds the inputs whose values a result carries inline.
const maxInlineValues = 4096

func (w *Worker) attackImage(ctx context.Context, r *Run, clf model, in jobs.AttackInput, progress attacks.Progress) (jobs.AttackResult, error) {
	var none jobs.AttackResult
	size := clf.Config().SampleSize()
	data := make([]float32, 0, size*len(in.Inputs))
	for i, raw := range in.Inputs {
		x, err := clf.Config().Encode(raw)
		if err != nil {
			return none, Permanent("input %d: %v", i, err)
		}
		data = append(data, x...)
	}
	x := attacks.Batch{Data: data, Shape: intShape(clf.Config().BatchShape(len(in.Inputs)))}
	ain := attacks.Input{X: x}
	if len(in.TrueLabels) > 0 {
		ain.Labels = in.TrueLabels
	}
	out, err := attacks.Run(ctx, in.AttackMethodID, withTarget(in), clf, ain, progress)
	if err != nil {
		return none, err
	}
	clean, err := clf.Predict(ctx, x)
	if err != nil {
		return none, err
	}
	adv, err := clf.Predict(ctx, out.Adversarial)
	if err != nil {
		return none, err
	}
	samples := make([]jobs.AttackSample, x.N())
	lo, hi := clf.Config().ClipMin, clf.Config().ClipMax
	for i := range samples {
		cp, ap := modelspec.Argmax(clean[i]), modelspec.Argmax(adv[i])
		linf, l2 := out.LinfNorms[i], out.L2Norms[i]
		s := jobs.AttackSample{
			OriginalPrediction: clf.Config().Label(cp), OriginalConfidence: clean[i][cp],
			AdversarialPrediction: clf.Config().Label(ap), AdversarialConfidence: adv[i][ap],
			AttackSuccess: out.Success[i], Perturbation: jobs.Perturbation{LinfNorm: &linf, L2Norm: &l2},
		}
		if size <= maxInlineValues {
			s.OriginalInput, s.AdversarialExample = jobs.NumbersValue(x.Sample(i)), jobs.NumbersValue(out.Adversarial.Sample(i))
		}
		if len(clf.Config().InputShape) == 3 && i < maxArtifactSamples {
			s.Perturbation.Artifacts = map[string]string{}
			for _, a := range []struct {
				name   string
				render func() ([]byte, error)
			}{
				{"original", func() ([]byte, error) { return attacks.RenderPNG(x, i, lo, hi) }},
				{"adversarial", func() ([]byte, error) { return attacks.RenderPNG(out.Adversarial, i, lo, hi) }},
				{"perturbation", func() ([]byte, error) { return attacks.RenderPerturbationPNG(x, out.Adversarial, i) }},
			} {
				png, err := a.render()
				if err != nil {
					return none, err
				}
				file, err := r.Artifact(ctx, fmt.Sprintf("%d_%s.png", i, a.name), "image/png", png)
				if err != nil {
					return none, err
				}
				s.Perturbation.Artifacts[a.name] = file
			}
		}
		samples[i] = s
	}
	res := batchResult(samples)
	grads := out.Gradients
	res.Queries, res.GradientEvaluations = out.Queries, &grads
	res.PerturbationSummary = &jobs.NormSummary{Linf: attacks.Stats(out.LinfNorms, out.Success), L2: attacks.Stats(out.L2Norms, out.Success)}
	return res, nil
}
