package api_test

import (
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// TestProbeJobTenancy submits a probe as org A and reads it back as A, as
// org B (404, not 403: another org's job does not exist for B) and
// anonymously (401).
func TestProbeJobTenancy(t *testing.T) {
	h := newAPIHarness(t)
	a, b := h.org("org-a"), h.org("org-b")
	r := h.postJSON("/v1/diagnostics/probe", `{"hold_ms":0}`, as(a))
	if r.Code != http.StatusAccepted {
		t.Fatalf("POST probe: status %d, want 202; body %s", r.Code, r.Raw)
	}
	id, _ := r.Body["job_id"].(string)
	if _, err := uuid.Parse(id); err != nil {
		t.Fatalf("POST probe: job_id %q is not a UUID", id)
	}
	if r.Body["status"] != records.JobQueued {
		t.Fatalf("POST probe: status %v, want queued", r.Body["status"])
	}
	j, ok := h.job(id)
	if !ok || j.OrgID == nil || *j.OrgID != a.OrgID || j.Kind != "probe" || j.Status != records.JobQueued {
		t.Fatalf("job row: found %v %+v, want a queued probe of org A", ok, j)
	}
	cases := []struct {
		name   string
		path   string
		opts   []reqOption
		status int
		code   string // sandbox error code when not 200
	}{
		{"owner reads its job", "/v1/jobs/" + id, []reqOption{as(a)}, 200, ""},
		{"other org gets 404", "/v1/jobs/" + id, []reqOption{as(b)}, 404, "not_found"},
		{"anonymous gets 401", "/v1/jobs/" + id, nil, 401, "unauthorized"},
		{"wrong key for org A", "/v1/jobs/" + id, []reqOption{func(r *http.Request) {
			r.Header.Set("x-api-key", b.APIKey)
			r.Header.Set("Org-Id", a.OrgID)
		}}, 401, "unauthorized"},
		{"owner reads an unknown job", "/v1/jobs/" + uuid.NewString(), []reqOption{as(a)}, 404, "not_found"},
		{"probe is not an attack for its owner", "/v1/attacks/" + id + "/status", []reqOption{as(a)}, 404, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do("GET", tc.path, nil, tc.opts...)
			if tc.status != http.StatusOK {
				assertSandboxError(t, "GET "+tc.path, r, tc.status, tc.code)
				if r.Body["job_id"] != nil || r.Body["status"] != nil {
					t.Errorf("error body leaks job fields: %s", r.Raw)
				}
				return
			}
			if r.Code != http.StatusOK {
				t.Fatalf("GET %s: status %d, want 200; body %s", tc.path, r.Code, r.Raw)
			}
			if r.Body["job_id"] != id || r.Body["status"] != records.JobQueued || r.Body["kind"] != "probe" {
				t.Errorf("GET %s: body %s, want job %s queued probe", tc.path, r.Raw, id)
			}
		})
	}
	// A probe is not a verification: not visible on /api/verify even to its owner.
	vr := h.do("GET", "/api/verify/"+id, nil, as(a))
	assertVerifyError(t, "GET /api/verify/<probe id>", vr, http.StatusNotFound, id)
}

// TestCancelAttack cancels a queued attack of org A: other orgs and
// anonymous callers cannot touch it, the owner cancels it once (200), and a
// second cancel is a conflict (409).
func TestCancelAttack(t *testing.T) {
	h := newAPIHarness(t)
	a, b := h.org("org-a"), h.org("org-b")
	atk := h.submitAttack(a.OrgID)
	probe := h.postJSON("/v1/diagnostics/probe", `{"hold_ms":0}`, as(a))
	if probe.Code != http.StatusAccepted {
		t.Fatalf("POST probe: status %d; body %s", probe.Code, probe.Raw)
	}
	probeID := probe.Body["job_id"].(string)
	cancel := func(id string) string { return "/v1/attacks/" + id + "/cancel" }
	// Steps run in order: each sees the state the previous ones left.
	steps := []struct {
		name      string
		path      string
		who       *storage.NewOrgCredentials
		status    int
		code      string // sandbox error code when not 200
		jobStatus string // the attack row's status afterwards
	}{
		{"other org cancels", cancel(atk.ID), &b, 404, "not_found", records.JobQueued},
		{"anonymous cancels", cancel(atk.ID), nil, 401, "unauthorized", records.JobQueued},
		{"other org reads status", "/v1/attacks/" + atk.ID + "/status", &b, 404, "not_found", records.JobQueued},
		{"owner cancels a probe as an attack", cancel(probeID), &a, 404, "not_found", records.JobQueued},
		{"owner cancels an unknown attack", cancel("atk_000000000000000000000000"), &a, 404, "not_found", records.JobQueued},
		{"owner cancels", cancel(atk.ID), &a, 200, "", records.JobCancelled},
		{"owner cancels again", cancel(atk.ID), &a, 409, "conflict", records.JobCancelled},
		{"other org cancels the cancelled attack", cancel(atk.ID), &b, 404, "not_found", records.JobCancelled},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			var opts []reqOption
			if st.who != nil {
				opts = append(opts, as(*st.who))
			}
			method := "POST"
			if st.path == "/v1/attacks/"+atk.ID+"/status" {
				method = "GET"
			}
			r := h.do(method, st.path, nil, opts...)
			if st.status == http.StatusOK {
				if r.Code != http.StatusOK {
					t.Fatalf("%s %s: status %d, want 200; body %s", method, st.path, r.Code, r.Raw)
				}
				if r.Body["attack_id"] != atk.ID || r.Body["status"] != records.JobCancelled {
					t.Errorf("%s %s: body %s, want attack_id %s status cancelled", method, st.path, r.Raw, atk.ID)
				}
			} else {
				assertSandboxError(t, method+" "+st.path, r, st.status, st.code)
				if st.status == http.StatusConflict {
					if d := r.Body["details"].(map[string]any); d["status"] != records.JobCancelled {
						t.Errorf("409 details %v, want status cancelled", d)
					}
				}
			}
			j, ok := h.job(atk.ID)
			if !ok || j.Status != st.jobStatus {
				t.Errorf("attack row after %q: found %v status %q, want %q", st.name, ok, j.Status, st.jobStatus)
			}
		})
	}
	if j, _ := h.job(probeID); j.Status != records.JobQueued {
		t.Errorf("probe status %q after cancelling it as an attack, want queued", j.Status)
	}
	// The owner sees the attack cancelled through the generic job route.
	r := h.do("GET", "/v1/jobs/"+atk.ID, nil, as(a))
	if r.Code != http.StatusOK || r.Body["status"] != records.JobCancelled || r.Body["kind"] != "attack" {
		t.Errorf("GET /v1/jobs/%s: %d %s, want 200 cancelled attack", atk.ID, r.Code, r.Raw)
	}
}

// TestListAndCancelJobs lists an org's jobs newest first (another org's
// and anonymous ones never appear), filters them by kind and status,
// refuses unknown filters, and cancels through the kind-agnostic route:
// once (200), then 409; another org gets 404.
func TestListAndCancelJobs(t *testing.T) {
	h := newAPIHarness(t)
	a, b := h.org("org-a"), h.org("org-b")
	var ids []string
	for range 3 {
		r := h.postJSON("/v1/diagnostics/probe", `{"hold_ms":0}`, as(a))
		if r.Code != http.StatusAccepted {
			t.Fatalf("POST probe: status %d; body %s", r.Code, r.Raw)
		}
		ids = append(ids, r.Body["job_id"].(string))
	}
	if r := h.postJSON("/v1/diagnostics/probe", `{"hold_ms":0}`, as(b)); r.Code != http.StatusAccepted {
		t.Fatalf("POST probe as B: status %d", r.Code)
	}
	if r := h.upload("a.png", pngBytes(t)); r.Code != http.StatusOK { // anonymous verification
		t.Fatalf("anonymous upload: status %d; body %s", r.Code, r.Raw)
	}
	list := func(query string) []string {
		t.Helper()
		r := h.do("GET", "/v1/jobs"+query, nil, as(a))
		if r.Code != http.StatusOK {
			t.Fatalf("GET /v1/jobs%s: status %d; body %s", query, r.Code, r.Raw)
		}
		var got []string
		for _, d := range r.Body["data"].([]any) {
			got = append(got, d.(map[string]any)["job_id"].(string))
		}
		return got
	}
	if got := list(""); len(got) != 3 || got[0] != ids[2] || got[2] != ids[0] {
		t.Fatalf("GET /v1/jobs: %v, want A's 3 probes newest first %v", got, ids)
	}
	if got := list("?limit=1&offset=1"); len(got) != 1 || got[0] != ids[1] {
		t.Fatalf("GET /v1/jobs?limit=1&offset=1: %v, want [%s]", got, ids[1])
	}
	if got := list("?kind=attack"); len(got) != 0 {
		t.Fatalf("GET /v1/jobs?kind=attack: %v, want none", got)
	}

	r := h.do("POST", "/v1/jobs/"+ids[1]+"/cancel", nil, as(b))
	assertSandboxError(t, "cancel as B", r, http.StatusNotFound, "not_found")
	r = h.do("POST", "/v1/jobs/"+ids[1]+"/cancel", nil, as(a))
	if r.Code != http.StatusOK || r.Body["status"] != records.JobCancelled || r.Body["job_id"] != ids[1] {
		t.Fatalf("cancel: status %d body %s, want 200 cancelled", r.Code, r.Raw)
	}
	r = h.do("POST", "/v1/jobs/"+ids[1]+"/cancel", nil, as(a))
	assertSandboxError(t, "second cancel", r, http.StatusConflict, "conflict")
	if got := list("?status=cancelled"); len(got) != 1 || got[0] != ids[1] {
		t.Fatalf("GET /v1/jobs?status=cancelled: %v, want [%s]", got, ids[1])
	}
	if got := list("?status=queued&kind=probe"); len(got) != 2 {
		t.Fatalf("GET /v1/jobs?status=queued&kind=probe: %v, want 2", got)
	}
	for _, q := range []string{"?status=done", "?kind=nope", "?limit=0"} {
		r := h.do("GET", "/v1/jobs"+q, nil, as(a))
		assertSandboxError(t, "GET /v1/jobs"+q, r, http.StatusBadRequest, "invalid")
	}
	assertSandboxError(t, "anonymous list", h.do("GET", "/v1/jobs", nil), http.StatusUnauthorized, "unauthorized")
}
