package worker

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// TestValidateModelFromS3Import: on an S3 blob store the worker reads an
// s3:// model_file_url from the org's import folder into the model's own
// blob (size recorded for the quota) and hands a runner a local copy; a
// URL naming another org's folder or a missing object fails the job
// without touching the bucket. The model row is written directly, as if
// the API's own check (TestS3BlobStore) had been bypassed.
func TestValidateModelFromS3Import(t *testing.T) {
	srv := testenv.S3(t)
	h := newHarness(t, srv.Configure)
	ctx := context.Background()
	other := testenv.Org(t, h.db, "s3-other")
	file := bytes.Repeat([]byte("PK\x03\x04model"), 1000)
	put := func(key string) {
		if _, err := srv.Client.PutObject(ctx, srv.Bucket, key, bytes.NewReader(file), int64(len(file)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mine := storage.ImportPrefix(h.org.OrgID) + "cnn.pt"
	theirs := storage.ImportPrefix(other.OrgID) + "cnn.pt"
	put(mine)
	put(theirs)
	register := func(key string) (*records.Model, records.Job) {
		m := &records.Model{ID: storage.NewModelID(), OrgID: h.org.OrgID, Name: "s3", Type: "CV",
			SourceURL: "s3://" + srv.Bucket + "/" + key, Metadata: `{"input_shape":[4]}`}
		job, err := h.jobs.RegisterModel(ctx, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		return m, job
	}
	own, ownJob := register(mine)
	stolen, stolenJob := register(theirs)
	missing, missingJob := register(storage.ImportPrefix(h.org.OrgID) + "none.pt")
	h.run()

	// The file is no TorchScript module: validation fails after the copy.
	h.waitStatus(ownJob.ID, records.JobFailed)
	got, err := h.db.ModelByID(ctx, own.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.BlobKey != storage.ModelBlobKey(own.ID) || got.FileSize != int64(len(file)) {
		t.Errorf("model blob %q size %d, want %q %d", got.BlobKey, got.FileSize, storage.ModelBlobKey(own.ID), len(file))
	}
	rc, err := h.blobs.Open(ctx, storage.ModelBlobKey(own.ID))
	if err != nil {
		t.Fatal(err)
	}
	var copied bytes.Buffer
	copied.ReadFrom(rc)
	rc.Close()
	if !bytes.Equal(copied.Bytes(), file) {
		t.Errorf("the model's blob is %d bytes, not the imported file", copied.Len())
	}
	if ok := h.blobExists(mine); !ok {
		t.Error("the org's import was removed")
	}
	// What a runner opens is a local file, not the bucket.
	mf, _, err := h.w.modelFile(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	local, err := os.ReadFile(mf.Path)
	if err != nil || !bytes.Equal(local, file) || !strings.HasPrefix(mf.Path, filepath.Join(h.cfg.DataDir, "model-cache")) {
		t.Errorf("runner's model file %s: %d bytes, %v", mf.Path, len(local), err)
	}

	for _, c := range []struct {
		m    *records.Model
		job  records.Job
		want string
	}{
		{stolen, stolenJob, storage.ImportPrefix(h.org.OrgID)},
		{missing, missingJob, "no such object"},
	} {
		failed := h.waitStatus(c.job.ID, records.JobFailed)
		if !strings.Contains(failed.Error, c.want) || failed.Attempts != 1 {
			t.Errorf("%s: error %q after %d attempts, want a permanent failure naming %q", c.m.SourceURL, failed.Error, failed.Attempts, c.want)
		}
		if got, _ := h.db.ModelByID(ctx, c.m.ID); got.BlobKey != "" || got.FileSize != 0 {
			t.Errorf("%s: model blob %q size %d, want none", c.m.SourceURL, got.BlobKey, got.FileSize)
		}
		if h.blobExists(storage.ModelBlobKey(c.m.ID)) {
			t.Errorf("%s: a model blob was written", c.m.SourceURL)
		}
	}
}
