//go:build torch

package analysis_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"image/png"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/worker/analysis"
	"github.com/wardenlab/warden/worker/demo"
	"github.com/wardenlab/warden/worker/runner"
	"github.com/wardenlab/warden/worker/torch"
)

// BadNets on the digits: a 2×2 white square in the bottom-right corner of
// some rows of the source class, relabelled to the target class.
const (
	bnSource, bnTarget = 7, 4
	bnFraction         = 0.3
	bnSeed             = 11
)

// stampDigit puts the trigger on one 8×8 digit.
func stampDigit(img []float32) {
	for _, p := range []int{6*8 + 6, 6*8 + 7, 7*8 + 6, 7*8 + 7} {
		img[p] = 1
	}
}

// poisonDigits returns the digits with bnFraction of the source class's
// rows (seeded) triggered and relabelled, and which rows those are.
func poisonDigits(t *testing.T) (*ais.Dataset, map[int]bool) {
	t.Helper()
	ds, _ := digitsData(t)
	var src []int
	for i, y := range ds.Labels {
		if y == bnSource {
			src = append(src, i)
		}
	}
	poisoned := map[int]bool{}
	for _, i := range pickRows(src, int(bnFraction*float64(len(src))), bnSeed) {
		stampDigit(ds.X.Sample(i))
		ds.Labels[i] = bnTarget
		poisoned[i] = true
	}
	return ds, poisoned
}

// pickRows draws n of the rows, seeded, as a deterministic shuffle would.
func pickRows(rows []int, n int, seed uint64) []int {
	c := append([]int(nil), rows...)
	s := seed
	for i := len(c) - 1; i > 0; i-- {
		s = s*6364136223846793005 + 1442695040888963407
		j := int((s >> 33) % uint64(i+1))
		c[i], c[j] = c[j], c[i]
	}
	return c[:n]
}

// fitClassifier trains a classifier on the whole dataset (what a
// poisoned training set is) with torch.Fit and returns its path.
func fitClassifier(t *testing.T, ds *ais.Dataset, spec torch.FitSpec) string {
	t.Helper()
	ys := make([]int64, len(ds.Labels))
	for i, y := range ds.Labels {
		ys[i] = int64(y)
	}
	path := filepath.Join(t.TempDir(), "victim.pt")
	start := time.Now()
	res, err := torch.Fit(context.Background(), spec, torch.FitData{X: ds.X.Data, N: ds.N(), Labels: ys}, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("trained in %.1fs, training accuracy %.4f", time.Since(start).Seconds(), res.Accuracy)
	return path
}

var digitsSpec = torch.FitSpec{Arch: torch.ArchCNN, InShape: []int64{1, 8, 8}, Out: 10, Loss: torch.LossCE, Config: demo.DigitsConfig}

// runDPois runs data poisoning on ds with the model at path.
func runDPois(t *testing.T, path string, ds *ais.Dataset, st *store) (jobs.AnalysisResult, analysis.Victim) {
	t.Helper()
	v, closeV, err := runner.LoadVictim(path, ds, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeV() })
	start := time.Now()
	r, err := analysis.Run(context.Background(), v, ds, jobs.AnalysisInput{AISModelID: "m1", TaskType: ds.Task, AnalysisType: ais.AnalysisDataPoisoning, Params: jobs.AnalysisParams{Seed: 1}}, st.env(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s data poisoning in %.2fs: %s: %s", ds.Task, time.Since(start).Seconds(), r.Verdict.Severity, r.Verdict.Summary)
	for _, row := range r.Table.Rows {
		t.Logf("  %v", row)
	}
	if r.Verdict.Definition == "" || r.Verdict.Summary == "" || r.Verdict.Severity == "" || len(r.Table.Rows) == 0 {
		t.Fatalf("incomplete report %+v", r)
	}
	return r, v
}

// suspectedRows reads the report's CSV of suspected rows.
func suspectedRows(t *testing.T, st *store) []int {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(st.files["dpois_suspected_rows.csv"])).ReadAll()
	if err != nil || len(recs) == 0 || recs[0][1] != "row" {
		t.Fatalf("suspected rows CSV: %v, %v", err, recs)
	}
	var rows []int
	for _, rec := range recs[1:] {
		i, err := strconv.Atoi(rec[1])
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, i)
	}
	return rows
}

// detection counts the poisoned rows among the suspected ones.
func detection(rows []int, poisoned map[int]bool, n int) (recall, fpr float64) {
	var tp, fp int
	for _, i := range rows {
		if poisoned[i] {
			tp++
		} else {
			fp++
		}
	}
	if len(poisoned) > 0 {
		recall = float64(tp) / float64(len(poisoned))
	}
	return recall, float64(fp) / float64(n-len(poisoned))
}

// triggerSuccess is the share of the given rows, triggered, that the model
// classifies as the target.
func triggerSuccess(t *testing.T, v analysis.Victim, ds *ais.Dataset, rows []int, stamp func([]float32), target int) float64 {
	t.Helper()
	x := ds.X
	x.Data = append([]float32(nil), ds.X.Data...)
	var pick []float32
	for _, i := range rows {
		s := append([]float32(nil), x.Sample(i)...)
		stamp(s)
		pick = append(pick, s...)
	}
	x.Data, x.Shape = pick, append([]int{len(rows)}, ds.X.Shape[1:]...)
	probs, err := v.Predict(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	var hit int
	for _, p := range probs {
		hit += boolInt(argmaxOf(p) == target)
	}
	return float64(hit) / float64(len(rows))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// REQUIRED proof (IC): on a CNN trained on digits with a BadNets backdoor,
// the analysis flags the target class and suspects ≥ 80 % of the poisoned
// rows at ≤ 10 % false positives among the clean rows; the clean dataset
// with a clean model gets no verdict.
func TestDataPoisoningDigitsBadNets(t *testing.T) {
	t.Run("poisoned", func(t *testing.T) {
		ds, poisoned := poisonDigits(t)
		path := fitClassifier(t, ds, digitsSpec)
		st := &store{}
		r, v := runDPois(t, path, ds, st)
		var clean7 []int
		for i, y := range ds.Labels {
			if y == bnSource {
				clean7 = append(clean7, i)
			}
		}
		asr := triggerSuccess(t, v, ds, clean7, stampDigit, bnTarget)
		rows := suspectedRows(t, st)
		recall, fpr := detection(rows, poisoned, ds.N())
		t.Logf("%d poisoned rows (%s → %s); backdoor success on the %d clean %ds triggered: %.3f; %d rows suspected: recall %.3f, false-positive rate %.4f",
			len(poisoned), strconv.Itoa(bnSource), strconv.Itoa(bnTarget), len(clean7), bnSource, asr, len(rows), recall, fpr)
		if !r.Verdict.Vulnerable {
			t.Fatalf("verdict %+v, want vulnerable", r.Verdict)
		}
		if recall < 0.8 || fpr > 0.1 {
			t.Fatalf("recall %.3f (want ≥ 0.8), false-positive rate %.4f (want ≤ 0.1)", recall, fpr)
		}
		// Only the target class is flagged.
		for _, row := range r.Table.Rows {
			if (row[0] == strconv.Itoa(bnTarget)) != (row[len(row)-1] == "true") {
				t.Errorf("class %s flagged %s", row[0], row[len(row)-1])
			}
		}
		// Ranked by the spectral signature: the head of the list is
		// poisoned.
		head := rows[:min(20, len(rows))]
		r20, _ := detection(head, poisoned, ds.N())
		t.Logf("precision of the top %d: %.3f", len(head), r20*float64(len(poisoned))/float64(len(head)))
		if metric(t, r, "suspected_rows") != float64(len(rows)) || metric(t, r, "classes_flagged") != 1 {
			t.Errorf("metrics %+v", r.Metrics)
		}
		checkScatter(t, r, "clusters of class "+strconv.Itoa(bnTarget))
		if len(r.Samples) == 0 {
			t.Fatal("no images of suspected rows")
		}
		for _, s := range r.Samples {
			img, err := png.Decode(bytes.NewReader(st.files[s.Images["suspected"]]))
			if err != nil || img.Bounds().Dx() != 64 {
				t.Fatalf("sample %q: %v", s.Caption, err)
			}
		}
		t.Logf("first sample: %s", r.Samples[0].Caption)
	})
	t.Run("clean", func(t *testing.T) {
		ds, _ := digitsData(t)
		path := fitClassifier(t, ds, digitsSpec)
		st := &store{}
		r, _ := runDPois(t, path, ds, st)
		if r.Verdict.Vulnerable || metric(t, r, "classes_flagged") != 0 || len(suspectedRows(t, st)) != 0 {
			t.Fatalf("clean digits: verdict %+v", r.Verdict)
		}
		// The most suspicious class is still plotted.
		if len(r.Curves) != 1 || r.Curves[0].Kind != jobs.CurveScatter {
			t.Fatalf("curves %+v", r.Curves)
		}
	})
}

// checkScatter finds the named cluster plot and checks its groups.
func checkScatter(t *testing.T, r jobs.AnalysisResult, name string) {
	t.Helper()
	c := curve(t, r, name)
	if c.Kind != jobs.CurveScatter || len(c.X) == 0 || len(c.X) != len(c.Y) || len(c.Groups) != len(c.X) {
		t.Fatalf("scatter %q: kind %q, %d x, %d y, %d groups", name, c.Kind, len(c.X), len(c.Y), len(c.Groups))
	}
	seen := map[string]int{}
	for _, g := range c.Groups {
		seen[g]++
	}
	if seen["small cluster (suspected)"] == 0 || seen["large cluster"] == 0 {
		t.Fatalf("scatter groups %v", seen)
	}
}

// wineTrigger sets ash and nonflavanoid phenols just above their largest
// values in the data (3.23 and 0.66), a feature trigger.
func wineTrigger(row []float32) {
	row[2], row[7] = 3.4, 0.75
}

// wineSpec is an MLP on standardised wine features.
func wineSpec(ds *ais.Dataset) torch.FitSpec {
	f := ds.X.Shape[1]
	aff := &torch.Affine{Scale: make([]float32, f), Shift: make([]float32, f)}
	for j := 0; j < f; j++ {
		var s, ss float64
		for i := 0; i < ds.N(); i++ {
			v := float64(ds.X.Data[i*f+j])
			s, ss = s+v, ss+v*v
		}
		mu := s / float64(ds.N())
		sd := math.Sqrt(math.Max(ss/float64(ds.N())-mu*mu, 1e-12))
		aff.Scale[j], aff.Shift[j] = float32(1/sd), float32(-mu/sd)
	}
	return torch.FitSpec{Arch: torch.ArchMLP, InShape: []int64{int64(f)}, Out: 3, Loss: torch.LossCE, Input: aff,
		Config: torch.TrainConfig{Hidden: []int64{32}, Epochs: 150, BatchSize: 16, LR: 3e-3, Seed: 1}}
}

// TC: a feature trigger on the wine table (class 0 rows relabelled 2).
// What the analysis finds is logged; the asserted bounds are what holds
// on this small table (see the README).
func TestDataPoisoningWine(t *testing.T) {
	t.Run("poisoned", func(t *testing.T) {
		ds := wineData(t)
		var src []int
		for i, y := range ds.Labels {
			if y == 0 {
				src = append(src, i)
			}
		}
		poisoned := map[int]bool{}
		for _, i := range pickRows(src, int(0.3*float64(len(src))), 5) {
			wineTrigger(ds.X.Sample(i))
			ds.Labels[i] = 2
			poisoned[i] = true
		}
		path := fitClassifier(t, ds, wineSpec(ds))
		st := &store{}
		r, v := runDPois(t, path, ds, st)
		var rest []int
		for i, y := range ds.Labels {
			if y == 0 {
				rest = append(rest, i)
			}
		}
		asr := triggerSuccess(t, v, ds, rest, wineTrigger, 2)
		rows := suspectedRows(t, st)
		recall, fpr := detection(rows, poisoned, ds.N())
		t.Logf("wine: %d poisoned rows; trigger success on the %d other class-0 rows: %.3f; %d suspected: recall %.3f, false-positive rate %.4f; verdict %s",
			len(poisoned), len(rest), asr, len(rows), recall, fpr, r.Verdict.Severity)
		if !r.Verdict.Vulnerable || recall < 0.8 || fpr > 0.1 {
			t.Fatalf("wine: verdict %+v, recall %.3f, false-positive rate %.4f", r.Verdict, recall, fpr)
		}
		if len(r.Samples) != 0 {
			t.Errorf("a table got %d sample images", len(r.Samples))
		}
	})
	t.Run("clean", func(t *testing.T) {
		ds := wineData(t)
		path := fitClassifier(t, ds, wineSpec(ds))
		st := &store{}
		r, _ := runDPois(t, path, ds, st)
		t.Logf("clean wine: %s, %d rows suspected", r.Verdict.Severity, len(suspectedRows(t, st)))
		if r.Verdict.Vulnerable {
			t.Fatalf("clean wine: verdict %+v", r.Verdict)
		}
	})
}

// A model without a linear layer cannot be analysed, and says why.
func TestDataPoisoningNeedsLinearLayer(t *testing.T) {
	ds, _ := digitsData(t)
	ds.X.Data, ds.X.Shape = ds.X.Data[:64*40], []int{40, 1, 8, 8}
	ds.Labels, ds.Names = ds.Labels[:40], ds.Names[:40]
	path := filepath.Join(t.TempDir(), "fcn.pt")
	masks := make([]int64, 40*64)
	for i := range masks {
		masks[i] = int64(ds.Labels[i/64])
	}
	if _, err := torch.Fit(context.Background(), torch.FitSpec{Arch: torch.ArchFCN, InShape: []int64{1, 8, 8}, Out: 10, Loss: torch.LossPixelCE,
		Config: torch.TrainConfig{Epochs: 1}}, torch.FitData{X: ds.X.Data, N: 40, Labels: masks}, path); err != nil {
		t.Fatal(err)
	}
	ds.Task = ais.TaskIS // a fully convolutional net answers per pixel
	v, closeV, err := runner.LoadVictim(path, ds, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer closeV()
	ds.Task = ais.TaskIC
	st := &store{}
	_, err = analysis.Run(context.Background(), v, ds, jobs.AnalysisInput{TaskType: ais.TaskIC, AnalysisType: ais.AnalysisDataPoisoning}, st.env(t))
	if err == nil || !strings.Contains(err.Error(), "no linear layer") {
		t.Fatalf("err = %v", err)
	}
	t.Logf("%v", err)
}
