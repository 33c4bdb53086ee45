// Package analysis runs AISpectra's vulnerability analyses (spec 000) on a
// model inside the runner: model extraction (MEA) trains a surrogate from
// the victim's answers, evasion (EVA) measures a robustness curve, model
// poisoning reverse-engineers backdoor triggers (Neural Cleanse), data
// poisoning clusters the model's penultimate activations per class. It sees
// the victim only through Victim, the same calls that serve predictions
// and attacks, and trains its own networks through worker/torch.
package analysis

import (
	"context"
	"fmt"
	"time"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/jobs"
)

// Victim is the model under analysis, as the runner serves it.
type Victim interface {
	// Predict answers a batch with one flat output row per sample: class
	// logits (IC, TC, TS), forecasts (TSF), per-pixel class logits as
	// [K, H, W] flattened (IS), detections as [D, 6] flattened (OD).
	Predict(ctx context.Context, x attacks.Batch) ([][]float32, error)
	// PredictText answers texts (NLP) with class logits.
	PredictText(ctx context.Context, texts []string) ([][]float32, error)
	// LossGradient is the cross-entropy gradient w.r.t. the input (and
	// the logits), for classifiers.
	LossGradient(ctx context.Context, x attacks.Batch, labels []int) (attacks.Batch, []float32, error)
	// OutputGradient is the vector-Jacobian product: the gradient w.r.t.
	// the input of sum(output · weights), weights one row per sample in
	// Predict's layout (OD attacks build their loss this way).
	OutputGradient(ctx context.Context, x attacks.Batch, weights [][]float32) (attacks.Batch, error)
	// Features returns, per sample, the input of the model's last linear
	// layer (its penultimate activations, flattened) and which layer that
	// was, in words. Models without a linear layer fail.
	Features(ctx context.Context, x attacks.Batch) ([][]float32, string, error)
	// OutputShape is one sample's output shape (e.g. [10], [K, H, W]).
	OutputShape() []int
	Device() string
}

// Env is what an analysis may use besides the victim and the data.
type Env struct {
	// Scratch is a directory the analysis may write (a surrogate before
	// it is sent as an artifact).
	Scratch  string
	Progress func(pct int, stage string)
	// Artifact stores a file of the report and returns its name.
	Artifact func(ctx context.Context, name, contentType string, data []byte) (string, error)
	// References are the clean reference models model poisoning compares
	// the victim with, loaded like it.
	References []Victim
}

// Run runs the analysis in.AnalysisType on the victim and the dataset.
func Run(ctx context.Context, v Victim, ds *ais.Dataset, in jobs.AnalysisInput, env Env) (jobs.AnalysisResult, error) {
	p := in.Params.ApplyDefaults()
	start := time.Now()
	var (
		r   jobs.AnalysisResult
		err error
	)
	switch in.AnalysisType {
	case ais.AnalysisMEA:
		r, err = extract(ctx, v, ds, p, env)
	case ais.AnalysisEVA:
		r, err = evade(ctx, v, ds, p, env)
	case ais.AnalysisModelPoisoning:
		r, err = poisoning(ctx, v, ds, p, env)
	case ais.AnalysisDataPoisoning:
		r, err = dpoison(ctx, v, ds, p, env)
	case ais.AnalysisDefence:
		r, err = defend(ctx, v, ds, in, p, env)
	default:
		return r, fmt.Errorf("analysis %q is not implemented", in.AnalysisType)
	}
	if err != nil {
		return r, err
	}
	r.AISModelID, r.TaskType, r.AnalysisType, r.Params = in.AISModelID, in.TaskType, in.AnalysisType, p
	r.Device, r.Seconds = v.Device(), time.Since(start).Seconds()
	return r, nil
}
