// Package predict carries synchronous predictions from the API to the
// workers and back over Redis, without polling anywhere: the API pushes a
// request onto the list of one worker it chose and blocks on its own reply
// list; the worker blocks on its request list and pushes the reply. Workers
// announce themselves (a heartbeat every HeartbeatInterval) and the models
// they hold warm, so the API sends a model's predictions to a worker that
// already has it loaded, and learns within StaleAfter + a poll slice that a
// worker it waits on is gone. Predictions are not durable: a lost worker is
// a fast ErrWorkerLost, not a retry. Attacks and analyses stay on asynq.
package predict

import (
	"encoding/json"
	"errors"
	"time"
)

// Timing of the liveness protocol.
const (
	// HeartbeatInterval is how often a worker renews its entry and its
	// warm models.
	HeartbeatInterval = 300 * time.Millisecond
	// StaleAfter is how old a heartbeat may be before the worker counts as
	// gone.
	StaleAfter = 1200 * time.Millisecond
	// waitSlice is how long a client blocks on its replies before checking
	// that the worker it waits on is still alive.
	waitSlice = 250 * time.Millisecond
)

// Redis keys.
const (
	keyPrefix  = "warden:predict:"
	workersKey = keyPrefix + "workers" // ZSET worker id → last heartbeat (unix ms)
)

func warmKey(modelID string) string   { return keyPrefix + "warm:" + modelID }   // ZSET worker id → heartbeat
func inboxKey(workerID string) string { return keyPrefix + "in:" + workerID }    // LIST of requests
func replyKey(clientID string) string { return keyPrefix + "reply:" + clientID } // LIST of replies

// Errors a Client returns; the API maps them to 503 and 504.
var (
	ErrNoWorker   = errors.New("no worker serves predictions")
	ErrWorkerLost = errors.New("the worker serving this prediction stopped")
	ErrTimeout    = errors.New("no prediction in time")
)

// Model is what a worker needs to serve a model: the API has just read
// its row (and checked the caller may use it), so the worker does not.
type Model struct {
	ID          string          `json:"id"`
	OrgID       string          `json:"org_id"`
	Type        string          `json:"type"`
	Metadata    json.RawMessage `json:"metadata"`
	BlobKey     string          `json:"blob_key,omitempty"`
	EndpointURL string          `json:"endpoint_url,omitempty"`
	// Zip: BlobKey is an AISpectra registration's model zip; the worker
	// serves the one TorchScript file inside it.
	Zip bool `json:"zip,omitempty"`
	// Version changes whenever the model's file or metadata does (its
	// updated_at); warm runners are kept per version.
	Version int64 `json:"version"`
}

// Request is one prediction.
type Request struct {
	ID       string          `json:"id"`
	Model    Model           `json:"model"`
	Input    json.RawMessage `json:"input"`
	Deadline time.Time       `json:"deadline"`
	// ReplyTo is the client's reply list, set by Client.Do.
	ReplyTo string `json:"reply_to"`
}

// Reply codes besides success.
const (
	CodeInvalidInput = "invalid_input" // the model cannot take this input (400)
	CodeFailed       = "failed"        // the model failed (500)
	CodeTimeout      = "timeout"       // the deadline passed on the worker (504)
	CodeUnavailable  = "unavailable"   // the worker cannot serve it now (503)
)

// Reply answers one Request.
type Reply struct {
	ID         string  `json:"id"`
	Prediction string  `json:"prediction,omitempty"`
	Confidence float32 `json:"confidence,omitempty"`
	InputHash  string  `json:"input_hash,omitempty"`
	// Probabilities by label.
	Probabilities map[string]float32 `json:"probabilities,omitempty"`
	Device        string             `json:"device,omitempty"`
	Code          string             `json:"code,omitempty"`
	Error         string             `json:"error,omitempty"`
	// Timing, measured on the worker: WorkerMS from receiving the request
	// to sending the reply, RunnerMS the runner round trip of its batch,
	// ForwardMS the forward pass inside the runner; Batch is how many
	// predictions shared that forward.
	WorkerMS  float64 `json:"worker_ms"`
	RunnerMS  float64 `json:"runner_ms"`
	ForwardMS float64 `json:"forward_ms"`
	Batch     int     `json:"batch"`
	Worker    string  `json:"worker"`
	// HandoffMS, measured by Client.Do, is what carrying the request to the
	// worker and the reply back cost: from pushing the request until the
	// reply reached the caller, less WorkerMS (two Redis list hops, the
	// blocked pops waking, JSON both ways).
	HandoffMS float64 `json:"-"`
}
