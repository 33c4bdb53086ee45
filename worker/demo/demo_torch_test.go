//go:build torch

package demo

import (
	"os"
	"sync"
	"testing"

	"github.com/wardenlab/warden/worker/torch"
)

// The demo models are trained once per test binary.
var (
	setOnce sync.Once
	setDir  string
	set     *Set
	setErr  error
)

func trained(t *testing.T) *Set {
	t.Helper()
	setOnce.Do(func() {
		setDir, setErr = os.MkdirTemp("", "warden-demo-test-")
		if setErr == nil {
			set, setErr = LoadOrTrain(setDir, wordnetDir())
		}
	})
	if setErr != nil {
		t.Fatal(setErr)
	}
	return set
}

func wordnetDir() string {
	if d := os.Getenv("WARDEN_WORDNET_DIR"); d != "" {
		return d
	}
	return "/usr/share/wordnet"
}

func TestMain(m *testing.M) {
	torch.ThreadsFromEnv()
	code := m.Run()
	if setDir != "" {
		os.RemoveAll(setDir)
	}
	os.Exit(code)
}

func TestTrainDigits(t *testing.T) {
	d := trained(t).Digits
	t.Logf("digits CNN %v: held-out accuracy %.4f, macro F1 %.4f, trained in %.1fs", DigitsConfig.Hidden, d.Scores.Accuracy, d.Scores.F1, d.TrainSeconds)
	if d.Scores.Accuracy < 0.9 {
		t.Fatalf("held-out accuracy %.4f < 0.90", d.Scores.Accuracy)
	}
}

func TestTrainText(t *testing.T) {
	d := trained(t).Text
	t.Logf("text MLP: held-out accuracy %.4f, macro F1 %.4f, trained in %.1fs, %d examples", d.Scores.Accuracy, d.Scores.F1, d.TrainSeconds, len(d.Examples))
	for i, e := range d.Examples {
		t.Logf("  %-8s %s", Topics[d.ExampleLabels[i]].Label, e)
	}
	if d.Scores.Accuracy < 0.8 {
		t.Fatalf("held-out accuracy %.4f < 0.80", d.Scores.Accuracy)
	}
	if len(d.Examples) != numExamples {
		t.Fatalf("%d examples, want %d", len(d.Examples), numExamples)
	}
}
