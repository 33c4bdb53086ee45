package ais

import "github.com/wardenlab/warden/attacks"

// Dataset is a registration's data and labels decoded for analysis: what
// the runner feeds the model and scores its answers against. Which fields
// are set depends on the task type.
type Dataset struct {
	Task string
	// X holds the inputs of every task but NLP: images as [N, C, H, W]
	// in [0, 1]; tables and series windows as [N, F].
	X attacks.Batch
	// Texts are NLP inputs, one per sample.
	Texts []string
	// Names identify each sample in reports: an image's file name, or
	// "row 12" of a table.
	Names []string
	// Labels are class indices (IC, TC, TS, NLP): an integer label is its
	// own index; otherwise labels index Classes, the distinct label
	// values sorted.
	Labels  []int
	Classes []string
	// Features names the columns of a table or series window.
	Features []string
	// Targets are TSF's expected outputs, [N, H] (H values ahead).
	Targets attacks.Batch
	// Masks are IS's per-pixel classes, N×H×W, row-major; MaskClasses is
	// one more than the largest class present.
	Masks       []int32
	MaskClasses int
	// Boxes are OD's ground-truth boxes per sample, in pixels.
	Boxes [][]Box
}

// Box is one object: its corners in pixels and its class index.
type Box struct {
	XMin  float32 `json:"x_min"`
	YMin  float32 `json:"y_min"`
	XMax  float32 `json:"x_max"`
	YMax  float32 `json:"y_max"`
	Label int     `json:"label"`
}

// N is the number of samples.
func (d *Dataset) N() int {
	if d.Task == TaskNLP {
		return len(d.Texts)
	}
	return d.X.N()
}
