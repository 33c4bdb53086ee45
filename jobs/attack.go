package jobs

import (
	"bytes"
	"encoding/json"

	"github.com/wardenlab/warden/attacks"
)

// MaxAttackLaunchBytes bounds a launch request's body: what one attack's
// inputs can weigh. A result carries its inputs and adversarial examples
// inline up to twice this (MaxAttackInlineBytes).
const (
	MaxAttackLaunchBytes = 32 << 20
	MaxAttackInlineBytes = 2 * MaxAttackLaunchBytes
)

// Input formats: how a client sent an input, which is how results show it.
const (
	FormatText    = "text"    // a string, for NLP models
	FormatImage   = "image"   // a base64 image; results show base64 PNGs at the model's input resolution
	FormatNumbers = "numbers" // an array of numbers
)

// AttackInput is an attack job's input, validated by the API.
type AttackInput struct {
	ModelID        string            `json:"model_id"`
	AttackMethodID string            `json:"attack_method_id"`
	Params         map[string]any    `json:"attack_parameters"` // validated, defaults applied
	Inputs         []json.RawMessage `json:"inputs"`            // one or a batch, in the model's format
	TrueLabels     []int             `json:"true_labels,omitempty"`
	TargetLabel    *int              `json:"target_label,omitempty"` // class index
}

// AttackResult is an attack's outcome in spec 002's shape: the first
// sample's fields at the top level, the whole batch in BatchResults.
type AttackResult struct {
	AttackSample
	BatchSize        int            `json:"batch_size"`
	BatchSuccessRate float64        `json:"batch_success_rate"`
	BatchResults     []AttackSample `json:"batch_results,omitempty"` // only for a batch of more than one
	// Queries counts model queries: the whole batch's for image attacks,
	// the first input's for text attacks (as each sample reports its own).
	Queries             int64         `json:"queries"`
	GradientEvaluations *int64        `json:"gradient_evaluations,omitempty"` // image attacks
	PerturbationSummary *NormSummary  `json:"perturbation_summary,omitempty"` // image attacks
	Metrics             AttackMetrics `json:"metrics"`
	ModelID             string        `json:"model_id"`
	AttackMethodID      string        `json:"attack_method_id"`
}

// AttackSample is the outcome for one input.
type AttackSample struct {
	// OriginalInput and AdversarialExample are in the form the client
	// sent the input (InputFormat); absent past MaxAttackInlineBytes.
	InputFormat           string       `json:"input_format,omitempty"`
	OriginalInput         *Value       `json:"original_input,omitempty"`
	OriginalPrediction    string       `json:"original_prediction"`
	OriginalConfidence    float32      `json:"original_confidence"`
	AdversarialExample    *Value       `json:"adversarial_example,omitempty"`
	AdversarialPrediction string       `json:"adversarial_prediction"`
	AdversarialConfidence float32      `json:"adversarial_confidence"`
	AttackSuccess         bool         `json:"attack_success"`
	Perturbation          Perturbation `json:"perturbation_details"`
	Queries               *int64       `json:"queries,omitempty"` // text attacks: queries for this input
}

// Perturbation measures how far an adversarial example is from its input.
type Perturbation struct {
	LinfNorm            *float32             `json:"linf_norm,omitempty"`
	L2Norm              *float32             `json:"l2_norm,omitempty"`
	WordsChanged        []attacks.WordChange `json:"words_changed,omitempty"`
	LevenshteinDistance *int                 `json:"levenshtein_distance,omitempty"`
	// Artifacts names the PNGs stored for this sample by what they show
	// ("original", "adversarial", "perturbation") → file name; surfaces
	// render them as URLs.
	Artifacts map[string]string `json:"artifacts,omitempty"`
}

// NormSummary summarises the perturbation norms of successful samples.
type NormSummary struct {
	Linf attacks.NormStats `json:"linf"`
	L2   attacks.NormStats `json:"l2"`
}

// AttackMetrics is how the attack ran.
type AttackMetrics struct {
	AttackTimeSeconds float64  `json:"attack_time_seconds"`
	CPUUsageAvg       string   `json:"cpu_usage_avg"`
	GPUUsageAvg       *float64 `json:"gpu_usage_avg"` // null: not measured (no NVML binding)
	Device            string   `json:"device"`
	TorchThreads      int      `json:"torch_threads"`
}

// Summary is "fooled" when the (first) sample's attack succeeded.
func (r AttackResult) Summary() string {
	if r.AttackSuccess {
		return "fooled"
	}
	return "failed_to_fool"
}

// Value is a model input as results show it: a string (a text, or a base64
// PNG), or a vector of numbers.
type Value struct {
	Text    string
	Numbers []float32
	IsText  bool
}

// TextValue and NumbersValue build Values.
func TextValue(s string) *Value        { return &Value{Text: s, IsText: true} }
func NumbersValue(xs []float32) *Value { return &Value{Numbers: xs} }

// MarshalJSON writes a string or an array.
func (v Value) MarshalJSON() ([]byte, error) {
	if v.IsText {
		return json.Marshal(v.Text)
	}
	if v.Numbers == nil {
		return []byte("[]"), nil
	}
	return json.Marshal(v.Numbers)
}

// UnmarshalJSON reads a string or an array.
func (v *Value) UnmarshalJSON(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '"' {
		v.IsText = true
		return json.Unmarshal(b, &v.Text)
	}
	return json.Unmarshal(b, &v.Numbers)
}
