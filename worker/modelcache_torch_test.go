//go:build torch

package worker

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
	"github.com/wardenlab/warden/worker/torch"
)

// TestModelCache: a model is loaded once and reused, a changed row reloads
// it, and the least recently used module is unloaded past the limit.
func TestModelCache(t *testing.T) {
	dir := t.TempDir()
	xs := []float32{0, 0, 1, 1, 0, 1, 1, 0}
	ys := []int64{0, 1, 1, 0}
	res, err := torch.TrainMLP(xs, ys, []int64{2}, 2, torch.TrainConfig{Epochs: 2}, filepath.Join(dir, "m.pt"))
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(res.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := storage.NewLocalBlobs(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	w := &Worker{Deps: Deps{Blobs: blobs}, models: newModelCache(filepath.Join(dir, "cache"), torch.CPU)}
	w.models.max = 2
	ctx := context.Background()
	row := func(i int) records.Model {
		key := fmt.Sprintf("models/m%d/model.pt", i)
		if _, err := blobs.Put(ctx, key, bytes.NewReader(file)); err != nil {
			t.Fatal(err)
		}
		return records.Model{ID: fmt.Sprintf("m%d", i), Type: "CV", Metadata: `{"input_shape":[2]}`, BlobKey: key, UpdatedAt: time.Unix(1, 0)}
	}
	m0, m1, m2 := row(0), row(1), row(2)
	a, err := w.loadModel(ctx, m0)
	if err != nil {
		t.Fatal(err)
	}
	if a.classes != 2 {
		t.Fatalf("classes %d", a.classes)
	}
	if b, _ := w.loadModel(ctx, m0); b != a {
		t.Fatal("an unchanged model was loaded again")
	}
	m0.UpdatedAt = time.Unix(2, 0)
	c, _ := w.loadModel(ctx, m0)
	if c == a {
		t.Fatal("a changed model was not reloaded")
	}
	w.loadModel(ctx, m1)
	w.loadModel(ctx, m0) // m0 most recent, m1 least
	w.loadModel(ctx, m2) // evicts m1
	if len(w.models.byID) != 2 || w.models.byID["m1"] != nil || w.models.byID["m0"] == nil || w.models.byID["m2"] == nil {
		t.Fatalf("cache holds %v, order %v", keys(w.models.byID), w.models.order)
	}
	if d, _ := w.loadModel(ctx, m0); d != c {
		t.Fatal("the most recently used model was evicted")
	}
}

func keys(m map[string]*loadedModel) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
