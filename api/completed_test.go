package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// TestCompletedDocuments: a completed verification's document is rendered
// once and then served from memory, byte for byte what c.JSON wrote; the
// job row is still read first, so another org's caller and a deleted job
// get 404; ?pretty is rendered (indented), not taken from memory.
func TestCompletedDocuments(t *testing.T) {
	h := newAPIHarness(t)
	ctx := context.Background()
	a, b := h.org("docs-a"), h.org("docs-b")
	up := h.upload("photo.png", pngBytes(t), as(a))
	if up.Code != 202 && up.Code != 200 {
		t.Fatalf("upload: %d %s", up.Code, up.Raw)
	}
	id := up.Body["job_id"].(string)
	if _, ok, err := h.db.StartJob(ctx, id); err != nil || !ok {
		t.Fatal(ok, err)
	}
	result := `{"label":"authentic","confidence":0.9,"reasons":["signed"],"details":{"c2pa":{},"sensor_pki":{},"ml_detection":null},"file":{"content_type":"image/png","size":1,"sha256":"x"}}`
	if ok, err := h.db.CompleteJob(ctx, id, storage.Completion{Result: records.Result{JobID: id, Label: "authentic", Data: result}}); err != nil || !ok {
		t.Fatal(ok, err)
	}
	first := h.do("GET", "/api/verify/"+id, nil, as(a))
	if first.Code != 200 || first.Body["label"] != "authentic" || !bytes.HasSuffix(first.Raw, []byte("}\n")) {
		t.Fatalf("first read: %d %s", first.Code, first.Raw)
	}
	// The stored result changes behind the API's back (Warden never does
	// this): the next read must still give the first document.
	if err := h.db.Gorm().Model(&records.Result{}).Where("job_id = ?", id).Update("data", bytes.Replace([]byte(result), []byte("authentic"), []byte("changed"), 1)).Error; err != nil {
		t.Fatal(err)
	}
	if again := h.do("GET", "/api/verify/"+id, nil, as(a)); again.Code != 200 || !bytes.Equal(again.Raw, first.Raw) {
		t.Fatalf("second read not the remembered document: %d %s", again.Code, again.Raw)
	}
	pretty := h.do("GET", "/api/verify/"+id+"?pretty", nil, as(a))
	var doc map[string]any
	if pretty.Code != 200 || json.Unmarshal(pretty.Raw, &doc) != nil || doc["job_id"] != id || !bytes.Contains(pretty.Raw, []byte("\n  ")) {
		t.Fatalf("?pretty is rendered and indented: %d %s", pretty.Code, pretty.Raw)
	}
	if other := h.do("GET", "/api/verify/"+id, nil, as(b)); other.Code != 404 {
		t.Fatalf("another org's caller: %d %s", other.Code, other.Raw)
	}
	if del := h.do("DELETE", "/api/verify/"+id, nil, as(a)); del.Code != 200 {
		t.Fatalf("delete: %d %s", del.Code, del.Raw)
	}
	if gone := h.do("GET", "/api/verify/"+id, nil, as(a)); gone.Code != 404 {
		t.Fatalf("a deleted job's document: %d %s", gone.Code, gone.Raw)
	}
}
