package ais

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestExamples: every task type's example data and label zips are
// reproducible, pass Check with matching sample counts, and decode to the
// documented shapes; FORMAT.md names the model's input and output.
func TestExamples(t *testing.T) {
	for _, tc := range []struct {
		task    string
		n       int
		xShape  []int // nil: NLP
		classes int
	}{
		{TaskIC, 100, []int{100, 1, 8, 8}, 10},
		{TaskIS, 20, []int{20, 1, 24, 24}, 0},
		{TaskOD, 20, []int{20, 1, 40, 40}, 10},
		{TaskTC, 150, []int{150, 4}, 3},
		{TaskTS, 61, []int{61, 12}, 2},
		{TaskTSF, 60, []int{60, exampleWindow}, 0},
		{TaskNLP, 50, nil, 2},
	} {
		t.Run(tc.task, func(t *testing.T) {
			zips := map[string][]byte{}
			sums := map[string]Summary{}
			for _, file := range []string{FileData, FileLabel} {
				b, err := Example(tc.task, file)
				if err != nil {
					t.Fatal(err)
				}
				again, _ := Example(tc.task, file)
				if !bytes.Equal(b, again) {
					t.Errorf("%s: two builds differ", file)
				}
				sum, problems := Check(bytes.NewReader(b), int64(len(b)), tc.task, file, DefaultLimits)
				if len(problems) > 0 {
					t.Fatalf("%s: Check: %v", file, problems)
				}
				if sum.Samples != tc.n {
					t.Errorf("%s: Check counts %d samples, want %d", file, sum.Samples, tc.n)
				}
				zips[file], sums[file] = b, sum
			}
			if msg := SampleMismatch(sums[FileData], sums[FileLabel]); msg != "" {
				t.Error(msg)
			}
			ds, err := Decode(context.Background(), tc.task, bytes.NewReader(zips[FileData]), bytes.NewReader(zips[FileLabel]),
				int64(len(zips[FileData])), int64(len(zips[FileLabel])), DecodeLimits{})
			if err != nil {
				t.Fatal(err)
			}
			if ds.N() != tc.n || len(ds.Names) != tc.n {
				t.Errorf("decoded %d samples, %d names; want %d", ds.N(), len(ds.Names), tc.n)
			}
			if tc.xShape != nil && !slices.Equal(ds.X.Shape, tc.xShape) {
				t.Errorf("X shape %v, want %v", ds.X.Shape, tc.xShape)
			}
			if len(ds.Classes) != tc.classes {
				t.Errorf("%d classes (%v), want %d", len(ds.Classes), ds.Classes, tc.classes)
			}
			switch tc.task {
			case TaskIS:
				if ds.MaskClasses < 2 || len(ds.Masks) != 20*24*24 {
					t.Errorf("masks: %d values, %d classes", len(ds.Masks), ds.MaskClasses)
				}
			case TaskOD:
				for i, bs := range ds.Boxes {
					if len(bs) != 2 {
						t.Errorf("scene %d: %d boxes, want 2", i, len(bs))
					}
				}
			case TaskTSF:
				if !slices.Equal(ds.Targets.Shape, []int{60, exampleHorizon}) {
					t.Errorf("targets %v", ds.Targets.Shape)
				}
			}
			format, err := Example(tc.task, ExampleFormat)
			if err != nil || !strings.Contains(string(format), "torch.jit.save") || !strings.Contains(string(format), "- output: ") {
				t.Errorf("FORMAT.md: %v\n%s", err, format)
			}
		})
	}
	for _, bad := range [][2]string{{"XX", FileData}, {TaskIC, FileModel}, {TaskIC, "label.zip"}} {
		if _, err := Example(bad[0], bad[1]); !errors.Is(err, ErrNoExample) {
			t.Errorf("Example(%q, %q): %v, want ErrNoExample", bad[0], bad[1], err)
		}
	}
}
