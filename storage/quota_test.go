package storage_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// quotaOrg creates an org and answers its id as a job's org.
func quotaOrg(t *testing.T, db *storage.DB, name string) *string {
	t.Helper()
	c, err := db.CreateOrg(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return &c.OrgID
}

// submit creates a job of org (nil: anonymous) under q, owning one input
// blob of size bytes when size > 0; it answers the job and CreateJob's error.
func submit(db *storage.DB, org *string, q storage.Quota, size int64) (records.Job, error) {
	j := records.Job{ID: uuid.NewString(), OrgID: org, Kind: "probe", Queue: "cpu", Input: "{}", Deadline: time.Now().Add(time.Hour)}
	var blobs []records.Blob
	if size > 0 {
		blobs = []records.Blob{{Key: "jobs/" + j.ID + "/input", Size: size}}
	}
	return j, db.CreateJob(context.Background(), &j, blobs, q)
}

// mustSubmit is submit that fails the test on an error.
func mustSubmit(t *testing.T, db *storage.DB, org *string, q storage.Quota, size int64) records.Job {
	t.Helper()
	j, err := submit(db, org, q, size)
	if err != nil {
		t.Fatalf("submission refused: %v", err)
	}
	return j
}

// refused checks that err is a quota refusal with code and details, and
// that the job was not written, nor any blob row of it.
func refused(t *testing.T, db *storage.DB, j records.Job, err error, code string, details map[string]string) {
	t.Helper()
	if warden.ErrorCode(err) != code {
		t.Fatalf("error %v, want %s", err, code)
	}
	got := warden.ErrorDetails(err)
	for k, v := range details {
		if got[k] != v {
			t.Errorf("details[%s] = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if _, err := db.JobByID(context.Background(), j.ID); warden.ErrorCode(err) != warden.ENOTFOUND {
		t.Errorf("refused job %s was written (%v)", j.ID, err)
	}
	if blobs, _ := db.JobBlobs(context.Background(), j.ID); len(blobs) != 0 {
		t.Errorf("refused job %s left blob rows %+v", j.ID, blobs)
	}
}

func countJobs(t *testing.T, db *storage.DB, org *string) int64 {
	t.Helper()
	var n int64
	if err := db.Gorm().Model(&records.Job{}).Where("org_id = ?", *org).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// TestQuotaActiveJobs: at the cap, a job (with or without a file) is
// refused with the count and the cap; a job that completes, fails or is
// cancelled frees its slot; other orgs, anonymous jobs and a zero cap are
// not limited.
func TestQuotaActiveJobs(t *testing.T) {
	dialects(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		q := storage.Quota{MaxActiveJobs: 3}
		a, b := quotaOrg(t, db, "a"), quotaOrg(t, db, "b")
		var held []records.Job
		for range 3 {
			held = append(held, mustSubmit(t, db, a, q, 0))
		}
		want := map[string]string{"active_jobs": "3", "max_active_jobs": "3"}
		j, err := submit(db, a, q, 0)
		refused(t, db, j, err, warden.EQUOTAJOBS, want)
		j, err = submit(db, a, q, 10) // the transaction path (a file) counts the same
		refused(t, db, j, err, warden.EQUOTAJOBS, want)

		// Cross-tenant: org b has its own count; anonymous jobs are not
		// counted; a zero cap is unlimited.
		for range 3 {
			mustSubmit(t, db, b, q, 0)
		}
		for range 5 {
			mustSubmit(t, db, nil, q, 1)
			mustSubmit(t, db, a, storage.Quota{}, 0)
		}
		j, err = submit(db, b, q, 0)
		refused(t, db, j, err, warden.EQUOTAJOBS, want)

		// Each way a job ends frees a slot of org a (which now has 3 + 5).
		q = storage.Quota{MaxActiveJobs: 8}
		if _, ok, err := db.StartJob(ctx, held[0].ID); !ok || err != nil {
			t.Fatalf("start: %v %v", ok, err)
		}
		if done, err := db.CompleteJob(ctx, held[0].ID, storage.Completion{Result: records.Result{Data: "{}"}}); !done || err != nil {
			t.Fatalf("complete: %v %v", done, err)
		}
		mustSubmit(t, db, a, q, 0)
		j, err = submit(db, a, q, 0)
		refused(t, db, j, err, warden.EQUOTAJOBS, map[string]string{"active_jobs": "8"})
		if done, err := db.CancelJob(ctx, held[1].ID, nil); !done || err != nil {
			t.Fatalf("cancel: %v %v", done, err)
		}
		mustSubmit(t, db, a, q, 0)
		if done, err := db.FailJob(ctx, held[2].ID, "boom", storage.Failure{}); !done || err != nil {
			t.Fatalf("fail: %v %v", done, err)
		}
		mustSubmit(t, db, a, q, 7)
		j, err = submit(db, a, q, 0)
		refused(t, db, j, err, warden.EQUOTAJOBS, map[string]string{"active_jobs": "8"})
	})
}

// TestQuotaConcurrentSubmissions: 20 submissions at once, with and
// without files, under a cap of 5 for each of two orgs: exactly 5 of each
// org are written, and every other one is refused with EQUOTAJOBS.
func TestQuotaConcurrentSubmissions(t *testing.T) {
	dialects(t, func(t *testing.T, db *storage.DB) {
		q := storage.Quota{MaxActiveJobs: 5, MaxStoredBytes: 1 << 30}
		orgs := []*string{quotaOrg(t, db, "a"), quotaOrg(t, db, "b")}
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			accepted = map[string]int{}
			others   []error
		)
		start := make(chan struct{})
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				org := orgs[i%2]
				<-start
				_, err := submit(db, org, q, int64(i%3)) // size 0: the batched insert; else the transaction
				mu.Lock()
				defer mu.Unlock()
				switch warden.ErrorCode(err) {
				case "":
					accepted[*org]++
				case warden.EQUOTAJOBS:
				default:
					others = append(others, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		for _, err := range others {
			t.Errorf("unexpected error: %v", err)
		}
		for _, org := range orgs {
			if accepted[*org] != 5 || countJobs(t, db, org) != 5 {
				t.Errorf("org %s: %d accepted, %d rows; want 5", *org, accepted[*org], countJobs(t, db, org))
			}
		}
	})
}

// TestQuotaStoredBytes: an upload that would pass the byte cap is refused
// with the bytes stored, the cap and its size, writing nothing; inputs,
// artifacts and model files count (an uploaded model file once), deleting
// frees room, and other orgs, anonymous jobs and a zero cap are not
// limited.
func TestQuotaStoredBytes(t *testing.T) {
	dialects(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		q := storage.Quota{MaxStoredBytes: 1000}
		a, b := quotaOrg(t, db, "a"), quotaOrg(t, db, "b")
		first := mustSubmit(t, db, a, q, 600)
		j, err := submit(db, a, q, 401)
		refused(t, db, j, err, warden.EQUOTABYTES, map[string]string{"stored_bytes": "600", "max_stored_bytes": "1000", "upload_bytes": "401"})
		mustSubmit(t, db, a, q, 400) // exactly the cap
		j, err = submit(db, a, q, 1)
		refused(t, db, j, err, warden.EQUOTABYTES, map[string]string{"stored_bytes": "1000", "upload_bytes": "1"})
		mustSubmit(t, db, a, q, 0) // a job without a file is not refused for bytes
		mustSubmit(t, db, b, q, 1000)
		mustSubmit(t, db, nil, q, 5000)
		mustSubmit(t, db, a, storage.Quota{}, 5000) // unlimited

		// A model file: refused while the org is full, whether uploaded or
		// to be downloaded; a model served by an endpoint stores nothing.
		model := func(id string, size int64, endpoint string) error {
			m := &records.Model{ID: id, OrgID: *b, Name: id, Type: "CV", Status: records.ModelProcessing, EndpointURL: endpoint}
			var blobs []records.Blob
			if size > 0 {
				m.BlobKey, m.FileSize = storage.ModelBlobKey(id), size
				blobs = []records.Blob{{Key: m.BlobKey, Size: size}}
			}
			job := records.Job{ID: uuid.NewString(), OrgID: b, Kind: "validate_model", Queue: "cpu", Input: "{}", Deadline: time.Now().Add(time.Hour)}
			return db.CreateModel(ctx, m, &job, blobs, q)
		}
		if err := model("mdl_up", 10, ""); warden.ErrorCode(err) != warden.EQUOTABYTES {
			t.Fatalf("model upload into a full org: %v", err)
		}
		if err := model("mdl_url", 0, ""); warden.ErrorCode(err) != warden.EQUOTABYTES {
			t.Fatalf("model_file_url into a full org: %v", err)
		}
		if _, err := db.ModelByID(ctx, "mdl_up"); warden.ErrorCode(err) != warden.ENOTFOUND {
			t.Fatalf("refused model was written: %v", err)
		}
		if err := model("mdl_ep", 0, "https://models.example/predict"); err != nil {
			t.Fatalf("endpoint model: %v", err)
		}

		// Deleting frees room; an uploaded model file counts once (its
		// blob row on the validation job is not counted again), a
		// downloaded one by the size SetModelBlob records, and artifacts
		// by their blob rows.
		bJobs := []records.Job{}
		db.Gorm().Where("org_id = ? AND kind = ?", *b, "probe").Find(&bJobs)
		if _, err := db.DeleteJob(ctx, bJobs[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := model("mdl_up", 100, ""); err != nil {
			t.Fatalf("model upload: %v", err)
		}
		if err := model("mdl_url", 0, ""); err != nil {
			t.Fatalf("model_file_url: %v", err)
		}
		if err := db.SetModelBlob(ctx, "mdl_url", storage.ModelBlobKey("mdl_url"), 200); err != nil {
			t.Fatal(err)
		}
		art := mustSubmit(t, db, b, q, 0)
		if _, ok, err := db.StartJob(ctx, art.ID); !ok || err != nil {
			t.Fatalf("start: %v %v", ok, err)
		}
		if done, err := db.CompleteJob(ctx, art.ID, storage.Completion{Result: records.Result{Data: "{}"},
			Blobs: []records.Blob{{Key: storage.ArtifactKey(art.ID, 1, "x.png"), Size: 50}}}); !done || err != nil {
			t.Fatalf("complete: %v %v", done, err)
		}
		j, err = submit(db, b, q, 651)
		refused(t, db, j, err, warden.EQUOTABYTES, map[string]string{"stored_bytes": "350"})
		mustSubmit(t, db, b, q, 650)

		if _, err := db.DeleteJob(ctx, first.ID); err != nil {
			t.Fatal(err)
		}
		mustSubmit(t, db, a, storage.Quota{MaxStoredBytes: 6000}, 600)
	})
}

// TestQuotaZeroIsUnlimited: with no cap an org submits past any count or
// size the other tests refuse.
func TestQuotaZeroIsUnlimited(t *testing.T) {
	dialects(t, func(t *testing.T, db *storage.DB) {
		a := quotaOrg(t, db, "a")
		for i := range 30 {
			mustSubmit(t, db, a, storage.Quota{}, int64(i%2)<<40)
		}
		if n := countJobs(t, db, a); n != 30 {
			t.Fatalf("%d jobs written, want 30", n)
		}
	})
}

// TestMigrationFillsModelFileSizes: migration 7 gives a model stored
// before it the size of its uploaded file's blob row; a model without one
// (downloaded from model_file_url, or served by an endpoint) keeps 0.
func TestMigrationFillsModelFileSizes(t *testing.T) {
	dialects(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		g := db.Gorm()
		up := records.Model{ID: "mdl_up", OrgID: "org_x", Name: "up", Type: "CV", Status: records.ModelActive, BlobKey: storage.ModelBlobKey("mdl_up")}
		url := records.Model{ID: "mdl_url", OrgID: "org_x", Name: "url", Type: "CV", Status: records.ModelActive, BlobKey: storage.ModelBlobKey("mdl_url")}
		if err := g.Create([]records.Model{up, url}).Error; err != nil {
			t.Fatal(err)
		}
		if err := g.Create(&records.Blob{Key: up.BlobKey, JobID: "job_v", Size: 1234}).Error; err != nil {
			t.Fatal(err)
		}
		if err := g.Exec("DELETE FROM schema_migrations WHERE version = 7").Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string]int64{"mdl_up": 1234, "mdl_url": 0} {
			m, err := db.ModelByID(ctx, id)
			if err != nil || m.FileSize != want {
				t.Errorf("%s: file_size %d (%v), want %d", id, m.FileSize, err, want)
			}
		}
	})
}
