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
