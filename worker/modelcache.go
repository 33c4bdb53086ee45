package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/wardenlab/warden/modelspec"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/worker/torch"
)

// loadedModel is a TorchScript module ready to use.
type loadedModel struct {
	clf     *torchClassifier
	version string // model id + update time; a changed row reloads
}

// modelCache keeps the most recently used modules loaded, so predictions
// and attacks do not reload the file each time.
type modelCache struct {
	mu     sync.Mutex
	dir    string
	device torch.Device
	max    int
	order  []string // least recently used first
	byID   map[string]*loadedModel
}

func newModelCache(dir string, dev torch.Device) *modelCache {
	return &modelCache{dir: dir, device: dev, max: 8, byID: map[string]*loadedModel{}}
}

// loadModel loads (or reuses) a model's module; the number of classes is
// learnt from one forward pass when it loads.
func (w *Worker) loadModel(ctx context.Context, m records.Model) (*torchClassifier, error) {
	if !torch.Available() {
		return nil, Permanent("%s", torch.Reason())
	}
	c := w.models
	version := m.ID + "@" + m.UpdatedAt.String()
	c.mu.Lock()
	defer c.mu.Unlock()
	if lm, ok := c.byID[m.ID]; ok && lm.version == version {
		c.touch(m.ID)
		return lm.clf, nil
	}
	cfg, details := modelspec.ParseConfig(m.Type, json.RawMessage(m.Metadata))
	if details != nil {
		return nil, Permanent("model metadata is invalid: %v", details)
	}
	path := filepath.Join(c.dir, m.ID+".pt")
	if err := w.copyBlob(ctx, m.BlobKey, path); err != nil {
		return nil, err
	}
	mod, err := torch.LoadModule(path, c.device)
	if err != nil {
		// The local cache path means nothing to the model's owner.
		return nil, Permanent("cannot load the TorchScript module: %s", strings.ReplaceAll(err.Error(), path, "the model file"))
	}
	clf := &torchClassifier{mod: mod, cfg: cfg, mu: &sync.Mutex{}}
	if clf.classes, err = probeClasses(clf); err != nil {
		mod.Close()
		return nil, Permanent("%v", err)
	}
	if old, ok := c.byID[m.ID]; ok { // the row changed: replace its module
		c.drop(m.ID, old)
	}
	c.byID[m.ID] = &loadedModel{clf: clf, version: version}
	c.order = append(c.order, m.ID)
	for len(c.order) > c.max {
		c.drop(c.order[0], c.byID[c.order[0]])
	}
	return clf, nil
}

// touch marks id as most recently used.
func (c *modelCache) touch(id string) {
	c.forgetOrder(id)
	c.order = append(c.order, id)
}

func (c *modelCache) forgetOrder(id string) {
	if i := slices.Index(c.order, id); i >= 0 {
		c.order = slices.Delete(c.order, i, i+1)
	}
}

// drop unloads a module once no call is using it.
func (c *modelCache) drop(id string, lm *loadedModel) {
	lm.clf.mu.Lock()
	lm.clf.mod.Close()
	lm.clf.mu.Unlock()
	c.forgetOrder(id)
	delete(c.byID, id)
}

// probeClasses runs one zero input to learn the number of classes.
func probeClasses(c *torchClassifier) (int, error) {
	shape := c.cfg.BatchShape(1)
	y, err := c.mod.Forward(&torch.Tensor{Data: make([]float32, c.cfg.SampleSize()), Shape: shape})
	if err != nil {
		return 0, fmt.Errorf("sample forward pass with input shape %v failed: %w", shape, err)
	}
	if len(y.Shape) != 2 || y.Shape[0] != 1 || y.Shape[1] < 2 {
		return 0, fmt.Errorf("the model must return logits of shape [batch, classes ≥ 2]; got %v", y.Shape)
	}
	return int(y.Shape[1]), nil
}

// copyBlob writes a blob to a local file (libtorch loads from paths).
func (w *Worker) copyBlob(ctx context.Context, key, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	rc, err := w.Blobs.Open(ctx, key)
	if err != nil {
		return fmt.Errorf("open model blob: %w", err)
	}
	defer rc.Close()
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("copy model blob: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	slog.Debug("model file cached", "path", path)
	return nil
}
