package dashboards

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/jobs"
)

// TestBlobDeletionsGauge: the backlog of queued blob deletions is read
// from the database on each scrape.
func TestBlobDeletionsGauge(t *testing.T) {
	sv := testenv.NewServices(t)
	insp := asynq.NewInspector(sv.Redis)
	defer insp.Close()
	m := NewMetrics()
	m.WatchQueues(insp, sv.DB, jobs.Queues)
	scrape := func() string {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		b, _ := io.ReadAll(rec.Body)
		return string(b)
	}
	if s := scrape(); !strings.Contains(s, "\nwarden_blob_deletions_pending 0\n") {
		t.Fatalf("no zero backlog in the scrape:\n%s", s)
	}
	broken := testenv.NewFlakyBlobs(sv.Blobs, -1)
	if left := sv.DB.DiscardBlobs(context.Background(), broken, "test", "jobs/a/input", "jobs/b/input"); left != 2 {
		t.Fatalf("%d keys left queued, want 2", left)
	}
	if s := scrape(); !strings.Contains(s, "\nwarden_blob_deletions_pending 2\n") {
		t.Fatalf("backlog of 2 not in the scrape:\n%s", s)
	}
}
