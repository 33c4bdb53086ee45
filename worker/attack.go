package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/attacks/wordnet"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/modelspec"
	"github.com/wardenlab/warden/outbound"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// maxArtifactSamples bounds how many samples of a batch get PNG artifacts.
const maxArtifactSamples = 16

// validateModel fetches a registered model's file, loads it as TorchScript,
// runs a sample forward pass and records its schemas and metrics; the
// model becomes active, or failed with the reason.
func (w *Worker) validateModel(ctx context.Context, r *Run) (Output, error) {
	var in jobs.ModelJobInput
	if err := json.Unmarshal([]byte(r.Job.Input), &in); err != nil {
		return Output{}, Permanent("invalid input: %v", err)
	}
	m, err := w.DB.GetModel(ctx, "", in.ModelID)
	if err != nil {
		return Output{}, Permanent("model %s no longer exists", in.ModelID)
	}
	fail := func(err error) (Output, error) {
		var perm *permanentError
		if !errors.As(err, &perm) {
			return Output{}, err // transient: retry
		}
		if uerr := w.DB.ModelValidated(context.WithoutCancel(ctx), m.ID, map[string]any{"status": records.ModelFailed, "error": perm.msg}); uerr != nil {
			return Output{}, uerr
		}
		return Output{}, err
	}
	if m.BlobKey == "" && m.EndpointURL == "" {
		r.Progress(ctx, 10, "fetching_model_file")
		key, err := w.fetchModelFile(ctx, m)
		if err != nil {
			return fail(err)
		}
		if err := w.DB.ModelValidated(ctx, m.ID, map[string]any{"blob_key": key}); err != nil {
			return Output{}, err
		}
		m.BlobKey = key
	}
	r.Progress(ctx, 40, "loading_module")
	clf, err := w.openModel(ctx, m)
	if err != nil {
		return fail(err)
	}
	if n := len(clf.Config().Labels); n > 0 && n != clf.NumClasses() {
		return fail(Permanent("metadata.labels names %d classes but the model outputs %d", n, clf.NumClasses()))
	}
	r.Progress(ctx, 70, "sample_forward")
	x := attacks.Batch{Data: make([]float32, clf.Config().SampleSize()), Shape: intShape(clf.Config().BatchShape(1))}
	start := time.Now()
	const runs = 3
	for i := 0; i < runs; i++ {
		var err error
		if clf.Config().Type == modelspec.TypeNLP {
			_, err = clf.PredictText(ctx, []string{"warden sample"})
		} else {
			_, err = clf.Predict(ctx, x)
		}
		if err != nil {
			return fail(Permanent("sample forward pass failed: %v", err))
		}
	}
	latency := float64(time.Since(start).Microseconds()) / runs / 1000
	metrics := map[string]any{}
	var md struct {
		Metrics map[string]float64 `json:"metrics"`
	}
	if json.Unmarshal([]byte(m.Metadata), &md) == nil {
		for k, v := range md.Metrics {
			metrics[k] = v // reported by the model's owner (e.g. held-out accuracy)
		}
	}
	metrics["num_classes"] = clf.NumClasses()
	metrics["input_size"] = clf.Config().SampleSize()
	metrics["forward_latency_ms"] = latency
	in1, out1 := schemas(clf)
	enc := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	if err := w.DB.ModelValidated(ctx, m.ID, map[string]any{
		"status": records.ModelActive, "error": "", "input_schema": enc(in1), "output_schema": enc(out1),
		"metrics": enc(metrics), "device": w.device.String(),
	}); err != nil {
		return Output{}, err
	}
	return Output{Label: records.ModelActive, Data: map[string]any{"model_id": m.ID, "status": records.ModelActive, "metrics": metrics, "device": w.device.String()},
		Event: map[string]any{"model_id": m.ID}}, nil
}

// fetchModelFile downloads model_file_url into the blob store under the
// SSRF rules and the model size cap.
func (w *Worker) fetchModelFile(ctx context.Context, m records.Model) (string, error) {
	u, err := url.Parse(m.SourceURL)
	if err != nil {
		return "", Permanent("model_file_url is not a URL")
	}
	if u.Scheme == "s3" {
		return "", Permanent("model_file_url uses s3://, but this deployment has no S3-compatible blob store configured; upload the file or use https://")
	}
	key := storage.ModelBlobKey(m.ID)
	f, err := os.CreateTemp("", "warden-model-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, _, err := w.Outbound.Download(ctx, m.SourceURL, f, w.Config.MaxModelBytes); err != nil {
		if errors.Is(err, outbound.ErrTooLarge) {
			return "", Permanent("model file exceeds %d bytes", w.Config.MaxModelBytes)
		}
		if ctx.Err() != nil {
			return "", err
		}
		return "", Permanent("download of model_file_url failed: %v", err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		return "", err
	}
	if _, err := w.Blobs.Put(ctx, key, f); err != nil {
		return "", err
	}
	return key, nil
}

// schemas describes the model's request and response for GET /v1/models/{id}.
func schemas(c model) (in, out map[string]any) {
	labels := c.Labels()
	cfg := c.Config()
	out = map[string]any{"type": "object", "properties": map[string]any{
		"prediction": map[string]any{"type": "string", "enum": labels, "description": "Predicted class label"},
		"confidence": map[string]any{"type": "number", "format": "float", "description": "Softmax probability of the prediction"},
	}}
	n := cfg.SampleSize()
	if cfg.Type == modelspec.TypeNLP {
		desc := "Text; tokenised into a bag of words over the model's vocabulary"
		if cfg.Tokenizer == modelspec.TokenizerText {
			desc = "Text, sent as it is to the model's endpoint"
		}
		return map[string]any{"type": "object", "properties": map[string]any{
			"input_data": map[string]any{"type": "string", "description": desc},
		}, "required": []string{"input_data"}}, out
	}
	props := map[string]any{
		"input_data": map[string]any{"type": "array", "items": map[string]any{"type": "number", "minimum": cfg.ClipMin, "maximum": cfg.ClipMax},
			"minItems": n, "maxItems": n, "description": fmt.Sprintf("Raw input of shape %v, row-major", cfg.InputShape)},
	}
	if len(cfg.InputShape) == 3 {
		props["image"] = map[string]any{"type": "string", "format": "byte",
			"description": fmt.Sprintf("Base64 PNG, JPEG or GIF; resized to %dx%d, %d channel(s), scaled to [%g, %g]", cfg.InputShape[2], cfg.InputShape[1], cfg.InputShape[0], cfg.ClipMin, cfg.ClipMax)}
	}
	return map[string]any{"type": "object", "properties": props, "oneOf": []any{
		map[string]any{"required": []string{"image"}}, map[string]any{"required": []string{"input_data"}}}}, out
}

func intShape(s []int64) []int {
	out := make([]int, len(s))
	for i, d := range s {
		out[i] = int(d)
	}
	return out
}

// activeModel loads a job's model, which must be active.
func (w *Worker) activeModel(ctx context.Context, id string) (model, records.Model, error) {
	m, err := w.DB.GetModel(ctx, "", id)
	if err != nil {
		return nil, m, Permanent("model %s no longer exists", id)
	}
	if m.Status != records.ModelActive {
		return nil, m, Permanent("model %s is %s, not active", id, m.Status)
	}
	clf, err := w.openModel(ctx, m)
	return clf, m, err
}

// InputHash identifies an input in prediction results (first 16 hex
// digits of its SHA-256).
func InputHash(raw []byte) string {
	h := sha256.Sum256(raw)
	return hex.EncodeToString(h[:8])
}

// predict runs one input through a model (queue critical; the API waits).
func (w *Worker) predict(ctx context.Context, r *Run) (Output, error) {
	var in jobs.PredictInput
	if err := json.Unmarshal([]byte(r.Job.Input), &in); err != nil {
		return Output{}, Permanent("invalid input: %v", err)
	}
	clf, _, err := w.activeModel(ctx, in.ModelID)
	if err != nil {
		return Output{}, err
	}
	var probs [][]float32
	if clf.Config().Type == modelspec.TypeNLP {
		var text string
		if err := json.Unmarshal(in.Input, &text); err != nil {
			return Output{}, Permanent("NLP models take a string")
		}
		probs, err = clf.PredictText(ctx, []string{text})
	} else {
		x, eerr := clf.Config().Encode(in.Input)
		if eerr != nil {
			return Output{}, Permanent("%v", eerr)
		}
		probs, err = clf.Predict(ctx, attacks.Batch{Data: x, Shape: intShape(clf.Config().BatchShape(1))})
	}
	if err != nil {
		return Output{}, err
	}
	k := modelspec.Argmax(probs[0])
	all := map[string]float32{}
	for i, p := range probs[0] {
		all[clf.Config().Label(i)] = p
	}
	return Output{Label: clf.Config().Label(k), Data: map[string]any{
		"prediction": clf.Config().Label(k), "confidence": probs[0][k], "model_id": in.ModelID,
		"input_hash": InputHash(in.Input), "probabilities": all, "device": w.device.String(),
	}}, nil
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
func (w *Worker) attack(ctx context.Context, r *Run) (Output, error) {
	var in jobs.AttackInput
	if err := json.Unmarshal([]byte(r.Job.Input), &in); err != nil {
		return Output{}, Permanent("invalid input: %v", err)
	}
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
		return Output{}, err
	}
	start, cpu0 := time.Now(), processCPU()
	progress := func(pct int, stage string) { r.Progress(ctx, 5+pct*90/100, stage) }
	var doc map[string]any
	if in.AttackMethodID == attacks.IDTextFooler {
		doc, err = w.attackText(ctx, clf, in, progress)
	} else {
		doc, err = w.attackImage(ctx, r.Job.ID, clf, in, progress)
	}
	if err != nil {
		if ctx.Err() != nil {
			return Output{}, ctx.Err()
		}
		var perm *permanentError
		if errors.As(err, &perm) {
			return Output{}, err
		}
		return Output{}, Permanent("attack failed: %v", err)
	}
	wall := time.Since(start)
	cpuPct := 100 * float64(processCPU()-cpu0) / float64(wall) / float64(runtime.NumCPU())
	doc["metrics"] = map[string]any{
		"attack_time_seconds": wall.Seconds(),
		"cpu_usage_avg":       fmt.Sprintf("%.0f%%", cpuPct),
		"gpu_usage_avg":       nil, // not measured: no NVML binding; null as the spec allows where no GPU
		"device":              w.device.String(),
		"torch_threads":       w.threads,
	}
	doc["model_id"], doc["attack_method_id"] = in.ModelID, in.AttackMethodID
	success := doc["attack_success"].(bool)
	label := "failed_to_fool"
	if success {
		label = "fooled"
	}
	return Output{Label: label, Data: doc, Event: map[string]any{
		"attack_id": r.Job.ID, "model_id": in.ModelID, "attack_method_id": in.AttackMethodID, "attack_success": success,
		"original_input_preview": preview(doc["original_input"]), "adversarial_example_preview": preview(doc["adversarial_example"]),
	}}, nil
}

func preview(v any) any {
	if s, ok := v.(string); ok {
		if len(s) > 200 {
			return s[:200] + "…"
		}
		return s
	}
	return nil
}

func (w *Worker) attackText(ctx context.Context, clf model, in jobs.AttackInput, progress attacks.Progress) (map[string]any, error) {
	wn, err := w.wordNet()
	if err != nil {
		return nil, err
	}
	texts := make([]string, len(in.Inputs))
	for i, raw := range in.Inputs {
		if err := json.Unmarshal(raw, &texts[i]); err != nil {
			return nil, Permanent("input %d is not a string", i)
		}
	}
	params := in.Params
	if in.TargetLabel != nil {
		params["target_label"] = *in.TargetLabel
	}
	var labels []int
	if len(in.TrueLabels) > 0 {
		labels = in.TrueLabels
	}
	res, err := attacks.RunText(ctx, params, clf, wn, texts, labels, progress)
	if err != nil {
		return nil, err
	}
	samples := make([]map[string]any, len(res))
	fooled := 0
	for i, t := range res {
		samples[i] = map[string]any{
			"original_input": t.OriginalText, "original_prediction": t.OriginalPrediction, "original_confidence": t.OriginalConfidence,
			"adversarial_example": t.AdversarialText, "adversarial_prediction": t.AdversarialPrediction, "adversarial_confidence": t.AdversarialConfidence,
			"attack_success":       t.Success,
			"perturbation_details": map[string]any{"words_changed": t.WordsChanged, "levenshtein_distance": t.LevenshteinDistance},
			"queries":              t.Queries,
		}
		if t.Success {
			fooled++
		}
	}
	return flatten(samples, fooled), nil
}

// flatten shapes per-sample results as spec 002's result document: the
// first sample's fields at the top level, the whole batch under
// batch_results with its success rate.
func flatten(samples []map[string]any, fooled int) map[string]any {
	doc := map[string]any{}
	for k, v := range samples[0] {
		doc[k] = v
	}
	doc["attack_success"] = samples[0]["attack_success"]
	doc["batch_size"] = len(samples)
	doc["batch_success_rate"] = float64(fooled) / float64(len(samples))
	if len(samples) > 1 {
		doc["batch_results"] = samples
	}
	return doc
}

func (w *Worker) attackImage(ctx context.Context, jobID string, clf model, in jobs.AttackInput, progress attacks.Progress) (map[string]any, error) {
	size := clf.Config().SampleSize()
	data := make([]float32, 0, size*len(in.Inputs))
	for i, raw := range in.Inputs {
		x, err := clf.Config().Encode(raw)
		if err != nil {
			return nil, Permanent("input %d: %v", i, err)
		}
		data = append(data, x...)
	}
	x := attacks.Batch{Data: data, Shape: intShape(clf.Config().BatchShape(len(in.Inputs)))}
	params := in.Params
	if in.TargetLabel != nil {
		params["target_label"] = *in.TargetLabel
	}
	ain := attacks.Input{X: x}
	if len(in.TrueLabels) > 0 {
		ain.Labels = in.TrueLabels
	}
	res, err := attacks.Run(ctx, in.AttackMethodID, params, clf, ain, progress)
	if err != nil {
		return nil, err
	}
	clean, err := clf.Predict(ctx, x)
	if err != nil {
		return nil, err
	}
	adv, err := clf.Predict(ctx, res.Adversarial)
	if err != nil {
		return nil, err
	}
	samples := make([]map[string]any, x.N())
	fooled := 0
	var blobs []records.Blob
	lo, hi := clf.Config().ClipMin, clf.Config().ClipMax
	for i := range samples {
		cp, ap := modelspec.Argmax(clean[i]), modelspec.Argmax(adv[i])
		pd := map[string]any{"linf_norm": res.LinfNorms[i], "l2_norm": res.L2Norms[i]}
		s := map[string]any{
			"original_prediction": clf.Config().Label(cp), "original_confidence": clean[i][cp],
			"adversarial_prediction": clf.Config().Label(ap), "adversarial_confidence": adv[i][ap],
			"attack_success": res.Success[i], "perturbation_details": pd,
		}
		if size <= 4096 {
			s["original_input"], s["adversarial_example"] = x.Sample(i), res.Adversarial.Sample(i)
		}
		if len(clf.Config().InputShape) == 3 && i < maxArtifactSamples {
			for name, render := range map[string]func() ([]byte, error){
				"original":     func() ([]byte, error) { return attacks.RenderPNG(x, i, lo, hi) },
				"adversarial":  func() ([]byte, error) { return attacks.RenderPNG(res.Adversarial, i, lo, hi) },
				"perturbation": func() ([]byte, error) { return attacks.RenderPerturbationPNG(x, res.Adversarial, i) },
			} {
				png, err := render()
				if err != nil {
					return nil, err
				}
				file := fmt.Sprintf("%d_%s.png", i, name)
				key := "jobs/" + jobID + "/artifacts/" + file
				n, err := w.Blobs.Put(ctx, key, bytes.NewReader(png))
				if err != nil {
					return nil, err
				}
				blobs = append(blobs, records.Blob{Key: key, ContentType: "image/png", Size: n})
				pd[name+"_png"] = "/v1/attacks/" + jobID + "/artifacts/" + file
			}
		}
		if res.Success[i] {
			fooled++
		}
		samples[i] = s
	}
	if len(blobs) > 0 {
		if err := w.DB.AddJobBlobs(ctx, jobID, blobs); err != nil {
			return nil, err
		}
	}
	doc := flatten(samples, fooled)
	doc["queries"], doc["gradient_evaluations"] = res.Queries, res.Gradients
	doc["perturbation_summary"] = map[string]any{"linf": attacks.Stats(res.LinfNorms, res.Success), "l2": attacks.Stats(res.L2Norms, res.Success)}
	return doc, nil
}
