package storage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// TestRecentOrgJobs: an org's list holds its own jobs only, newest first,
// capped at the limit, without the input; an empty org id lists nothing.
func TestRecentOrgJobs(t *testing.T) {
	dialects(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		a, b := testenv.Org(t, db, "recent-a"), testenv.Org(t, db, "recent-b")
		base := time.Now().UTC().Truncate(time.Second)
		mk := func(org string, id string, at time.Time) {
			j := records.Job{ID: id, OrgID: &org, Kind: "probe", Queue: "cpu", Input: `{"secret":"input"}`, CreatedAt: at, Deadline: at.Add(time.Hour)}
			if err := db.CreateJob(ctx, &j, nil, storage.Quota{}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 5 {
			mk(a.OrgID, fmt.Sprintf("rj-a-%d-%s", i, t.Name()[len(t.Name())-6:]), base.Add(time.Duration(i)*time.Second))
		}
		mk(b.OrgID, "rj-b-"+t.Name()[len(t.Name())-6:], base.Add(time.Minute))
		anon := records.Job{ID: "rj-anon-" + t.Name()[len(t.Name())-6:], Kind: "probe", Queue: "cpu", Deadline: base.Add(time.Hour)}
		if err := db.CreateJob(ctx, &anon, nil, storage.Quota{}); err != nil {
			t.Fatal(err)
		}
		got, err := db.RecentOrgJobs(ctx, a.OrgID, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Fatalf("got %d jobs, want 3", len(got))
		}
		for i, j := range got {
			want := fmt.Sprintf("rj-a-%d-", 4-i)
			if j.ID[:len(want)] != want || *j.OrgID != a.OrgID || j.Status != records.JobQueued || j.Kind != "probe" {
				t.Fatalf("job %d: %+v, want id %s… of org a", i, j, want)
			}
			if j.Input != "" {
				t.Fatalf("job %d carries its input %q", i, j.Input)
			}
		}
		if got, err := db.RecentOrgJobs(ctx, b.OrgID, 10); err != nil || len(got) != 1 {
			t.Fatalf("org b: %d jobs, %v", len(got), err)
		}
		if got, err := db.RecentOrgJobs(ctx, "", 10); err != nil || len(got) != 0 {
			t.Fatalf("empty org: %d jobs, %v", len(got), err)
		}
	})
}
