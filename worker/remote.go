package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/modelspec"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/worker/runner"
)

// remoteChunk bounds the inputs sent in one request to a remote model.
const remoteChunk = 64

// httpClassifier is a model served by someone else's HTTP endpoint: the
// black-box attacks query it exactly as they query a local module, only
// through the SSRF-guarded client. Contract: POST {"inputs": [[numbers]]}
// (CV) or {"texts": ["…"]} (NLP), answer {"probabilities": [[…]]}, one row
// per input.
type httpClassifier struct {
	url     string
	cfg     modelspec.Config
	classes int
	client  *http.Client
}

var _ runner.Model = (*httpClassifier)(nil)

func (h *httpClassifier) NumClasses() int          { return h.classes }
func (h *httpClassifier) Labels() []string         { return h.cfg.LabelNames(h.classes) }
func (h *httpClassifier) Config() modelspec.Config { return h.cfg }
func (h *httpClassifier) Device() string           { return "remote" }

func (h *httpClassifier) post(ctx context.Context, body any, n int) ([][]float32, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("model endpoint: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("model endpoint answered %d", resp.StatusCode)
	}
	var out struct {
		Probabilities [][]float32 `json:"probabilities"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("model endpoint: bad answer: %w", err)
	}
	if len(out.Probabilities) != n {
		return nil, fmt.Errorf("model endpoint returned %d rows for %d inputs", len(out.Probabilities), n)
	}
	for _, row := range out.Probabilities {
		if len(row) < 2 || (h.classes > 0 && len(row) != h.classes) {
			return nil, fmt.Errorf("model endpoint returned %d probabilities, want %d", len(row), max(h.classes, 2))
		}
	}
	return out.Probabilities, nil
}

// Predict sends a batch in chunks.
func (h *httpClassifier) Predict(ctx context.Context, x attacks.Batch) ([][]float32, error) {
	if h.cfg.Type == modelspec.TypeNLP {
		return nil, fmt.Errorf("a text model endpoint takes texts, not vectors")
	}
	n, size := x.N(), x.SampleSize()
	out := make([][]float32, 0, n)
	for lo := 0; lo < n; lo += remoteChunk {
		hi := min(lo+remoteChunk, n)
		rows := make([][]float32, hi-lo)
		for i := range rows {
			rows[i] = x.Data[(lo+i)*size : (lo+i+1)*size]
		}
		probs, err := h.post(ctx, map[string]any{"inputs": rows}, hi-lo)
		if err != nil {
			return nil, err
		}
		out = append(out, probs...)
	}
	return out, nil
}

// PredictText sends texts in chunks.
func (h *httpClassifier) PredictText(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, 0, len(texts))
	for lo := 0; lo < len(texts); lo += remoteChunk {
		hi := min(lo+remoteChunk, len(texts))
		probs, err := h.post(ctx, map[string]any{"texts": texts[lo:hi]}, hi-lo)
		if err != nil {
			return nil, err
		}
		out = append(out, probs...)
	}
	return out, nil
}

// remoteModel is a model registered by endpoint URL, probed once to learn
// its number of classes.
func (w *Worker) remoteModel(ctx context.Context, m records.Model) (*httpClassifier, error) {
	cfg, details := modelspec.ParseConfig(m.Type, json.RawMessage(m.Metadata))
	if details != nil {
		return nil, Permanent("model metadata is invalid: %v", details)
	}
	h := &httpClassifier{url: m.EndpointURL, cfg: cfg, client: w.Outbound.Model.HTTP()}
	var (
		probs [][]float32
		err   error
	)
	if cfg.Type == modelspec.TypeNLP {
		probs, err = h.PredictText(ctx, []string{"warden endpoint probe"})
	} else {
		probs, err = h.Predict(ctx, runner.ZeroSample(cfg))
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, Permanent("probe of the model endpoint failed: %v", err)
	}
	h.classes = len(probs[0])
	return h, nil
}
