package storage_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// blobFixture is a job whose input file is really stored.
type blobFixture struct {
	db    *storage.DB
	local *storage.LocalBlobs
	job   records.Job
	key   string
}

func newBlobFixture(t *testing.T, db *storage.DB) blobFixture {
	t.Helper()
	local, err := storage.NewLocalBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := blobFixture{db: db, local: local, job: newJob(db, t, nil)}
	f.key = "jobs/" + f.job.ID + "/input"
	if _, err := local.Put(context.Background(), f.key, strings.NewReader("tenant data")); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f blobFixture) stored(t *testing.T, key string) bool {
	t.Helper()
	ok, err := f.local.Exists(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// tombstone loads key's tombstone; ok is false when there is none.
func (f blobFixture) tombstone(t *testing.T, key string) (records.BlobDeletion, bool) {
	t.Helper()
	var rows []records.BlobDeletion
	if err := f.db.Gorm().Where("key = ?", key).Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		return records.BlobDeletion{}, false
	}
	return rows[0], true
}

// TestBlobDeleteFailureIsRetried: a delete the blob store refuses keeps the
// tombstone with the attempt, the error and a later next try; the retry is
// not tried before it is due, and once the store recovers the file and the
// tombstone are gone.
func TestBlobDeleteFailureIsRetried(t *testing.T) {
	dialects(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		f := newBlobFixture(t, db)
		flaky := testenv.NewFlakyBlobs(f.local, 2)
		keys, err := db.DeleteJob(ctx, f.job.ID)
		if err != nil || len(keys) != 1 || keys[0] != f.key {
			t.Fatalf("delete job: %v %v", keys, err)
		}
		before := time.Now().UTC()
		if left := db.PurgeBlobs(ctx, flaky, keys); left != 1 {
			t.Fatalf("%d keys left after a failed delete, want 1", left)
		}
		ts, ok := f.tombstone(t, f.key)
		if !ok {
			t.Fatal("the tombstone was dropped although the delete failed")
		}
		if ts.Attempts != 1 || !strings.Contains(ts.LastError, testenv.ErrBlobDelete.Error()) || !strings.Contains(ts.Reason, f.job.ID) {
			t.Fatalf("tombstone after one failure: %+v", ts)
		}
		if d := ts.NextAt.Sub(before); d < 59*time.Second || d > 2*time.Minute {
			t.Fatalf("next try in %v, want about a minute", d)
		}
		if !f.stored(t, f.key) {
			t.Fatal("the file is gone although its delete failed")
		}

		// Not due yet: nothing is tried.
		if del, failed, err := db.RetryBlobDeletions(ctx, flaky, time.Now().UTC(), 10); err != nil || del != 0 || failed != 0 {
			t.Fatalf("retry before due: %d deleted, %d failed, %v", del, failed, err)
		}
		if flaky.Deletes() != 1 {
			t.Fatalf("%d deletes tried, want 1", flaky.Deletes())
		}
		// Due, and failing again: the delay doubles.
		if del, failed, err := db.RetryBlobDeletions(ctx, flaky, ts.NextAt, 10); err != nil || del != 0 || failed != 1 {
			t.Fatalf("second try: %d deleted, %d failed, %v", del, failed, err)
		}
		ts2, _ := f.tombstone(t, f.key)
		if d := ts2.NextAt.Sub(time.Now().UTC()); ts2.Attempts != 2 || d < 110*time.Second || d > 2*time.Minute+time.Second {
			t.Fatalf("after two failures: %+v (next in %v, want about 2m)", ts2, d)
		}
		// The store recovers.
		if del, failed, err := db.RetryBlobDeletions(ctx, flaky, ts2.NextAt, 10); err != nil || del != 1 || failed != 0 {
			t.Fatalf("third try: %d deleted, %d failed, %v", del, failed, err)
		}
		if f.stored(t, f.key) {
			t.Fatal("the file of the deleted job is still stored")
		}
		if _, ok := f.tombstone(t, f.key); ok {
			t.Fatal("the tombstone outlived the delete")
		}
		if n, err := db.CountBlobDeletions(ctx); err != nil || n != 0 {
			t.Fatalf("%d queued deletions, %v", n, err)
		}
	})
}

// TestBlobRetryDelayIsCapped: a store that never recovers is tried at
// most once an hour, and every failure is counted.
func TestBlobRetryDelayIsCapped(t *testing.T) {
	dialects(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		f := newBlobFixture(t, db)
		broken := testenv.NewFlakyBlobs(f.local, -1)
		keys, err := db.DeleteJob(ctx, f.job.ID)
		if err != nil {
			t.Fatal(err)
		}
		db.PurgeBlobs(ctx, broken, keys)
		var prev time.Duration
		for i := 2; i <= 10; i++ {
			ts, _ := f.tombstone(t, f.key)
			if _, failed, err := db.RetryBlobDeletions(ctx, broken, ts.NextAt, 10); err != nil || failed != 1 {
				t.Fatalf("try %d: %d failed, %v", i, failed, err)
			}
			ts, _ = f.tombstone(t, f.key)
			d := ts.NextAt.Sub(time.Now().UTC())
			if ts.Attempts != i || d > time.Hour+time.Second || d < prev-time.Second {
				t.Fatalf("after %d failures: attempts %d, next in %v (previous %v)", i, ts.Attempts, d, prev)
			}
			prev = d
		}
		if prev < time.Hour-time.Minute {
			t.Fatalf("the delay after 10 failures is %v, want the 1h cap", prev)
		}
		if n, _ := db.CountBlobDeletions(ctx); n != 1 {
			t.Fatalf("%d queued deletions, want 1", n)
		}
	})
}

// TestCrashAfterDeleteLeavesTombstone: the rows go and the process dies
// before deleting the file; the retry deletes it.
func TestCrashAfterDeleteLeavesTombstone(t *testing.T) {
	dialects(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		f := newBlobFixture(t, db)
		if _, err := db.DeleteJob(ctx, f.job.ID); err != nil {
			t.Fatal(err)
		}
		// (no PurgeBlobs: the process "died" here)
		if n, _ := db.CountBlobDeletions(ctx); n != 1 {
			t.Fatalf("%d queued deletions after the commit, want 1", n)
		}
		del, failed, err := db.RetryBlobDeletions(ctx, f.local, time.Now().UTC(), 10)
		if err != nil || del != 1 || failed != 0 {
			t.Fatalf("retry: %d deleted, %d failed, %v", del, failed, err)
		}
		if f.stored(t, f.key) {
			t.Fatal("the file survived the crash")
		}
	})
}

// TestDeleteModelQueuesItsFile: the model's file is queued in the
// transaction (with the usual key even before the row names it, for a
// download in flight) and purged; another org cannot delete it.
func TestDeleteModelQueuesItsFile(t *testing.T) {
	dialects(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		org := testenv.Org(t, db, "models")
		f := newBlobFixture(t, db)
		id := storage.NewModelID()
		key := storage.ModelBlobKey(id)
		m := &records.Model{ID: id, OrgID: org.OrgID, Name: "m", Type: "CV", Status: records.ModelActive, BlobKey: key}
		job := records.Job{ID: "val-" + id, OrgID: &org.OrgID, Kind: "validate_model", Queue: "cpu", Input: "{}", Deadline: time.Now().Add(time.Hour)}
		if err := db.CreateModel(ctx, m, &job, []records.Blob{{Key: key, Size: 5}}, storage.Quota{}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.local.Put(ctx, key, strings.NewReader("model")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.DeleteModel(ctx, "org-other", id); err == nil {
			t.Fatal("another org deleted the model")
		}
		if n, _ := db.CountBlobDeletions(ctx); n != 0 {
			t.Fatalf("a refused delete queued %d files", n)
		}
		got, keys, err := db.DeleteModel(ctx, org.OrgID, id)
		if err != nil || got.ID != id || len(keys) != 1 || keys[0] != key {
			t.Fatalf("delete model: %+v %v %v", got, keys, err)
		}
		if _, ok := f.tombstone(t, key); !ok {
			t.Fatal("no tombstone for the model's file")
		}
		if left := db.PurgeBlobs(ctx, f.local, keys); left != 0 || f.stored(t, key) {
			t.Fatalf("after purge: %d left, stored %v", left, f.stored(t, key))
		}
		if n, _ := db.CountBlobDeletions(ctx); n != 0 {
			t.Fatalf("%d queued deletions after the purge", n)
		}
	})
}

// TestPurgeEdgeCases: a missing object counts as deleted; a key nobody
// tombstoned is never deleted; a tombstone for a key a row owns again,
// or for a key the store refuses as invalid, is dropped without touching
// anything.
func TestPurgeEdgeCases(t *testing.T) {
	dialects(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		f := newBlobFixture(t, db)

		if left := db.DiscardBlobs(ctx, f.local, "test", "jobs/never-stored/input"); left != 0 {
			t.Fatalf("deleting a missing key left %d queued", left)
		}
		if left := db.PurgeBlobs(ctx, f.local, []string{f.key}); left != 0 || !f.stored(t, f.key) {
			t.Fatalf("purge without a tombstone: %d left, stored %v", left, f.stored(t, f.key))
		}
		// The job's blob row still owns f.key.
		if left := db.DiscardBlobs(ctx, f.local, "test", f.key); left != 0 || !f.stored(t, f.key) {
			t.Fatalf("a tombstone deleted a live file: %d left, stored %v", left, f.stored(t, f.key))
		}
		if left := db.DiscardBlobs(ctx, f.local, "test", "../../etc/passwd", "", "/abs"); left != 0 {
			t.Fatalf("invalid keys left %d queued", left)
		}
		if n, _ := db.CountBlobDeletions(ctx); n != 0 {
			t.Fatalf("%d tombstones left", n)
		}
		if left := db.PurgeBlobs(ctx, f.local, nil); left != 0 {
			t.Fatalf("empty purge: %d", left)
		}
	})
}
