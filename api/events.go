package api

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/records"
)

// Events renders the webhook event of every job kind, each in the words
// of the surface that shows the kind (spec 003 for verification, spec 002
// for attacks and models). The worker stores what it renders with the
// job's completion; cmd/warden hands it to the worker.
type Events struct {
	PublicURL string // base of result URLs, e.g. https://warden.example.com
}

var _ jobs.Events = Events{}

// eventPrefix names each kind's events ("attack_completed"…).
var eventPrefix = map[string]string{
	jobs.VerifyMedia.Name:   "verification",
	jobs.Probe.Name:         "probe",
	jobs.Attack.Name:        "attack",
	jobs.ValidateModel.Name: "model_validation",
	jobs.Analysis.Name:      "analysis",
}

// Event implements jobs.Event.
func (e Events) Event(job records.Job, status string, result any, reason string) (string, []byte, error) {
	prefix := eventPrefix[job.Kind]
	if prefix == "" {
		prefix = job.Kind
	}
	typ := prefix + "_" + status
	event := map[string]any{"event_type": typ, "job_id": job.ID, "status": status, "timestamp": formatTime(time.Now())}
	if u := e.resultURL(job); u != "" {
		event["result_url"] = u
	}
	if status != records.JobCompleted {
		event["error"] = reason
	}
	jobFields(job, event)
	switch r := result.(type) {
	case nil:
	case jobs.VerifyResult:
		event["label"], event["confidence"] = r.Label, r.Confidence
	case jobs.AttackResult:
		event["model_id"], event["attack_method_id"] = r.ModelID, r.AttackMethodID
		event["attack_success"] = r.AttackSuccess
		if r.InputFormat != jobs.FormatImage {
			event["original_input_preview"], event["adversarial_example_preview"] = textPreview(r.OriginalInput), textPreview(r.AdversarialExample)
		} else {
			event["original_input_preview"], event["adversarial_example_preview"] = nil, nil
		}
	case jobs.ValidateModelResult:
		event["model_id"] = r.ModelID
	case jobs.AnalysisResult:
		event["verdict"] = r.Verdict
		event["report_html_url"] = e.PublicURL + aisBase + "/analyses/" + job.ID + "/report.html"
	case jobs.ProbeResult:
	default:
		return "", nil, fmt.Errorf("events: no rendering for %T", result)
	}
	body, err := json.Marshal(event)
	return typ, body, err
}

// jobFields adds what every event of a job's kind carries, whatever its
// outcome (completed, failed, cancelled), read from the job's input: an
// attack's attack_id, model_id and attack_method_id; a model validation's
// model_id.
func jobFields(job records.Job, event map[string]any) {
	switch job.Kind {
	case jobs.Attack.Name:
		event["attack_id"] = job.ID
		if in, err := jobs.Attack.Input(job.Input); err == nil {
			event["model_id"], event["attack_method_id"] = in.ModelID, in.AttackMethodID
		}
	case jobs.ValidateModel.Name:
		if in, err := jobs.ValidateModel.Input(job.Input); err == nil {
			event["model_id"] = in.ModelID
		}
	case jobs.Analysis.Name:
		event["analysis_id"] = job.ID
		if in, err := jobs.Analysis.Input(job.Input); err == nil {
			event["model_id"], event["task_type"], event["analysis_type"] = in.AISModelID, in.TaskType, in.AnalysisType
		}
	}
}

// resultURL is where a job's result can be read, for the kinds that have
// a result route.
func (e Events) resultURL(job records.Job) string {
	switch job.Kind {
	case jobs.VerifyMedia.Name:
		return e.PublicURL + verifyPath(job.ID)
	case jobs.Attack.Name:
		return e.PublicURL + attackResultsPath(job.ID)
	case jobs.Analysis.Name:
		return e.PublicURL + aisBase + "/analyses/" + job.ID + "/report"
	}
	return ""
}

// textPreview shows the start of a text input in an event; numeric and
// image inputs have no preview (null).
func textPreview(v *jobs.Value) any {
	if v == nil || !v.IsText {
		return nil
	}
	if len(v.Text) > 200 {
		return v.Text[:200] + "…"
	}
	return v.Text
}
