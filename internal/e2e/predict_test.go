package e2e

import (
	"testing"
	"time"

	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/records"
)

// TestPredictTimeout: with no worker serving the critical queue, a
// prediction answers 504 after WARDEN_PREDICT_TIMEOUT and its job is
// cancelled so that a worker starting later does not run it.
func TestPredictTimeout(t *testing.T) {
	s := newStack(t, false, func(c *config.Config) { c.PredictTimeout = 300 * time.Millisecond })
	org := s.org("acme")
	m := records.Model{ID: "mdl_timeout", OrgID: org.OrgID, Name: "m", Type: "CV", Status: records.ModelActive,
		Metadata: `{"input_shape":[4]}`, Metrics: `{"num_classes":2}`}
	if err := s.db.Gorm().Create(&m).Error; err != nil {
		t.Fatal(err)
	}
	code, body := s.postJSON("/v1/models/mdl_timeout/predict", map[string]any{"input_data": []float32{0, 0.5, 1, 0}}, withKey(org))
	assertV1Error(t, code, body, 504, "")
	var jobs []records.Job
	s.db.Gorm().Where("kind = ?", "predict").Find(&jobs)
	if len(jobs) != 1 || jobs[0].Status != records.JobCancelled {
		t.Fatalf("predict jobs after the timeout: %+v", jobs)
	}
	// Input is checked against the model before anything is queued.
	code, body = s.postJSON("/v1/models/mdl_timeout/predict", map[string]any{"input_data": []float32{0, 2}}, withKey(org))
	assertV1Error(t, code, body, 400, "input_data")
}
