//go:build torch

package analysis_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/worker/demo"
	"github.com/wardenlab/warden/worker/torch"
)

// zscore standardises the f features of rows x (a victim's input map).
func zscore(x []float32, f int) *torch.Affine {
	n := len(x) / f
	a := &torch.Affine{Scale: make([]float32, f), Shift: make([]float32, f)}
	for j := 0; j < f; j++ {
		var s, ss float64
		for i := 0; i < n; i++ {
			v := float64(x[i*f+j])
			s, ss = s+v, ss+v*v
		}
		mu := s / float64(n)
		sd := math.Max(math.Sqrt(math.Max(0, ss/float64(n)-mu*mu)), 1e-6)
		a.Scale[j], a.Shift[j] = float32(1/sd), float32(-mu/sd)
	}
	return a
}

// fitVictim trains a victim with torch.Fit into dir.
func fitVictim(t *testing.T, spec torch.FitSpec, d torch.FitData) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "victim.pt")
	if _, err := torch.Fit(t.Context(), spec, d, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// tableData reads a fixture table (first line: rows,features,class names).
func tableData(t *testing.T, name string) *ais.Dataset {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	head := strings.Split(sc.Text(), ",")
	nf, _ := strconv.Atoi(head[1])
	ds := &ais.Dataset{Task: ais.TaskTC, Classes: head[2:]}
	for sc.Scan() {
		fs := strings.Split(sc.Text(), ",")
		for _, v := range fs[:nf] {
			x, err := strconv.ParseFloat(v, 32)
			if err != nil {
				t.Fatal(err)
			}
			ds.X.Data = append(ds.X.Data, float32(x))
		}
		y, _ := strconv.Atoi(fs[nf])
		ds.Labels = append(ds.Labels, y)
	}
	ds.X.Shape = []int{len(ds.Labels), nf}
	return ds
}

// series reads column 2 of a fixture series, carrying the last value over
// missing ones.
func series(t *testing.T, name string) []float32 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []float32
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n")[1:] {
		fs := strings.Split(line, ",")
		x, err := strconv.ParseFloat(strings.TrimSpace(fs[1]), 32)
		if err != nil {
			if len(out) == 0 {
				continue
			}
			x = float64(out[len(out)-1])
		}
		out = append(out, float32(x))
	}
	return out
}

// tcCase: iris, a 3-class MLP victim.
func tcCase(t *testing.T) (*ais.Dataset, string) {
	ds := tableData(t, "iris.csv")
	labels := make([]int64, len(ds.Labels))
	for i, y := range ds.Labels {
		labels[i] = int64(y)
	}
	return ds, fitVictim(t, torch.FitSpec{Arch: torch.ArchMLP, InShape: []int64{4}, Out: 3, Loss: torch.LossCE,
		Input: zscore(ds.X.Data, 4), Config: torch.TrainConfig{Hidden: []int64{16}, Epochs: 60, LR: 1e-2}},
		torch.FitData{X: ds.X.Data, N: len(labels), Labels: labels})
}

// tsCase: sunspot windows of 12 years; class 1 when the next year is more
// active than the window's last.
func tsCase(t *testing.T) (*ais.Dataset, string) {
	s := series(t, "sunspots.csv")
	const w = 12
	ds := &ais.Dataset{Task: ais.TaskTS, Classes: []string{"falling", "rising"}}
	var labels []int64
	for i := 0; i+w < len(s); i++ {
		ds.X.Data = append(ds.X.Data, s[i:i+w]...)
		y := 0
		if s[i+w] > s[i+w-1] {
			y = 1
		}
		ds.Labels, labels = append(ds.Labels, y), append(labels, int64(y))
	}
	ds.X.Shape = []int{len(labels), w}
	return ds, fitVictim(t, torch.FitSpec{Arch: torch.ArchMLP, InShape: []int64{w}, Out: 2, Loss: torch.LossCE,
		Input: zscore(ds.X.Data, w), Config: torch.TrainConfig{Hidden: []int64{32}, Epochs: 60, LR: 1e-2}},
		torch.FitData{X: ds.X.Data, N: len(labels), Labels: labels})
}

// tsfCase: weekly CO2, windows of 26 weeks (every 2nd) forecasting the
// next 4.
func tsfCase(t *testing.T) (*ais.Dataset, string) {
	s := series(t, "co2.csv")
	const w, h = 26, 4
	ds := &ais.Dataset{Task: ais.TaskTSF}
	for i := 0; i+w+h <= len(s); i += 2 {
		ds.X.Data = append(ds.X.Data, s[i:i+w]...)
		ds.Targets.Data = append(ds.Targets.Data, s[i+w:i+w+h]...)
	}
	n := len(ds.X.Data) / w
	ds.X.Shape, ds.Targets.Shape = []int{n, w}, []int{n, h}
	out := zscore(ds.Targets.Data, h)
	for j := range out.Scale {
		out.Scale[j], out.Shift[j] = 1/out.Scale[j], -out.Shift[j]/out.Scale[j]
	}
	return ds, fitVictim(t, torch.FitSpec{Arch: torch.ArchMLP, InShape: []int64{w}, Out: h, Loss: torch.LossMSE,
		Input: zscore(ds.X.Data, w), Output: out, Config: torch.TrainConfig{Hidden: []int64{32}, Epochs: 40, LR: 3e-3}},
		torch.FitData{X: ds.X.Data, N: n, Targets: ds.Targets.Data})
}

// isCase: 8x8 digits drawn at random places on a 16x16 canvas; pixels
// above 0.3 are class 1 (digits 0–4) or 2 (digits 5–9), the rest 0.
func isCase(t *testing.T) (*ais.Dataset, string) {
	digits, _ := digitsData(t)
	const n, side = 500, 16
	rng := rand.New(rand.NewSource(7))
	ds := &ais.Dataset{Task: ais.TaskIS, MaskClasses: 3}
	ds.X.Data = make([]float32, n*side*side)
	ds.Masks = make([]int32, n*side*side)
	for i := 0; i < n; i++ {
		d := rng.Intn(digits.N())
		cls := int32(1)
		if digits.Labels[d] >= 5 {
			cls = 2
		}
		oy, ox := rng.Intn(side-8+1), rng.Intn(side-8+1)
		for y := 0; y < 8; y++ {
			for x := 0; x < 8; x++ {
				v := digits.X.Data[d*64+y*8+x]
				p := i*side*side + (oy+y)*side + ox + x
				ds.X.Data[p] = v
				if v > 0.3 {
					ds.Masks[p] = cls
				}
			}
		}
	}
	ds.X.Shape = []int{n, 1, side, side}
	labels := make([]int64, len(ds.Masks))
	for i, m := range ds.Masks {
		labels[i] = int64(m)
	}
	return ds, fitVictim(t, torch.FitSpec{Arch: torch.ArchFCN, InShape: []int64{1, side, side}, Out: 3, Loss: torch.LossPixelCE,
		Config: torch.TrainConfig{Hidden: []int64{16, 16}, Epochs: 12}},
		torch.FitData{X: ds.X.Data, N: n, Labels: labels})
}

// fallbackTexts is a small topic set for machines without WordNet.
func fallbackTexts() ([]string, []int) {
	topics := [][]string{
		{"dog", "cat", "horse", "bird", "fish", "wolf", "tiger", "whale", "mouse", "snake"},
		{"bread", "cheese", "apple", "soup", "rice", "cake", "meat", "pasta", "salad", "honey"},
		{"hammer", "chair", "engine", "table", "knife", "wheel", "lamp", "radio", "bottle", "rope"},
	}
	verbs := []string{"a kind of", "any of several", "a small", "a large", "the common", "an old"}
	rng := rand.New(rand.NewSource(3))
	var texts []string
	var labels []int
	for i := 0; i < 900; i++ {
		k := i % len(topics)
		w := topics[k]
		texts = append(texts, fmt.Sprintf("%s %s or %s with %s", verbs[rng.Intn(len(verbs))], w[rng.Intn(len(w))], w[rng.Intn(len(w))], topics[rng.Intn(3)][rng.Intn(10)]))
		labels = append(labels, k)
	}
	return texts, labels
}

// nlpCase: WordNet glosses of four topics (900 of them), or the fallback
// set; the victim is scripted by testdata/mea_text_victim.py.
func nlpCase(t *testing.T) (*ais.Dataset, string) {
	if exec.Command(refPython, "-c", "import torch").Run() != nil {
		if os.Getenv("TORCH_TEST_REQUIRE_PYTHON") == "1" {
			t.Fatalf("%s cannot import torch", refPython)
		}
		t.Skipf("%s cannot import torch", refPython)
	}
	dir := os.Getenv("WARDEN_WORDNET_DIR")
	if dir == "" {
		dir = "/usr/share/wordnet"
	}
	ds := &ais.Dataset{Task: ais.TaskNLP}
	if train, _, err := demo.WordNetGlosses(dir); err == nil {
		ds.Classes = train.Labels
		for i := 0; i < 900; i++ {
			ds.Texts, ds.Labels = append(ds.Texts, train.Texts[i]), append(ds.Labels, int(train.Y[i]))
		}
	} else {
		t.Logf("no WordNet (%v): the fallback texts", err)
		ds.Texts, ds.Labels = fallbackTexts()
		ds.Classes = []string{"animal", "food", "artifact"}
	}
	tmp := t.TempDir()
	data, _ := json.Marshal(map[string]any{"texts": ds.Texts, "labels": ds.Labels})
	if err := os.WriteFile(filepath.Join(tmp, "data.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(tmp, "victim.pt")
	out, err := exec.Command(refPython, "testdata/mea_text_victim.py", filepath.Join(tmp, "data.json"), path).CombinedOutput()
	if err != nil {
		t.Fatalf("text victim: %v: %s", err, out)
	}
	t.Logf("text victim: %s", strings.TrimSpace(string(out)))
	return ds, path
}

// TestMEATasks extracts a small victim of every other task type and checks
// that the surrogate copies it clearly better than chance, that fidelity
// grows with the queries, and that the budget is kept.
func TestMEATasks(t *testing.T) {
	cases := []struct {
		name    string
		build   func(*testing.T) (*ais.Dataset, string)
		budget  int
		minFid  float64 // well above chance agreement
		metrics []string
	}{
		{"TC iris", tcCase, 300, 0.8, nil},
		{"TS sunspots", tsCase, 400, 0.7, nil},
		{"TSF co2", tsfCase, 600, 0.8, []string{"r2", "mae"}},
		{"NLP glosses", nlpCase, 600, 0.6, nil},
		{"IS digits on a canvas", isCase, 400, 0.5, []string{"miou", "pixel_agreement"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			ds, path := tc.build(t)
			r, c, a := runMEA(t, path, ds, jobs.AnalysisParams{QueryBudget: tc.budget})
			checkReport(t, r, c, a, tc.budget)
			fid := metric(t, r, "fidelity")
			for _, m := range tc.metrics {
				metric(t, r, m)
			}
			ys := r.Curves[0].Y
			t.Logf("%s: fidelity %.4f (curve %v), surrogate %.4f, victim %.4f; test %.1fs", tc.name, fid, ys,
				metric(t, r, "surrogate_accuracy"), metric(t, r, "victim_accuracy"), time.Since(start).Seconds())
			if fid < tc.minFid {
				t.Errorf("fidelity %.4f < %.2f", fid, tc.minFid)
			}
			if ys[len(ys)-1] < ys[0]-0.02 {
				t.Errorf("fidelity falls with more queries: %v", ys)
			}
		})
	}
}
