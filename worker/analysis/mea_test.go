package analysis

import (
	"math"
	"reflect"
	"testing"

	"github.com/wardenlab/warden/jobs"
)

func TestMeanIoU(t *testing.T) {
	cases := []struct {
		name string
		a, b []int64
		want float64
	}{
		{"identical", []int64{0, 1, 1, 2}, []int64{0, 1, 1, 2}, 1},
		{"disjoint", []int64{0, 0}, []int64{1, 1}, 0},
		// class 0: ∩1 ∪2; class 1: ∩1 ∪2 → 0.5
		{"half", []int64{0, 0, 1}, []int64{0, 1, 1}, 0.5},
		{"absent classes are skipped", []int64{2, 2}, []int64{2, 2}, 1},
	}
	for _, tc := range cases {
		if got := meanIoU(tc.a, tc.b, 3); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: meanIoU = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestR2(t *testing.T) {
	ref := []float32{1, 10, 2, 20, 3, 30}
	if got := r2(ref, ref, 2); got != 1 {
		t.Errorf("R² of a perfect forecast = %v", got)
	}
	mean := []float32{2, 20, 2, 20, 2, 20}
	if got := r2(mean, ref, 2); math.Abs(got) > 1e-9 {
		t.Errorf("R² of the column means = %v, want 0", got)
	}
}

func TestHashedBagOfWords(t *testing.T) {
	a := make([]float32, HashedFeatures)
	b := make([]float32, HashedFeatures)
	hashedBagOfWords("The cat, the CAT!", a)
	hashedBagOfWords("cat the cat the", b)
	if !reflect.DeepEqual(a, b) {
		t.Error("case, punctuation or order changed the features")
	}
	var sum float32
	for _, v := range a {
		sum += v
	}
	if sum != 4 {
		t.Errorf("%v words counted, want 4", sum)
	}
	if got := words("don't stop-me now1x"); !reflect.DeepEqual(got, []string{"don", "t", "stop", "me", "now", "x"}) {
		t.Errorf("words = %q", got)
	}
}

func TestBudgets(t *testing.T) {
	cases := []struct {
		points []int
		budget int
		want   []int
		notes  int
	}{
		{[]int{100, 500, 2000}, 2000, []int{100, 500, 2000}, 0},
		{[]int{500, 100, 100}, 1000, []int{100, 500, 1000}, 0},
		{[]int{100, 5000}, 1000, []int{100, 1000}, 1},
	}
	for _, tc := range cases {
		e := &extraction{p: jobs.AnalysisParams{QueryBudget: tc.budget, CurvePoints: tc.points}}
		if got := e.budgets(); !reflect.DeepEqual(got, tc.want) || len(e.notes) != tc.notes {
			t.Errorf("budgets(%v, %d) = %v (notes %q), want %v", tc.points, tc.budget, got, e.notes, tc.want)
		}
	}
}
