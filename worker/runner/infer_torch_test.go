//go:build torch

package runner

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wardenlab/warden/internal/reftorch"

	"github.com/wardenlab/warden/modelspec"
)

// inferenceModels builds testdata/inference_models.py's models.
func inferenceModels(t *testing.T) string {
	t.Helper()
	reftorch.Need(t)
	dir := t.TempDir()
	if out, err := exec.Command(refPython, "testdata/inference_models.py", dir).CombinedOutput(); err != nil {
		t.Fatalf("build inference models: %v\n%s", err, out)
	}
	return dir
}

// validateIn validates a model file in a confined runner, registered with
// the given type and metadata.
func validateIn(t *testing.T, path, typ, metadata string) (*Process, *Validation, error) {
	t.Helper()
	limits := DefaultLimits()
	limits.AddressSpace = 4 << 30
	p, err := Start(context.Background(), Options{Sandbox: true, Inspect: true, Threads: 1, Limits: limits, Scratch: t.TempDir()},
		ModelFile{ID: "mdl_test", Type: typ, Metadata: json.RawMessage(metadata), Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	RequireLayers(t, p.Layers)
	d, err := p.Run(context.Background(), Request{Op: OpValidate}, Sink{})
	if err != nil {
		return p, nil, err
	}
	return p, d.Validate, nil
}

// TestInferInputShape: CV models registered without input_shape get it
// from their first layer's weights, confirmed by a trial forward pass (a
// TorchScript file named .pth included), and then predict at that shape.
func TestInferInputShape(t *testing.T) {
	dir := inferenceModels(t)
	for _, c := range []struct {
		file    string
		shape   []int
		classes int
	}{
		{"gray_conv.pth", []int{1, 28, 28}, 10}, // first conv [4,1,3,3]: 1 channel, 28 first
		{"rgb_conv.pt", []int{3, 32, 32}, 5},    // 224 fails the linear layer, 32 fits
		{"mlp.pt", []int{20}, 3},                // first linear [16,20]
	} {
		t.Run(c.file, func(t *testing.T) {
			p, v, err := validateIn(t, filepath.Join(dir, c.file), "CV", `{"trained_on":"x","framework":"pytorch"}`)
			if err != nil {
				t.Fatal(err)
			}
			cfg := modelspec.Config{InputShape: c.shape}
			if !reflect.DeepEqual(v.InputShape, c.shape) || v.NumClasses != c.classes || v.InputSize != cfg.SampleSize() {
				t.Fatalf("validation %+v, want shape %v and %d classes", v, c.shape, c.classes)
			}
			pr, err := predictOne(context.Background(), p, make([]float32, cfg.SampleSize()))
			if err != nil || len(pr.Probabilities) != c.classes {
				t.Fatalf("prediction at the inferred shape: %+v, %v", pr, err)
			}
		})
	}
}

// TestInferInputShapeFails: a model whose input no trial fits, and models
// whose forward contradicts their type or metadata, fail validation with
// a reason that says what to give.
func TestInferInputShapeFails(t *testing.T) {
	dir := inferenceModels(t)
	for _, c := range []struct{ file, typ, metadata, want string }{
		{"odd_size.pt", "CV", `{"framework":"pytorch"}`, "give metadata.input_shape"},
		{"text_length.pt", "CV", `{}`, "register it as NLP"},
		{"mlp.pt", "NLP", `{"trained_on":"x"}`, `metadata.tokenizer "bow"`},
		{"text_length.pt", "NLP", `{"vocabulary":["a"]}`, "List[str]"},
	} {
		t.Run(c.file+"/"+c.typ, func(t *testing.T) {
			_, v, err := validateIn(t, filepath.Join(dir, c.file), c.typ, c.metadata)
			msg, perm := IsPermanent(err)
			if !perm || !strings.Contains(msg, c.want) {
				t.Fatalf("validation %+v, %v; want a permanent failure naming %q", v, err, c.want)
			}
			t.Logf("refused: %s", msg)
		})
	}
	// Given the shape, the same model validates: the failure was the guess.
	if _, v, err := validateIn(t, filepath.Join(dir, "odd_size.pt"), "CV", `{"input_shape":[1,50,50]}`); err != nil || v.NumClasses != 2 {
		t.Fatalf("odd_size with its shape: %+v, %v", v, err)
	}
}

// TestTextModel: an NLP model whose forward takes List[str] needs no
// tokenizer: the runner detects the signature and feeds it raw strings, in
// validation, prediction and batches.
func TestTextModel(t *testing.T) {
	dir := inferenceModels(t)
	p, v, err := validateIn(t, filepath.Join(dir, "text_length.pt"), "NLP", `{"trained_on":"public_spam_dataset","labels":["short","long"]}`)
	if err != nil {
		t.Fatal(err)
	}
	if v.Tokenizer != modelspec.TokenizerText || v.NumClasses != 2 {
		t.Fatalf("validation %+v", v)
	}
	texts := []string{"one two three four five six seven", "hi there"}
	inputs := make([]json.RawMessage, len(texts))
	for i, s := range texts {
		inputs[i], _ = json.Marshal(s)
	}
	inputs = append(inputs, json.RawMessage(`42`)) // not a text: fails alone
	d, err := p.Run(context.Background(), Request{Op: OpBatch, Batch: &PredictBatch{ModelID: "mdl_test", Inputs: inputs}}, Sink{})
	if err != nil {
		t.Fatal(err)
	}
	items := d.Batch.Items
	if items[0].Result == nil || items[0].Result.Prediction != "long" || items[1].Result == nil || items[1].Result.Prediction != "short" {
		t.Fatalf("batch %+v", items)
	}
	if items[2].Error == "" {
		t.Errorf("a number was taken as text: %+v", items[2])
	}
	// A TorchScript model with metadata.tokenizer "text" validates too.
	if _, v, err := validateIn(t, filepath.Join(dir, "text_length.pt"), "NLP", `{"tokenizer":"text"}`); err != nil || v.Tokenizer != "text" {
		t.Fatalf("with tokenizer text: %+v, %v", v, err)
	}
}
