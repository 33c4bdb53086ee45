package analysis

import (
	"bytes"
	"image/color"
	"image/png"
	"math"
	"testing"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/attacks"
)

func TestEpsilon50(t *testing.T) {
	eps := []float64{0, 0.1, 0.2, 0.3}
	for _, c := range []struct {
		name    string
		success []float64
		want    float64
	}{
		{"interpolated", []float64{0, 0.2, 0.6, 0.9}, 0.175},
		{"exactly at a point", []float64{0, 0.5, 0.6, 0.9}, 0.1},
		{"at the first point", []float64{0.7, 0.8, 0.9, 1}, 0},
		{"never", []float64{0, 0.1, 0.2, 0.49}, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := epsilon50(eps, c.success); math.Abs(got-c.want) > 1e-12 {
				t.Fatalf("epsilon50 = %g, want %g", got, c.want)
			}
		})
	}
}

func TestEvaEpsilons(t *testing.T) {
	got, err := evaEpsilons([]float64{0.3, 0, 0.1, 0.1})
	if err != nil || len(got) != 3 || got[0] != 0 || got[1] != 0.1 || got[2] != 0.3 {
		t.Fatalf("evaEpsilons = %v, %v", got, err)
	}
	for _, bad := range [][]float64{nil, {-0.1}, {1.5}, {math.NaN()}} {
		if _, err := evaEpsilons(bad); err == nil {
			t.Errorf("evaEpsilons(%v) accepted", bad)
		}
	}
}

func TestEvaVerdict(t *testing.T) {
	for _, c := range []struct {
		e50, atMax float64
		severity   string
		vulnerable bool
	}{
		{0.02, 1, "high", true},
		{0.08, 0.9, "medium", true},
		{0.25, 0.6, "low", false},
		{-1, 0.3, "low", false},
		{-1, 0.1, "none", false},
	} {
		v := evaVerdict(c.e50, c.atMax, 0.3, "L∞")
		if v.Severity != c.severity || v.Vulnerable != c.vulnerable || v.Definition == "" || v.Summary == "" {
			t.Errorf("epsilon_50 %g, success %g: %+v", c.e50, c.atMax, v)
		}
	}
}

// The tabular projection keeps every value in its column's range and
// within ε of the range around the original, and integer columns integer.
func TestFeatureBoxProject(t *testing.T) {
	x := attacks.Batch{Data: []float32{0, 10, 1, 20, 0.5, 15}, Shape: []int{3, 2}}
	b := columnRanges(x)
	if b.integer[0] || !b.integer[1] || b.lo[1] != 10 || b.hi[1] != 20 {
		t.Fatalf("ranges %+v", b)
	}
	for _, c := range []struct {
		eps      float64
		s        []float32
		wantSeen []float32
	}{
		{0.5, []float32{2, 30}, []float32{1, 20}},         // clipped to the ball and the range
		{0.16, []float32{0.6, 16.6}, []float32{0.6, 16}},  // 16.6 → 17 leaves the ball (1.6): back to 16
		{0.04, []float32{0.5, 15.4}, []float32{0.5, 15}},  // a budget under one unit keeps the integer
		{0.3, []float32{0.1, 12.4}, []float32{0.2, 12}},   // rounding within the ball
		{0.3, []float32{0.5, 11.0}, []float32{0.5, 12}},   // 11 is outside the ball of 3 around 15: 12
		{1, []float32{-5, 9.4}, []float32{0, 10}},         // the range's bounds
		{0.3, []float32{0.4, 17.5}, []float32{0.4, 18}},   // .5 rounds away from zero, 3 ≤ 3
		{0.27, []float32{0.4, 17.8}, []float32{0.4, 17}},  // 17.7 → 18 would be 3 > 2.7
		{0.06, []float32{0.5, 15.55}, []float32{0.5, 15}}, // 15.55 → 16 is one unit outside a 0.6 budget
	} {
		s := append([]float32(nil), c.s...)
		seen := make([]float32, 2)
		b.project([]float32{0.5, 15}, s, seen, c.eps)
		for j := range seen {
			if math.Abs(float64(seen[j]-c.wantSeen[j])) > 1e-5 {
				t.Errorf("ε %g, s %v: seen %v, want %v", c.eps, c.s, seen, c.wantSeen)
			}
			r := float32(c.eps) * (b.hi[j] - b.lo[j])
			if seen[j] < b.lo[j] || seen[j] > b.hi[j] || math.Abs(float64(seen[j]-[]float32{0.5, 15}[j])) > float64(r)+1e-5 {
				t.Errorf("ε %g: %v leaves the range or the ball", c.eps, seen)
			}
		}
	}
}

func TestDetectionMatching(t *testing.T) {
	gt := []ais.Box{{XMin: 0, YMin: 0, XMax: 8, YMax: 8, Label: 1}, {XMin: 16, YMin: 16, XMax: 24, YMax: 24, Label: 0}}
	row := func(x0, y0, x1, y1, score, class float32) []float32 { return []float32{x0, y0, x1, y1, score, class} }
	var out []float32
	out = append(out, row(0, 0, 8, 8, 0.9, 1)...)     // matches gt 0
	out = append(out, row(20, 16, 28, 24, 0.9, 0)...) // IoU 1/3 with gt 1: no match
	out = append(out, row(16, 16, 24, 24, 0.4, 0)...) // low score: no match
	out = append(out, row(0, 0, 0, 0, 0, 0)...)       // padding
	dets := detections(out)
	if len(dets) != 3 {
		t.Fatalf("%d detections, want 3", len(dets))
	}
	if got := detected(gt, dets); !got[0] || got[1] {
		t.Fatalf("detected %v, want [true false]", got)
	}
	if got := iou(gt[1], dets[1].box); math.Abs(got-1.0/3) > 1e-9 {
		t.Fatalf("IoU %g, want 1/3", got)
	}
	w := scoreWeights(out, gt)
	for q, v := range w {
		want := float32(0)
		if q == 4 || q == 10 || q == 16 { // the scores of rows 0, 1 (IoU 1/3 ≥ 0.3) and 2
			want = 1
		}
		if v != want {
			t.Fatalf("weights %v", w)
		}
	}
}

func TestDrawBoxes(t *testing.T) {
	x := attacks.Batch{Data: make([]float32, 16), Shape: []int{1, 1, 4, 4}}
	b, err := drawBoxes(x, 2, boxLayer{[]ais.Box{{XMin: 1, YMin: 1, XMax: 3, YMax: 3}}, color.NRGBA{255, 0, 0, 255}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() != 8 {
		t.Fatalf("width %d, want 8", img.Bounds().Dx())
	}
	for _, p := range []struct {
		x, y int
		red  bool
	}{{2, 2, true}, {5, 2, true}, {2, 5, true}, {5, 5, true}, {3, 3, false}, {0, 0, false}, {6, 6, false}} {
		r, _, _, _ := img.At(p.x, p.y).RGBA()
		if (r>>8 == 255) != p.red {
			t.Errorf("pixel (%d,%d) red=%v", p.x, p.y, r>>8 == 255)
		}
	}
	if _, err := drawBoxes(attacks.Batch{Data: make([]float32, 8), Shape: []int{1, 2, 2, 2}}, 1); err == nil {
		t.Fatal("drew a two-channel image")
	}
}
