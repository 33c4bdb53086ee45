package jobs

// ValidateModelInput is the input of a registered model's validation.
type ValidateModelInput struct {
	ModelID string `json:"model_id"`
}

// ValidateModelResult is what validation measured. The model row is
// updated from it in the same transaction that completes the job.
type ValidateModelResult struct {
	ModelID    string         `json:"model_id"`
	Status     string         `json:"status"` // records.ModelActive
	NumClasses int            `json:"num_classes"`
	Metrics    map[string]any `json:"metrics"` // owner-reported metrics plus num_classes, input_size, forward_latency_ms
	Device     string         `json:"device"`
}

// Summary is the model's new status.
func (r ValidateModelResult) Summary() string { return r.Status }

// PredictResult is one prediction.
type PredictResult struct {
	Prediction    string             `json:"prediction"`
	Confidence    float32            `json:"confidence"`
	ModelID       string             `json:"model_id"`
	InputHash     string             `json:"input_hash"`
	Probabilities map[string]float32 `json:"probabilities"`
	Device        string             `json:"device"`
}
