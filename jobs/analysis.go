package jobs

// AnalysisInput is an AISpectra (spec 000) vulnerability analysis of a
// registered model, run on the files uploaded for it. The API validates
// Params (defaults applied) before it submits.
type AnalysisInput struct {
	AISModelID   string            `json:"ais_model_id"`
	TaskType     string            `json:"task_type"`     // ais.Task*
	AnalysisType string            `json:"analysis_type"` // ais.Analysis*
	Files        map[string]string `json:"files"`         // file name (ais.File*) → blob key of its valid zip
	Params       AnalysisParams    `json:"params"`
}

// AnalysisParams tune an analysis; zero values take the analysis's
// defaults (ApplyDefaults).
type AnalysisParams struct {
	// MEA: how many victim queries the extraction may spend, and the
	// points of the fidelity-versus-queries curve (budgets ≤ QueryBudget).
	QueryBudget int   `json:"query_budget,omitempty"`
	CurvePoints []int `json:"curve_points,omitempty"`
	// EVA: the perturbation budgets of the robustness curve (L∞, in the
	// input's [0,1] scale; tabular: a fraction of each feature's range),
	// the attack (fgsm or pgd), PGD's steps, and how many samples attack.
	Epsilons []float64 `json:"epsilons,omitempty"`
	Attack   string    `json:"attack,omitempty"`
	Steps    int       `json:"steps,omitempty"`
	Samples  int       `json:"samples,omitempty"`
	// Model poisoning: Adam steps of the trigger optimisation per class
	// (Samples bounds the optimisation and the held-out samples).
	TriggerSteps int `json:"trigger_steps,omitempty"`
	// Defence: the false-positive rate the profile's thresholds aim at
	// (default 0.05) and the guarded endpoint's mode, flag or block
	// (default flag). It attacks as EVA (Attack, Steps, Samples, the
	// largest of Epsilons) and replays MEA's stream (QueryBudget).
	TargetFPR float64 `json:"target_fpr,omitempty"`
	Mode      string  `json:"mode,omitempty"`
	// Seed makes a run reproducible (default 1).
	Seed int64 `json:"seed,omitempty"`
}

// AnalysisResult is an analysis's report. Every analysis fills the same
// shape so that one renderer draws all of them: the verdict, the headline
// metrics, curves, a table, sample images and downloadable files.
type AnalysisResult struct {
	AISModelID   string         `json:"model_id"`
	TaskType     string         `json:"task_type"`
	AnalysisType string         `json:"analysis_type"`
	Verdict      Verdict        `json:"verdict"`
	Metrics      []Metric       `json:"metrics"`
	Curves       []Curve        `json:"curves,omitempty"`
	Table        *Table         `json:"table,omitempty"`
	Samples      []Sample       `json:"samples,omitempty"`
	Artifacts    []Download     `json:"artifacts,omitempty"` // e.g. the surrogate model
	Params       AnalysisParams `json:"params"`              // as applied
	Notes        []string       `json:"notes,omitempty"`     // what the analysis assumed or skipped, in words
	Device       string         `json:"device"`
	Seconds      float64        `json:"seconds"` // wall time of the analysis in the runner
}

// Verdict is an analysis's conclusion with the rule that produced it.
type Verdict struct {
	Vulnerable bool   `json:"vulnerable"`
	Severity   string `json:"severity"`   // none, low, medium, high
	Summary    string `json:"summary"`    // one sentence with the numbers
	Definition string `json:"definition"` // the rule, e.g. "vulnerable when fidelity ≥ 0.9 within the budget"
}

// Metric is one headline number.
type Metric struct {
	Name  string  `json:"name"` // snake_case, stable: fidelity, surrogate_accuracy, epsilon_50, …
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"` // "ratio", "queries", "seconds", …
	Help  string  `json:"help"`           // what it measures
}

// Curve is one plotted series (fidelity versus queries, success versus ε),
// or with Kind CurveScatter a point cloud whose points Groups names (one
// group per point; each group drawn in its own colour, with a legend).
type Curve struct {
	Name   string    `json:"name"`
	Kind   string    `json:"kind,omitempty"` // "" or CurveLine: a line; CurveScatter: points
	XLabel string    `json:"x_label"`
	YLabel string    `json:"y_label"`
	X      []float64 `json:"x"`
	Y      []float64 `json:"y"`
	Groups []string  `json:"groups,omitempty"` // scatter: each point's group, in X's order
}

// Curve kinds.
const (
	CurveLine    = "line"
	CurveScatter = "scatter"
)

// Table is a small table of the report (per-ε results, per-class numbers).
type Table struct {
	Title   string     `json:"title"`
	Columns []string   `json:"columns"`
	Rows    [][]string `json:"rows"`
}

// Sample is one example the report shows: a caption and its images
// (artifact file names by what they show: original, adversarial,
// perturbation, mask, …).
type Sample struct {
	Caption string            `json:"caption"`
	Images  map[string]string `json:"images"`
}

// Download is a file of the report (artifact name) with what it is.
type Download struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Description string `json:"description"`
}

// Summary is the verdict's severity.
func (r AnalysisResult) Summary() string {
	if r.Verdict.Severity == "" {
		return "none"
	}
	return r.Verdict.Severity
}

// Analysis defaults.
const (
	DefaultQueryBudget = 2000
	DefaultEVASamples  = 200
	DefaultPGDSteps    = 10
	// DefaultTriggerSteps is model poisoning's optimisation steps per class.
	DefaultTriggerSteps = 300
)

// DefaultEpsilons are EVA's default robustness-curve budgets.
var DefaultEpsilons = []float64{0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3}

// ApplyDefaults fills zero values.
func (p AnalysisParams) ApplyDefaults() AnalysisParams {
	if p.QueryBudget <= 0 {
		p.QueryBudget = DefaultQueryBudget
	}
	if len(p.CurvePoints) == 0 {
		for _, f := range []float64{0.05, 0.1, 0.25, 0.5, 0.75, 1} {
			if n := int(f * float64(p.QueryBudget)); n > 0 {
				p.CurvePoints = append(p.CurvePoints, n)
			}
		}
	}
	if len(p.Epsilons) == 0 {
		p.Epsilons = append([]float64(nil), DefaultEpsilons...)
	}
	if p.Attack == "" {
		p.Attack = "pgd"
	}
	if p.Steps <= 0 {
		p.Steps = DefaultPGDSteps
	}
	if p.Samples <= 0 {
		p.Samples = DefaultEVASamples
	}
	if p.TriggerSteps <= 0 {
		p.TriggerSteps = DefaultTriggerSteps
	}
	if p.Seed == 0 {
		p.Seed = 1
	}
	return p
}
