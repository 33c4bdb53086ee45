package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/worker/runner"
)

// modelFile puts a registered model's TorchScript file where a runner can
// read it (the worker's model cache, one file per version of the model
// row) and returns it with its version key. The worker itself never
// opens it as a model.
func (w *Worker) modelFile(ctx context.Context, m records.Model) (runner.ModelFile, string, error) {
	key := fmt.Sprintf("%s-%d", m.ID, m.UpdatedAt.UnixNano())
	dir := filepath.Join(w.Config.DataDir, "model-cache")
	path := filepath.Join(dir, key+".pt")
	mf := runner.ModelFile{ID: m.ID, Type: m.Type, Metadata: json.RawMessage(m.Metadata), Path: path}
	if _, err := os.Stat(path); err == nil {
		return mf, key, nil
	}
	if err := w.copyBlob(ctx, m.BlobKey, path); err != nil {
		return mf, key, err
	}
	// Older versions of the same model are not needed any more.
	if old, err := filepath.Glob(filepath.Join(dir, m.ID+"-*.pt")); err == nil {
		for _, f := range old {
			if f != path && strings.HasPrefix(filepath.Base(f), m.ID+"-") {
				os.Remove(f)
			}
		}
	}
	return mf, key, nil
}

// copyBlob writes a blob to a local file.
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
	return os.Rename(tmp, path)
}

// sweepModelCache deletes cached model files whose model was deleted (or
// whose version was replaced), so a deleted model leaves no copy on a
// worker longer than a reconcile interval.
func (w *Worker) sweepModelCache(ctx context.Context) {
	w.sweepAISModelCache(ctx)
	files, err := filepath.Glob(filepath.Join(w.Config.DataDir, "model-cache", "*.pt"))
	if err != nil {
		return
	}
	for _, f := range files {
		base := strings.TrimSuffix(filepath.Base(f), ".pt")
		i := strings.LastIndexByte(base, '-')
		if i <= 0 {
			continue
		}
		m, err := w.DB.ModelByID(ctx, base[:i])
		switch {
		case warden.ErrorCode(err) == warden.ENOTFOUND:
		case err != nil:
			continue // the database is away: try again next time
		case fmt.Sprintf("%s-%d", m.ID, m.UpdatedAt.UnixNano()) == base:
			continue // current
		}
		if err := os.Remove(f); err == nil {
			slog.Info("cached model file removed", "file", filepath.Base(f))
		}
	}
}
