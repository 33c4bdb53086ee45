// Package runner executes tenants' models in a separate, confined process.
//
// A tenant's TorchScript file is hostile input: it is deserialised,
// inspected and run only by a runner process (`warden runner`, the same
// binary) that holds no secret. The worker starts a runner with a clean
// environment in new user, mount, network, PID, IPC and UTS namespaces;
// the runner confines itself before it touches the model (rlimits,
// no_new_privs, Landlock limited to the model file, the libraries and a
// scratch directory, then a seccomp allow-list without socket, connect,
// execve, ptrace or mount) and talks to the worker over two pipes.
// Validation, predictions and whole attack loops run inside it; the worker
// keeps the database, Redis, blobs and the network.
//
// The same computations (Execute) also serve models registered by
// endpoint URL, in the worker process: they are queried over HTTP and run
// no tenant code here.
package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/modelspec"
)

// Operations a runner performs.
const (
	OpValidate = "validate"      // load, inspect, count classes, time sample forwards
	OpBatch    = "predict_batch" // predictions: one forward pass for the batch
	OpAttack   = "attack"
	OpCheck    = "check"   // report what the confinement allows (tests, /health)
	OpAnalyze  = "analyze" // an AISpectra analysis: decode the data, load the model for it, run
)

// Model is a registered model ready to answer: a TorchScript module (in a
// runner) or a remote prediction endpoint (in the worker).
type Model interface {
	attacks.Classifier
	attacks.TextClassifier
	Config() modelspec.Config
	Labels() []string
	Device() string
}

// ModelFile is the model a runner serves.
type ModelFile struct {
	ID       string          `json:"id"`
	Type     string          `json:"type"`
	Metadata json.RawMessage `json:"metadata"`
	Path     string          `json:"path"` // the TorchScript file, readable by the runner alone among the files it may open
	// Files are further files the runner may read (an analysis's data
	// and label zips, model poisoning's clean reference models).
	Files []string `json:"files,omitempty"`
}

// Request is one operation for a runner (or for Execute).
type Request struct {
	Op     string            `json:"op"`
	Batch  *PredictBatch     `json:"batch,omitempty"`
	Attack *jobs.AttackInput `json:"attack,omitempty"`
	Check  *CheckRequest     `json:"check,omitempty"`
	// Analysis is an AISpectra analysis (OpAnalyze).
	Analysis *AnalysisRequest `json:"analysis,omitempty"`
}

// Message is one line a runner writes: progress, an artifact, or the
// operation's end.
type Message struct {
	Ready    *Ready    `json:"ready,omitempty"`
	Progress *Progress `json:"progress,omitempty"`
	Artifact *Artifact `json:"artifact,omitempty"`
	Done     *Done     `json:"done,omitempty"`
}

// Progress of a running operation.
type Progress struct {
	Pct   int    `json:"pct"`
	Stage string `json:"stage"`
}

// Artifact is a file an operation produced (an attack's PNGs).
type Artifact struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Data        []byte `json:"data"`
}

// Done ends an operation with its typed result or its failure.
type Done struct {
	Validate *Validation          `json:"validate,omitempty"`
	Batch    *BatchResult         `json:"batch,omitempty"`
	Attack   *jobs.AttackResult   `json:"attack,omitempty"`
	Check    *CheckResult         `json:"check,omitempty"`
	Analysis *jobs.AnalysisResult `json:"analysis,omitempty"`
	Error    string               `json:"error,omitempty"`
	// Permanent: retrying cannot help (the model or the input is bad).
	Permanent bool `json:"permanent,omitempty"`
}

// PredictBatch is several predictions on one model, run as one forward
// pass (the worker's dynamic batching).
type PredictBatch struct {
	ModelID string            `json:"model_id"`
	Inputs  []json.RawMessage `json:"inputs"`
}

// BatchResult answers a PredictBatch: one item per input, in order.
type BatchResult struct {
	Items     []BatchItem `json:"items"`
	ForwardMS float64     `json:"forward_ms"` // the forward pass alone
}

// BatchItem is one input's prediction or why it has none (an input the
// model cannot take fails alone; the rest of the batch still runs).
type BatchItem struct {
	Result *jobs.PredictResult `json:"result,omitempty"`
	Error  string              `json:"error,omitempty"`
}

// Validation is what validating a model measured.
type Validation struct {
	NumClasses       int      `json:"num_classes"`
	InputSize        int      `json:"input_size"`
	ForwardLatencyMS float64  `json:"forward_latency_ms"`
	Device           string   `json:"device"`
	Operators        []string `json:"operators,omitempty"` // what the graphs use (TorchScript models)
	// How the model is fed, as validation settled it: the metadata's, or
	// what it inferred where the metadata said nothing.
	InputShape []int  `json:"input_shape,omitempty"` // CV
	Tokenizer  string `json:"tokenizer,omitempty"`   // NLP
}

// Error is a failed operation. Permanent errors fail the job without a
// retry; their message is shown to the model's owner.
type Error struct {
	Msg       string
	Permanent bool
}

func (e *Error) Error() string { return e.Msg }

// Permanent returns a permanent *Error.
func Permanent(format string, args ...any) error {
	return &Error{Msg: fmt.Sprintf(format, args...), Permanent: true}
}

// IsPermanent reports whether err is a permanent *Error.
func IsPermanent(err error) (string, bool) {
	var e *Error
	if errors.As(err, &e) && e.Permanent {
		return e.Msg, true
	}
	return "", false
}

// Sink receives what an operation produces besides its result.
type Sink struct {
	Progress func(pct int, stage string)
	// Artifact stores a file and returns the name results refer to it by.
	Artifact func(ctx context.Context, name, contentType string, data []byte) (string, error)
}
