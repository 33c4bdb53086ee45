package worker

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/worker/runner"
)

// maxAISModelBytes bounds the TorchScript file taken out of a model zip
// (the zip itself was size-checked at upload).
const maxAISModelBytes = 4 << 30

// analyze runs an AISpectra analysis: the registration's zips the
// analysis needs are copied to a directory of the job, the model (and the
// clean reference models of model poisoning) taken out of their zips, and
// a fresh confined runner that may read only those files decodes the
// data, loads the models and runs the analysis, sending its artifacts
// back.
func (w *Worker) analyze(ctx context.Context, r *Run, in jobs.AnalysisInput) (jobs.AnalysisResult, error) {
	if w.sandbox().err != nil {
		return jobs.AnalysisResult{}, Permanent("%v", w.sandbox().err)
	}
	r.Progress(ctx, 1, "fetching_files")
	dir, err := os.MkdirTemp(filepath.Join(w.Config.DataDir), "analysis-")
	if err != nil {
		return jobs.AnalysisResult{}, fmt.Errorf("analysis directory: %w", err)
	}
	defer os.RemoveAll(dir)
	paths := map[string]string{}
	for _, name := range ais.RequiredFiles(in.TaskType, in.AnalysisType) {
		key, ok := in.Files[name]
		if !ok {
			return jobs.AnalysisResult{}, Permanent("the registration has no valid %s file", name)
		}
		paths[name] = filepath.Join(dir, name+".zip")
		if err := w.copyBlob(ctx, key, paths[name]); err != nil {
			return jobs.AnalysisResult{}, fmt.Errorf("fetch %s: %w", name, err)
		}
	}
	model := filepath.Join(dir, "model.pt")
	if err := unzipModel(paths[ais.FileModel], model); err != nil {
		return jobs.AnalysisResult{}, err
	}
	// Clean reference models (model poisoning) are taken out of their
	// zips the same way and loaded by the confined runner like the model.
	var refs []string
	for _, name := range []string{ais.FileCleanModel1, ais.FileCleanModel2} {
		if paths[name] == "" {
			continue
		}
		ref := filepath.Join(dir, name+".pt")
		if err := unzipModel(paths[name], ref); err != nil {
			return jobs.AnalysisResult{}, Permanent("%s: %v", name, err)
		}
		refs = append(refs, ref)
	}
	opts := w.runners.Options
	opts.Limits.CPUSeconds = int64(jobs.Analysis.Timeout.Seconds()) * int64(max(w.threads, 1))
	mf := runner.ModelFile{ID: in.AISModelID, Path: model, Files: append([]string{paths[ais.FileData], paths[ais.FileLabel]}, refs...)}
	p, err := runner.Start(ctx, opts, mf)
	if err != nil {
		return jobs.AnalysisResult{}, runnerError(ctx, err)
	}
	defer p.Close()
	sink := runner.Sink{Progress: func(pct int, stage string) { r.Progress(ctx, pct, stage) }, Artifact: r.Artifact}
	d, err := p.Run(ctx, runner.Request{Op: runner.OpAnalyze, Analysis: &runner.AnalysisRequest{Input: in,
		Data: paths[ais.FileData], Label: paths[ais.FileLabel], References: refs}}, sink)
	if err = runnerError(ctx, err); err != nil {
		return jobs.AnalysisResult{}, err
	}
	if d.Analysis == nil {
		return jobs.AnalysisResult{}, fmt.Errorf("runner answered analyze without a result")
	}
	return *d.Analysis, nil
}

// unzipModel writes the one TorchScript file of a model zip (checked at
// upload: exactly one .pt) to path, without interpreting it.
func unzipModel(zipPath, path string) error {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return Permanent("the model zip cannot be read: %v", err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if !f.Mode().IsRegular() || strings.HasPrefix(f.Name, "__MACOSX/") || !strings.EqualFold(filepath.Ext(f.Name), ".pt") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return Permanent("the model zip cannot be read: %v", err)
		}
		defer rc.Close()
		out, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		n, err := io.Copy(out, io.LimitReader(rc, maxAISModelBytes+1))
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return Permanent("the model zip cannot be read: %v", err)
		}
		if n > maxAISModelBytes {
			return Permanent("the model file is larger than %d bytes", int64(maxAISModelBytes))
		}
		return nil
	}
	return Permanent("the model zip holds no .pt file")
}
