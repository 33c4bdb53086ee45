package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// TestChaosStartJobAttempts: StartJob is what makes a retry after a crash
// safe. It counts every attempt of an in_progress job (a worker died), hands
// back the full row, and refuses a job that ended, on both databases.
func TestChaosStartJobAttempts(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) *storage.DB
	}{
		{"postgres", func(t *testing.T) *storage.DB { db, _ := testenv.Postgres(t); return db }},
		{"sqlite", func(t *testing.T) *storage.DB { return testenv.SQLite(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, ctx := tc.open(t), context.Background()
			job := &records.Job{ID: uuid.NewString(), Kind: "probe", Queue: "cpu", Input: `{"hold_ms":1}`, Deadline: time.Now().UTC().Add(time.Hour)}
			if err := db.CreateJob(ctx, job, nil, storage.Quota{}); err != nil {
				t.Fatal(err)
			}
			for attempt := 1; attempt <= 2; attempt++ {
				j, ok, err := db.StartJob(ctx, job.ID)
				if err != nil || !ok {
					t.Fatalf("attempt %d: ok=%v err=%v", attempt, ok, err)
				}
				if j.ID != job.ID || j.Status != records.JobInProgress || j.Attempts != attempt || j.Input != job.Input || j.Kind != "probe" || j.StartedAt == nil {
					t.Fatalf("attempt %d: row %+v", attempt, j)
				}
			}
			if ok, err := db.CancelJob(ctx, job.ID, nil); err != nil || !ok {
				t.Fatalf("cancel: %v %v", ok, err)
			}
			if _, ok, err := db.StartJob(ctx, job.ID); err != nil || ok {
				t.Fatalf("start after cancel: ok=%v err=%v", ok, err)
			}
			if _, ok, err := db.StartJob(ctx, "missing"); err != nil || ok {
				t.Fatalf("start missing: ok=%v err=%v", ok, err)
			}
			if j, _ := db.JobByID(ctx, job.ID); j.Attempts != 2 || j.Status != records.JobCancelled {
				t.Fatalf("after: %+v", j)
			}
		})
	}
}
