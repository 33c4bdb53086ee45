package demo

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/wardenlab/warden/modelspec"
	"github.com/wardenlab/warden/worker/torch"
)

// Names of the demo models (unique per org; Register skips a name the org
// already has).
const (
	DigitsName = "demo-digits-cnn"
	TextName   = "demo-wordnet-topics"
)

// Trained is a demo model ready to register: a TorchScript file and the
// metadata to register it with.
type Trained struct {
	Name        string          `json:"name"`
	Type        string          `json:"type"` // modelspec.TypeCV or TypeNLP
	Version     string          `json:"version"`
	Description string          `json:"description"`
	ModelPath   string          `json:"model_path"` // .pt
	Metadata    json.RawMessage `json:"metadata"`
	Scores      Scores          `json:"scores"` // held out
	// Examples are held-out texts the text model classifies correctly,
	// for demos and tests (NLP only), with their labels.
	Examples      []string `json:"examples,omitempty"`
	ExampleLabels []int    `json:"example_labels,omitempty"`
	TrainSeconds  float64  `json:"train_seconds"`
}

// DigitsConfig and TextConfig are the training recipes.
var (
	DigitsConfig = torch.TrainConfig{Hidden: []int64{16, 32}, Epochs: 25, BatchSize: 32, LR: 3e-3, Seed: 1}
	TextConfig   = torch.TrainConfig{Hidden: []int64{64}, Epochs: 8, BatchSize: 64, LR: 2e-3, Seed: 1}
)

// numExamples is how many demo sentences TrainText keeps.
const numExamples = 20

// Predict runs a TorchScript classifier on a dataset and returns the argmax
// class of each sample.
func Predict(path string, d *Dataset) ([]int, error) {
	m, err := torch.LoadModule(path, torch.CPU)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	shape := append([]int64{int64(d.N())}, d.Shape...)
	out, err := m.Forward(&torch.Tensor{Data: d.X, Shape: shape})
	if err != nil {
		return nil, err
	}
	if len(out.Shape) != 2 || int(out.Shape[0]) != d.N() {
		return nil, fmt.Errorf("demo: model output shape %v", out.Shape)
	}
	k := int(out.Shape[1])
	pred := make([]int, d.N())
	for i := range pred {
		pred[i] = modelspec.Argmax(out.Data[i*k : (i+1)*k])
	}
	return pred, nil
}

// TrainDigits trains the digits CNN into dir/digits.pt and scores it on
// the 200 held-out digits.
func TrainDigits(dir string) (*Trained, error) {
	if !torch.Available() {
		return nil, torch.ErrUnavailable
	}
	train, test, err := Digits()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	start := time.Now()
	res, err := torch.TrainCNN(train.X, train.Y, train.Shape, 10, DigitsConfig, filepath.Join(dir, "digits.pt"))
	if err != nil {
		return nil, fmt.Errorf("train digits CNN: %w", err)
	}
	secs := time.Since(start).Seconds()
	os.Remove(res.WeightsPath) // the .pt is all Warden needs
	pred, err := Predict(res.ModelPath, test)
	if err != nil {
		return nil, err
	}
	sc := Score(pred, test.Y, 10)
	md, _ := json.Marshal(map[string]any{
		"input_shape": []int{1, 8, 8}, "labels": test.Labels, "input_range": []float32{0, 1},
		"metrics": sc, "dataset": "scikit-learn digits (8x8, 1,797 images; BSD-3-Clause); 200 held out",
	})
	return &Trained{
		Name: DigitsName, Type: modelspec.TypeCV, Version: "1",
		Description: fmt.Sprintf("Demo: CNN on 8x8 handwritten digits (conv %v, Adam, %d epochs), trained by Warden with libtorch", DigitsConfig.Hidden, DigitsConfig.Epochs),
		ModelPath:   res.ModelPath, Metadata: md, Scores: sc, TrainSeconds: secs,
	}, nil
}

// TrainText trains the WordNet topic MLP into dir/topics.pt and scores it
// on the held-out glosses.
func TrainText(wordnetDir, dir string) (*Trained, error) {
	if !torch.Available() {
		return nil, torch.ErrUnavailable
	}
	train, test, err := WordNetGlosses(wordnetDir)
	if err != nil {
		return nil, err
	}
	vocab := Vocabulary(train.Texts, vocabSize)
	mdIn, _ := json.Marshal(map[string]any{"tokenizer": "bow", "vocabulary": vocab, "labels": train.Labels})
	cfg, bad := modelspec.ParseConfig(modelspec.TypeNLP, mdIn)
	if bad != nil {
		return nil, fmt.Errorf("demo: text metadata: %v", bad)
	}
	encodeTexts(train, cfg)
	encodeTexts(test, cfg)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	start := time.Now()
	res, err := torch.TrainMLP(train.X, train.Y, train.Shape, int64(len(Topics)), TextConfig, filepath.Join(dir, "topics.pt"))
	if err != nil {
		return nil, fmt.Errorf("train text MLP: %w", err)
	}
	secs := time.Since(start).Seconds()
	os.Remove(res.WeightsPath)
	pred, err := Predict(res.ModelPath, test)
	if err != nil {
		return nil, err
	}
	sc := Score(pred, test.Y, len(Topics))
	// Demo sentences: short held-out glosses classified correctly, the
	// first numExamples/len(Topics) of each topic in held-out order.
	var ex []string
	var exl []int
	per := make([]int, len(Topics))
	for i := 0; i < test.N() && len(ex) < numExamples; i++ {
		n, y := len(modelspec.Tokens(test.Texts[i])), int(test.Y[i])
		if pred[i] == y && n >= 6 && n <= 16 && per[y] < numExamples/len(Topics) {
			per[y]++
			ex = append(ex, test.Texts[i])
			exl = append(exl, int(test.Y[i]))
		}
	}
	if len(ex) == 0 {
		return nil, errors.New("demo: the text model classifies no held-out gloss correctly")
	}
	md, _ := json.Marshal(map[string]any{
		"tokenizer": "bow", "vocabulary": vocab, "labels": train.Labels, "metrics": sc,
		"dataset":  fmt.Sprintf("WordNet 3.0 noun glosses of noun.animal, noun.food, noun.artifact, noun.person (%d train, %d held out)", train.N(), test.N()),
		"examples": ex,
	})
	return &Trained{
		Name: TextName, Type: modelspec.TypeNLP, Version: "1",
		Description: fmt.Sprintf("Demo: topic of a WordNet noun definition (animal, food, artifact, person); bag of %d words, MLP %v, trained by Warden with libtorch", len(vocab), TextConfig.Hidden),
		ModelPath:   res.ModelPath, Metadata: md, Scores: sc, Examples: ex, ExampleLabels: exl, TrainSeconds: secs,
	}, nil
}
