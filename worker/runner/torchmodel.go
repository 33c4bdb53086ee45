package runner

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/modelspec"
	"github.com/wardenlab/warden/worker/torch"
)

// predictChunk bounds the batch sent through one forward pass.
const predictChunk = 256

// torchClassifier adapts a loaded TorchScript module to the attack
// interfaces: Predict for black-box attacks, LossGradient for white-box
// ones, PredictText for TextFooler. Calls on one module are serialised.
type torchClassifier struct {
	mod     *torch.Module
	cfg     modelspec.Config
	classes int   // values in one sample's output (class logits: the classes)
	out     []int // one sample's output shape ([classes] for classifiers)
	mu      *sync.Mutex
}

var (
	_ attacks.GradientClassifier = (*torchClassifier)(nil)
	_ Model                      = (*torchClassifier)(nil)
)

func (c *torchClassifier) NumClasses() int { return c.classes }

// Config says how the model is fed.
func (c *torchClassifier) Config() modelspec.Config { return c.cfg }

// Labels names the classes.
func (c *torchClassifier) Labels() []string { return c.cfg.LabelNames(c.classes) }

// Device is where the module runs ("cpu", "cuda:0").
func (c *torchClassifier) Device() string { return c.mod.Device().String() }

// logits runs the module on x in chunks.
func (c *torchClassifier) logits(ctx context.Context, x attacks.Batch) ([][]float32, error) {
	n, size := x.N(), x.SampleSize()
	out := make([][]float32, 0, n)
	for lo := 0; lo < n; lo += predictChunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+predictChunk, n)
		shape := int64Shape(x.Shape)
		shape[0] = int64(hi - lo)
		c.mu.Lock()
		y, err := c.mod.Forward(&torch.Tensor{Data: x.Data[lo*size : hi*size], Shape: shape})
		c.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("forward: %w", err)
		}
		rows, err := c.rows(y, hi-lo)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

// Predict returns class probabilities.
func (c *torchClassifier) Predict(ctx context.Context, x attacks.Batch) ([][]float32, error) {
	ls, err := c.logits(ctx, x)
	if err != nil {
		return nil, err
	}
	for i := range ls {
		ls[i] = modelspec.Softmax(ls[i])
	}
	return ls, nil
}

// LossGradient returns each sample's cross-entropy gradient w.r.t. its
// input. libtorch differentiates the batch mean, so each sample's gradient
// is that times the batch size (samples do not interact in eval mode).
func (c *torchClassifier) LossGradient(ctx context.Context, x attacks.Batch, labels []int) (attacks.Batch, []float32, error) {
	if err := ctx.Err(); err != nil {
		return attacks.Batch{}, nil, err
	}
	n := x.N()
	shape := int64Shape(x.Shape)
	ls := make([]int64, n)
	for i, l := range labels {
		ls[i] = int64(l)
	}
	c.mu.Lock()
	_, grad, logits, err := torch.InputGradient(c.mod, x.Data, shape, ls)
	c.mu.Unlock()
	if err != nil {
		return attacks.Batch{}, nil, fmt.Errorf("input gradient: %w", err)
	}
	for i := range grad {
		grad[i] *= float32(n)
	}
	loss := make([]float32, n)
	for i := 0; i < n; i++ {
		row := logits[i*c.classes : (i+1)*c.classes]
		m := row[0]
		for _, v := range row {
			m = max(m, v)
		}
		var s float64
		for _, v := range row {
			s += math.Exp(float64(v - m))
		}
		loss[i] = float32(float64(m)+math.Log(s)) - row[labels[i]]
	}
	return attacks.Batch{Data: grad, Shape: x.Shape}, loss, nil
}

// takesText reports whether forward takes the texts themselves (List[str]).
func (c *torchClassifier) takesText() bool {
	return c.cfg.Type == modelspec.TypeNLP && c.cfg.Tokenizer == modelspec.TokenizerText
}

// textLogits runs a forward that takes List[str] on texts in chunks.
func (c *torchClassifier) textLogits(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, 0, len(texts))
	for lo := 0; lo < len(texts); lo += predictChunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+predictChunk, len(texts))
		c.mu.Lock()
		y, err := c.mod.ForwardStrings(texts[lo:hi])
		c.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("forward: %w", err)
		}
		rows, err := c.rows(y, hi-lo)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			out = append(out, modelspec.Softmax(r))
		}
	}
	return out, nil
}

// PredictText predicts texts: given as they are to a forward that takes
// List[str], else encoded as bags of words.
func (c *torchClassifier) PredictText(ctx context.Context, texts []string) ([][]float32, error) {
	if c.takesText() {
		return c.textLogits(ctx, texts)
	}
	size := c.cfg.SampleSize()
	data := make([]float32, 0, len(texts)*size)
	for _, t := range texts {
		data = append(data, c.cfg.EncodeText(t)...)
	}
	return c.Predict(ctx, attacks.Batch{Data: data, Shape: []int{len(texts), size}})
}

func int64Shape(s []int) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		out[i] = int64(d)
	}
	return out
}

// rows splits a forward pass's [n, classes] output (or [n, out...]) into
// its rows.
func (c *torchClassifier) rows(y *torch.Tensor, n int) ([][]float32, error) {
	if len(y.Shape) != len(c.out)+1 || int(y.Shape[0]) != n || len(y.Data) != n*c.classes {
		return nil, fmt.Errorf("model output shape %v, want %v", y.Shape, append([]int{n}, c.out...))
	}
	out := make([][]float32, n)
	for i := range out {
		out[i] = y.Data[i*c.classes : (i+1)*c.classes]
	}
	return out, nil
}
