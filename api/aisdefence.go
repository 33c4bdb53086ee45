package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/ais/defence"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/records"
)

// The customized endpoint defence (a Warden extension of spec 000): a
// defence analysis builds a registration's profile; the guarded
// prediction endpoint applies it.

// profileArtifact is the defence analysis's profile (worker/analysis's
// ProfileArtifact; the API does not import the worker).
const profileArtifact = "profile.json"

// maxProfileBytes bounds a profile the API reads.
const maxProfileBytes = 32 << 20

// routesAISDefence registers the defence routes of a registration.
func (s *Server) routesAISDefence(g *routeGroup, prefix string) {
	general := bucket{"ip", s.Config.RateGeneral}
	developer, viewer := require(records.RoleDeveloper), require(records.RoleViewer)
	base := prefix + "/v1.5/model_registration/:model_id/defence"
	g.add(route{Method: "POST", Path: base, Tag: "aispectra",
		Summary: "Start the defence analysis that builds the registration's endpoint-defence profile", Role: records.RoleDeveloper, Op: opAISDefenceStart},
		s.aisDefenceStart, s.guard(general), developer)
	g.add(route{Method: "GET", Path: base, Tag: "aispectra",
		Summary: "The registration's latest defence analysis and its profile's measured rates", Role: records.RoleViewer, Op: opAISDefence},
		s.aisDefence, s.guard(general), viewer)
	g.add(route{Method: "GET", Path: base + "/profile.json", Tag: "aispectra",
		Summary: "The registration's endpoint-defence profile (JSON download)", Role: records.RoleViewer, Op: opAISDefenceProfile},
		s.aisDefenceProfile, s.guard(general), viewer)
	s.routesAISPredict(g, prefix)
}

// aisDefenceRequest starts a defence analysis. Parameters left out come
// from the registration's latest completed EVA (epsilons, attack, steps,
// samples, seed) and MEA (query_budget) analyses, then the defaults.
type aisDefenceRequest struct {
	CallbackURL string `json:"callback_url"`
	jobs.AnalysisParams
}

func (s *Server) aisDefenceStart(c echo.Context) error {
	var req aisDefenceRequest
	if c.Request().ContentLength != 0 {
		if err := decodeBody(c, &req, 64<<10); err != nil {
			return err
		}
	}
	p := req.AnalysisParams
	if err := validateAnalysisParams(ais.AnalysisDefence, &p); err != nil {
		return err
	}
	ctx := c.Request().Context()
	m, files, err := s.DB.GetAISModel(ctx, orgOf(c), c.Param("model_id"))
	if err != nil {
		return notFoundAs(err, "model registration not found")
	}
	if err := s.inheritParams(ctx, m, &p); err != nil {
		return err
	}
	if err := s.checkCallback(c, req.CallbackURL); err != nil {
		return err
	}
	job, err := s.submitAnalysis(ctx, m, files, ais.AnalysisDefence, p, req.CallbackURL, "")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, s.analysisDoc(job))
}

// inheritParams fills the parameters left out from the registration's
// latest completed EVA and MEA analyses.
func (s *Server) inheritParams(ctx context.Context, m records.AISModel, p *jobs.AnalysisParams) error {
	eva, _, err := s.latestAnalysis(ctx, m, ais.AnalysisEVA, true)
	if err != nil {
		return err
	}
	if eva != nil {
		e := eva.Params
		if p.Epsilons == nil {
			p.Epsilons = e.Epsilons
		}
		if p.Attack == "" {
			p.Attack = e.Attack
		}
		if p.Steps == 0 {
			p.Steps = e.Steps
		}
		if p.Samples == 0 {
			p.Samples = e.Samples
		}
		if p.Seed == 0 {
			p.Seed = e.Seed
		}
	}
	mea, _, err := s.latestAnalysis(ctx, m, ais.AnalysisMEA, true)
	if err != nil {
		return err
	}
	if mea != nil && p.QueryBudget == 0 {
		p.QueryBudget = mea.Params.QueryBudget
	}
	return nil
}

// latestAnalysis is the input and job of the registration's newest
// analysis of that type (completed only, when completed is set); nil when
// there is none.
func (s *Server) latestAnalysis(ctx context.Context, m records.AISModel, analysis string, completed bool) (*jobs.AnalysisInput, records.Job, error) {
	j, ok, err := s.DB.NewestSubjectJob(ctx, m.OrgID, jobs.Analysis.Name, m.ID, analysis, completed)
	if err != nil || !ok {
		return nil, records.Job{}, err
	}
	in, err := jobs.Analysis.Input(j.Input)
	if err != nil {
		return nil, records.Job{}, fmt.Errorf("analysis %s: input: %w", j.ID, err)
	}
	return &in, j, nil
}

// aisDefenceDoc is GET …/defence.
type aisDefenceDoc struct {
	ModelID  string         `json:"model_id"`
	Analysis aisAnalysisDoc `json:"analysis"` // the newest defence analysis
	// Profile is the newest completed one's summary (null before).
	Profile *aisProfileSummary `json:"profile"`
}

// aisProfileSummary is a profile's mode, checks and measured rates.
type aisProfileSummary struct {
	AnalysisID  string             `json:"analysis_id"`
	Mode        string             `json:"mode"`
	Created     Timestamp          `json:"created_at"`
	Checks      map[string]float64 `json:"thresholds"`
	Calibration defence.Calibrated `json:"calibration"`
	ProfileURL  string             `json:"profile_url"`
	PredictURL  string             `json:"predict_url"`
}

func (s *Server) aisDefence(c echo.Context) error {
	ctx := c.Request().Context()
	m, _, err := s.DB.GetAISModel(ctx, orgOf(c), c.Param("model_id"))
	if err != nil {
		return notFoundAs(err, "model registration not found")
	}
	_, newest, err := s.latestAnalysis(ctx, m, ais.AnalysisDefence, false)
	if err != nil {
		return err
	}
	if newest.ID == "" {
		return noProfile(m.ID)
	}
	doc := aisDefenceDoc{ModelID: m.ID, Analysis: s.analysisDoc(newest)}
	p, j, err := s.loadProfile(ctx, m)
	if err == nil {
		base := s.Config.PublicURL + aisBase + "/model_registration/" + m.ID
		doc.Profile = &aisProfileSummary{AnalysisID: j.ID, Mode: p.Mode, Created: Timestamp(p.Created), Calibration: p.Stats,
			ProfileURL: base + "/defence/profile.json", PredictURL: base + "/predict",
			Checks: map[string]float64{defence.CheckRange: p.Range.Threshold, defence.CheckOOD: p.OOD.Threshold,
				defence.CheckSqueeze: p.Squeezer.Threshold, defence.CheckPRADA: p.Monitor.PRADAThreshold, defence.CheckOODRate: p.Monitor.CUSUMLimit}}
	} else if warden.ErrorCode(err) != warden.EPRECONDITION {
		return err
	}
	return c.JSON(http.StatusOK, doc)
}

// noProfile is the error of a registration without a completed defence
// analysis.
func noProfile(modelID string) error {
	return &warden.Error{Code: warden.EPRECONDITION, Message: "model " + modelID + " has no defence profile yet: POST " + aisBase + "/model_registration/" + modelID + "/defence and wait for the analysis to complete",
		Details: map[string]string{"defence": "no completed defence analysis"}}
}

// profileJob is the registration's newest completed defence analysis,
// read from the database; what it finds replaces what the guarded
// endpoint's cache holds of the registration.
func (s *Server) profileJob(ctx context.Context, m records.AISModel) (records.Job, error) {
	_, j, err := s.latestAnalysis(ctx, m, ais.AnalysisDefence, true)
	if err != nil {
		return j, err
	}
	if j.ID == "" {
		s.guards.Forget(m.OrgID, m.ID)
		return j, noProfile(m.ID)
	}
	sawProfile(&s.guards, m.OrgID, m.ID, j, true)
	return j, nil
}

// profileBytes is a defence analysis's profile file.
func (s *Server) profileBytes(ctx context.Context, j records.Job) ([]byte, error) {
	b, err := s.DB.JobArtifact(ctx, j.ID, profileArtifact)
	if err != nil {
		return nil, fmt.Errorf("defence analysis %s: %w", j.ID, err)
	}
	rc, err := s.Blobs.Open(ctx, b.Key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxProfileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxProfileBytes {
		return nil, fmt.Errorf("defence analysis %s: profile larger than %d bytes", j.ID, maxProfileBytes)
	}
	return data, nil
}

// profiles caches decoded profiles by the defence analysis that made
// them (a completed analysis's profile never changes): the guarded
// endpoint decodes each once, not per prediction.
var profiles = &profileCache{byJob: map[string]*defence.Profile{}}

// profileCacheSize bounds the cached profiles (the whole cache is dropped
// when it is full).
const profileCacheSize = 64

type profileCache struct {
	mu    sync.Mutex
	byJob map[string]*defence.Profile
}

func (c *profileCache) get(job string) *defence.Profile {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byJob[job]
}

func (c *profileCache) put(job string, p *defence.Profile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byJob) >= profileCacheSize {
		clear(c.byJob)
	}
	c.byJob[job] = p
}

// loadProfile is the registration's newest profile, decoded.
func (s *Server) loadProfile(ctx context.Context, m records.AISModel) (*defence.Profile, records.Job, error) {
	j, err := s.profileJob(ctx, m)
	if err != nil {
		return nil, j, err
	}
	p, err := s.decodeProfile(ctx, j)
	return p, j, err
}

// decodeProfile is a completed defence analysis's profile, decoded (once:
// profiles keeps it).
func (s *Server) decodeProfile(ctx context.Context, j records.Job) (*defence.Profile, error) {
	if p := profiles.get(j.ID); p != nil {
		return p, nil
	}
	data, err := s.profileBytes(ctx, j)
	if err != nil {
		return nil, err
	}
	var p defence.Profile
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("defence analysis %s: profile: %w", j.ID, err)
	}
	if p.Version != defence.ProfileVersion || p.Range == nil || p.OOD == nil || p.Squeezer == nil || p.Monitor == nil {
		return nil, fmt.Errorf("defence analysis %s: profile version %d is incomplete or not %d", j.ID, p.Version, defence.ProfileVersion)
	}
	profiles.put(j.ID, &p)
	return &p, nil
}

func (s *Server) aisDefenceProfile(c echo.Context) error {
	ctx := c.Request().Context()
	m, _, err := s.DB.GetAISModel(ctx, orgOf(c), c.Param("model_id"))
	if err != nil {
		return notFoundAs(err, "model registration not found")
	}
	j, err := s.profileJob(ctx, m)
	if err != nil {
		return err
	}
	data, err := s.profileBytes(ctx, j)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentDisposition, `attachment; filename="`+m.ID+`-defence-profile.json"`)
	return c.Blob(http.StatusOK, "application/json", data)
}
