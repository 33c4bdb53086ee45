package worker

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
	"github.com/wardenlab/warden/worker/torch"
)

// TestValidateModelFailureMarksModelFailed registers a model whose file
// cannot be loaded (no libtorch in a CGO-free build; not a TorchScript
// module with -tags torch): the validation job fails permanently and the
// model row is failed with the same reason, in the same transaction.
func TestValidateModelFailureMarksModelFailed(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	m := &records.Model{ID: storage.NewModelID(), OrgID: h.org.OrgID, Name: "tiny", Type: "CV",
		SourceURL: "upload", Metadata: `{"input_shape":[4]}`}
	m.BlobKey = storage.ModelBlobKey(m.ID)
	n, err := h.blobs.Put(ctx, m.BlobKey, bytes.NewReader([]byte("not a torchscript module")))
	if err != nil {
		t.Fatal(err)
	}
	job, err := h.jobs.RegisterModel(ctx, m, []records.Blob{{Key: m.BlobKey, ContentType: "application/octet-stream", Size: n}})
	if err != nil {
		t.Fatal(err)
	}
	if job.Kind != jobs.ValidateModel.Name || !strings.HasPrefix(job.ID, "mjob_") {
		t.Errorf("validation job kind %q id %q", job.Kind, job.ID)
	}
	if got, err := h.db.ModelByID(ctx, m.ID); err != nil || got.Status != records.ModelProcessing {
		t.Fatalf("registered model status %q (%v), want processing", got.Status, err)
	}
	h.run()

	failed := h.waitStatus(job.ID, records.JobFailed)
	if failed.Error == "" {
		t.Error("failed validation job has no error")
	}
	if failed.Attempts != 1 {
		t.Errorf("attempts = %d, want 1 (a permanent failure)", failed.Attempts)
	}
	if !torch.Available() && failed.Error != torch.Reason() {
		t.Errorf("job error = %q, want the engine's reason %q", failed.Error, torch.Reason())
	}
	got, err := h.db.ModelByID(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != records.ModelFailed {
		t.Errorf("model status = %q, want failed", got.Status)
	}
	if got.Error == "" || got.Error != failed.Error {
		t.Errorf("model error = %q, want the job's %q", got.Error, failed.Error)
	}
	if got.Metrics != "" && got.Metrics != "{}" {
		t.Errorf("failed model has metrics %q", got.Metrics)
	}
	if n := h.resultCount(job.ID); n != 0 {
		t.Errorf("failed validation has %d result rows", n)
	}
	// The uploaded file stays the job's blob: deleting the model deletes it.
	if bs := h.blobRows(job.ID); len(bs) != 1 || bs[0].Key != m.BlobKey {
		t.Errorf("validation job blobs = %+v, want the model file", bs)
	}
	if !h.blobExists(m.BlobKey) {
		t.Error("the model file was deleted by the failed validation")
	}
}

// TestModelValidationFailedUpdate checks the failure hook on its own.
func TestModelValidationFailedUpdate(t *testing.T) {
	sub, err := jobs.ValidateModel.Submission(jobs.ValidateModelInput{ModelID: "mdl_x"})
	if err != nil {
		t.Fatal(err)
	}
	u := modelValidationFailed(records.Job{Kind: jobs.ValidateModel.Name, Input: sub.Input}, "boom")
	if u == nil || *u != (storage.ModelUpdate{ID: "mdl_x", Status: records.ModelFailed, Error: "boom"}) {
		t.Errorf("update = %+v", u)
	}
	if u := modelValidationFailed(records.Job{Input: "{"}, "boom"); u != nil {
		t.Errorf("undecodable input gives %+v, want nil", u)
	}
	if u := modelValidationFailed(records.Job{Input: "{}"}, "boom"); u != nil {
		t.Errorf("input without model id gives %+v, want nil", u)
	}
}
