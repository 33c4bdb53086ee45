package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/ais"

	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/worker/runner"
)

// aisModelCache holds registrations' models, per org, one file per
// version of the model file: <org>/<model id>-<version>.pt.
const aisModelCache = "ais-model-cache"

// zippedModelFile is modelFile for a model stored as an AISpectra
// registration's zip (the guarded prediction endpoint of a registration):
// the zip is copied next to the cache and its one TorchScript file taken
// out (unzipModel), without interpreting it; the runner loads it as it
// loads any model.
func (w *Worker) zippedModelFile(ctx context.Context, m records.Model) (runner.ModelFile, string, error) {
	key := fmt.Sprintf("%s-%d", m.ID, m.UpdatedAt.UnixNano())
	dir := filepath.Join(w.Config.DataDir, aisModelCache, m.OrgID)
	path := filepath.Join(dir, key+".pt")
	mf := runner.ModelFile{ID: m.ID, Type: m.Type, Metadata: json.RawMessage(m.Metadata), Path: path}
	if _, err := os.Stat(path); err == nil {
		return mf, key, nil
	}
	zipPath := filepath.Join(dir, key+".zip")
	if err := w.copyBlob(ctx, m.BlobKey, zipPath); err != nil {
		return mf, key, err
	}
	defer os.Remove(zipPath)
	tmp := path + ".unzip"
	os.Remove(tmp)
	if err := unzipModel(zipPath, tmp); err != nil {
		os.Remove(tmp)
		return mf, key, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return mf, key, fmt.Errorf("model cache: %w", err)
	}
	return mf, key, nil
}

// sweepAISModelCache deletes cached registration models whose
// registration was deleted or whose model file was replaced.
func (w *Worker) sweepAISModelCache(ctx context.Context) {
	files, err := filepath.Glob(filepath.Join(w.Config.DataDir, aisModelCache, "*", "*.pt"))
	if err != nil {
		return
	}
	for _, f := range files {
		org := filepath.Base(filepath.Dir(f))
		base := strings.TrimSuffix(filepath.Base(f), ".pt")
		i := strings.LastIndexByte(base, '-')
		if i <= 0 {
			continue
		}
		_, rows, err := w.DB.GetAISModel(ctx, org, base[:i])
		switch {
		case warden.ErrorCode(err) == warden.ENOTFOUND:
		case err != nil:
			continue
		default:
			current := false
			for _, r := range rows {
				if r.Name == ais.FileModel && fmt.Sprintf("%s-%d", base[:i], r.UpdatedAt.UnixNano()) == base {
					current = true
				}
			}
			if current {
				continue
			}
		}
		if err := os.Remove(f); err == nil {
			slog.Info("cached registration model removed", "file", filepath.Base(f))
		}
	}
}
