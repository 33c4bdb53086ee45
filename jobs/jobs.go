// Package jobs is the contract between Warden's API surfaces and its
// workers. Each job kind is a Go type, as River's JobArgs are: one Input
// type and one Result type, declared once with the kind's queue, retries
// and timeout (a Kind value). The Service interface submits, cancels and
// reads jobs with the tenancy check inside; Events is how the surface that
// owns a kind renders its webhook. JSON happens in one place, the codec.
//
// Storage persists rows and knows no kind; queue implements Service over
// storage and asynq; the worker runs one typed handler per kind.
package jobs

import (
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Queues. `warden worker --queues gpu=6,cpu=2` picks which a pool serves.
const (
	QueueCritical = "critical" // predictions, webhooks
	QueueGPU      = "gpu"      // attacks, analyses
	QueueCPU      = "cpu"      // verification, model validation
)

// Queues lists every queue a worker may serve.
var Queues = []string{QueueCritical, QueueGPU, QueueCPU}

// Spec is how a kind is queued and retried; it knows nothing of the
// kind's types, so storage-level code (the reconciler, metrics) can use it.
type Spec struct {
	Name     string        // records.Job.Kind
	Queue    string        // asynq queue
	MaxRetry int           // retries after the first attempt
	Timeout  time.Duration // per attempt
	idPrefix string        // "" for a plain UUID
	idLen    int           // hex digits after the prefix
}

// NewID returns a fresh job id in the kind's format (a UUID for
// verification and probes, "atk_" + 24 hex digits for attacks…).
func (s Spec) NewID() string {
	if s.idPrefix == "" {
		return uuid.NewString()
	}
	h := strings.ReplaceAll(uuid.NewString(), "-", "")
	if s.idLen > 0 && s.idLen < len(h) {
		h = h[:s.idLen]
	}
	return s.idPrefix + h
}

// Kind is a job kind with its typed input I and result R.
type Kind[I, R any] struct{ Spec }

var specs = map[string]Spec{}

// declare registers a kind once; a second declaration of a name panics at
// start-up, so two kinds can never share a name.
func declare[I, R any](s Spec) Kind[I, R] {
	if _, dup := specs[s.Name]; dup {
		panic("jobs: kind declared twice: " + s.Name)
	}
	specs[s.Name] = s
	return Kind[I, R]{s}
}

// The job kinds. Adding one: an input type, a result type, a line here, a
// handler in the worker and a renderer in each surface that shows it.
var (
	VerifyMedia   = declare[VerifyInput, VerifyResult](Spec{Name: "verify_media", Queue: QueueCPU, MaxRetry: 5, Timeout: 10 * time.Minute})
	Probe         = declare[ProbeInput, ProbeResult](Spec{Name: "probe", Queue: QueueCPU, MaxRetry: 5, Timeout: 2 * time.Minute})
	ValidateModel = declare[ValidateModelInput, ValidateModelResult](Spec{Name: "model_validate", Queue: QueueCPU, MaxRetry: 3, Timeout: 15 * time.Minute, idPrefix: "mjob_"})
	Attack        = declare[AttackInput, AttackResult](Spec{Name: "attack", Queue: QueueGPU, MaxRetry: 2, Timeout: time.Hour, idPrefix: "atk_", idLen: 24})
	Analysis      = declare[AnalysisInput, AnalysisResult](Spec{Name: "analysis", Queue: QueueGPU, MaxRetry: 2, Timeout: 2 * time.Hour, idPrefix: "ana_", idLen: 24})
)

// Lookup finds a kind's Spec by name.
func Lookup(name string) (Spec, bool) {
	s, ok := specs[name]
	return s, ok
}

// All lists every kind's Spec, by name.
func All() []Spec {
	out := make([]Spec, 0, len(specs))
	for _, s := range specs {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Submission builds the submission of a job of this kind with its input.
func (k Kind[I, R]) Submission(in I) (Submission, error) {
	enc, err := encode(in)
	if err != nil {
		return Submission{}, err
	}
	return Submission{Kind: k.Spec, Input: enc}, nil
}

// Input decodes a job's stored input.
func (k Kind[I, R]) Input(stored string) (I, error) { return decode[I](stored) }

// EncodeResult encodes a result for storage.
func (k Kind[I, R]) EncodeResult(r R) (string, error) { return encode(r) }

// Result decodes a stored result.
func (k Kind[I, R]) Result(stored string) (R, error) { return decode[R](stored) }

// Summarizer is implemented by results that have a one-word summary kept
// in an indexed column (a verification label, an attack outcome).
type Summarizer interface{ Summary() string }
