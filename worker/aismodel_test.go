package worker

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/records"
)

// TestZippedModelFile: a registration's model zip is served as its .pt
// (taken out once, then cached per org and version); the sweep keeps the
// current version and removes a replaced version and a deleted
// registration's file.
func TestZippedModelFile(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	f, _ := zw.Create("model/victim.pt")
	f.Write([]byte("torchscript bytes"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	key := "ais/" + h.org.OrgID + "/ais_cached/model.zip"
	if _, err := h.blobs.Put(ctx, key, bytes.NewReader(zb.Bytes())); err != nil {
		t.Fatal(err)
	}
	m := records.AISModel{ID: "ais_cached", OrgID: h.org.OrgID, TaskType: ais.TaskIC, AnalysisType: ais.AnalysisEVA, UploadsExpireAt: time.Now().Add(time.Hour)}
	file := records.AISFile{ID: "aisf_cached", ModelID: m.ID, OrgID: m.OrgID, Name: ais.FileModel, Status: records.AISFileValid, BlobKey: key}
	if err := h.db.CreateAISModel(ctx, &m, []records.AISFile{file}); err != nil {
		t.Fatal(err)
	}
	_, files, err := h.db.GetAISModel(ctx, m.OrgID, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	file = files[0]
	rm := records.Model{ID: m.ID, OrgID: m.OrgID, Type: "CV", BlobKey: key, UpdatedAt: file.UpdatedAt}
	mf, k, err := h.w.zippedModelFile(ctx, rm)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(mf.Path); err != nil || string(b) != "torchscript bytes" || k != fmt.Sprintf("%s-%d", m.ID, file.UpdatedAt.UnixNano()) {
		t.Fatalf("served %q (%v) as %s", b, err, k)
	}
	if again, _, err := h.w.zippedModelFile(ctx, rm); err != nil || again.Path != mf.Path {
		t.Fatalf("second call: %v %v", again.Path, err)
	}
	if zips, _ := filepath.Glob(filepath.Join(filepath.Dir(mf.Path), "*.zip")); len(zips) != 0 {
		t.Errorf("the copied zip stayed: %v", zips)
	}
	stale := filepath.Join(filepath.Dir(mf.Path), m.ID+"-1.pt")
	deleted := filepath.Join(filepath.Dir(mf.Path), "ais_deleted-42.pt")
	for _, p := range []string{stale, deleted} {
		if err := os.WriteFile(p, []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	h.w.sweepModelCache(ctx)
	if !fileExists(mf.Path) {
		t.Error("the current version was removed")
	}
	if fileExists(stale) || fileExists(deleted) {
		t.Error("a replaced or deleted registration's model is still cached")
	}
}
