package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/dashboards"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// routesPlatform registers the /v1 platform routes. Roles (each includes
// the ones above it):
//
//	Route                                               Least role
//	POST   /v1/auth/token                               none (client credentials)
//	GET    /v1/jobs                                     viewer
//	GET    /v1/jobs/{job_id}                            viewer
//	POST   /v1/jobs/{job_id}/cancel                     developer
//	GET    /v1/webhooks/deliveries                      viewer
//	GET    /v1/webhooks/deliveries/{delivery_id}        viewer
//	POST   /v1/diagnostics/probe                        developer
//	POST   /v1/webhooks/deliveries/{id}/redeliver       developer
//	GET    /v1/credentials                              admin
//	POST   /v1/credentials                              admin
//	DELETE /v1/credentials/{credential_id}              admin
//	/monitoring (asynqmon)                              admin
//
// viewer reads, developer submits and cancels work, admin manages
// credentials (and, later, models) and sees the queues.
func (s *Server) routesPlatform(g *routeGroup) {
	general := bucket{"ip", s.Config.RateGeneral}
	token := s.group("/v1/auth/token", renderTokenError)
	token.add(route{Method: "POST", Path: "/v1/auth/token", Tag: "auth", Summary: "OAuth2 client credentials grant: exchange a client id and secret for an access token", Op: opToken}, s.postToken, s.limit(bucket{"token", s.Config.RateToken}))
	g.add(route{Method: "GET", Path: "/v1/jobs", Tag: "platform", Summary: "List the caller's org's jobs, newest first", Role: records.RoleViewer, Op: opJobList}, s.listJobs, s.guard(general), require(records.RoleViewer))
	g.add(route{Method: "GET", Path: "/v1/jobs/:job_id", Tag: "platform", Summary: "Status of any job of the caller's org", Role: records.RoleViewer, Op: opJobGet}, s.getJob, s.guard(general), require(records.RoleViewer))
	g.add(route{Method: "POST", Path: "/v1/jobs/:job_id/cancel", Tag: "platform", Summary: "Cancel a queued or running job of any kind", Role: records.RoleDeveloper, Op: opJobCancel}, s.cancelJob, s.guard(general), require(records.RoleDeveloper))
	g.add(route{Method: "POST", Path: "/v1/diagnostics/probe", Tag: "platform", Summary: "Run a canary job through the whole pipeline", Role: records.RoleDeveloper, Op: opProbe}, s.postProbe, s.guard(general), require(records.RoleDeveloper))
	g.add(route{Method: "GET", Path: "/v1/webhooks/deliveries", Tag: "webhooks", Summary: "List webhook deliveries", Role: records.RoleViewer, Op: opDeliveries}, s.listDeliveries, s.guard(general), require(records.RoleViewer))
	g.add(route{Method: "GET", Path: "/v1/webhooks/deliveries/:delivery_id", Tag: "webhooks", Summary: "A webhook delivery with every attempt", Role: records.RoleViewer, Op: opDelivery}, s.getDelivery, s.guard(general), require(records.RoleViewer))
	g.add(route{Method: "GET", Path: "/v1/credentials", Tag: "credentials", Summary: "List the org's credentials (without secrets)", Role: records.RoleAdmin, Op: opCredentials}, s.listCredentials, s.guard(general), require(records.RoleAdmin))
	g.add(route{Method: "POST", Path: "/v1/credentials", Tag: "credentials", Summary: "Create an API key or OAuth2 client; the secret is shown once", Role: records.RoleAdmin, Op: opCredentialCreate}, s.postCredential, s.guard(general), require(records.RoleAdmin))
	g.add(route{Method: "DELETE", Path: "/v1/credentials/:credential_id", Tag: "credentials", Summary: "Revoke a credential and the access tokens issued to it", Role: records.RoleAdmin, Op: opCredentialRevoke}, s.deleteCredential, s.guard(general), require(records.RoleAdmin))
	g.add(route{Method: "POST", Path: "/v1/webhooks/deliveries/:delivery_id/redeliver", Tag: "webhooks", Summary: "Send a webhook delivery again", Role: records.RoleDeveloper, Op: opRedeliver}, s.redeliver, s.guard(general), require(records.RoleDeveloper))

	s.add(route{Method: "GET", Path: "/metrics", Tag: "operations", Summary: "Prometheus metrics: HTTP latency by route, jobs by kind and status, job duration, queue depth", Op: opText}, echo.WrapHandler(s.Metrics.Handler()))
	mon := dashboards.Asynqmon(s.Redis, "/monitoring", !s.Config.MonitoringWrite)
	ops := bucket{"ip", s.Config.RateGeneral}
	s.e.Any("/monitoring/*", echo.WrapHandler(mon), s.limit(ops), s.operator)
	s.add(route{Method: "GET", Path: "/monitoring", Tag: "operations", Summary: "asynqmon queue dashboard, operators only (HTTP Basic: operator and WARDEN_OPERATOR_TOKEN); read-only unless WARDEN_MONITORING_WRITE=true", Op: opMonitoring}, echo.WrapHandler(mon), s.limit(ops), s.operator)
	s.add(route{Method: "GET", Path: "/openapi.json", Tag: "operations", Summary: "This OpenAPI 3 document", Op: opJSON}, s.getOpenAPI)
	s.add(route{Method: "GET", Path: "/docs", Tag: "operations", Summary: "Swagger UI", Op: opHTML}, s.getDocs)
	s.add(route{Method: "GET", Path: "/redoc", Tag: "operations", Summary: "ReDoc", Op: opRedoc}, s.getRedoc)
	s.e.GET("/docs/assets/*", s.getDocsAsset)
}

// JobResponse is the generic job status.
type JobResponse struct {
	JobID       string     `json:"job_id"`
	Kind        string     `json:"kind"`
	Status      string     `json:"status"`
	Progress    int        `json:"progress_percentage"`
	Stage       string     `json:"current_stage"`
	Attempts    int        `json:"attempts"`
	Error       *string    `json:"error"`
	Result      any        `json:"result,omitempty"`
	CreatedAt   Timestamp  `json:"created_at"`
	StartedAt   *Timestamp `json:"started_at"`
	UpdatedAt   Timestamp  `json:"updated_at"`
	CompletedAt *Timestamp `json:"completed_at"`
}

// jobResponse is a job's status without its result.
func jobResponse(j records.Job) JobResponse {
	resp := JobResponse{JobID: j.ID, Kind: j.Kind, Status: j.Status, Progress: j.Progress, Stage: j.Stage, Attempts: j.Attempts,
		CreatedAt: Timestamp(j.CreatedAt), StartedAt: (*Timestamp)(j.StartedAt), UpdatedAt: Timestamp(j.UpdatedAt), CompletedAt: (*Timestamp)(j.FinishedAt)}
	if j.Error != "" {
		resp.Error = &j.Error
	}
	return resp
}

// jobStatuses are the statuses GET /v1/jobs filters on.
var jobStatuses = []string{records.JobQueued, records.JobInProgress, records.JobCompleted, records.JobFailed, records.JobCancelled}

// listJobs lists the org's jobs (without results), optionally of one kind
// and one status.
func (s *Server) listJobs(c echo.Context) error {
	limit, offset, err := pagination(c)
	if err != nil {
		return err
	}
	f := storage.JobFilter{Kind: c.QueryParam("kind"), Status: c.QueryParam("status")}
	if f.Kind != "" && eventPrefix[f.Kind] == "" {
		return invalid("kind", "unknown job kind; one of verify_media, attack, analysis, model_validate, probe")
	}
	if f.Status != "" && !slices.Contains(jobStatuses, f.Status) {
		return invalid("status", "one of "+strings.Join(jobStatuses, ", "))
	}
	js, total, err := s.DB.ListJobs(c.Request().Context(), orgOf(c), f, limit, offset)
	if err != nil {
		return err
	}
	data := make([]JobResponse, 0, len(js))
	for _, j := range js {
		data = append(data, jobResponse(j))
	}
	return c.JSON(http.StatusOK, map[string]any{"total": total, "limit": limit, "offset": offset, "data": data})
}

// cancelJob cancels a queued or running job of the org, whatever its kind
// (the kind's own cancel routes do the same for one kind).
func (s *Server) cancelJob(c echo.Context) error {
	j, done, err := s.Jobs.Cancel(c.Request().Context(), jobs.Scope{OrgID: orgOf(c)}, c.Param("job_id"))
	if err != nil {
		return err
	}
	if !done {
		return &warden.Error{Code: warden.ECONFLICT, Message: "job already " + j.Status, Details: map[string]string{"status": j.Status}}
	}
	return c.JSON(http.StatusOK, map[string]any{"job_id": j.ID, "status": records.JobCancelled})
}

func (s *Server) getJob(c echo.Context) error {
	ctx := c.Request().Context()
	j, err := s.Jobs.Get(ctx, jobs.Scope{OrgID: orgOf(c)}, c.Param("job_id"))
	if err != nil {
		return err
	}
	resp := jobResponse(j)
	if j.Status == records.JobCompleted {
		r, err := s.Jobs.Result(ctx, j)
		if err != nil {
			return err
		}
		if resp.Result, err = resultDocument(j, r); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusOK, resp)
}

// resultDocument is a completed job's result as the surface that owns the
// kind shows it: an attack's with artifact URLs, other kinds as stored.
func resultDocument(j records.Job, r records.Result) (any, error) {
	if j.Kind == jobs.Attack.Name {
		return attackDocument(j, r)
	}
	return json.RawMessage(r.Data), nil
}

type probeRequest struct {
	HoldMS      int    `json:"hold_ms"`
	CallbackURL string `json:"callback_url,omitempty"`
}

// postProbe enqueues a canary job: it runs through queue, worker, result and
// webhook like any other, doing no work beyond holding for hold_ms.
func (s *Server) postProbe(c echo.Context) error {
	var body probeRequest
	if c.Request().ContentLength != 0 {
		if err := decodeBody(c, &body, 4<<10); err != nil {
			return err
		}
	}
	if body.HoldMS < 0 || body.HoldMS > jobs.MaxProbeHoldMS {
		return invalid("hold_ms", fmt.Sprintf("hold_ms must be between 0 and %d", jobs.MaxProbeHoldMS))
	}
	if err := s.checkCallback(c, body.CallbackURL); err != nil {
		return err
	}
	sub, err := jobs.Probe.Submission(jobs.ProbeInput{HoldMS: body.HoldMS})
	if err != nil {
		return err
	}
	sub.OrgID, sub.CallbackURL = orgOf(c), body.CallbackURL
	job, err := s.Jobs.Submit(c.Request().Context(), sub)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]string{"job_id": job.ID, "status": job.Status})
}

// DeliveryResponse is a webhook delivery as the API shows it.
type DeliveryResponse struct {
	ID          string            `json:"id"`
	JobID       string            `json:"job_id"`
	EventType   string            `json:"event_type"`
	URL         string            `json:"url"`
	Status      string            `json:"status"`
	Attempts    int               `json:"attempts"`
	Payload     json.RawMessage   `json:"payload"`
	CreatedAt   Timestamp         `json:"created_at"`
	UpdatedAt   Timestamp         `json:"updated_at"`
	DeliveredAt *Timestamp        `json:"delivered_at"`
	History     []AttemptResponse `json:"attempt_history,omitempty"`
}

// AttemptResponse is one recorded POST.
type AttemptResponse struct {
	Attempt      int       `json:"attempt"`
	StatusCode   int       `json:"status_code"`
	Error        string    `json:"error,omitempty"`
	ResponseBody string    `json:"response_body,omitempty"`
	DurationMS   int64     `json:"duration_ms"`
	At           Timestamp `json:"at"`
}

func deliveryResponse(d records.WebhookDelivery) DeliveryResponse {
	return DeliveryResponse{ID: d.ID, JobID: d.JobID, EventType: d.EventType, URL: d.URL, Status: d.Status, Attempts: d.Attempts,
		Payload: json.RawMessage(d.Payload), CreatedAt: Timestamp(d.CreatedAt), UpdatedAt: Timestamp(d.UpdatedAt), DeliveredAt: (*Timestamp)(d.DeliveredAt)}
}

// pagination reads limit (1-1000, default 100) and offset.
func pagination(c echo.Context) (int, int, error) {
	limit, offset := 100, 0
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return 0, 0, invalid("limit", "limit must be an integer between 1 and 1000")
		}
		limit = n
	}
	if v := c.QueryParam("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, 0, invalid("offset", "offset must be a non-negative integer")
		}
		offset = n
	}
	return limit, offset, nil
}

func (s *Server) listDeliveries(c echo.Context) error {
	limit, offset, err := pagination(c)
	if err != nil {
		return err
	}
	ds, total, err := s.DB.ListDeliveries(c.Request().Context(), orgOf(c), c.QueryParam("job_id"), limit, offset)
	if err != nil {
		return err
	}
	data := make([]DeliveryResponse, 0, len(ds))
	for _, d := range ds {
		data = append(data, deliveryResponse(d))
	}
	return c.JSON(http.StatusOK, map[string]any{"total": total, "limit": limit, "offset": offset, "data": data})
}

func (s *Server) getDelivery(c echo.Context) error {
	ctx := c.Request().Context()
	d, err := s.DB.GetDelivery(ctx, orgOf(c), c.Param("delivery_id"))
	if err != nil {
		return err
	}
	as, err := s.DB.DeliveryAttempts(ctx, d.ID)
	if err != nil {
		return err
	}
	resp := deliveryResponse(d)
	for _, a := range as {
		resp.History = append(resp.History, AttemptResponse{Attempt: a.Attempt, StatusCode: a.StatusCode, Error: a.Error,
			ResponseBody: a.ResponseBody, DurationMS: a.DurationMS, At: Timestamp(a.CreatedAt)})
	}
	return c.JSON(http.StatusOK, resp)
}

// redeliver resets a delivery to pending and queues it again under its
// own id (queue.Service.Redeliver replaces a task left in the retry set).
func (s *Server) redeliver(c echo.Context) error {
	ctx := c.Request().Context()
	d, err := s.DB.ResetDelivery(ctx, orgOf(c), c.Param("delivery_id"))
	if err != nil {
		return err
	}
	if err := s.Webhooks.Redeliver(ctx, d.ID); err != nil {
		return &warden.Error{Code: warden.EUNAVAILABLE, Message: "queue unavailable; try again"}
	}
	return c.JSON(http.StatusAccepted, deliveryResponse(d))
}
