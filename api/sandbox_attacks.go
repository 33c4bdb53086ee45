package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/modelspec"
	"github.com/wardenlab/warden/records"
)

// maxAttackBatch bounds the inputs of one attack.
const maxAttackBatch = 256

// Paths of an attack's routes.
func attackResultsPath(id string) string        { return "/v1/attacks/" + id + "/results" }
func attackArtifactPath(id, file string) string { return "/v1/attacks/" + id + "/artifacts/" + file }

func (s *Server) routesAttacks(g *routeGroup) {
	general := bucket{"ip", s.Config.RateGeneral}
	viewer, developer := require(records.RoleViewer), require(records.RoleDeveloper)
	g.add(route{Method: "GET", Path: "/v1/attacks", Tag: "attacks", Summary: "List attack methods with their parameter schemas", Role: records.RoleViewer, Op: opAttackList}, s.listAttacks, s.guard(general), viewer)
	g.add(route{Method: "POST", Path: "/v1/attacks/launch", Tag: "attacks", Summary: "Launch an adversarial attack (asynchronous)", Role: records.RoleDeveloper, Op: opAttackLaunch}, s.launchAttack, s.guard(general), developer)
	g.add(route{Method: "GET", Path: "/v1/attacks/:attack_id/status", Tag: "attacks", Summary: "Attack status and progress", Role: records.RoleViewer, Op: opAttackStatus}, s.attackStatus, s.guard(general), viewer)
	g.add(route{Method: "GET", Path: "/v1/attacks/:attack_id/results", Tag: "attacks", Summary: "Results of a completed attack", Role: records.RoleViewer, Op: opAttackResults}, s.attackResults, s.guard(general), viewer)
	g.add(route{Method: "POST", Path: "/v1/attacks/:attack_id/cancel", Tag: "attacks", Summary: "Cancel a queued or running attack", Role: records.RoleDeveloper, Op: opAttackCancel}, s.cancelAttack, s.guard(general), developer)
	g.add(route{Method: "GET", Path: "/v1/attacks/:attack_id/artifacts/:name", Tag: "attacks", Summary: "PNG of an original, adversarial or amplified-perturbation image", Role: records.RoleViewer, Op: opAttackArtifact}, s.attackArtifact, s.guard(general), viewer)
}

func (s *Server) listAttacks(c echo.Context) error {
	mt := strings.ToUpper(c.QueryParam("model_type"))
	if mt != "" && mt != "CV" && mt != "NLP" {
		return invalid("model_type", "CV or NLP")
	}
	data := []attacks.Entry{}
	for _, e := range attacks.Catalog() {
		for _, t := range e.CompatibleModelTypes {
			if mt == "" || t == mt {
				data = append(data, e)
				break
			}
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"total": len(data), "data": data})
}

type launchRequest struct {
	ModelID          string            `json:"model_id"`
	AttackMethodID   string            `json:"attack_method_id"`
	InputData        json.RawMessage   `json:"input_data"`
	Inputs           []json.RawMessage `json:"inputs"`
	TrueLabels       []json.RawMessage `json:"true_labels"`
	TargetLabel      json.RawMessage   `json:"target_label"`
	AttackParameters json.RawMessage   `json:"attack_parameters"`
	CallbackURL      string            `json:"callback_url"`
}

// labelOf resolves a label given by name ("Negative") or index (3).
func labelOf(raw json.RawMessage, labels []string) (int, bool) {
	var name string
	if json.Unmarshal(raw, &name) == nil {
		for i, l := range labels {
			if strings.EqualFold(l, name) {
				return i, true
			}
		}
		return 0, false
	}
	var f float64
	if json.Unmarshal(raw, &f) == nil && f == math.Trunc(f) && f >= 0 && int(f) < len(labels) {
		return int(f), true
	}
	return 0, false
}

// launchAttack validates everything a worker would trip over (model state,
// method, parameters against the schema, each input, labels) so that a
// launched attack fails only for reasons found while attacking.
func (s *Server) launchAttack(c echo.Context) error {
	ctx := c.Request().Context()
	var req launchRequest
	if err := decodeBody(c, &req, jobs.MaxAttackLaunchBytes); err != nil {
		return err
	}
	d := map[string]string{}
	entry, ok := attacks.Lookup(req.AttackMethodID)
	if !ok {
		d["attack_method_id"] = "unknown attack method; see GET /v1/attacks"
	}
	if req.ModelID == "" {
		d["model_id"] = "required"
	}
	if len(d) > 0 {
		return &warden.Error{Code: warden.EINVALID, Message: "Invalid attack launch", Details: d}
	}
	org := orgOf(c)
	m, cfg, err := s.activeModel(ctx, org, req.ModelID)
	if err != nil {
		return err
	}
	compatible := false
	for _, t := range entry.CompatibleModelTypes {
		compatible = compatible || t == m.Type
	}
	if !compatible {
		return invalid("attack_method_id", fmt.Sprintf("%s does not apply to %s models", entry.ID, m.Type))
	}
	if m.EndpointURL != "" && entry.Access == "white-box" {
		return invalid("attack_method_id", fmt.Sprintf("%s needs gradients; this model is a remote endpoint, so only black-box methods apply", entry.ID))
	}
	params, pd, err := attacks.ValidateParams(entry.ID, req.AttackParameters)
	if err != nil {
		for k, v := range pd {
			d["attack_parameters."+k] = v
		}
		if len(d) == 0 {
			d["attack_parameters"] = err.Error()
		}
	}
	inputs, id := attackInputs(req, m.Type)
	for k, v := range id {
		d[k] = v
	}
	for i, in := range inputs {
		if err := cfg.Check(in); err != nil { // the header only: workers decode
			d[inputField(req, m.Type, i)] = inputProblem(err)
			break
		}
	}
	var trueLabels []int
	if len(req.TrueLabels) > 0 {
		if len(req.TrueLabels) != len(inputs) {
			d["true_labels"] = "one label per input"
		}
		for i, raw := range req.TrueLabels {
			l, ok := labelOf(raw, cfg.Labels)
			if !ok {
				d[fmt.Sprintf("true_labels[%d]", i)] = "unknown label"
				break
			}
			trueLabels = append(trueLabels, l)
		}
	}
	var target *int
	if len(req.TargetLabel) > 0 && string(req.TargetLabel) != "null" {
		l, ok := labelOf(req.TargetLabel, cfg.Labels)
		if !ok {
			d["target_label"] = fmt.Sprintf("unknown label; the model's labels are %v", cfg.Labels)
		}
		target = &l
	}
	if len(d) > 0 {
		return &warden.Error{Code: warden.EINVALID, Message: "Invalid attack launch", Details: d}
	}
	if err := s.checkCallback(c, req.CallbackURL); err != nil {
		return err
	}
	sub, err := jobs.Attack.Submission(jobs.AttackInput{ModelID: m.ID, AttackMethodID: entry.ID, Params: params, Inputs: inputs, TrueLabels: trueLabels, TargetLabel: target})
	if err != nil {
		return err
	}
	sub.OrgID, sub.CallbackURL = org, req.CallbackURL
	job, err := s.Jobs.Submit(ctx, sub)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{
		"attack_id": job.ID, "status": "initiated",
		"message":                           "Attack initiated successfully. Poll its status, or results will be sent to the callback URL.",
		"estimated_completion_time_seconds": estimateSeconds(entry.ID, params, m, len(inputs)),
	})
}

// attackInputs collects a launch's inputs in the forms the model takes (a
// string: text or base64 image; an array of numbers). input_data holds one
// input, or a list of inputs (a batch); inputs holds a batch. Each input
// may be what predict takes: the bare value, {"image": base64} or
// {"input_data": value}. details names what is wrong.
func attackInputs(req launchRequest, modelType string) ([]json.RawMessage, map[string]string) {
	var raw []json.RawMessage
	switch {
	case len(req.InputData) > 0 && len(req.Inputs) > 0:
		return nil, map[string]string{"input_data": "send input_data (one input or a list) or inputs (a batch), not both"}
	case len(req.InputData) > 0:
		if !isBatch(req.InputData, modelType) {
			raw = []json.RawMessage{req.InputData}
		} else if err := json.Unmarshal(req.InputData, &raw); err != nil { // raw is nil: nothing of req.InputData is reused
			return nil, map[string]string{"input_data": "a batch must be a list of inputs: " + err.Error()}
		}
	default:
		raw = req.Inputs
	}
	switch {
	case len(raw) == 0:
		return nil, map[string]string{"input_data": "required: one input, or a list of inputs"}
	case len(raw) > maxAttackBatch:
		return nil, map[string]string{inputField(req, modelType, -1): fmt.Sprintf("at most %d inputs", maxAttackBatch)}
	}
	out := make([]json.RawMessage, len(raw))
	for i, r := range raw {
		in, err := bareInput(r)
		if err != nil {
			return nil, map[string]string{inputField(req, modelType, i): inputProblem(err)}
		}
		out[i] = in
	}
	return out, nil
}

// isBatch tells a list of inputs from one input given as a list: a CV
// model's single input is an array of numbers, so a list is a batch when
// its first element is not a number; for NLP every list is a batch.
func isBatch(raw json.RawMessage, modelType string) bool {
	var elems []json.RawMessage
	if raw = bytes.TrimSpace(raw); len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &elems) != nil || len(elems) == 0 {
		return false
	}
	if modelType == modelspec.TypeNLP {
		return true
	}
	first := bytes.TrimSpace(elems[0])
	return len(first) > 0 && (first[0] == '"' || first[0] == '{' || first[0] == '[')
}

// bareInput unwraps an input given as predict's body ({"image": …} or
// {"input_data": …}); any other input is returned as it is.
func bareInput(raw json.RawMessage) (json.RawMessage, error) {
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return raw, nil
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, invalid("input_data", "an input object must be {\"image\": base64} or {\"input_data\": value}")
	}
	return predictInput(body)
}

// inputField names input i of a launch in error details: input_data for
// a single input, input_data[i] or inputs[i] in a batch (i < 0: the list).
func inputField(req launchRequest, modelType string, i int) string {
	field := "inputs"
	if len(req.InputData) > 0 {
		if !isBatch(req.InputData, modelType) {
			return "input_data"
		}
		field = "input_data"
	}
	if i < 0 {
		return field
	}
	return fmt.Sprintf("%s[%d]", field, i)
}

// inputProblem says what is wrong with an input: the one detail of the
// error, else its message.
func inputProblem(err error) string {
	if d := warden.ErrorDetails(err); len(d) == 1 {
		for field, msg := range d {
			if field == "image" || field == "input_data" {
				return msg
			}
			return field + ": " + msg
		}
	}
	return warden.ErrorMessage(err)
}

// estimateSeconds estimates an attack's run time from the model's measured
// forward latency and the number of model evaluations the method makes.
func estimateSeconds(id string, p map[string]any, m records.Model, n int) int {
	var metrics struct {
		LatencyMS float64 `json:"forward_latency_ms"`
	}
	json.Unmarshal([]byte(m.Metrics), &metrics)
	lat := math.Max(metrics.LatencyMS, 0.05)
	get := func(k string, def float64) float64 {
		if v, ok := p[k].(float64); ok {
			return v
		}
		if v, ok := p[k].(int); ok {
			return float64(v)
		}
		return def
	}
	var evals float64 // per sample
	switch id {
	case attacks.IDFGSM:
		evals = 3
	case attacks.IDPGD:
		evals = 3 * get("max_iter", 40) * math.Max(1, get("num_random_init", 1))
	case attacks.IDHopSkipJump, attacks.IDSquare:
		evals = get("max_queries", 1000)
	case attacks.IDTextFooler:
		evals = 30 + get("num_words_to_change", 5)*get("max_candidates", 20)
	}
	secs := evals * float64(n) * lat / 1000
	return int(math.Max(1, math.Ceil(secs)))
}

// attackScope is what a caller may see of attacks: their org's.
func attackScope(c echo.Context) jobs.Scope {
	return jobs.Scope{OrgID: orgOf(c), Kind: jobs.Attack.Name}
}

// loadAttack loads an attack job of the caller's org, else 404.
func (s *Server) loadAttack(c echo.Context) (records.Job, error) {
	j, err := s.Jobs.Get(c.Request().Context(), attackScope(c), c.Param("attack_id"))
	return j, notFoundAs(err, "attack not found")
}

func (s *Server) attackStatus(c echo.Context) error {
	j, err := s.loadAttack(c)
	if err != nil {
		return err
	}
	var errMsg *string
	if j.Error != "" {
		errMsg = &j.Error
	}
	var resultAt *Timestamp
	if j.Status == records.JobCompleted {
		resultAt = (*Timestamp)(j.FinishedAt)
	}
	return c.JSON(http.StatusOK, map[string]any{"attack_id": j.ID, "status": j.Status, "progress_percentage": j.Progress,
		"current_stage": j.Stage, "started_at": (*Timestamp)(j.StartedAt), "updated_at": Timestamp(j.UpdatedAt), "result_available_at": resultAt, "error": errMsg})
}

func (s *Server) attackResults(c echo.Context) error {
	j, err := s.loadAttack(c)
	if err != nil {
		return err
	}
	if j.Status != records.JobCompleted {
		msg := "attack is " + j.Status
		if j.Error != "" {
			msg += ": " + j.Error
		}
		return &warden.Error{Code: warden.ECONFLICT, Message: msg, Details: map[string]string{"status": j.Status}}
	}
	return s.completedJSON(c, j, "attack results", func() (any, error) {
		r, err := s.Jobs.Result(c.Request().Context(), j)
		if err != nil {
			return nil, err
		}
		return attackDocument(j, r)
	})
}

func (s *Server) cancelAttack(c echo.Context) error {
	j, done, err := s.Jobs.Cancel(c.Request().Context(), attackScope(c), c.Param("attack_id"))
	if err != nil {
		return notFoundAs(err, "attack not found")
	}
	if !done {
		return &warden.Error{Code: warden.ECONFLICT, Message: "attack already " + j.Status, Details: map[string]string{"status": j.Status}}
	}
	return c.JSON(http.StatusOK, map[string]any{"attack_id": j.ID, "status": records.JobCancelled})
}

var artifactName = regexp.MustCompile(`^[0-9]{1,3}_(original|adversarial|perturbation)\.png$`)

func (s *Server) attackArtifact(c echo.Context) error {
	j, err := s.loadAttack(c)
	if err != nil {
		return err
	}
	name := c.Param("name")
	if !artifactName.MatchString(name) {
		return warden.Errorf(warden.ENOTFOUND, "artifact not found")
	}
	return s.serveJobArtifact(c, j.ID, name, asPNG)
}

// attackDocument renders a completed attack's stored result as spec 002's
// results document: artifact names become URLs, and the attack's id,
// status and completion time are added.
func attackDocument(j records.Job, r records.Result) (any, error) {
	res, err := jobs.Attack.Result(r.Data)
	if err != nil {
		return nil, fmt.Errorf("attack result %s: %w", j.ID, err)
	}
	doc := attackResultDoc{AttackResult: res, AttackID: j.ID, Status: j.Status, GeneratedAt: Timestamp(r.CreatedAt)}
	doc.Perturbation = perturbationDoc(j.ID, res.Perturbation)
	for _, smp := range res.BatchResults {
		doc.BatchResults = append(doc.BatchResults, attackSampleDoc{AttackSample: smp, Perturbation: perturbationDoc(j.ID, smp.Perturbation)})
	}
	return doc, nil
}

// attackResultDoc is GET /v1/attacks/{id}/results.
type attackResultDoc struct {
	jobs.AttackResult
	Perturbation map[string]any    `json:"perturbation_details"`
	BatchResults []attackSampleDoc `json:"batch_results,omitempty"`
	AttackID     string            `json:"attack_id"`
	Status       string            `json:"status"`
	GeneratedAt  Timestamp         `json:"generated_at"`
}

// attackSampleDoc is one sample of a batch's results.
type attackSampleDoc struct {
	jobs.AttackSample
	Perturbation map[string]any `json:"perturbation_details"`
}

// perturbationDoc renders perturbation details with each artifact as a
// URL under "<what>_png" (original_png, adversarial_png, perturbation_png).
func perturbationDoc(jobID string, p jobs.Perturbation) map[string]any {
	b, _ := json.Marshal(p)
	var doc map[string]any
	json.Unmarshal(b, &doc)
	delete(doc, "artifacts")
	for what, file := range p.Artifacts {
		doc[what+"_png"] = attackArtifactPath(jobID, file)
	}
	return doc
}
