package runner

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/modelspec"
	"github.com/wardenlab/warden/worker/analysis"
	"github.com/wardenlab/warden/worker/torch"
)

// AnalysisRequest is an AISpectra analysis for a runner: the job's input
// and where the runner may read the registration's data and label zips
// and, for model poisoning, the clean reference models.
type AnalysisRequest struct {
	Input      jobs.AnalysisInput `json:"input"`
	Data       string             `json:"data"`                 // path of the data zip
	Label      string             `json:"label"`                // path of the label zip
	References []string           `json:"references,omitempty"` // paths of the clean reference models (TorchScript files)
}

// victim serves a loaded module to the analyses: class probabilities for
// classifiers, the raw output for the other tasks.
type victim struct {
	*torchClassifier
	task string
}

var _ analysis.Victim = victim{}

// classifies reports whether the task's model returns class logits.
func classifies(task string) bool {
	switch task {
	case ais.TaskIC, ais.TaskTC, ais.TaskTS, ais.TaskNLP:
		return true
	}
	return false
}

// Predict answers a batch: probabilities for classifiers, else the
// model's output as it is. Both go through the forward pass predictions use.
func (v victim) Predict(ctx context.Context, x attacks.Batch) ([][]float32, error) {
	if classifies(v.task) {
		return v.torchClassifier.Predict(ctx, x)
	}
	return v.logits(ctx, x)
}

// OutputShape is one sample's output shape.
func (v victim) OutputShape() []int { return append([]int(nil), v.out...) }

// Features runs the model up to its last linear layer on x in chunks and
// returns that layer's input per sample (worker/torch: Module.Features).
func (v victim) Features(ctx context.Context, x attacks.Batch) ([][]float32, string, error) {
	n, size := x.N(), x.SampleSize()
	out := make([][]float32, 0, n)
	var layer string
	for lo := 0; lo < n; lo += predictChunk {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		hi := min(lo+predictChunk, n)
		shape := int64Shape(x.Shape)
		shape[0] = int64(hi - lo)
		v.mu.Lock()
		f, desc, err := v.mod.Features(&torch.Tensor{Data: x.Data[lo*size : hi*size], Shape: shape})
		v.mu.Unlock()
		if err != nil {
			return nil, "", fmt.Errorf("penultimate activations: %w", err)
		}
		if len(f.Shape) != 2 || int(f.Shape[0]) != hi-lo {
			return nil, "", fmt.Errorf("penultimate activations of shape %v for %d samples", f.Shape, hi-lo)
		}
		d := int(f.Shape[1])
		for i := 0; i < hi-lo; i++ {
			out = append(out, f.Data[i*d:(i+1)*d])
		}
		layer = desc
	}
	return out, layer, nil
}

// OutputGradient is the gradient w.r.t. x of sum(output · weights).
func (v victim) OutputGradient(ctx context.Context, x attacks.Batch, weights [][]float32) (attacks.Batch, error) {
	if err := ctx.Err(); err != nil {
		return attacks.Batch{}, err
	}
	n := x.N()
	if len(weights) != n {
		return attacks.Batch{}, fmt.Errorf("%d weight rows for %d samples", len(weights), n)
	}
	w := make([]float32, 0, n*v.classes)
	for _, row := range weights {
		if len(row) != v.classes {
			return attacks.Batch{}, fmt.Errorf("a weight row of %d values for an output of %d", len(row), v.classes)
		}
		w = append(w, row...)
	}
	wShape := append([]int64{int64(n)}, int64Shape(v.out)...)
	v.mu.Lock()
	grad, _, err := torch.OutputGradient(v.mod, x.Data, int64Shape(x.Shape), w, wShape)
	v.mu.Unlock()
	if err != nil {
		return attacks.Batch{}, fmt.Errorf("output gradient: %w", err)
	}
	return attacks.Batch{Data: grad, Shape: x.Shape}, nil
}

// victimConfig is how a registration's model is fed, from its data: images
// as [C, H, W] in [0, 1], tables and windows as [F] within the data's
// range, texts as they are.
func victimConfig(ds *ais.Dataset) modelspec.Config {
	cfg := modelspec.Config{Type: modelspec.TypeCV, ClipMin: 0, ClipMax: 1, AnyOutput: !classifies(ds.Task)}
	switch ds.Task {
	case ais.TaskNLP:
		cfg.Type, cfg.Tokenizer = modelspec.TypeNLP, modelspec.TokenizerText
	case ais.TaskTC, ais.TaskTS, ais.TaskTSF:
		cfg.InputShape = ds.X.Shape[1:]
		cfg.ClipMin, cfg.ClipMax = dataRange(ds.X.Data)
	default:
		cfg.InputShape = ds.X.Shape[1:]
	}
	if classifies(ds.Task) {
		cfg.Labels = ds.Classes
	}
	return cfg
}

func dataRange(xs []float32) (lo, hi float32) {
	if len(xs) == 0 {
		return 0, 1
	}
	lo, hi = xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	if hi <= lo {
		hi = lo + 1
	}
	return lo, hi
}

// LoadVictim loads the model file at path, inspected, to be analysed on
// ds, in this process: what a runner does for OpAnalyze, for tests and
// benchmarks. close frees the module.
func LoadVictim(path string, ds *ais.Dataset, dev torch.Device) (v analysis.Victim, close func() error, err error) {
	clf, _, err := Load(path, victimConfig(ds), dev, true)
	if err != nil {
		return nil, nil, err
	}
	return victim{torchClassifier: clf, task: ds.Task}, clf.Close, nil
}

// analyze decodes the registration's files, loads the model for them and
// runs the analysis. Data that cannot be decoded and models that do not
// fit the data fail permanently.
func (s *server) analyze(ctx context.Context, req *AnalysisRequest, sink Sink) *Done {
	if req == nil {
		return failure(Permanent("analyze request without input"))
	}
	if s.cfg.Threads > 0 {
		torch.SetThreads(s.cfg.Threads)
	}
	sink.Progress(1, "decoding_data")
	ds, err := decodeDataset(ctx, req)
	if err != nil {
		return failure(err)
	}
	sink.Progress(3, "loading_model")
	dev := torch.CPU
	if s.cfg.Device != "" && s.cfg.Device != "cpu" {
		dev, _ = torch.SelectDevice()
	}
	v, closeModel, err := LoadVictim(s.cfg.Model.Path, ds, dev)
	if err != nil {
		return failure(err)
	}
	defer closeModel()
	var refs []analysis.Victim
	for j, path := range req.References {
		ref, closeRef, err := LoadVictim(path, ds, dev)
		if err != nil {
			if msg, perm := IsPermanent(err); perm {
				err = Permanent("clean reference model %d: %s", j+1, msg)
			}
			return failure(err)
		}
		defer closeRef()
		refs = append(refs, ref)
	}
	res, err := analysis.Run(ctx, v, ds, req.Input, analysis.Env{Scratch: s.cfg.Paths.Scratch,
		Progress: sink.Progress, Artifact: sink.Artifact, References: refs})
	if err != nil {
		// An analysis is deterministic (its data, its seed): what failed
		// once fails again, so it is not retried. Running out of memory
		// is named by failure.
		if _, perm := IsPermanent(err); !perm {
			err = Permanent("%v", err)
		}
		return failure(err)
	}
	return &Done{Analysis: &res}
}

// decodeDataset reads the data and label zips the worker made readable.
func decodeDataset(ctx context.Context, req *AnalysisRequest) (*ais.Dataset, error) {
	data, err := os.Open(req.Data)
	if err != nil {
		return nil, fmt.Errorf("open the data zip: %w", err)
	}
	defer data.Close()
	label, err := os.Open(req.Label)
	if err != nil {
		return nil, fmt.Errorf("open the label zip: %w", err)
	}
	defer label.Close()
	dst, err := data.Stat()
	if err != nil {
		return nil, err
	}
	lst, err := label.Stat()
	if err != nil {
		return nil, err
	}
	ds, err := ais.Decode(ctx, req.Input.TaskType, data, label, dst.Size(), lst.Size(), ais.DefaultDecodeLimits)
	if err != nil {
		if ctx.Err() != nil || !errors.Is(err, ais.ErrUserData) {
			return nil, err
		}
		return nil, Permanent("the uploaded files cannot be analysed: %v", err)
	}
	return ds, nil
}
