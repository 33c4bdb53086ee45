package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wardenlab/warden/api"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/records"
)

// attackModel stores an active model of org straight in the database.
func attackModel(t *testing.T, h *apiHarness, org, id, typ, metadata string) string {
	t.Helper()
	m := records.Model{ID: id, OrgID: org, Name: id, Type: typ, Status: records.ModelActive,
		BlobKey: "models/x.pt", Metadata: metadata, Metrics: `{"num_classes":2}`}
	if err := h.db.Gorm().Create(&m).Error; err != nil {
		t.Fatal(err)
	}
	return m.ID
}

// pngBase64 is a w×h grey PNG, base64-encoded.
func pngBase64(t *testing.T, w, hgt int) string {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, hgt))
	for i := range img.Pix {
		img.Pix[i] = 100
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// launched reads the stored input of a launched attack.
func launched(t *testing.T, h *apiHarness, r apiResponse) jobs.AttackInput {
	t.Helper()
	if r.Code != http.StatusAccepted {
		t.Fatalf("launch: status %d, want 202; body %s", r.Code, r.Raw)
	}
	id, _ := r.Body["attack_id"].(string)
	j, ok := h.job(id)
	if !ok {
		t.Fatalf("no job %q", id)
	}
	in, err := jobs.Attack.Input(j.Input)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestListAttacksSchemaShapes: parameters_schema is spec 002's flat map
// ({name: {type, default, description}}), the JSON Schema sits under
// parameters_json_schema, and every perturbation attack names its radius
// epsilon with ART's eps as an alias.
func TestListAttacksSchemaShapes(t *testing.T) {
	h := newAPIHarness(t)
	a := h.org("acme")
	r := h.do("GET", "/v1/attacks", nil, as(a))
	if r.Code != http.StatusOK {
		t.Fatalf("GET /v1/attacks: %d %s", r.Code, r.Raw)
	}
	data, _ := r.Body["data"].([]any)
	if len(data) == 0 || r.Body["total"] != float64(len(data)) {
		t.Fatalf("body %s", r.Raw)
	}
	seen := map[string]bool{}
	for _, raw := range data {
		e := raw.(map[string]any)
		id := e["id"].(string)
		seen[id] = true
		flat, _ := e["parameters_schema"].(map[string]any)
		js, _ := e["parameters_json_schema"].(map[string]any)
		if flat == nil || js == nil || js["type"] != "object" || js["properties"] == nil {
			t.Fatalf("%s: parameters_schema %v, parameters_json_schema %v", id, flat, js)
		}
		for _, k := range []string{"type", "properties", "additionalProperties"} {
			if _, ok := flat[k]; ok {
				t.Errorf("%s: parameters_schema has the JSON Schema keyword %q at its top", id, k)
			}
		}
		for name, p := range flat {
			pm, _ := p.(map[string]any)
			if pm == nil || pm["type"] == nil || pm["description"] == nil {
				t.Errorf("%s.%s: %v lacks type or description", id, name, p)
			}
		}
		switch id {
		case "attack_fgsm", "attack_pgd", "attack_square":
			eps, _ := flat["epsilon"].(map[string]any)
			if eps == nil || eps["default"] == nil || flat["eps"] != nil {
				t.Errorf("%s: flat map %v, want epsilon with a default and no eps", id, flat)
			}
			if fmt.Sprint(eps["aliases"]) != "[eps]" {
				t.Errorf("%s: epsilon's aliases %v", id, eps["aliases"])
			}
		}
	}
	fgsm := data[0].(map[string]any)["parameters_schema"].(map[string]any)
	if e := fgsm["epsilon"].(map[string]any); e["default"] != 0.01 || e["type"] != "number" {
		t.Errorf("FGSM epsilon differs from spec 002's example: %v", e)
	}
	if !seen["attack_pgd"] || !seen["attack_textfooler"] {
		t.Errorf("catalog %v", seen)
	}
}

// TestLaunchAttackParameterNames: PGD and Square take spec 002's epsilon
// and ART's eps alike, stored under epsilon; both names with different
// values is a 400 naming both; an unknown name is still refused.
func TestLaunchAttackParameterNames(t *testing.T) {
	h := newAPIHarness(t)
	a := h.org("acme")
	id := attackModel(t, h, a.OrgID, "mdl_params", "CV", `{"input_shape":[4]}`)
	launch := func(method, params string) apiResponse {
		return h.postJSON("/v1/attacks/launch", fmt.Sprintf(`{"model_id":%q,"attack_method_id":%q,"input_data":[0.1,0.2,0.3,0.4],"attack_parameters":%s}`, id, method, params), as(a))
	}
	for _, tc := range []struct {
		method, params string
		want           map[string]float64
	}{
		{"attack_pgd", `{"epsilon":0.2,"epsilon_step":0.05,"max_iter":3}`, map[string]float64{"epsilon": 0.2, "epsilon_step": 0.05, "max_iter": 3}},
		{"attack_pgd", `{"eps":0.2,"eps_step":0.05,"max_iter":3}`, map[string]float64{"epsilon": 0.2, "epsilon_step": 0.05}},
		{"attack_pgd", `{"epsilon":0.2,"eps":0.2}`, map[string]float64{"epsilon": 0.2}},
		{"attack_square", `{"epsilon":0.1,"max_queries":50}`, map[string]float64{"epsilon": 0.1}},
		{"attack_square", `{"eps":0.1}`, map[string]float64{"epsilon": 0.1}},
		{"attack_fgsm", `{"eps":0.05}`, map[string]float64{"epsilon": 0.05}},
	} {
		in := launched(t, h, launch(tc.method, tc.params))
		for k, v := range tc.want {
			if got, _ := in.Params[k].(float64); got != v {
				t.Errorf("%s %s: stored %s = %v, want %v (params %v)", tc.method, tc.params, k, in.Params[k], v, in.Params)
			}
		}
		if _, ok := in.Params["eps"]; ok {
			t.Errorf("%s %s: alias stored: %v", tc.method, tc.params, in.Params)
		}
	}
	for _, tc := range []struct {
		method, params string
		fields         []string
	}{
		{"attack_pgd", `{"epsilon":0.2,"eps":0.3}`, []string{"attack_parameters.epsilon", "attack_parameters.eps"}},
		{"attack_pgd", `{"eps":-1}`, []string{"attack_parameters.eps"}},
		{"attack_pgd", `{"epsilonn":0.1}`, []string{"attack_parameters.epsilonn"}},
		{"attack_hopskipjump", `{"eps":0.1}`, []string{"attack_parameters.eps"}},
	} {
		r := launch(tc.method, tc.params)
		assertSandboxError(t, tc.method+" "+tc.params, r, http.StatusBadRequest, "invalid")
		d := r.Body["details"].(map[string]any)
		for _, f := range tc.fields {
			if d[f] == nil {
				t.Errorf("%s %s: details %v lack %s", tc.method, tc.params, d, f)
			}
		}
	}
	r := launch("attack_pgd", `{"epsilon":0.2,"eps":0.3}`)
	if msg := fmt.Sprint(r.Body["details"]); !strings.Contains(msg, "epsilon and as its alias eps") {
		t.Errorf("conflict message does not name both: %s", msg)
	}
}

// TestLaunchAttackInputShapes: input_data takes what predict takes (a bare
// value, {"image": …}, {"input_data": …}) and a list of those (a batch);
// inputs stays; what the model cannot take is a 400 naming the input.
func TestLaunchAttackInputShapes(t *testing.T) {
	h := newAPIHarness(t)
	a := h.org("acme")
	img := attackModel(t, h, a.OrgID, "mdl_img", "CV", `{"input_shape":[1,4,4]}`)
	vec := attackModel(t, h, a.OrgID, "mdl_vec", "CV", `{"input_shape":[4]}`)
	nlp := attackModel(t, h, a.OrgID, "mdl_nlp", "NLP", `{"tokenizer":"bow","vocabulary":["good","bad"]}`)
	b64 := pngBase64(t, 8, 8)
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	launch := func(model, method, body string) apiResponse {
		return h.postJSON("/v1/attacks/launch", fmt.Sprintf(`{"model_id":%q,"attack_method_id":%q,%s}`, model, method, body), as(a))
	}
	ok := []struct {
		name, model, method, body string
		want                      []string // the stored inputs
	}{
		{"bare base64", img, "attack_fgsm", `"input_data":` + q(b64), []string{q(b64)}},
		{"predict's image body", img, "attack_fgsm", `"input_data":{"image":` + q(b64) + `}`, []string{q(b64)}},
		{"predict's input_data body", img, "attack_fgsm", `"input_data":{"input_data":` + q(b64) + `}`, []string{q(b64)}},
		{"a batch of image bodies", img, "attack_fgsm", `"input_data":[{"image":` + q(b64) + `},` + q(b64) + `]`, []string{q(b64), q(b64)}},
		{"inputs of image bodies", img, "attack_fgsm", `"inputs":[{"image":` + q(b64) + `}]`, []string{q(b64)}},
		{"numbers", vec, "attack_fgsm", `"input_data":[0.1,0.2,0.3,0.4]`, []string{`[0.1,0.2,0.3,0.4]`}},
		{"a batch of numbers", vec, "attack_fgsm", `"input_data":[[0.1,0.2,0.3,0.4],{"input_data":[0,0,0,1]}]`, []string{`[0.1,0.2,0.3,0.4]`, `[0,0,0,1]`}},
		{"text", nlp, "attack_textfooler", `"input_data":"good film"`, []string{`"good film"`}},
		{"a list of texts", nlp, "attack_textfooler", `"input_data":["good film","bad film"]`, []string{`"good film"`, `"bad film"`}},
		{"predict's NLP body", nlp, "attack_textfooler", `"input_data":{"input_data":"good film"}`, []string{`"good film"`}},
		{"spec 002's launch example", nlp, "attack_textfooler", `"input_data":"This movie was absolutely amazing and I loved every second.","target_label":"1","attack_parameters":{"num_words_to_change":2,"max_candidates":10}`,
			[]string{`"This movie was absolutely amazing and I loved every second."`}},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			in := launched(t, h, launch(tc.model, tc.method, tc.body))
			if len(in.Inputs) != len(tc.want) {
				t.Fatalf("stored %d inputs, want %d", len(in.Inputs), len(tc.want))
			}
			for i, w := range tc.want {
				var got, want any
				json.Unmarshal(in.Inputs[i], &got)
				json.Unmarshal([]byte(w), &want)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("input %d = %s, want %s", i, in.Inputs[i], w)
				}
			}
		})
	}
	many := make([]string, 257)
	for i := range many {
		many[i] = `"good"`
	}
	bad := []struct {
		name, model, method, body, field string
	}{
		{"image and input_data", img, "attack_fgsm", `"input_data":{"image":` + q(b64) + `,"input_data":[1]}`, "input_data"},
		{"unknown key", img, "attack_fgsm", `"input_data":{"picture":` + q(b64) + `}`, "input_data"},
		{"not base64 in a body", img, "attack_fgsm", `"input_data":{"image":"!!"}`, "input_data"},
		{"a bad image in a batch", img, "attack_fgsm", `"input_data":[` + q(b64) + `,{"image":"!!"}]`, "input_data[1]"},
		{"an empty list", img, "attack_fgsm", `"input_data":[]`, "input_data"},
		{"numbers of the wrong size", vec, "attack_fgsm", `"input_data":[0.1,0.2]`, "input_data"},
		{"a batch with a wrong size", vec, "attack_fgsm", `"input_data":[[0.1,0.2,0.3,0.4],[0.1]]`, "input_data[1]"},
		{"null", img, "attack_fgsm", `"input_data":null`, "input_data"},
		{"a number", img, "attack_fgsm", `"input_data":7`, "input_data"},
		{"both fields", img, "attack_fgsm", `"input_data":` + q(b64) + `,"inputs":[` + q(b64) + `]`, "input_data"},
		{"too many", nlp, "attack_textfooler", `"input_data":[` + strings.Join(many, ",") + `]`, "input_data"},
		{"numbers for NLP", nlp, "attack_textfooler", `"input_data":[1,2]`, "input_data[0]"},
		{"an empty text in a list", nlp, "attack_textfooler", `"input_data":["good",""]`, "input_data[1]"},
		{"broken inputs element", img, "attack_fgsm", `"inputs":[{"image":1}]`, "inputs[0]"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			before := h.jobCount()
			r := launch(tc.model, tc.method, tc.body)
			assertSandboxError(t, tc.name, r, http.StatusBadRequest, "invalid")
			if d := r.Body["details"].(map[string]any); d[tc.field] == nil {
				t.Errorf("details %v lack %q", d, tc.field)
			}
			if h.jobCount() != before {
				t.Error("a refused launch stored a job")
			}
		})
	}
}

// TestAttackEvents: every attack event (completed, failed, cancelled)
// carries attack_id, model_id and attack_method_id; a cancel is
// attack_cancelled.
func TestAttackEvents(t *testing.T) {
	sub, err := jobs.Attack.Submission(jobs.AttackInput{ModelID: "mdl_1", AttackMethodID: "attack_fgsm", Inputs: []json.RawMessage{json.RawMessage(`"x"`)}})
	if err != nil {
		t.Fatal(err)
	}
	org := "org_1"
	job := records.Job{ID: "atk_1", Kind: jobs.Attack.Name, OrgID: &org, Input: sub.Input, CreatedAt: time.Now()}
	ev := api.Events{PublicURL: "https://w.test"}
	for _, tc := range []struct {
		status, typ string
		result      any
	}{
		{records.JobCompleted, "attack_completed", jobs.AttackResult{ModelID: "mdl_1", AttackMethodID: "attack_fgsm",
			AttackSample: jobs.AttackSample{OriginalInput: jobs.TextValue("good"), AdversarialExample: jobs.TextValue("fine"), AttackSuccess: true}}},
		{records.JobFailed, "attack_failed", nil},
		{records.JobCancelled, "attack_cancelled", nil},
	} {
		typ, body, err := ev.Event(job, tc.status, tc.result, "why")
		if err != nil || typ != tc.typ {
			t.Fatalf("%s: %q %v", tc.status, typ, err)
		}
		var m map[string]any
		json.Unmarshal(body, &m)
		for k, v := range map[string]any{"event_type": tc.typ, "status": tc.status, "attack_id": "atk_1", "model_id": "mdl_1",
			"attack_method_id": "attack_fgsm", "result_url": "https://w.test/v1/attacks/atk_1/results"} {
			if m[k] != v {
				t.Errorf("%s: %s = %v, want %v", tc.status, k, m[k], v)
			}
		}
		if tc.status != records.JobCompleted && m["error"] != "why" {
			t.Errorf("%s: error %v", tc.status, m["error"])
		}
	}
	// A stored input that no longer decodes still names the attack.
	job.Input = "{"
	_, body, err := ev.Event(job, records.JobFailed, nil, "why")
	if err != nil || !strings.Contains(string(body), `"attack_id":"atk_1"`) {
		t.Errorf("undecodable input: %s %v", body, err)
	}
}

// TestCancelAttackSendsWebhook: POST /v1/attacks/{id}/cancel of a launched
// attack with a callback_url stores its attack_cancelled delivery with the
// status change, naming the attack, the model and the method.
func TestCancelAttackSendsWebhook(t *testing.T) {
	h := newAPIHarness(t)
	a := h.org("acme")
	id := attackModel(t, h, a.OrgID, "mdl_cancel", "CV", `{"input_shape":[4]}`)
	r := h.postJSON("/v1/attacks/launch", fmt.Sprintf(`{"model_id":%q,"attack_method_id":"attack_pgd","input_data":[0,0,0,0],"callback_url":"http://127.0.0.1:9/hook"}`, id), as(a))
	if r.Code != http.StatusAccepted {
		t.Fatalf("launch: %d %s", r.Code, r.Raw)
	}
	atk := r.Body["attack_id"].(string)
	if c := h.postJSON("/v1/attacks/"+atk+"/cancel", ``, as(a)); c.Code != http.StatusOK {
		t.Fatalf("cancel: %d %s", c.Code, c.Raw)
	}
	var ds []records.WebhookDelivery
	if err := h.db.Gorm().Where("job_id = ?", atk).Find(&ds).Error; err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].EventType != "attack_cancelled" || ds[0].Status != records.DeliveryPending {
		t.Fatalf("deliveries %+v, want one pending attack_cancelled", ds)
	}
	var ev map[string]any
	json.Unmarshal([]byte(ds[0].Payload), &ev)
	if ev["attack_id"] != atk || ev["model_id"] != id || ev["attack_method_id"] != "attack_pgd" || ev["status"] != "cancelled" {
		t.Errorf("event %v", ev)
	}
	// A second cancel is a conflict and writes nothing more.
	if c := h.postJSON("/v1/attacks/"+atk+"/cancel", ``, as(a)); c.Code != http.StatusConflict {
		t.Errorf("second cancel: %d", c.Code)
	}
	var n int64
	h.db.Gorm().Model(&records.WebhookDelivery{}).Where("job_id = ?", atk).Count(&n)
	if n != 1 {
		t.Errorf("%d deliveries after a second cancel", n)
	}
}
