package worker

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
	"github.com/wardenlab/warden/worker/runner"
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

// TestValidateModelRecordsDownloadedFileSize: a model registered by
// model_file_url gets its file's key and size recorded when the worker
// downloads it (the org's storage quota counts the size), whether or not
// the file then loads.
func TestValidateModelRecordsDownloadedFileSize(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	file := bytes.Repeat([]byte("PK\x03\x04model"), 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(file) }))
	t.Cleanup(srv.Close)
	m := &records.Model{ID: storage.NewModelID(), OrgID: h.org.OrgID, Name: "by-url", Type: "CV",
		SourceURL: srv.URL + "/m.pt", Metadata: `{"input_shape":[4]}`}
	job, err := h.jobs.RegisterModel(ctx, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.run()
	h.waitStatus(job.ID, records.JobFailed)
	got, err := h.db.ModelByID(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.BlobKey != storage.ModelBlobKey(m.ID) || got.FileSize != int64(len(file)) {
		t.Errorf("model blob %q size %d, want %q %d", got.BlobKey, got.FileSize, storage.ModelBlobKey(m.ID), len(file))
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

// TestModelCacheSweep: a cached model file whose model was deleted, or
// whose model row changed since, is removed; the current one stays.
func TestModelCacheSweep(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	m := records.Model{ID: "mdl_cached", OrgID: h.org.OrgID, Name: "m", Type: "CV", Status: records.ModelActive, Metadata: `{"input_shape":[4]}`}
	if err := h.db.Gorm().Create(&m).Error; err != nil {
		t.Fatal(err)
	}
	m, err := h.db.ModelByID(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(h.cfg.DataDir, "model-cache")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	current := filepath.Join(dir, fmt.Sprintf("%s-%d.pt", m.ID, m.UpdatedAt.UnixNano()))
	stale := filepath.Join(dir, m.ID+"-1.pt")
	deleted := filepath.Join(dir, "mdl_deleted-42.pt")
	for _, f := range []string{current, stale, deleted} {
		if err := os.WriteFile(f, []byte("PK"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	h.w.sweepModelCache(ctx)
	if !fileExists(current) {
		t.Error("the current version was removed")
	}
	if fileExists(stale) || fileExists(deleted) {
		t.Error("a stale or deleted model's file is still cached")
	}
}

// TestCompleteMetadata: what validation inferred is written into a model's
// metadata only when the owner left it out, with the owner's keys kept; a
// runner's answer that the owner could not have given fails the model.
func TestCompleteMetadata(t *testing.T) {
	cases := []struct {
		name, typ, md  string
		v              runner.Validation
		want, inferred string
		fails          bool
	}{
		{"shape inferred", "CV", `{"framework":"pytorch"}`, runner.Validation{InputShape: []int{1, 28, 28}},
			`{"framework":"pytorch","input_shape":[1,28,28]}`, "input_shape", false},
		{"shape given", "CV", `{"input_shape":[4]}`, runner.Validation{InputShape: []int{4}}, "", "", false},
		{"text tokenizer detected", "NLP", `{"trained_on":"public_spam_dataset"}`, runner.Validation{Tokenizer: "text"},
			`{"tokenizer":"text","trained_on":"public_spam_dataset"}`, "tokenizer", false},
		{"bow given", "NLP", `{"vocabulary":["a","b"]}`, runner.Validation{Tokenizer: "bow"}, "", "", false},
		{"hostile shape", "CV", `{}`, runner.Validation{InputShape: []int{7, 9999, 9999}}, "", "", true},
		{"no shape reported", "CV", `{}`, runner.Validation{}, "", "", true},
		{"no tokenizer reported", "NLP", `{}`, runner.Validation{}, "", "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			md, inferred, err := completeMetadata(records.Model{Type: c.typ, Metadata: c.md}, &c.v)
			if c.fails {
				if _, perm := err.(*permanentError); err == nil || !perm {
					t.Fatalf("completed %q (%v), want a permanent error", md, err)
				}
				return
			}
			if err != nil || md != c.want || inferred != c.inferred {
				t.Errorf("= %q, %q, %v; want %q, %q", md, inferred, err, c.want, c.inferred)
			}
		})
	}
}
