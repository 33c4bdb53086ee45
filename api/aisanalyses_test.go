package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// uploadAll uploads files to a registration's URLs and returns the last
// upload's response.
func (h *apiHarness) uploadAll(urls map[string]any, files map[string][]byte) apiResponse {
	h.t.Helper()
	var last apiResponse
	for _, name := range []string{"model", "data", "label"} {
		last = h.aisPut(uploadPath(h.t, urls[name]), files[name])
		if last.Code != 200 {
			h.t.Fatalf("%s upload: %d %s", name, last.Code, last.Raw)
		}
	}
	return last
}

// TestAISAnalysisLifecycle: a registration's own analysis starts when its
// last file arrives; more analyses start on the same files (POST
// …/analyses and the registration call with model_id); status, list,
// report before completion, cancel; refusals in the surface's shape;
// another org sees nothing.
func TestAISAnalysisLifecycle(t *testing.T) {
	h := newAPIHarness(t)
	org, other := h.org("ais-ana"), h.org("ais-ana-other")
	reg := h.postJSON("/api/ais/v1.5/model_registration/upload",
		`{"task_type":"IC","analysis_type":"MEA","parameters":{"query_budget":500}}`, as(org))
	urls := urlsOf(t, reg)
	id, _ := reg.Body["model_id"].(string)
	first, _ := reg.Body["analysis_id"].(string)
	if !strings.HasPrefix(first, "ana_") {
		t.Fatalf("registration names no analysis: %s", reg.Raw)
	}
	wantAISError(t, h.postJSON("/api/ais/v1.5/analyses", `{"model_id":"`+id+`","analysis_type":"EVA"}`, as(org)), 412, "model: not uploaded")
	wantAISError(t, h.do("GET", "/api/ais/v1.5/analyses/"+first, nil, as(org)), 404, "not found")

	last := h.uploadAll(urls, icFiles(t))
	if last.Body["analysis_id"] != first || last.Body["registration_status"] != records.AISReady {
		t.Fatalf("the last upload did not start the analysis: %s", last.Raw)
	}
	st := h.do("GET", "/api/ais/v1.5/analyses/"+first, nil, as(org))
	if st.Code != 200 || st.Body["status"] != records.JobQueued || st.Body["model_id"] != id || st.Body["analysis_type"] != "MEA" || st.Body["report_url"] != nil {
		t.Fatalf("status: %d %s", st.Code, st.Raw)
	}

	// More analyses on the same files, with parameters in both places.
	eva := h.postJSON("/api/ais/v1.5/analyses", `{"model_id":"`+id+`","analysis_type":"EVA","epsilons":[0.1,0.3],"parameters":{"steps":5}}`, as(org))
	evaID, _ := eva.Body["analysis_id"].(string)
	if eva.Code != 202 || evaID == "" || evaID == first || eva.Body["status"] != records.JobQueued {
		t.Fatalf("POST analyses: %d %s", eva.Code, eva.Raw)
	}
	again := h.postJSON("/ais/v1.5/model_registration/upload", `{"model_id":"`+id+`","analysis_type":"MEA"}`, as(org))
	if again.Code != 200 || again.Body["analysis_id"] == nil || again.Body["model_id"] != id {
		t.Fatalf("registration with model_id: %d %s", again.Code, again.Raw)
	}
	form := h.do("POST", "/api/ais/v1.5/analyses", strings.NewReader("model_id="+id+"&analysis_type=eva&attack=fgsm"),
		withContentType("application/x-www-form-urlencoded"), as(org))
	if form.Code != 202 {
		t.Fatalf("form body: %d %s", form.Code, form.Raw)
	}
	list := h.do("GET", "/api/ais/v1.5/model_registration/"+id+"/analyses", nil, as(org))
	if list.Code != 200 || list.Body["total"] != float64(4) {
		t.Fatalf("list: %d %s", list.Code, list.Raw)
	}

	// Refusals.
	for _, c := range []struct {
		body   string
		status int
		reason string
	}{
		{`{"analysis_type":"EVA"}`, 400, "model_id: required"},
		{`{"model_id":"` + id + `","analysis_type":"ZZZ"}`, 400, "unknown analysis type"},
		{`{"model_id":"` + id + `","epsilons":[0.1,2]}`, 400, "epsilons: each value"},
		{`{"model_id":"` + id + `","query_budget":5}`, 400, "query_budget"},
		{`{"model_id":"` + id + `","parameters":{"attack":"cw"}}`, 400, "attack: one of"},
		{`{"model_id":"` + id + `","steps":100000}`, 400, "steps"},
		{`{"model_id":"` + id + `","curve_points":[10,900000]}`, 400, "curve_points"},
		{`{"model_id":"` + id + `","unknown":1}`, 400, "unknown field"},
		// The defence's parameters are refused on other analyses.
		{`{"model_id":"` + id + `","analysis_type":"EVA","target_fpr":0.1}`, 400, "target_fpr: only for the defence analysis"},
		{`{"model_id":"` + id + `","parameters":{"mode":"block"}}`, 400, "mode: only for the defence analysis"},
		{`{"model_id":"` + id + `","parameters":{"target_fpr":0.1}}`, 400, "target_fpr: only for the defence analysis"},
		{`{"model_id":"` + id + `","task_type":"TC"}`, 412, "task_type: must be IC"},
		{`{"model_id":"` + id + `","analysis_type":"model-poisoning"}`, 412, "clean_model_1: required by model-poisoning"},
		{`{"model_id":"ais_000000000000000000000000"}`, 404, "not found"},
	} {
		wantAISError(t, h.postJSON("/api/ais/v1.5/analyses", c.body, as(org)), c.status, c.reason)
	}
	ts := h.aisRegister("TS", "MEA", as(org))
	tsID, _ := ts.Body["model_id"].(string)
	wantAISError(t, h.postJSON("/api/ais/v1.5/analyses", `{"model_id":"`+tsID+`","analysis_type":"EVA"}`, as(org)), 412, "not offered")

	// Another org: not found, everywhere.
	wantAISError(t, h.do("GET", "/api/ais/v1.5/analyses/"+first, nil, as(other)), 404, "not found")
	wantAISError(t, h.do("GET", "/api/ais/v1.5/analyses/"+first+"/report", nil, as(other)), 404, "not found")
	wantAISError(t, h.do("POST", "/api/ais/v1.5/analyses/"+first+"/cancel", nil, as(other)), 404, "not found")
	wantAISError(t, h.do("GET", "/api/ais/v1.5/model_registration/"+id+"/analyses", nil, as(other)), 404, "not found")
	wantAISError(t, h.postJSON("/api/ais/v1.5/analyses", `{"model_id":"`+id+`"}`, as(other)), 404, "not found")

	// Not completed: no report; cancel once.
	wantAISError(t, h.do("GET", "/api/ais/v1.5/analyses/"+first+"/report", nil, as(org)), 409, "queued")
	wantAISError(t, h.do("GET", "/api/ais/v1.5/analyses/"+first+"/report.html", nil, as(org)), 409, "queued")
	wantAISError(t, h.do("GET", "/api/ais/v1.5/analyses/"+first+"/artifacts/surrogate.pt", nil, as(org)), 404, "not found")
	if c := h.do("POST", "/api/ais/v1.5/analyses/"+first+"/cancel", nil, as(org)); c.Code != 200 || c.Body["status"] != records.JobCancelled {
		t.Fatalf("cancel: %d %s", c.Code, c.Raw)
	}
	wantAISError(t, h.do("POST", "/api/ais/v1.5/analyses/"+first+"/cancel", nil, as(org)), 409, "already cancelled")
}

// TestAISUploadQuota: valid uploads count towards the org's stored bytes;
// the one that would pass the cap is refused with 413 in the surface's
// shape, nothing of it is stored, and its URL stays usable.
func TestAISUploadQuota(t *testing.T) {
	files := icFiles(t)
	limit := int64(len(files["model"]) + len(files["data"]) + len(files["label"])/2)
	h := newAPIHarness(t, withQuota(0, limit))
	org := h.org("ais-quota")
	reg := h.aisRegister("IC", "MEA", as(org))
	urls := urlsOf(t, reg)
	id, _ := reg.Body["model_id"].(string)
	for _, name := range []string{"model", "data"} {
		if r := h.aisPut(uploadPath(t, urls[name]), files[name]); r.Code != 200 {
			t.Fatalf("%s: %d %s", name, r.Code, r.Raw)
		}
	}
	r := h.aisPut(uploadPath(t, urls["label"]), files["label"])
	wantAISError(t, r, 413, "Storage quota exceeded")
	if r.Body["code"] != "storage_quota_exceeded" {
		t.Fatalf("code: %s", r.Raw)
	}
	if ok, _ := h.blobs.Exists(context.Background(), storage.AISBlobKey(id, "label")); ok {
		t.Fatal("the refused label is stored")
	}
	st := h.do("GET", "/api/ais/v1.5/model_registration/"+id, nil, as(org))
	if fs, _ := st.Body["files"].(map[string]any); fs["label"].(map[string]any)["status"] != records.AISFileInvalid {
		t.Fatalf("status: %s", st.Raw)
	}
}

// TestAISDelete: deleting a registration deletes its analyses and its
// stored files; another org cannot; a second delete is 404.
func TestAISDelete(t *testing.T) {
	h := newAPIHarness(t)
	org, other := h.org("ais-del"), h.org("ais-del-other")
	reg := h.aisRegister("IC", "EVA", as(org))
	id, _ := reg.Body["model_id"].(string)
	h.uploadAll(urlsOf(t, reg), icFiles(t))
	if r := h.postJSON("/api/ais/v1.5/analyses", `{"model_id":"`+id+`","analysis_type":"MEA"}`, as(org)); r.Code != 202 {
		t.Fatalf("analyse: %d %s", r.Code, r.Raw)
	}
	first, _ := reg.Body["analysis_id"].(string)
	wantAISError(t, h.do("DELETE", "/api/ais/v1.5/model_registration/"+id, nil, as(other)), 404, "not found")
	d := h.do("DELETE", "/ais/v1.5/model_registration/"+id, nil, as(org))
	if d.Code != 200 || d.Body["deleted"] != true || d.Body["analyses_deleted"] != float64(2) {
		t.Fatalf("delete: %d %s", d.Code, d.Raw)
	}
	for _, name := range []string{"model", "data", "label"} {
		if ok, _ := h.blobs.Exists(context.Background(), storage.AISBlobKey(id, name)); ok {
			t.Errorf("%s still stored", name)
		}
	}
	wantAISError(t, h.do("GET", "/api/ais/v1.5/analyses/"+first, nil, as(org)), 404, "not found")
	wantAISError(t, h.do("GET", "/api/ais/v1.5/model_registration/"+id, nil, as(org)), 404, "not found")
	wantAISError(t, h.do("DELETE", "/api/ais/v1.5/model_registration/"+id, nil, as(org)), 404, "not found")
}

// TestAISModelPoisoningFiles: model poisoning needs the two clean
// reference models. A model-poisoning registration with only the model,
// data and label uploaded starts nothing and refuses a submission with 412
// naming the clean models; once both are uploaded (validated as model
// zips) the registration's analysis starts. A registration made for MEA
// cannot run model poisoning: 412 naming the files it lacks.
func TestAISModelPoisoningFiles(t *testing.T) {
	h := newAPIHarness(t)
	org := h.org("ais-mpois")
	reg := h.aisRegister("IC", "model-poisoning", as(org))
	urls := urlsOf(t, reg)
	id, _ := reg.Body["model_id"].(string)
	first, _ := reg.Body["analysis_id"].(string)
	if !strings.HasPrefix(first, "ana_") {
		t.Fatalf("a model-poisoning registration names no analysis: %s", reg.Raw)
	}
	files := icFiles(t)
	if last := h.uploadAll(urls, files); last.Body["analysis_id"] != nil {
		t.Fatalf("an analysis started without the clean models: %s", last.Raw)
	}
	res := h.postJSON("/api/ais/v1.5/analyses", `{"model_id":"`+id+`","analysis_type":"model-poisoning"}`, as(org))
	wantAISError(t, res, 412, "clean_model_1: not uploaded")
	wantAISError(t, res, 412, "clean_model_2: not uploaded")
	if bad := h.aisPut(uploadPath(t, urls["clean_model_1"]), files["data"]); bad.Code == 200 {
		t.Fatalf("a data zip passed as a clean model: %s", bad.Raw)
	}
	res = h.postJSON("/api/ais/v1.5/analyses", `{"model_id":"`+id+`","analysis_type":"model-poisoning"}`, as(org))
	wantAISError(t, res, 412, "clean_model_1: not uploaded")
	// The MEA analysis of the same registration needs no clean model.
	if mea := h.postJSON("/api/ais/v1.5/analyses", `{"model_id":"`+id+`","analysis_type":"MEA"}`, as(org)); mea.Code != 202 {
		t.Fatalf("MEA on a model-poisoning registration: %d %s", mea.Code, mea.Raw)
	}
	var last apiResponse
	for _, name := range []string{"clean_model_1", "clean_model_2"} {
		if last = h.aisPut(uploadPath(t, urls[name]), files["model"]); last.Code != 200 {
			t.Fatalf("%s upload: %d %s", name, last.Code, last.Raw)
		}
	}
	if last.Body["analysis_id"] != first || last.Body["registration_status"] != records.AISReady {
		t.Fatalf("the last clean model did not start the analysis: %s", last.Raw)
	}
	st := h.do("GET", "/api/ais/v1.5/analyses/"+first, nil, as(org))
	if st.Code != 200 || st.Body["analysis_type"] != "model-poisoning" || st.Body["status"] != records.JobQueued {
		t.Fatalf("status: %d %s", st.Code, st.Raw)
	}
	if res := h.postJSON("/api/ais/v1.5/analyses", `{"model_id":"`+id+`","analysis_type":"model-poisoning","parameters":{"trigger_steps":50}}`, as(org)); res.Code != 202 {
		t.Fatalf("second model-poisoning analysis: %d %s", res.Code, res.Raw)
	}

	wantAISError(t, h.postJSON("/api/ais/v1.5/analyses", `{"model_id":"`+id+`","analysis_type":"model-poisoning","trigger_steps":100000}`, as(org)), 400, "trigger_steps")

	mea := h.aisRegister("IC", "MEA", as(org))
	meaID, _ := mea.Body["model_id"].(string)
	h.uploadAll(urlsOf(t, mea), files)
	res = h.postJSON("/api/ais/v1.5/analyses", `{"model_id":"`+meaID+`","analysis_type":"model-poisoning"}`, as(org))
	wantAISError(t, res, 412, "clean_model_2: required by model-poisoning")
}
