//go:build torch

package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/wardenlab/warden/internal/reftorch"

	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/attacks/wordnet"
	"github.com/wardenlab/warden/modelspec"
	"github.com/wardenlab/warden/worker/demo"
	"github.com/wardenlab/warden/worker/torch"
)

// These tests attack the demo models through the runner's torchClassifier,
// the adapter every attack job uses.

const refPython = reftorch.Python

var (
	demoOnce sync.Once
	demoDir  string
	demoSet  *demo.Set
	demoErr  error
)

func TestMain(m *testing.M) {
	n := torch.ThreadsFromEnv()
	fmt.Fprintf(os.Stderr, "worker: libtorch %s, %d intra-op threads\n", torch.TorchVersion(), n)
	code := m.Run()
	if demoDir != "" {
		os.RemoveAll(demoDir)
	}
	os.Exit(code)
}

func wordnetDir() string {
	if d := os.Getenv("WARDEN_WORDNET_DIR"); d != "" {
		return d
	}
	return wordnet.DefaultDir
}

// demoModels trains the demo models once per test binary
// (WARDEN_DEMO_CACHE=dir reuses a cache, e.g. for benchmarks).
func demoModels(t testing.TB) *demo.Set {
	t.Helper()
	demoOnce.Do(func() {
		dir := os.Getenv("WARDEN_DEMO_CACHE")
		if dir == "" {
			dir, demoErr = os.MkdirTemp("", "warden-worker-demo-")
			demoDir = dir
		}
		if demoErr == nil {
			demoSet, demoErr = demo.LoadOrTrain(dir, wordnetDir())
		}
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	return demoSet
}

// newTorchClassifier loads a trained demo model as a runner does (the
// operator inspection included: the demo models must pass it).
func newTorchClassifier(t testing.TB, m *demo.Trained) *torchClassifier {
	t.Helper()
	cfg, bad := modelspec.ParseConfig(m.Type, m.Metadata)
	if bad != nil {
		t.Fatal(bad)
	}
	clf, _, err := Load(m.ModelPath, cfg, torch.CPU, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { clf.Close() })
	return clf
}

// heldOutDigits returns the first n held-out digits (all for n <= 0).
func heldOutDigits(t testing.TB, n int) attacks.Input {
	t.Helper()
	_, test, err := demo.Digits()
	if err != nil {
		t.Fatal(err)
	}
	if n <= 0 || n > test.N() {
		n = test.N()
	}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = int(test.Y[i])
	}
	return attacks.Input{X: attacks.Batch{Data: append([]float32(nil), test.X[:n*64]...), Shape: []int{n, 1, 8, 8}}, Labels: labels}
}

func accuracy(preds, labels []int) float64 {
	right := 0
	for i := range preds {
		if preds[i] == labels[i] {
			right++
		}
	}
	return float64(right) / float64(len(preds))
}

// refInput is what testdata/attack_reference.py reads.
type refInput struct {
	X       []float32      `json:"x"`
	Shape   []int          `json:"shape"`
	Labels  []int          `json:"labels"`
	Clip    [2]float32     `json:"clip"`
	Threads int            `json:"threads"`
	FGSM    map[string]any `json:"fgsm"`
	PGD     map[string]any `json:"pgd"`
	Reps    int            `json:"reps,omitempty"`
	Warmup  int            `json:"warmup,omitempty"`
}

type refOutput struct {
	FGSM        []float32 `json:"fgsm"`
	PGD         []float32 `json:"pgd"`
	FGSMSeconds []float64 `json:"fgsm_seconds"`
	PGDSeconds  []float64 `json:"pgd_seconds"`
	FGSMCPU     []float64 `json:"fgsm_cpu_seconds"`
	PGDCPU      []float64 `json:"pgd_cpu_seconds"`
	Version     string    `json:"torch_version"`
	Threads     int       `json:"threads"`
}

func runReference(t testing.TB, mode, model string, in refInput) refOutput {
	t.Helper()
	dir := t.TempDir()
	b, _ := json.Marshal(in)
	inPath, outPath := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
	if err := os.WriteFile(inPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(refPython, filepath.Join("testdata", "attack_reference.py"), mode, model, inPath, outPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("attack_reference.py %s: %v\n%s", mode, err, out)
	}
	var r refOutput
	b, err := os.ReadFile(outPath)
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// Warden's FGSM and PGD (attacks package through torchClassifier) against
// the same steps written in PyTorch on the same TorchScript module.
func TestFGSMAndPGDMatchPyTorch(t *testing.T) {
	reftorch.Need(t)
	set := demoModels(t)
	clf := newTorchClassifier(t, set.Digits)
	in := heldOutDigits(t, 32)
	ctx := context.Background()
	const eps, pgdEps, alpha, steps = 0.1, 0.3, 0.03, 10
	fp := attacks.DefaultFGSMParams()
	fp.Epsilon = eps
	fr, err := attacks.FGSM(ctx, clf, in, fp, nil)
	if err != nil {
		t.Fatal(err)
	}
	pp := attacks.DefaultPGDParams()
	pp.Eps, pp.EpsStep, pp.MaxIter = pgdEps, alpha, steps
	pr, err := attacks.PGD(ctx, clf, in, pp, nil)
	if err != nil {
		t.Fatal(err)
	}
	ref := runReference(t, "attack", set.Digits.ModelPath, refInput{
		X: in.X.Data, Shape: in.X.Shape, Labels: in.Labels, Clip: [2]float32{0, 1}, Threads: torch.Threads(),
		FGSM: map[string]any{"eps": eps}, PGD: map[string]any{"eps": pgdEps, "alpha": alpha, "steps": steps},
	})
	df, dp := maxAbsDiff(fr.Adversarial.Data, ref.FGSM), maxAbsDiff(pr.Adversarial.Data, ref.PGD)
	t.Logf("python torch %s (%d threads), %d digits: FGSM ε=%g max |Δ| = %g; PGD ε=%g α=%g %d steps max |Δ| = %g; success FGSM %.2f PGD %.2f",
		ref.Version, ref.Threads, in.X.N(), eps, df, pgdEps, alpha, steps, dp, fr.SuccessRate, pr.SuccessRate)
	if df > 1e-5 || dp > 1e-5 {
		t.Fatalf("Warden and PyTorch disagree: FGSM %g, PGD %g (tolerance 1e-5)", df, dp)
	}
	if fr.SuccessRate == 0 || pr.SuccessRate == 0 {
		t.Fatal("the attacks changed no prediction: the comparison would be vacuous")
	}
}

// PGD with ε = 0.3 takes the demo CNN from ≥ 90 % to ≤ 10 % accuracy on
// the 200 held-out digits.
func TestPGDBreaksDemoDigits(t *testing.T) {
	clf := newTorchClassifier(t, demoModels(t).Digits)
	in := heldOutDigits(t, 0)
	p := attacks.DefaultPGDParams()
	p.Eps, p.EpsStep, p.MaxIter = 0.3, 0.02, 40
	r, err := attacks.PGD(context.Background(), clf, in, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	clean, adv := accuracy(r.CleanPredictions, in.Labels), accuracy(r.AdversarialPredictions, in.Labels)
	t.Logf("PGD L∞ ε=%g α=%g %d steps on %d held-out digits: accuracy %.3f → %.3f", p.Eps, p.EpsStep, p.MaxIter, in.X.N(), clean, adv)
	if clean < 0.9 || adv > 0.1 {
		t.Fatalf("accuracy %.3f → %.3f; want ≥ 0.90 → ≤ 0.10", clean, adv)
	}
}

// correctDigits keeps the first n held-out digits the model classifies
// correctly.
func correctDigits(t *testing.T, clf *torchClassifier, n int) attacks.Input {
	all := heldOutDigits(t, 0)
	probs, err := clf.Predict(context.Background(), all.X)
	if err != nil {
		t.Fatal(err)
	}
	out := attacks.Input{X: attacks.Batch{Shape: []int{0, 1, 8, 8}}}
	for i := range probs {
		if modelspec.Argmax(probs[i]) == all.Labels[i] && len(out.Labels) < n {
			out.X.Data = append(out.X.Data, all.X.Sample(i)...)
			out.Labels = append(out.Labels, all.Labels[i])
		}
	}
	out.X.Shape[0] = len(out.Labels)
	return out
}

func median(xs []float32) float32 {
	s := append([]float32(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func TestBlackBoxAttacksOnDemoDigits(t *testing.T) {
	clf := newTorchClassifier(t, demoModels(t).Digits)
	in := correctDigits(t, clf, 20)
	ctx := context.Background()

	hp := attacks.DefaultHopSkipJumpParams()
	hp.MaxIter, hp.MaxEval, hp.InitEval, hp.MaxQueries, hp.Seed = 20, 200, 50, 2000, 1
	hr, err := attacks.HopSkipJump(ctx, clf, in, hp, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("HopSkipJump (max_iter %d, max_eval %d, max_queries %d/sample) on %d correctly classified digits: success %.2f, median L2 %.3f, %d queries",
		hp.MaxIter, hp.MaxEval, hp.MaxQueries, in.X.N(), hr.SuccessRate, median(hr.L2Norms), hr.Queries)

	sp := attacks.DefaultSquareParams()
	sp.Eps, sp.MaxQueries, sp.PInit, sp.Seed = 0.3, 1000, 0.1, 1
	sr, err := attacks.Square(ctx, clf, in, sp, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Square (ε=%g, p_init %g, max_queries %d/sample) on %d correctly classified digits: success %.2f, %d queries",
		sp.Eps, sp.PInit, sp.MaxQueries, in.X.N(), sr.SuccessRate, sr.Queries)
	if hr.SuccessRate < 0.8 || sr.SuccessRate < 0.8 {
		t.Fatalf("success HopSkipJump %.2f, Square %.2f; want ≥ 0.80 each", hr.SuccessRate, sr.SuccessRate)
	}
	// Queries also count the clean and the final prediction of each sample.
	if hr.Queries > int64((hp.MaxQueries+2)*in.X.N()) || sr.Queries > int64((sp.MaxQueries+2)*in.X.N()) {
		t.Fatalf("query budgets exceeded: HopSkipJump %d, Square %d", hr.Queries, sr.Queries)
	}
}

func TestTextFoolerOnDemoSentences(t *testing.T) {
	set := demoModels(t)
	clf := newTorchClassifier(t, set.Text)
	wn, err := wordnet.Open(wordnetDir())
	if err != nil {
		t.Skip("WordNet not installed: ", err)
	}
	p := attacks.DefaultTextFoolerParams()
	p.NumWordsToChange, p.MaxCandidates = 5, 20
	res, err := attacks.TextFooler(context.Background(), clf, wn, set.Text.Examples, set.Text.ExampleLabels, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	fooled, correct := 0, 0
	for i, r := range res {
		if r.OriginalLabel != set.Text.ExampleLabels[i] {
			continue // only correctly classified sentences count
		}
		correct++
		if r.Success {
			fooled++
			t.Logf("  %s → %s (%d words): %q → %q", r.OriginalPrediction, r.AdversarialPrediction, len(r.WordsChanged), r.OriginalText, r.AdversarialText)
		}
	}
	if correct == 0 {
		t.Fatal("no demo sentence is classified correctly")
	}
	rate := float64(fooled) / float64(correct)
	t.Logf("TextFooler (num_words_to_change %d, max_candidates %d): %d of %d demo sentences flipped (%.2f)", p.NumWordsToChange, p.MaxCandidates, fooled, correct, rate)
	if rate < 0.5 {
		t.Fatalf("flip rate %.2f < 0.50", rate)
	}
}
