package worker

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// tombstone loads key's queued deletion; ok is false when there is none.
func (h *harness) tombstone(key string) (records.BlobDeletion, bool) {
	h.t.Helper()
	var rows []records.BlobDeletion
	if err := h.db.Gorm().Where("key = ?", key).Find(&rows).Error; err != nil {
		h.t.Fatal(err)
	}
	if len(rows) == 0 {
		return records.BlobDeletion{}, false
	}
	return rows[0], true
}

// makeDue moves every queued deletion's next try into the past.
func (h *harness) makeDue() {
	h.t.Helper()
	if err := h.db.Gorm().Exec("UPDATE blob_deletions SET next_at = ?", time.Now().UTC().Add(-time.Second)).Error; err != nil {
		h.t.Fatal(err)
	}
}

// submitVerify submits a verification job (of org, or anonymous for "")
// whose input file is stored, finished finishedAgo ago.
func (h *harness) submitVerify(org string, finishedAgo time.Duration) (records.Job, string) {
	h.t.Helper()
	ctx := context.Background()
	key := "jobs/" + uuid.NewString() + "/input"
	n, err := h.blobs.Put(ctx, key, strings.NewReader("image bytes"))
	if err != nil {
		h.t.Fatal(err)
	}
	sub, err := jobs.VerifyMedia.Submission(jobs.VerifyInput{Source: "upload", ContentType: "image/png", Size: n, BlobKey: key})
	if err != nil {
		h.t.Fatal(err)
	}
	sub.OrgID, sub.Blobs = org, []records.Blob{{Key: key, ContentType: "image/png", Size: n}}
	j, err := h.jobs.Submit(ctx, sub)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.db.Gorm().Model(&records.Job{}).Where("id = ?", j.ID).
		Updates(map[string]any{"status": records.JobCompleted, "finished_at": time.Now().UTC().Add(-finishedAgo)}).Error; err != nil {
		h.t.Fatal(err)
	}
	return j, key
}

// TestReconcileRetriesBlobDeletions: a job deleted by a process that died
// before deleting its file, and an anonymous job swept while the blob
// store fails, both leave tombstones; the reconciler keeps them (counting
// the failures) while the store fails and deletes the files once it works.
func TestReconcileRetriesBlobDeletions(t *testing.T) {
	h := newHarness(t, reconcileEvery(time.Minute), func(c *config.Config) { c.AnonymousRetention = time.Hour })
	ctx := context.Background()
	flaky := testenv.NewFlakyBlobs(h.blobs, -1)
	h.w.Blobs = flaky

	owned, ownedKey := h.submitVerify(h.org.OrgID, 0)
	if _, err := h.db.DeleteJob(ctx, owned.ID); err != nil { // and the process dies
		t.Fatal(err)
	}
	_, sweptKey := h.submitVerify("", 2*time.Hour)

	if err := h.w.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{ownedKey, sweptKey} {
		ts, ok := h.tombstone(key)
		if !ok || ts.Attempts != 1 || ts.LastError == "" || !ts.NextAt.After(time.Now()) {
			t.Errorf("tombstone of %s while the store fails: %+v (present %v)", key, ts, ok)
		}
		if !h.blobExists(key) {
			t.Errorf("%s is gone although every delete failed", key)
		}
	}
	// Not due: a second round does not hammer the broken store.
	tried := flaky.Deletes()
	if err := h.w.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if flaky.Deletes() != tried {
		t.Errorf("%d deletes tried before the next try was due", flaky.Deletes()-tried)
	}

	flaky.FailDeletes(0)
	h.makeDue()
	if err := h.w.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{ownedKey, sweptKey} {
		if h.blobExists(key) {
			t.Errorf("%s is still stored after the store recovered", key)
		}
		if _, ok := h.tombstone(key); ok {
			t.Errorf("the tombstone of %s outlived the delete", key)
		}
	}
}

// TestValidationDiscardsFileOfDeletedModel: a model deleted while its
// validation downloads the file does not leave the file behind.
func TestValidationDiscardsFileOfDeletedModel(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := storage.NewModelID()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, err := h.db.DeleteModel(r.Context(), h.org.OrgID, id); err != nil {
			t.Errorf("delete model during the download: %v", err)
		}
		w.Write([]byte("model bytes"))
	}))
	defer srv.Close()
	m := &records.Model{ID: id, OrgID: h.org.OrgID, Name: "racing", Type: "CV", SourceURL: srv.URL + "/model.pt", Metadata: `{"input_shape":[4]}`}
	job, err := h.jobs.RegisterModel(ctx, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.run()
	failed := h.waitStatus(job.ID, records.JobFailed)
	if !strings.Contains(failed.Error, "no longer exists") {
		t.Errorf("job error %q, want the model gone", failed.Error)
	}
	key := storage.ModelBlobKey(id)
	if h.blobExists(key) {
		t.Error("the downloaded file of the deleted model is stored")
	}
	if _, ok := h.tombstone(key); ok {
		t.Error("a tombstone is left although the file was deleted")
	}
}
