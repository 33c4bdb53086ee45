package jobs

import (
	"encoding/json"
	"fmt"
)

// encode is the one JSON encoding of inputs and results as stored in
// records.Job.Input and records.Result.Data.
func encode(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("jobs: encode %T: %w", v, err)
	}
	return string(b), nil
}

// decode reads a stored document into T. Unknown fields are ignored: during
// a rolling upgrade a newer API may queue a job that an older worker runs,
// and the reverse; a field either side lacks must not fail the job.
func decode[T any](stored string) (T, error) {
	var v T
	if err := json.Unmarshal([]byte(stored), &v); err != nil {
		return v, fmt.Errorf("jobs: decode %T: %w", v, err)
	}
	return v, nil
}
