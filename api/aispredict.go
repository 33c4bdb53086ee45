package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/ais/defence"
	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/internal/tenantcache"
	"github.com/wardenlab/warden/modelspec"
	"github.com/wardenlab/warden/predict"
	"github.com/wardenlab/warden/records"
)

// monitorTTL is how long a client's query-stream state lives after its
// last query (a flagged stream stays flagged that long).
const monitorTTL = 24 * time.Hour

// monitorKey is the Redis key of a client's stream state for a model under
// one profile: a new profile (new thresholds) starts every stream afresh.
func monitorKey(org, credential, model, profile string) string {
	return "warden:defence:monitor:" + org + ":" + credential + ":" + model + ":" + profile
}

// guardTargets remembers, for guardCacheTTL, what the guarded endpoint
// needs of a registration: the registration with its files and its newest
// completed defence analysis, so that a stream of guarded predictions
// costs no database query each (the decoded profile is cached by
// analysis: profiles). Entries are keyed by org and registration, so one
// never crosses tenants. A newer profile or a deletion on another replica
// is seen within guardCacheTTL; on this one at once: every lookup of the
// newest profile (GET …/defence, the profile download) updates the entry,
// and deleting the registration forgets it.
type guardTargets = tenantcache.Cache[guardTarget]

type guardTarget struct {
	model   records.AISModel
	files   []records.AISFile
	profile records.Job
}

const guardCacheTTL = 3 * time.Second

// guardTarget is the registration, its files and its newest completed
// defence analysis, through the cache.
func (s *Server) guardTarget(ctx context.Context, org, id string) (records.AISModel, []records.AISFile, records.Job, error) {
	now := time.Now()
	if e, ok := s.guards.Get(org, id, now); ok {
		return e.model, e.files, e.profile, nil
	}
	m, files, err := s.DB.GetAISModel(ctx, org, id)
	if err != nil {
		s.guards.Forget(org, id)
		return m, nil, records.Job{}, notFoundAs(err, "model registration not found")
	}
	j, err := s.profileJob(ctx, m)
	if err != nil {
		return m, nil, j, err
	}
	t := guardTarget{model: m, files: files, profile: j}
	s.guards.Put(org, id, t, now, now.Add(guardCacheTTL), func(old, t guardTarget) guardTarget {
		if old.profile.CreatedAt.After(t.profile.CreatedAt) {
			t.profile = old.profile // a concurrent lookup found a newer one
		}
		return t
	})
	return m, files, j, nil
}

// sawProfile records a completed defence analysis of a registration seen
// on this replica. A newer one than the cached replaces it. When newest is
// set, j is a fresh lookup's newest: an older one than the cached (which
// was deleted since) drops the entry, to be read again.
func sawProfile(g *guardTargets, org, id string, j records.Job, newest bool) {
	g.Alter(org, id, func(e guardTarget) (guardTarget, bool) {
		switch {
		case e.profile.ID == j.ID:
		case j.CreatedAt.Before(e.profile.CreatedAt):
			return e, !newest
		default:
			e.profile = j
		}
		return e, true
	})
}

func (s *Server) routesAISPredict(g *routeGroup, prefix string) {
	general := bucket{"ip", s.Config.RateGeneral}
	g.add(route{Method: "POST", Path: prefix + "/v1.5/model_registration/:model_id/predict", Tag: "aispectra",
		Summary: "A prediction of the registered model guarded by its defence profile: the checks that fired, or 403 in block mode", Role: records.RoleDeveloper, Op: opAISPredict},
		s.aisPredict, s.guard(general), require(records.RoleDeveloper))
}

// aisDefenceAnswer is the guarded endpoint's "defence" member.
type aisDefenceAnswer struct {
	Flagged bool                  `json:"flagged"`
	Mode    string                `json:"mode"`
	Checks  []defence.CheckResult `json:"checks"`
	Stream  aisStreamAnswer       `json:"stream"`
}

// aisStreamAnswer is the caller's query stream as the monitor sees it.
type aisStreamAnswer struct {
	Queries   int    `json:"queries"`
	FlaggedAt int    `json:"flagged_at"`
	FlaggedBy string `json:"flagged_by,omitempty"`
}

// aisPredict is POST …/model_registration/{model_id}/predict. The body is
// spec 002's predict body (input_data: the sample's numbers, or image:
// base64). The model runs on a worker's warm runner on the input and on its
// squeezed copies; the profile's checks and the caller's stream monitor
// run here.
func (s *Server) aisPredict(c echo.Context) error {
	start := time.Now()
	ctx := c.Request().Context()
	var body map[string]json.RawMessage
	if err := decodeBody(c, &body, 16<<20); err != nil {
		return err
	}
	raw, err := predictInput(body)
	if err != nil {
		return err
	}
	org := orgOf(c)
	m, files, profJob, err := s.guardTarget(ctx, org, c.Param("model_id"))
	if err != nil {
		return err
	}
	prof, err := s.decodeProfile(ctx, profJob)
	if err != nil {
		s.guards.Forget(org, m.ID) // read it again next time (deleted since?)
		return err
	}
	var modelFile *records.AISFile
	for i, f := range files {
		if f.Name == ais.FileModel && f.Status == records.AISFileValid {
			modelFile = &files[i]
		}
	}
	if modelFile == nil {
		return &warden.Error{Code: warden.EPRECONDITION, Message: "the registration has no valid model file", Details: map[string]string{"model": "not uploaded and valid"}}
	}
	labels := prof.Labels
	if len(labels) != prof.Classes {
		labels = modelspec.Config{}.LabelNames(prof.Classes)
	}
	md, err := json.Marshal(map[string]any{"input_shape": prof.InputShape, "labels": labels,
		"input_range": []float32{prof.Squeezer.Lo, prof.Squeezer.Hi}})
	if err != nil {
		return err
	}
	cfg, details := modelspec.ParseConfig(modelspec.TypeCV, md)
	if len(details) > 0 {
		return fmt.Errorf("defence profile of %s: model config: %v", m.ID, details)
	}
	x, err := cfg.Encode(raw)
	if err != nil {
		return err
	}
	sample := attacks.Batch{Data: x, Shape: append([]int{1}, prof.InputShape...)}
	squeezed, err := prof.Squeezer.Squeeze(sample)
	if err != nil {
		return err
	}
	release, err := s.inflight.acquire(org, int(s.Config.OrgMaxActiveJobs))
	if err != nil {
		return err
	}
	defer release()
	model := predict.Model{ID: m.ID, OrgID: m.OrgID, Type: modelspec.TypeCV, Metadata: md, BlobKey: modelFile.BlobKey, Zip: true,
		Version: modelFile.UpdatedAt.UnixNano()}
	outs, rep, err := s.predictAll(c, model, append([]attacks.Batch{sample}, squeezed...), labels)
	// observe records the prediction (recordPrediction): outcome guarded
	// (answered, nothing fired), flagged (answered with checks fired),
	// blocked (403), or the error's code as for plain predictions; the
	// worker's stages are those of the unsqueezed input.
	observe := func(outcome string, failure error) {
		s.recordPrediction(c, newPredictionID(), m.ID, raw, start, rep, outcome, failure)
	}
	if err != nil {
		observe(warden.ErrorCode(err), err)
		return err
	}
	dec, err := prof.Check(defence.Sample{Shape: prof.InputShape, X: x, Outs: outs})
	if err != nil {
		observe(warden.EINTERNAL, err)
		return fmt.Errorf("defence checks: %w", err)
	}
	oodFired := false
	for _, ch := range dec.Checks {
		oodFired = oodFired || (ch.Name == defence.CheckOOD && ch.Fired)
	}
	class := 0
	for i, v := range outs[0] {
		if v > outs[0][class] {
			class = i
		}
	}
	cred := ""
	if p := principal(c); p != nil {
		cred = p.CredentialID
	}
	stream, streamChecks, err := s.observeQuery(ctx, monitorKey(org, cred, m.ID, profJob.ID), prof.Monitor, x, class, oodFired)
	if err != nil {
		observe(warden.ErrorCode(err), err)
		return err
	}
	ans := aisDefenceAnswer{Flagged: dec.Flagged, Mode: prof.Mode, Checks: dec.Checks,
		Stream: aisStreamAnswer{Queries: stream.Queries, FlaggedAt: stream.FlaggedAt, FlaggedBy: stream.FlaggedBy}}
	ans.Checks = append(ans.Checks, streamChecks...)
	if stream.FlaggedAt > 0 {
		ans.Flagged = true
	}
	if ans.Flagged && prof.Mode == defence.ModeBlock {
		fired := dec.Fired()
		if stream.FlaggedAt > 0 {
			fired = append(fired, stream.FlaggedBy)
		}
		blocked := &warden.Error{Code: warden.EFORBIDDEN, Message: "blocked by the endpoint defence: " + strings.Join(fired, ", ") + " fired",
			Details: map[string]string{"checks": strings.Join(fired, ","), "model_id": m.ID}}
		observe("blocked", blocked)
		return blocked
	}
	if ans.Flagged {
		observe("flagged", nil)
	} else {
		observe("guarded", nil)
	}
	return c.JSON(http.StatusOK, map[string]any{"prediction": rep.Prediction, "confidence": rep.Confidence, "model_id": m.ID,
		"input_hash": rep.InputHash, "probabilities": rep.Probabilities, "defence": ans})
}

// predictAll runs the model on each one-sample batch at once (they share
// a forward pass when the worker batches them) and returns each answer's
// probabilities in label order, and the first reply.
func (s *Server) predictAll(c echo.Context, model predict.Model, xs []attacks.Batch, labels []string) ([][]float32, predict.Reply, error) {
	ctx := c.Request().Context()
	deadline := time.Now().Add(s.Config.PredictTimeout)
	reps := make([]predict.Reply, len(xs))
	errs := make([]error, len(xs))
	var wg sync.WaitGroup
	for i, x := range xs {
		in, err := json.Marshal(x.Data)
		if err != nil {
			return nil, predict.Reply{}, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := predict.Request{ID: newPredictionID(), Input: in, Deadline: deadline, Model: model}
			reps[i], errs[i] = s.predictions.Do(ctx, req)
		}()
	}
	wg.Wait()
	outs := make([][]float32, len(xs))
	for i := range xs {
		if err := s.predictAnswer(c, reps[i], errs[i]); err != nil {
			return nil, reps[0], err
		}
		row := make([]float32, len(labels))
		for k, l := range labels {
			p, ok := reps[i].Probabilities[l]
			if !ok {
				names := make([]string, 0, len(reps[i].Probabilities))
				for n := range reps[i].Probabilities {
					names = append(names, n)
				}
				sort.Strings(names)
				return nil, reps[0], fmt.Errorf("model %s answered classes %v, the profile names %v", model.ID, names, labels)
			}
			row[k] = p
		}
		outs[i] = row
	}
	return outs, reps[0], nil
}

// observeQuery adds a query to the client's stream state in Redis (an
// optimistic transaction: concurrent queries of one client retry) and
// returns the state and the stream checks.
func (s *Server) observeQuery(ctx context.Context, key string, m *defence.Monitor, x []float32, class int, ood bool) (defence.State, []defence.CheckResult, error) {
	var (
		st     defence.State
		checks []defence.CheckResult
	)
	tx := func(t *redis.Tx) error {
		st = defence.State{}
		b, err := t.Get(ctx, key).Bytes()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return err
		default:
			if err := json.Unmarshal(b, &st); err != nil {
				st = defence.State{} // unreadable (older format): start over
			}
		}
		checks = m.Observe(&st, x, class, ood)
		out, err := json.Marshal(&st)
		if err != nil {
			return err
		}
		_, err = t.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, out, monitorTTL)
			return nil
		})
		return err
	}
	for range 20 {
		err := s.rdb.Watch(ctx, tx, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil {
			return st, nil, fmt.Errorf("query-stream monitor: %w", err)
		}
		return st, checks, nil
	}
	return st, nil, &warden.Error{Code: warden.EUNAVAILABLE, Message: "too many concurrent queries of this client; retry",
		Details: map[string]string{"retry_after_seconds": "1"}}
}
