package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/wardenlab/warden/predict"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/worker/runner"
)

// predictions serves this worker's synchronous predictions (package
// predict): requests for one model version go to that version's batcher,
// which runs them on the model's warm runner, several per forward pass
// when they arrive together.
type predictions struct {
	w      *Worker
	srv    *predict.Server
	window time.Duration // how long a batch waits for company under load
	max    int           // most predictions per forward pass; 1 = no batching
	idle   time.Duration // a batcher with no request this long ends

	mu       sync.Mutex
	batchers map[string]*batcher
	stopping bool
	running  sync.WaitGroup
}

// batcher owns one model version's queue of predictions.
type batcher struct {
	key    string
	model  predict.Model
	ch     chan pendingPrediction
	remote *httpClassifier // endpoint models, probed once
}

type pendingPrediction struct {
	req predict.Request
	got time.Time
}

func newPredictions(w *Worker) *predictions {
	p := &predictions{w: w, window: w.Config.PredictBatchWindow, max: max(w.Config.PredictBatchMax, 1),
		idle: w.Config.RunnerIdleTimeout, batchers: map[string]*batcher{}}
	if p.idle <= 0 {
		p.idle = 5 * time.Minute
	}
	p.srv = predict.NewServer(w.rdb, p.handle, w.runners.Warm)
	return p
}

// serve takes predictions until ctx ends, then lets the batches in flight
// finish and answers the rest with "unavailable".
func (p *predictions) serve(ctx context.Context) {
	p.srv.Run(ctx)
	p.mu.Lock()
	p.stopping = true
	for _, b := range p.batchers {
		close(b.ch)
	}
	p.mu.Unlock()
	p.running.Wait()
}

// handle queues one request on its model version's batcher.
func (p *predictions) handle(req predict.Request) {
	key := fmt.Sprintf("%s-%d", req.Model.ID, req.Model.Version)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping {
		p.srv.Reply(context.Background(), req, predict.Reply{Code: predict.CodeUnavailable, Error: "the worker is shutting down"})
		return
	}
	b, ok := p.batchers[key]
	if !ok {
		b = &batcher{key: key, model: req.Model, ch: make(chan pendingPrediction, 8*p.max+64)}
		p.batchers[key] = b
		p.running.Add(1)
		go p.loop(b)
	}
	select {
	case b.ch <- pendingPrediction{req: req, got: time.Now()}:
	default:
		p.srv.Reply(context.Background(), req, predict.Reply{Code: predict.CodeUnavailable, Error: "the worker has too many predictions queued for this model"})
	}
}

// loop runs a batcher: take the first waiting prediction, add those
// already queued behind it, and, when the model is busy (the last batch
// had company), wait up to the window for more; a lone request never
// waits. Ends after idle time without requests or when the worker stops.
func (p *predictions) loop(b *batcher) {
	defer p.running.Done()
	idle := time.NewTimer(p.idle)
	defer idle.Stop()
	busy := false
	for {
		var first pendingPrediction
		select {
		case r, ok := <-b.ch:
			if !ok {
				return
			}
			first = r
		case <-idle.C:
			p.mu.Lock()
			if len(b.ch) == 0 && !p.stopping {
				delete(p.batchers, b.key)
				p.mu.Unlock()
				return
			}
			p.mu.Unlock()
			idle.Reset(p.idle)
			continue
		}
		batch := p.collect(b, first, busy)
		busy = len(batch) > 1
		p.run(b, batch)
		idle.Reset(p.idle)
	}
}

// collect adds to first the predictions already queued and, if waitMore,
// those arriving within the window, up to the batch maximum.
func (p *predictions) collect(b *batcher, first pendingPrediction, waitMore bool) []pendingPrediction {
	batch := []pendingPrediction{first}
	var window <-chan time.Time // nil: take only what is queued now
	if waitMore && p.window > 0 {
		t := time.NewTimer(p.window)
		defer t.Stop()
		window = t.C
	}
	add := func(r pendingPrediction, ok bool) bool {
		if ok {
			batch = append(batch, r)
		}
		return ok
	}
	for len(batch) < p.max {
		select { // what is queued first, whatever the window says
		case r, ok := <-b.ch:
			if !add(r, ok) {
				return batch
			}
			continue
		default:
		}
		if window == nil {
			return batch
		}
		select {
		case r, ok := <-b.ch:
			if !add(r, ok) {
				return batch
			}
		case <-window:
			return batch
		}
	}
	return batch
}

// run does one forward pass for the batch and answers each request.
func (p *predictions) run(b *batcher, batch []pendingPrediction) {
	deadline := batch[0].req.Deadline
	inputs := make([]json.RawMessage, len(batch))
	for i, r := range batch {
		inputs[i] = r.req.Input
		if r.req.Deadline.Before(deadline) {
			deadline = r.req.Deadline
		}
	}
	// The runner is killed at the deadline (a model that never returns),
	// whatever happens to the worker's own context meanwhile.
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	res, err := p.w.predictBatch(ctx, b, runner.PredictBatch{ModelID: b.model.ID, Inputs: inputs})
	runnerMS := ms(time.Since(start))
	reqs, reps := make([]predict.Request, len(batch)), make([]predict.Reply, len(batch))
	for i, r := range batch {
		rep := predict.Reply{RunnerMS: runnerMS, Batch: len(batch)}
		switch {
		case err != nil:
			rep.Code, rep.Error = predictionError(ctx, b.model.ID, err)
		case res.Items[i].Error != "":
			rep.Code, rep.Error = predict.CodeInvalidInput, res.Items[i].Error
		default:
			out := res.Items[i].Result
			rep.Prediction, rep.Confidence, rep.InputHash, rep.Probabilities, rep.Device =
				out.Prediction, out.Confidence, out.InputHash, out.Probabilities, out.Device
			rep.ForwardMS = res.ForwardMS
		}
		rep.WorkerMS = ms(time.Since(r.got))
		reqs[i], reps[i] = r.req, rep
	}
	p.srv.ReplyAll(context.Background(), reqs, reps)
}

// predictionError is the code and the message a caller sees for a failed
// batch; details stay in the log.
func predictionError(ctx context.Context, modelID string, err error) (string, string) {
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		return predict.CodeTimeout, "the model did not answer within the prediction timeout; its runner was stopped"
	}
	if msg, ok := runner.IsPermanent(err); ok {
		return predict.CodeFailed, msg
	}
	var perm *permanentError
	if errors.As(err, &perm) {
		return predict.CodeFailed, perm.Error()
	}
	slog.Warn("prediction failed", "model_id", modelID, "err", err)
	return predict.CodeFailed, "prediction failed"
}

// predictBatch runs a batch on the model: on its warm runner, or, for a
// model served by its own endpoint, from this process.
func (w *Worker) predictBatch(ctx context.Context, b *batcher, batch runner.PredictBatch) (*runner.BatchResult, error) {
	m := records.Model{ID: b.model.ID, OrgID: b.model.OrgID, Type: b.model.Type, Metadata: string(b.model.Metadata),
		BlobKey: b.model.BlobKey, EndpointURL: b.model.EndpointURL, UpdatedAt: time.Unix(0, b.model.Version)}
	req := runner.Request{Op: runner.OpBatch, Batch: &batch}
	if m.EndpointURL != "" {
		if b.remote == nil {
			clf, err := w.remoteModel(ctx, m)
			if err != nil {
				return nil, err
			}
			b.remote = clf
		}
		d, err := runner.Execute(ctx, b.remote, req, runner.Env{WordNetDir: w.Config.WordNetDir, Threads: w.threads}, runner.Sink{})
		if err != nil {
			return nil, err
		}
		return batchOf(d)
	}
	if err := w.sandbox().err; err != nil {
		return nil, Permanent("%v", err)
	}
	modelFile := w.modelFile
	if b.model.Zip {
		modelFile = w.zippedModelFile
	}
	mf, key, err := modelFile(ctx, m)
	if err != nil {
		return nil, err
	}
	d, err := w.runners.Do(ctx, key, mf, req, runner.Sink{})
	if err != nil {
		return nil, err
	}
	return batchOf(d)
}

func batchOf(d *runner.Done) (*runner.BatchResult, error) {
	if d.Error != "" {
		return nil, &runner.Error{Msg: d.Error, Permanent: d.Permanent}
	}
	if d.Batch == nil {
		return nil, fmt.Errorf("runner answered predict_batch without a result")
	}
	return d.Batch, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
