package storage_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// TestAISUploadClaim: an upload URL is claimed by exactly one of many
// concurrent uploads; a valid file spends it, an invalid one gives it
// back; an expired one is refused; another org does not see the model.
func TestAISUploadClaim(t *testing.T) {
	dialects(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		org := testenv.Org(t, db, "ais")
		now := time.Now().UTC()
		m := records.AISModel{ID: storage.NewAISModelID(), OrgID: org.OrgID, TaskType: "IC", AnalysisType: "MEA", UploadsExpireAt: now.Add(10 * time.Minute), CreatedAt: now}
		files := []records.AISFile{
			{ID: storage.NewAISFileID(), ModelID: m.ID, OrgID: org.OrgID, Name: "model", Status: records.AISFilePending, ExpiresAt: m.UploadsExpireAt},
			{ID: storage.NewAISFileID(), ModelID: m.ID, OrgID: org.OrgID, Name: "data", Status: records.AISFilePending, ExpiresAt: now.Add(-time.Second)},
		}
		if err := db.CreateAISModel(ctx, &m, files); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wins := make(chan records.AISFile, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if f, err := db.ClaimAISFile(ctx, files[0].ID, time.Now().UTC()); err == nil {
					wins <- f
				} else if warden.ErrorCode(err) != warden.ECONFLICT {
					t.Errorf("losing claim: %v", err)
				}
			}()
		}
		wg.Wait()
		close(wins)
		if len(wins) != 1 {
			t.Fatalf("%d claims won, want 1", len(wins))
		}
		f := <-wins
		f.Status, f.Errors = records.AISFileInvalid, `["bad"]`
		if err := db.FinishAISFile(ctx, f, storage.Quota{}); err != nil {
			t.Fatal(err)
		}
		f, err := db.ClaimAISFile(ctx, files[0].ID, time.Now().UTC())
		if err != nil {
			t.Fatalf("an invalid upload did not give its URL back: %v", err)
		}
		f.Status, f.BlobKey, f.Size = records.AISFileValid, storage.AISBlobKey(m.ID, "model"), 10
		if err := db.FinishAISFile(ctx, f, storage.Quota{}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ClaimAISFile(ctx, files[0].ID, time.Now().UTC()); warden.ErrorCode(err) != warden.ECONFLICT {
			t.Fatalf("a spent URL claimed again: %v", err)
		}
		if err := db.FinishAISFile(ctx, f, storage.Quota{}); warden.ErrorCode(err) != warden.ECONFLICT {
			t.Fatalf("finished twice: %v", err)
		}
		if _, err := db.ClaimAISFile(ctx, files[1].ID, time.Now().UTC()); warden.ErrorCode(err) != warden.EFORBIDDEN {
			t.Fatalf("an expired URL: %v", err)
		}
		if _, _, err := db.GetAISModel(ctx, "org-other", m.ID); warden.ErrorCode(err) != warden.ENOTFOUND {
			t.Fatalf("another org sees the model: %v", err)
		}
		got, gotFiles, err := db.AISModelByFile(ctx, files[0].ID)
		if err != nil || got.ID != m.ID || len(gotFiles) != 2 || gotFiles[1].Status != records.AISFileValid {
			t.Fatalf("by file: %+v %+v %v", got, gotFiles, err)
		}
	})
}

// TestNewestSubjectJob: a registration's newest analysis of a type, any
// status or completed only, in its org alone; other kinds' inputs are not
// read as JSON.
func TestNewestSubjectJob(t *testing.T) {
	dialects(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		org := testenv.Org(t, db, "newest").OrgID
		other := testenv.Org(t, db, "other").OrgID
		base := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
		add := func(id, orgID, kind, subject, typ, status string, at int) {
			t.Helper()
			in := `{"ais_model_id":"` + subject + `","analysis_type":"` + typ + `"}`
			if kind != "analysis" {
				in = "not json"
			}
			j := records.Job{ID: id, OrgID: &orgID, Kind: kind, Queue: "gpu", Subject: subject, Input: in,
				CreatedAt: base.Add(time.Duration(at) * time.Minute), Deadline: base.Add(2 * time.Hour)}
			if err := db.CreateJob(ctx, &j, nil, storage.Quota{}); err != nil {
				t.Fatal(err)
			}
			if status == records.JobQueued {
				return
			}
			if _, ok, err := db.StartJob(ctx, id); err != nil || !ok {
				t.Fatalf("start %s: %v %v", id, ok, err)
			}
			if status == records.JobCompleted {
				if ok, err := db.CompleteJob(ctx, id, storage.Completion{Result: records.Result{Data: "{}"}}); err != nil || !ok {
					t.Fatalf("complete %s: %v %v", id, ok, err)
				}
			}
		}
		add("d-old", org, "analysis", "m1", "defence", records.JobCompleted, 1)
		add("d-new", org, "analysis", "m1", "defence", records.JobCompleted, 2)
		add("e-newer", org, "analysis", "m1", "EVA", records.JobCompleted, 3)
		add("d-running", org, "analysis", "m1", "defence", records.JobInProgress, 4)
		add("x-other-kind", org, "probe", "m1", "", records.JobCompleted, 5)
		add("d-other-model", org, "analysis", "m2", "defence", records.JobCompleted, 6)
		add("d-other-org", other, "analysis", "m1", "defence", records.JobCompleted, 7)
		for _, c := range []struct {
			org, subject, typ string
			completed         bool
			want              string
		}{
			{org, "m1", "defence", true, "d-new"},
			{org, "m1", "defence", false, "d-running"},
			{org, "m1", "EVA", true, "e-newer"},
			{org, "m1", "MEA", false, ""},
			{org, "m2", "defence", true, "d-other-model"},
			{other, "m1", "defence", true, "d-other-org"},
			{other, "m2", "defence", false, ""},
		} {
			j, ok, err := db.NewestSubjectJob(ctx, c.org, "analysis", c.subject, c.typ, c.completed)
			if err != nil || ok != (c.want != "") || j.ID != c.want {
				t.Errorf("%s %s completed=%v: %q %v %v, want %q", c.subject, c.typ, c.completed, j.ID, ok, err, c.want)
			}
		}
	})
}
