package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"

	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/modelspec"
	"github.com/wardenlab/warden/outbound"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
	"github.com/wardenlab/warden/worker/runner"
)

// validateModel fetches a registered model's file and has a runner load
// it, inspect its graphs, run sample forward passes and measure it. The model becomes active with its
// metrics in the transaction that completes the job; a failure marks it
// failed with the reason (modelValidationFailed).
func (w *Worker) validateModel(ctx context.Context, r *Run, in jobs.ValidateModelInput) (jobs.ValidateModelResult, error) {
	var none jobs.ValidateModelResult
	m, err := w.DB.ModelByID(ctx, in.ModelID)
	if err != nil {
		return none, Permanent("model %s no longer exists", in.ModelID)
	}
	if m.BlobKey == "" && m.EndpointURL == "" {
		r.Progress(ctx, 10, "fetching_model_file")
		key, size, err := w.fetchModelFile(ctx, m)
		if err != nil {
			return none, err
		}
		if err := w.DB.SetModelBlob(ctx, m.ID, key, size); err != nil {
			if warden.ErrorCode(err) == warden.ENOTFOUND {
				w.DB.DiscardBlobs(context.WithoutCancel(ctx), w.Blobs, "model "+m.ID+" deleted during download", key)
				return none, Permanent("model %s no longer exists", m.ID)
			}
			return none, err
		}
		m.BlobKey = key
	}
	r.Progress(ctx, 40, "loading_module")
	d, err := w.execute(ctx, r, m, runner.Request{Op: runner.OpValidate}, false)
	if err != nil {
		return none, err
	}
	v := d.Validate
	if v == nil {
		return none, fmt.Errorf("runner answered validate without a validation")
	}
	metrics := map[string]any{}
	var md struct {
		Metrics map[string]float64 `json:"metrics"`
	}
	if json.Unmarshal([]byte(m.Metadata), &md) == nil {
		for k, v := range md.Metrics {
			metrics[k] = v // reported by the model's owner (e.g. held-out accuracy)
		}
	}
	metrics["num_classes"] = v.NumClasses
	metrics["input_size"] = v.InputSize
	metrics["forward_latency_ms"] = v.ForwardLatencyMS
	if m.Type == modelspec.TypeNLP {
		metrics["tokenizer"] = v.Tokenizer
	} else {
		metrics["input_shape"] = v.InputShape
	}
	metadata, inferred, err := completeMetadata(m, v)
	if err != nil {
		return none, err
	}
	if inferred != "" {
		metrics["inferred"] = []string{inferred}
	}
	enc, err := json.Marshal(metrics)
	if err != nil {
		return none, err
	}
	res := jobs.ValidateModelResult{ModelID: m.ID, Status: records.ModelActive, NumClasses: v.NumClasses, Metrics: metrics, Device: v.Device}
	r.UpdateModel(storage.ModelUpdate{ID: m.ID, Status: records.ModelActive, Metrics: string(enc), Device: res.Device, Metadata: metadata})
	return res, nil
}

// completeMetadata writes what validation inferred (the input shape of a
// CV model registered without one, the tokenizer of an NLP model whose
// forward takes the texts) into the model's metadata, so that predictions
// and attacks feed the model as if its owner had said so. It answers ""
// when the metadata was complete. The runner's answer is checked as the
// owner's metadata would be: it comes from a process running the model.
func completeMetadata(m records.Model, v *runner.Validation) (metadata, inferred string, err error) {
	cfg, details := modelspec.ParseConfig(m.Type, json.RawMessage(m.Metadata))
	if details != nil {
		return "", "", Permanent("model metadata is invalid: %v", details)
	}
	inferred = cfg.Incomplete()
	if inferred == "" {
		return "", "", nil
	}
	md, err := modelspec.Complete(m.Type, json.RawMessage(m.Metadata), v.InputShape, v.Tokenizer)
	if err != nil {
		return "", "", Permanent("validation could not settle metadata.%s (%v); give metadata.%s", inferred, err, inferred)
	}
	return string(md), inferred, nil
}

// modelValidationFailed marks the model of a failed validation job failed
// with the job's reason, in the transaction that fails the job.
func modelValidationFailed(job records.Job, reason string) *storage.ModelUpdate {
	in, err := jobs.ValidateModel.Input(job.Input)
	if err != nil || in.ModelID == "" {
		return nil
	}
	return &storage.ModelUpdate{ID: in.ModelID, Status: records.ModelFailed, Error: reason}
}

// fetchModelFile copies model_file_url into the blob store under the
// model size cap, answering its key and size: an https:// URL is
// downloaded under the SSRF rules; an s3:// URL is read from the S3 blob
// store, only from the org's own import folder (storage.ImportKey).
func (w *Worker) fetchModelFile(ctx context.Context, m records.Model) (string, int64, error) {
	u, err := url.Parse(m.SourceURL)
	if err != nil {
		return "", 0, Permanent("model_file_url is not a URL")
	}
	key := storage.ModelBlobKey(m.ID)
	f, err := os.CreateTemp("", "warden-model-*")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if u.Scheme == "s3" {
		if err := w.readImport(ctx, m, f); err != nil {
			return "", 0, err
		}
	} else if _, _, err := w.Outbound.Model.Download(ctx, m.SourceURL, f, w.Config.MaxModelBytes); err != nil {
		if errors.Is(err, outbound.ErrTooLarge) {
			return "", 0, Permanent("model file exceeds %d bytes", w.Config.MaxModelBytes)
		}
		if ctx.Err() != nil {
			return "", 0, err
		}
		return "", 0, Permanent("download of model_file_url failed: %v", err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		return "", 0, err
	}
	n, err := w.Blobs.Put(ctx, key, f)
	if err != nil {
		return "", 0, err
	}
	return key, n, nil
}

// readImport copies an s3:// model_file_url from the org's import folder
// of the blob store into f, at most MaxModelBytes.
func (w *Worker) readImport(ctx context.Context, m records.Model, f *os.File) error {
	src, err := storage.ImportKey(w.Blobs, m.OrgID, m.SourceURL)
	if err != nil {
		return Permanent("model_file_url: %s", warden.ErrorMessage(err))
	}
	rc, err := w.Blobs.Open(ctx, src)
	if warden.ErrorCode(err) == warden.ENOTFOUND {
		return Permanent("model_file_url: no such object in the blob store")
	}
	if err != nil {
		return fmt.Errorf("open model_file_url: %w", err)
	}
	defer rc.Close()
	max := w.Config.MaxModelBytes
	n, err := io.Copy(f, io.LimitReader(rc, max+1))
	if err != nil {
		return fmt.Errorf("read model_file_url: %w", err)
	}
	if n > max {
		return Permanent("model file exceeds %d bytes", max)
	}
	return nil
}
