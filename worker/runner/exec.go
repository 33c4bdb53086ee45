package runner

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/attacks/wordnet"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/modelspec"
)

// maxArtifactSamples bounds how many samples of a batch get PNG artifacts.
const maxArtifactSamples = 16

// Env is what the computations need besides the model.
type Env struct {
	WordNetDir string // WordNet for TextFooler
	Threads    int    // libtorch intra-op threads, reported in attack metrics
}

// Execute runs one operation on m and returns its end. Failures come back
// as Done.Error (Permanent when retrying cannot help); a cancelled ctx
// returns ctx.Err().
func Execute(ctx context.Context, m Model, req Request, env Env, sink Sink) (*Done, error) {
	var (
		d   Done
		err error
	)
	switch req.Op {
	case OpValidate:
		d.Validate, err = validate(ctx, m)
	case OpBatch:
		if req.Batch == nil {
			return nil, Permanent("predict_batch request without inputs")
		}
		d.Batch, err = predictBatch(ctx, m, *req.Batch)
	case OpAttack:
		if req.Attack == nil {
			return nil, Permanent("attack request without input")
		}
		var r jobs.AttackResult
		r, err = attack(ctx, m, *req.Attack, env, sink)
		d.Attack = &r
	default:
		return nil, Permanent("unknown runner operation %q", req.Op)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return &d, nil
}

// ZeroSample is one all-zero input in the model's shape: what validation
// times and what an endpoint probe sends.
func ZeroSample(cfg modelspec.Config) attacks.Batch {
	return attacks.Batch{Data: make([]float32, cfg.SampleSize()), Shape: intShape(cfg.BatchShape(1))}
}

func intShape(s []int64) []int {
	out := make([]int, len(s))
	for i, d := range s {
		out[i] = int(d)
	}
	return out
}

// validate checks the labels against the model and times sample forwards.
func validate(ctx context.Context, m Model) (*Validation, error) {
	cfg := m.Config()
	if n := len(cfg.Labels); n > 0 && n != m.NumClasses() {
		return nil, Permanent("metadata.labels names %d classes but the model outputs %d", n, m.NumClasses())
	}
	x := ZeroSample(cfg)
	start := time.Now()
	const runs = 3
	for i := 0; i < runs; i++ {
		var err error
		if cfg.Type == modelspec.TypeNLP {
			_, err = m.PredictText(ctx, []string{"warden sample"})
		} else {
			_, err = m.Predict(ctx, x)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, Permanent("sample forward pass failed: %v", err)
		}
	}
	v := &Validation{NumClasses: m.NumClasses(), InputSize: cfg.SampleSize(), Device: m.Device(),
		ForwardLatencyMS: float64(time.Since(start).Microseconds()) / runs / 1000}
	if cfg.Type == modelspec.TypeNLP {
		v.Tokenizer = cfg.Tokenizer
	} else {
		v.InputShape = cfg.InputShape
	}
	return v, nil
}

// predictBatch runs the inputs that the model can take as one forward
// pass; each of the others gets its own error.
func predictBatch(ctx context.Context, m Model, in PredictBatch) (*BatchResult, error) {
	cfg := m.Config()
	out := &BatchResult{Items: make([]BatchItem, len(in.Inputs))}
	var (
		rows  []int // index in the batch of each encoded input
		texts []string
		data  []float32
	)
	for i, raw := range in.Inputs {
		if cfg.Type == modelspec.TypeNLP {
			var text string
			if err := json.Unmarshal(raw, &text); err != nil {
				out.Items[i].Error = "NLP models take a string"
				continue
			}
			texts = append(texts, text)
		} else {
			x, err := cfg.Encode(raw)
			if err != nil {
				out.Items[i].Error = err.Error()
				continue
			}
			data = append(data, x...)
		}
		rows = append(rows, i)
	}
	if len(rows) == 0 {
		return out, nil
	}
	start := time.Now()
	var (
		probs [][]float32
		err   error
	)
	if cfg.Type == modelspec.TypeNLP {
		probs, err = m.PredictText(ctx, texts)
	} else {
		probs, err = m.Predict(ctx, attacks.Batch{Data: data, Shape: intShape(cfg.BatchShape(len(rows)))})
	}
	out.ForwardMS = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		return nil, err
	}
	if len(probs) != len(rows) {
		return nil, Permanent("the model returned %d rows for a batch of %d", len(probs), len(rows))
	}
	for j, i := range rows {
		p := probs[j]
		k := modelspec.Argmax(p)
		all := make(map[string]float32, len(p))
		for c, v := range p {
			all[cfg.Label(c)] = v
		}
		out.Items[i].Result = &jobs.PredictResult{Prediction: cfg.Label(k), Confidence: p[k], ModelID: in.ModelID,
			InputHash: modelspec.InputHash(in.Inputs[i]), Probabilities: all, Device: m.Device()}
	}
	return out, nil
}

// processCPU is this process's user+system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// attack runs an adversarial attack and returns the adversarial examples,
// their predictions, norms and PNG artifacts (through sink).
func attack(ctx context.Context, m Model, in jobs.AttackInput, env Env, sink Sink) (jobs.AttackResult, error) {
	var none jobs.AttackResult
	// Keep the whole attack on one OS thread. Engine calls pin a thread
	// only for their own duration; between calls the goroutine may move,
	// and libgomp keeps one OpenMP worker pool per calling thread, so with
	// TORCH_THREADS > 1 the steps of one attack would hop between pools
	// (measured: 1.7x the wall time of PyTorch for FGSM at 2 threads, 1.07x
	// with this lock; bench/RESULTS.md). The attacks start no goroutines.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start, cpu0 := time.Now(), processCPU()
	progress := func(pct int, stage string) {
		if sink.Progress != nil {
			sink.Progress(5+pct*90/100, stage)
		}
	}
	var (
		res jobs.AttackResult
		err error
	)
	if in.AttackMethodID == attacks.IDTextFooler {
		res, err = attackText(ctx, m, in, env, progress)
	} else {
		res, err = attackImage(ctx, m, in, sink, progress)
	}
	if err != nil {
		if ctx.Err() != nil {
			return none, ctx.Err()
		}
		if _, ok := IsPermanent(err); ok {
			return none, err
		}
		return none, Permanent("attack failed: %v", err)
	}
	wall := time.Since(start)
	cpuPct := 100 * float64(processCPU()-cpu0) / float64(wall) / float64(runtime.NumCPU())
	res.Metrics = jobs.AttackMetrics{AttackTimeSeconds: wall.Seconds(), CPUUsageAvg: fmt.Sprintf("%.0f%%", cpuPct),
		Device: m.Device(), TorchThreads: env.Threads} // GPUUsageAvg stays null: no NVML binding
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

var wordNets sync.Map // dir → *wordNetOnce

type wordNetOnce struct {
	once sync.Once
	wn   *wordnet.WordNet
	err  error
}

// wordNet loads WordNet from dir once per process.
func wordNet(dir string) (*wordnet.WordNet, error) {
	v, _ := wordNets.LoadOrStore(dir, &wordNetOnce{})
	o := v.(*wordNetOnce)
	o.once.Do(func() { o.wn, o.err = wordnet.Open(dir) })
	if o.err != nil {
		return nil, Permanent("WordNet is not available (%v); install Debian's wordnet-base or set WARDEN_WORDNET_DIR", o.err)
	}
	return o.wn, nil
}

func attackText(ctx context.Context, m Model, in jobs.AttackInput, env Env, progress attacks.Progress) (jobs.AttackResult, error) {
	wn, err := wordNet(env.WordNetDir)
	if err != nil {
		return jobs.AttackResult{}, err
	}
	texts := make([]string, len(in.Inputs))
	for i, raw := range in.Inputs {
		if err := json.Unmarshal(raw, &texts[i]); err != nil {
			return jobs.AttackResult{}, Permanent("input %d is not a string", i)
		}
	}
	out, err := attacks.RunText(ctx, withTarget(in), m, wn, texts, in.TrueLabels, progress)
	if err != nil {
		return jobs.AttackResult{}, err
	}
	samples := make([]jobs.AttackSample, len(out))
	for i, t := range out {
		lev, queries := t.LevenshteinDistance, t.Queries
		samples[i] = jobs.AttackSample{
			InputFormat:   jobs.FormatText,
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

func attackImage(ctx context.Context, m Model, in jobs.AttackInput, sink Sink, progress attacks.Progress) (jobs.AttackResult, error) {
	var none jobs.AttackResult
	cfg := m.Config()
	size := cfg.SampleSize()
	data := make([]float32, 0, size*len(in.Inputs))
	for i, raw := range in.Inputs {
		x, err := cfg.Encode(raw)
		if err != nil {
			return none, Permanent("input %d: %v", i, err)
		}
		data = append(data, x...)
	}
	x := attacks.Batch{Data: data, Shape: intShape(cfg.BatchShape(len(in.Inputs)))}
	ain := attacks.Input{X: x}
	if len(in.TrueLabels) > 0 {
		ain.Labels = in.TrueLabels
	}
	out, err := attacks.Run(ctx, in.AttackMethodID, withTarget(in), m, ain, progress)
	if err != nil {
		return none, err
	}
	clean, err := m.Predict(ctx, x)
	if err != nil {
		return none, err
	}
	adv, err := m.Predict(ctx, out.Adversarial)
	if err != nil {
		return none, err
	}
	samples := make([]jobs.AttackSample, x.N())
	budget := jobs.MaxAttackInlineBytes
	for i := range samples {
		cp, ap := modelspec.Argmax(clean[i]), modelspec.Argmax(adv[i])
		linf, l2 := out.LinfNorms[i], out.L2Norms[i]
		s := jobs.AttackSample{
			OriginalPrediction: cfg.Label(cp), OriginalConfidence: clean[i][cp],
			AdversarialPrediction: cfg.Label(ap), AdversarialConfidence: adv[i][ap],
			AttackSuccess: out.Success[i], Perturbation: jobs.Perturbation{LinfNorm: &linf, L2Norm: &l2},
		}
		pngs := samplePNGs{cfg: cfg, x: x, adv: out.Adversarial, i: i}
		if s.InputFormat, s.OriginalInput, s.AdversarialExample, err = inlineSample(in.Inputs[i], &pngs, &budget); err != nil {
			return none, err
		}
		if len(cfg.InputShape) == 3 && i < maxArtifactSamples && sink.Artifact != nil {
			if s.Perturbation.Artifacts, err = pngs.store(ctx, sink); err != nil {
				return none, err
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

// samplePNGs renders one sample's original, adversarial and perturbation
// images once, for the inline result and the artifacts alike.
type samplePNGs struct {
	cfg      modelspec.Config
	x, adv   attacks.Batch
	i        int
	rendered map[string][]byte
}

// get renders (once) the PNG of what ("original", "adversarial",
// "perturbation") at the model's input resolution.
func (p *samplePNGs) get(what string) ([]byte, error) {
	if b, ok := p.rendered[what]; ok {
		return b, nil
	}
	var (
		b   []byte
		err error
	)
	switch what {
	case "original":
		b, err = attacks.RenderPNG(p.x, p.i, p.cfg.ClipMin, p.cfg.ClipMax)
	case "adversarial":
		b, err = attacks.RenderPNG(p.adv, p.i, p.cfg.ClipMin, p.cfg.ClipMax)
	default:
		b, err = attacks.RenderPerturbationPNG(p.x, p.adv, p.i)
	}
	if err != nil {
		return nil, err
	}
	if p.rendered == nil {
		p.rendered = map[string][]byte{}
	}
	p.rendered[what] = b
	return b, nil
}

// store sends the sample's three PNGs to the sink and names them.
func (p *samplePNGs) store(ctx context.Context, sink Sink) (map[string]string, error) {
	files := map[string]string{}
	for _, what := range []string{"original", "adversarial", "perturbation"} {
		png, err := p.get(what)
		if err != nil {
			return nil, err
		}
		if files[what], err = sink.Artifact(ctx, fmt.Sprintf("%d_%s.png", p.i, what), "image/png", png); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// inlineSample shows a sample's input and adversarial example in the form
// the client sent the input (raw): base64 PNGs at the model's input
// resolution for a base64 image, arrays for numbers. Both are left out
// once they would take the result past budget, which they use up.
func inlineSample(raw json.RawMessage, pngs *samplePNGs, budget *int) (format string, orig, adv *jobs.Value, err error) {
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '"' {
		format = jobs.FormatImage
		o, err := pngs.get("original")
		if err != nil {
			return "", nil, nil, err
		}
		a, err := pngs.get("adversarial")
		if err != nil {
			return "", nil, nil, err
		}
		if !spend(budget, base64.StdEncoding.EncodedLen(len(o))+base64.StdEncoding.EncodedLen(len(a))) {
			return format, nil, nil, nil
		}
		return format, jobs.TextValue(base64.StdEncoding.EncodeToString(o)), jobs.TextValue(base64.StdEncoding.EncodeToString(a)), nil
	}
	xs, as := pngs.x.Sample(pngs.i), pngs.adv.Sample(pngs.i)
	// JSON writes a float32 in at most 16 bytes ("-1.2345678e-38,").
	if !spend(budget, 16*(len(xs)+len(as))) {
		return jobs.FormatNumbers, nil, nil, nil
	}
	return jobs.FormatNumbers, jobs.NumbersValue(xs), jobs.NumbersValue(as), nil
}

// spend takes n from budget when it has that much left.
func spend(budget *int, n int) bool {
	if n > *budget {
		return false
	}
	*budget -= n
	return true
}
