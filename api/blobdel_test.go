package api_test

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// tombstones lists the queued blob deletions.
func (h *apiHarness) tombstones() []records.BlobDeletion {
	h.t.Helper()
	var rows []records.BlobDeletion
	if err := h.db.Gorm().Order("key").Find(&rows).Error; err != nil {
		h.t.Fatal(err)
	}
	return rows
}

// storedModel registers a model of org with its file stored, as an upload
// does, without a worker.
func (h *apiHarness) storedModel(org string) records.Model {
	h.t.Helper()
	ctx := context.Background()
	id := storage.NewModelID()
	m := records.Model{ID: id, OrgID: org, Name: "doomed", Type: "CV", Status: records.ModelActive, SourceURL: "upload", BlobKey: storage.ModelBlobKey(id)}
	n, err := h.blobs.Put(ctx, m.BlobKey, strings.NewReader("torchscript bytes"))
	if err != nil {
		h.t.Fatal(err)
	}
	job := records.Job{ID: "mjob_" + id, OrgID: &m.OrgID, Kind: "validate_model", Queue: "cpu", Status: records.JobCompleted, Input: "{}", Deadline: time.Now().Add(time.Hour)}
	if err := h.db.CreateModel(ctx, &m, &job, []records.Blob{{Key: m.BlobKey, Size: n}}, storage.Quota{}); err != nil {
		h.t.Fatal(err)
	}
	return m
}

// TestDeleteModelWhenBlobDeleteFails: the blob store refuses the delete;
// the client still gets 200 (the model is gone), the file stays queued
// with the failure recorded, and a later retry deletes it.
func TestDeleteModelWhenBlobDeleteFails(t *testing.T) {
	var flaky *testenv.FlakyBlobs
	h := newAPIHarnessBlobs(t, func(b storage.BlobStore) storage.BlobStore {
		flaky = testenv.NewFlakyBlobs(b, 1)
		return flaky
	})
	a, b := h.org("org-a"), h.org("org-b")
	m := h.storedModel(a.OrgID)

	if r := h.do("DELETE", "/v1/models/"+m.ID, nil, as(b)); r.Code != http.StatusNotFound {
		t.Fatalf("another org's DELETE: %d %s, want 404", r.Code, r.Raw)
	}
	if n := len(h.tombstones()); n != 0 || flaky.Deletes() != 0 {
		t.Fatalf("a refused DELETE queued %d files and tried %d deletes", n, flaky.Deletes())
	}

	r := h.do("DELETE", "/v1/models/"+m.ID, nil, as(a))
	if r.Code != http.StatusOK || r.Body["id"] != m.ID || r.Body["deleted"] != true {
		t.Fatalf("DELETE: %d %s, want 200 {id, deleted: true}", r.Code, r.Raw)
	}
	if r := h.do("GET", "/v1/models/"+m.ID, nil, as(a)); r.Code != http.StatusNotFound {
		t.Errorf("GET after DELETE: %d, want 404", r.Code)
	}
	ts := h.tombstones()
	if len(ts) != 1 || ts[0].Key != m.BlobKey || ts[0].Attempts != 1 || ts[0].LastError == "" {
		t.Fatalf("tombstones %+v, want the model file with one failed attempt", ts)
	}
	if files := h.blobFiles(); len(files) != 1 {
		t.Fatalf("stored files %v, want the model file still there", files)
	}

	del, failed, err := h.db.RetryBlobDeletions(context.Background(), flaky, ts[0].NextAt, 10)
	if err != nil || del != 1 || failed != 0 {
		t.Fatalf("retry: %d deleted, %d failed, %v", del, failed, err)
	}
	if files := h.blobFiles(); len(files) != 0 {
		t.Errorf("stored files after the retry: %v", files)
	}
	if ts := h.tombstones(); len(ts) != 0 {
		t.Errorf("tombstones after the retry: %+v", ts)
	}
}

// TestDeleteModelDeletesFile: with a working store the file and its
// tombstone go at once.
func TestDeleteModelDeletesFile(t *testing.T) {
	h := newAPIHarness(t)
	a := h.org("org-a")
	m := h.storedModel(a.OrgID)
	if r := h.do("DELETE", "/v1/models/"+m.ID, nil, as(a)); r.Code != http.StatusOK {
		t.Fatalf("DELETE: %d %s", r.Code, r.Raw)
	}
	if files := h.blobFiles(); len(files) != 0 {
		t.Errorf("stored files after DELETE: %v", files)
	}
	if ts := h.tombstones(); len(ts) != 0 {
		t.Errorf("tombstones after DELETE: %+v", ts)
	}
	if r := h.do("DELETE", "/v1/models/"+m.ID, nil, as(a)); r.Code != http.StatusNotFound {
		t.Errorf("second DELETE: %d, want 404", r.Code)
	}
}

// TestRejectedUploadIsQueuedWhenDeleteFails: an upload stored before the
// request was refused (a bad callback_url) is deleted through a
// tombstone, so a failing store does not keep it forever.
func TestRejectedUploadIsQueuedWhenDeleteFails(t *testing.T) {
	var flaky *testenv.FlakyBlobs
	h := newAPIHarnessBlobs(t, func(b storage.BlobStore) storage.BlobStore {
		flaky = testenv.NewFlakyBlobs(b, 1)
		return flaky
	})
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "photo.png")
	fw.Write(pngBytes(t))
	mw.WriteField("callback_url", "ftp://example.com/hook")
	mw.Close()
	if r := h.do("POST", "/api/verify", &body, withContentType(mw.FormDataContentType())); r.Code != http.StatusBadRequest {
		t.Fatalf("POST with a bad callback: %d %s, want 400", r.Code, r.Raw)
	}
	if h.jobCount() != 0 {
		t.Fatal("a refused upload created a job")
	}
	ts := h.tombstones()
	if len(ts) != 1 || ts[0].Reason != "abandoned upload" || ts[0].Attempts != 1 || len(h.blobFiles()) != 1 {
		t.Fatalf("tombstones %+v, files %v: want the upload queued after the failed delete", ts, h.blobFiles())
	}
	if left := h.db.PurgeBlobs(context.Background(), flaky, []string{ts[0].Key}); left != 0 || len(h.blobFiles()) != 0 {
		t.Fatalf("purge: %d left, files %v", left, h.blobFiles())
	}
}
