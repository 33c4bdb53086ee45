package api_test

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// TestS3BlobStore runs the API on an S3 blob store (a real S3 server):
// spec 000 uploads at Warden's signed URLs are checked and then stored in
// the bucket, an invalid one stores nothing; a spec 003 upload lands in
// the bucket and leaves it with DELETE; spec 002's s3:// model_file_url is
// accepted from the org's own import folder only.
func TestS3BlobStore(t *testing.T) {
	srv := testenv.S3(t)
	h := newAPIHarness(t, srv.Configure)
	if _, ok := h.blobs.(*storage.S3Blobs); !ok {
		t.Fatalf("blob store %T, want S3Blobs", h.blobs)
	}
	org, other := h.org("s3-org"), h.org("s3-other")
	ctx := context.Background()

	t.Run("AISpectra uploads", func(t *testing.T) {
		res := h.aisRegister("IC", "MEA", as(org))
		urls := urlsOf(t, res)
		id, _ := res.Body["model_id"].(string)
		for name := range urls {
			if u, _ := urls[name].(string); !strings.HasPrefix(u, h.cfg.PublicURL+"/") {
				t.Errorf("%s upload URL %q is not Warden's own", name, u)
			}
		}
		files := icFiles(t)
		wantAISError(t, h.aisPut(uploadPath(t, urls["label"]), []byte("not a zip")), 400, "")
		if ok, err := h.blobs.Exists(ctx, storage.AISBlobKey(id, "label")); ok || err != nil {
			t.Fatalf("an invalid upload reached the bucket: %v %v", ok, err)
		}
		var last apiResponse
		for _, name := range []string{"model", "data", "label"} {
			if last = h.aisPut(uploadPath(t, urls[name]), files[name]); last.Code != 200 || last.Body["status"] != "valid" {
				t.Fatalf("%s upload: %d %s", name, last.Code, last.Raw)
			}
		}
		if last.Body["registration_status"] != records.AISReady {
			t.Fatalf("registration after three uploads: %s", last.Raw)
		}
		keys := srv.Keys(t)
		for _, name := range []string{"model", "data", "label"} {
			key := storage.AISBlobKey(id, name)
			if !slices.Contains(keys, key) {
				t.Fatalf("bucket holds %q, want %s", keys, key)
			}
			obj, err := srv.Client.GetObject(ctx, srv.Bucket, key, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			got.ReadFrom(obj)
			obj.Close()
			if !bytes.Equal(got.Bytes(), files[name]) {
				t.Errorf("%s in the bucket: %d bytes, differs from the %d uploaded", name, got.Len(), len(files[name]))
			}
		}
	})

	t.Run("verification upload and delete", func(t *testing.T) {
		id := h.submitVerify(as(org))
		key := "jobs/" + id + "/input"
		if !slices.Contains(srv.Keys(t), key) {
			t.Fatalf("bucket holds %q, want %s", srv.Keys(t), key)
		}
		if r := h.do("DELETE", "/api/verify/"+id, nil, as(org)); r.Code != 200 {
			t.Fatalf("DELETE: %d %s", r.Code, r.Raw)
		}
		if slices.Contains(srv.Keys(t), key) {
			t.Fatalf("%s still in the bucket after DELETE", key)
		}
	})

	t.Run("s3 model_file_url", func(t *testing.T) {
		dev := h.withRole(org, records.RoleDeveloper)
		mine := "s3://" + srv.Bucket + "/" + storage.ImportPrefix(org.OrgID) + "models/cnn.pt"
		register := func(u string) apiResponse {
			return h.postJSON("/v1/models", `{"name":"s3 model","type":"CV","model_file_url":"`+u+`","metadata":{"input_shape":[1,28,28]}}`, as(dev))
		}
		if r := register(mine); r.Code != http.StatusCreated || r.Body["status"] != records.ModelProcessing {
			t.Fatalf("own import folder: %d %s", r.Code, r.Raw)
		}
		for name, u := range map[string]string{
			"another org's folder": "s3://" + srv.Bucket + "/" + storage.ImportPrefix(other.OrgID) + "models/cnn.pt",
			"Warden's own blob":    "s3://" + srv.Bucket + "/" + storage.AISBlobKey("ais_x", "model"),
			"another bucket":       "s3://" + srv.NewBucket(t) + "/" + storage.ImportPrefix(org.OrgID) + "models/cnn.pt",
			"climbing out":         "s3://" + srv.Bucket + "/" + storage.ImportPrefix(org.OrgID) + "../" + other.OrgID + "/cnn.pt",
		} {
			r := register(u)
			assertSandboxError(t, name, r, http.StatusBadRequest, "invalid")
			why, _ := r.Body["details"].(map[string]any)["model_file_url"].(string)
			if !strings.Contains(why, storage.ImportPrefix(org.OrgID)) {
				t.Errorf("%s: details %v, want the org's import folder named", name, r.Body["details"])
			}
		}
	})
}
