package storage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// TestResultStatsSurviveDeletion: spec 003 tells clients to delete a
// verification once read; /api/metrics must count it all the same. A
// deleted result stays in the counts and the mean duration, other kinds
// and results older than the window do not count, and deleting twice does
// not count twice.
func TestResultStatsSurviveDeletion(t *testing.T) {
	dialects(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		finish := func(id, kind, label string, ms int64) {
			t.Helper()
			j := records.Job{ID: id, Kind: kind, Queue: "cpu", Input: "{}", Deadline: time.Now().Add(time.Hour)}
			if err := db.CreateJob(ctx, &j, nil, storage.Quota{}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := db.StartJob(ctx, id); err != nil {
				t.Fatal(err)
			}
			if done, err := db.CompleteJob(ctx, id, storage.Completion{Result: records.Result{Label: label, Data: "{}", DurationMS: ms}}); err != nil || !done {
				t.Fatalf("complete %s: %v %v", id, done, err)
			}
		}
		finish("v1", "verify_media", "authentic_c2pa", 100)
		finish("v2", "verify_media", "unknown", 300)
		finish("v3", "verify_media", "unknown", 200)
		finish("p1", "probe", "ok", 5000)
		stats := func() (map[string]int64, float64) {
			t.Helper()
			rows, avg, err := db.ResultStats(ctx, "verify_media", time.Now().Add(-24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]int64{}
			for _, r := range rows {
				out[r.Label] = r.Count
			}
			return out, avg
		}
		before, avgBefore := stats()
		if fmt.Sprint(before) != "map[authentic_c2pa:1 unknown:2]" || avgBefore != 200 {
			t.Fatalf("before deleting: %v avg %v", before, avgBefore)
		}
		for _, id := range []string{"v1", "v2", "p1"} {
			if _, err := db.DeleteJob(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		db.DeleteJob(ctx, "v1") // already gone: not found, counts nothing
		after, avgAfter := stats()
		if fmt.Sprint(after) != fmt.Sprint(before) || avgAfter != avgBefore {
			t.Errorf("after deleting: %v avg %v, want %v avg %v", after, avgAfter, before, avgBefore)
		}
		// Outside the window: neither live nor deleted results count.
		rows, avg, err := db.ResultStats(ctx, "verify_media", time.Now().Add(2*time.Hour))
		if err != nil || len(rows) != 0 || avg != 0 {
			t.Errorf("future window: %v %v %v", rows, avg, err)
		}
		// Nothing identifying is kept.
		var stat records.ResultStat
		if err := db.Gorm().Where("label = ?", "authentic_c2pa").First(&stat).Error; err != nil || stat.Count != 1 || stat.DurationMSSum != 100 {
			t.Errorf("aggregate row %+v %v", stat, err)
		}
	})
}
