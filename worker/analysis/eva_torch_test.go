//go:build torch

package analysis_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenlab/warden/internal/reftorch"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/worker/analysis"
	"github.com/wardenlab/warden/worker/demo"
	"github.com/wardenlab/warden/worker/runner"
	"github.com/wardenlab/warden/worker/torch"
)

const refPython = reftorch.Python

var (
	digitsOnce sync.Once
	digitsDir  string
	digitsPath string
	digitsErr  error
)

func TestMain(m *testing.M) {
	n := torch.ThreadsFromEnv()
	fmt.Fprintf(os.Stderr, "analysis: libtorch %s, %d intra-op threads\n", torch.TorchVersion(), n)
	code := m.Run()
	if digitsDir != "" {
		os.RemoveAll(digitsDir)
	}
	os.Exit(code)
}

// digitsModel trains the demo digits CNN once per test binary.
func digitsModel(t testing.TB) string {
	t.Helper()
	digitsOnce.Do(func() {
		if digitsDir, digitsErr = os.MkdirTemp("", "warden-eva-test-"); digitsErr != nil {
			return
		}
		var m *demo.Trained
		if m, digitsErr = demo.TrainDigits(digitsDir); digitsErr == nil {
			digitsPath = m.ModelPath
			fmt.Fprintf(os.Stderr, "analysis: digits CNN trained in %.1fs, held-out accuracy %.4f\n", m.TrainSeconds, m.Scores.Accuracy)
		}
	})
	if digitsErr != nil {
		t.Fatal(digitsErr)
	}
	return digitsPath
}

// heldOutDigits is the held-out digits as an IC dataset.
func heldOutDigits(t testing.TB) *ais.Dataset {
	t.Helper()
	_, test, err := demo.Digits()
	if err != nil {
		t.Fatal(err)
	}
	ds := &ais.Dataset{Task: ais.TaskIC, X: attacks.Batch{Data: test.X, Shape: []int{test.N(), 1, 8, 8}}, Classes: test.Labels}
	for i, y := range test.Y {
		ds.Labels = append(ds.Labels, int(y))
		ds.Names = append(ds.Names, fmt.Sprintf("digit %d", i))
	}
	return ds
}

// pyModel writes a victim with testdata/models.py.
func pyModel(t testing.TB, args ...string) string {
	t.Helper()
	reftorch.Need(t)
	out := filepath.Join(t.TempDir(), args[0]+".pt")
	cmd := exec.Command(refPython, append(append([]string{filepath.Join("testdata", "models.py")}, args...), out)...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("models.py %v: %v\n%s", args, err, b)
	}
	t.Logf("models.py %s: %s", args[0], strings.TrimSpace(string(b)))
	return out
}

// store keeps the artifacts an analysis writes.
type store struct {
	mu    sync.Mutex
	files map[string][]byte
	stage []string
}

func (s *store) env(t testing.TB) analysis.Env {
	s.files = map[string][]byte{}
	return analysis.Env{Scratch: t.TempDir(),
		Progress: func(pct int, stage string) { s.mu.Lock(); s.stage = append(s.stage, stage); s.mu.Unlock() },
		Artifact: func(_ context.Context, name, _ string, data []byte) (string, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.files[name] = data
			return name, nil
		}}
}

// runEVA loads the model for ds as a runner does and runs EVA.
func runEVA(t *testing.T, model string, ds *ais.Dataset, p jobs.AnalysisParams, st *store) jobs.AnalysisResult {
	t.Helper()
	v, closeModel, err := runner.LoadVictim(model, ds, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer closeModel()
	start := time.Now()
	r, err := analysis.Run(context.Background(), v, ds, jobs.AnalysisInput{AISModelID: "m1", TaskType: ds.Task, AnalysisType: ais.AnalysisEVA, Params: p}, st.env(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s EVA (%s, %d steps) took %.2fs", ds.Task, r.Params.Attack, r.Params.Steps, time.Since(start).Seconds())
	return r
}

func metric(t *testing.T, r jobs.AnalysisResult, name string) float64 {
	t.Helper()
	for _, m := range r.Metrics {
		if m.Name == name {
			if m.Help == "" {
				t.Errorf("metric %s has no help", name)
			}
			return m.Value
		}
	}
	t.Fatalf("no metric %s in %+v", name, r.Metrics)
	return 0
}

func curve(t *testing.T, r jobs.AnalysisResult, name string) jobs.Curve {
	t.Helper()
	for _, c := range r.Curves {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no curve %s", name)
	return jobs.Curve{}
}

// checkCurve logs the success curve and checks it never decreases, starts
// at 0 for ε = 0 and agrees with epsilon_50 and success_at_max_epsilon.
func checkCurve(t *testing.T, r jobs.AnalysisResult) jobs.Curve {
	t.Helper()
	c := curve(t, r, "attack_success")
	var pts []string
	for k := range c.X {
		pts = append(pts, fmt.Sprintf("ε=%g: %.3f", c.X[k], c.Y[k]))
		if k > 0 && c.Y[k] < c.Y[k-1] {
			t.Errorf("success decreases from ε=%g to ε=%g", c.X[k-1], c.X[k])
		}
	}
	t.Logf("success curve: %s", strings.Join(pts, ", "))
	if c.X[0] == 0 && c.Y[0] != 0 {
		t.Errorf("success %g at ε=0", c.Y[0])
	}
	last := c.Y[len(c.Y)-1]
	if got := metric(t, r, "success_at_max_epsilon"); got != last {
		t.Errorf("success_at_max_epsilon %g, curve ends at %g", got, last)
	}
	e50 := metric(t, r, "epsilon_50")
	switch {
	case last < 0.5 && e50 != -1:
		t.Errorf("epsilon_50 %g though the curve never reaches 0.5", e50)
	case last >= 0.5 && (e50 < c.X[0] || e50 > c.X[len(c.X)-1]):
		t.Errorf("epsilon_50 %g outside the curve", e50)
	}
	if r.Verdict.Definition == "" || r.Verdict.Summary == "" || r.Verdict.Severity == "" || r.Table == nil || len(r.Table.Rows) != len(c.X) {
		t.Errorf("incomplete report: verdict %+v, table %+v", r.Verdict, r.Table)
	}
	t.Logf("verdict: %s (%s); epsilon_50 %.4f", r.Verdict.Severity, r.Verdict.Summary, e50)
	return c
}

// REQUIRED proof: PGD at ε = 0.3 fools at least 90 % of the correctly
// classified digits, and the curve never decreases. FGSM runs too.
func TestEVADigitsCNN(t *testing.T) {
	model := digitsModel(t)
	ds := heldOutDigits(t)
	for _, c := range []struct {
		attack      string
		minAtPoint3 float64
	}{{"pgd", 0.9}, {"fgsm", 0}} {
		t.Run(c.attack, func(t *testing.T) {
			st := &store{}
			r := runEVA(t, model, ds, jobs.AnalysisParams{Epsilons: []float64{0, 0.02, 0.05, 0.1, 0.2, 0.3}, Attack: c.attack, Steps: 10, Samples: 100, Seed: 3}, st)
			cv := checkCurve(t, r)
			acc, used := metric(t, r, "clean_accuracy"), metric(t, r, "samples_attacked")
			t.Logf("clean accuracy %.4f, %g samples attacked; mean L∞ %.4f, mean L2 %.4f", acc, used, metric(t, r, "mean_linf"), metric(t, r, "mean_l2"))
			if acc < 0.9 || used != 100 {
				t.Fatalf("clean accuracy %g, %g samples attacked", acc, used)
			}
			if at := cv.Y[len(cv.Y)-1]; at < c.minAtPoint3 {
				t.Fatalf("%s success %.3f at ε=0.3, want ≥ %g", c.attack, at, c.minAtPoint3)
			}
			if linf := metric(t, r, "mean_linf"); linf > 0.3+1e-6 || linf <= 0 {
				t.Fatalf("mean L∞ %g outside (0, 0.3]", linf)
			}
			if len(r.Samples) == 0 {
				t.Fatal("no sample images")
			}
			for _, s := range r.Samples {
				t.Logf("sample: %s", s.Caption)
				for _, what := range []string{"original", "adversarial", "perturbation"} {
					img, err := png.Decode(bytes.NewReader(st.files[s.Images[what]]))
					if err != nil || img.Bounds().Dx() != 64 {
						t.Fatalf("%s image %q: %v", what, s.Images[what], err)
					}
				}
			}
			if len(st.stage) == 0 || !strings.HasPrefix(st.stage[1], "attacking eps=") {
				t.Fatalf("progress stages %v", st.stage)
			}
		})
	}
}

// A cancelled context stops the analysis with its error.
func TestEVACancelled(t *testing.T) {
	ds := heldOutDigits(t)
	v, closeModel, err := runner.LoadVictim(digitsModel(t), ds, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer closeModel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	st := &store{}
	_, err = analysis.Run(ctx, v, ds, jobs.AnalysisInput{TaskType: ais.TaskIC, AnalysisType: ais.AnalysisEVA}, st.env(t))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

var wineFeatures = []string{"alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols", "flavanoids",
	"nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue", "od280/od315_of_diluted_wines", "proline"}

// wineData reads testdata/wine_data.csv as a TC dataset.
func wineData(t *testing.T) *ais.Dataset {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "wine_data.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	head := strings.Split(sc.Text(), ",")
	ds := &ais.Dataset{Task: ais.TaskTC, Classes: head[2:], Features: wineFeatures}
	for sc.Scan() {
		fs := strings.Split(strings.TrimSpace(sc.Text()), ",")
		for _, s := range fs[:13] {
			v, err := strconv.ParseFloat(s, 32)
			if err != nil {
				t.Fatal(err)
			}
			ds.X.Data = append(ds.X.Data, float32(v))
		}
		y, _ := strconv.Atoi(fs[13])
		ds.Labels = append(ds.Labels, y)
		ds.Names = append(ds.Names, fmt.Sprintf("row %d", len(ds.Labels)))
	}
	ds.X.Shape = []int{len(ds.Labels), 13}
	return ds
}

// TC: a feature-range-constrained PGD on an MLP for the wine data; the
// adversarial rows stay within each column's range and the ε budget, and
// the integer columns (magnesium, proline) stay integers.
func TestEVAWineMLP(t *testing.T) {
	model := pyModel(t, "wine", filepath.Join("testdata", "wine_data.csv"))
	ds := wineData(t)
	lo, hi := make([]float64, 13), make([]float64, 13)
	for j := range lo {
		lo[j], hi[j] = math.Inf(1), math.Inf(-1)
	}
	for i := 0; i < ds.N(); i++ {
		for j, v := range ds.X.Sample(i) {
			lo[j], hi[j] = math.Min(lo[j], float64(v)), math.Max(hi[j], float64(v))
		}
	}
	st := &store{}
	r := runEVA(t, model, ds, jobs.AnalysisParams{Epsilons: []float64{0, 0.02, 0.05, 0.1, 0.2}, Attack: "pgd", Steps: 10, Samples: 60, Seed: 1}, st)
	cv := checkCurve(t, r)
	if cv.Y[len(cv.Y)-1] == 0 {
		t.Fatal("the attack never succeeds on the wine MLP")
	}
	if n := metric(t, r, "integer_features"); n != 2 {
		t.Fatalf("%g integer features, want 2 (magnesium, proline)", n)
	}
	for _, n := range r.Notes {
		t.Logf("note: %s", n)
	}
	rows, err := csv.NewReader(bytes.NewReader(st.files["eva_adversarial_rows.csv"])).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("adversarial rows: %v, %d rows", err, len(rows))
	}
	for _, row := range rows[1:] {
		eps, _ := strconv.ParseFloat(row[1], 64)
		o, _ := strconv.ParseFloat(row[5], 64)
		a, _ := strconv.ParseFloat(row[6], 64)
		j := -1
		for k, f := range wineFeatures {
			if f == row[4] {
				j = k
			}
		}
		if j < 0 {
			t.Fatalf("unknown feature %q", row[4])
		}
		if a < lo[j]-1e-4 || a > hi[j]+1e-4 || math.Abs(a-o) > eps*(hi[j]-lo[j])*(1+1e-5)+1e-5 {
			t.Errorf("%s %s: %g → %g leaves [%g, %g] or the budget %g of the range", row[0], row[4], o, a, lo[j], hi[j], eps)
		}
		if (j == 4 || j == 12) && a != math.Round(a) {
			t.Errorf("%s %s: integer column changed to %g", row[0], row[4], a)
		}
	}
	t.Logf("%d feature changes checked", len(rows)-1)
}

// detectionData draws two held-out digits per 32×32 canvas on a 4-pixel
// grid without overlap; each is a ground-truth object of class 0.
func detectionData(t *testing.T, n int) *ais.Dataset {
	t.Helper()
	_, test, err := demo.Digits()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	ds := &ais.Dataset{Task: ais.TaskOD, X: attacks.Batch{Data: make([]float32, n*32*32), Shape: []int{n, 1, 32, 32}}, Boxes: make([][]ais.Box, n)}
	for i := 0; i < n; i++ {
		img := ds.X.Sample(i)
		for len(ds.Boxes[i]) < 2 {
			x, y := 4*rng.IntN(7), 4*rng.IntN(7)
			b := ais.Box{XMin: float32(x), YMin: float32(y), XMax: float32(x + 8), YMax: float32(y + 8)}
			if len(ds.Boxes[i]) == 1 {
				o := ds.Boxes[i][0]
				if b.XMin < o.XMax && o.XMin < b.XMax && b.YMin < o.YMax && o.YMin < b.YMax {
					continue
				}
			}
			d := test.Sample(rng.IntN(test.N()))
			for r := 0; r < 8; r++ {
				copy(img[(y+r)*32+x:(y+r)*32+x+8], d[r*8:r*8+8])
			}
			ds.Boxes[i] = append(ds.Boxes[i], b)
		}
		ds.Names = append(ds.Names, fmt.Sprintf("canvas %d", i))
	}
	return ds
}

// OD: the score-suppression attack lowers recall as ε grows and fools
// images at some ε.
func TestEVABlobDetector(t *testing.T) {
	model := pyModel(t, "detector")
	ds := detectionData(t, 24)
	st := &store{}
	r := runEVA(t, model, ds, jobs.AnalysisParams{Epsilons: []float64{0, 0.1, 0.2, 0.3, 0.4, 0.5}, Attack: "pgd", Steps: 10, Samples: 16, Seed: 1}, st)
	cv := checkCurve(t, r)
	rec := curve(t, r, "recall")
	t.Logf("recall curve: %v at ε %v; clean recall %.3f, clean accuracy %.3f", rec.Y, rec.X, metric(t, r, "clean_recall"), metric(t, r, "clean_accuracy"))
	if metric(t, r, "clean_recall") < 0.9 {
		t.Fatal("the detector misses clean objects; the test data does not fit it")
	}
	for k := 1; k < len(rec.Y); k++ {
		if rec.Y[k] > rec.Y[k-1] {
			t.Errorf("recall rises from ε=%g to ε=%g", rec.X[k-1], rec.X[k])
		}
	}
	if !(rec.Y[len(rec.Y)-1] < rec.Y[0]) || cv.Y[len(cv.Y)-1] == 0 {
		t.Fatalf("the attack neither lowers recall (%v) nor fools an image (%v)", rec.Y, cv.Y)
	}
	if len(r.Samples) == 0 {
		t.Fatal("no sample images")
	}
	for _, s := range r.Samples {
		t.Logf("sample: %s", s.Caption)
		for _, what := range []string{"original", "adversarial", "perturbation"} {
			img, err := png.Decode(bytes.NewReader(st.files[s.Images[what]]))
			if err != nil || img.Bounds().Dx() != 128 {
				t.Fatalf("%s image %q: %v", what, s.Images[what], err)
			}
		}
	}
}
