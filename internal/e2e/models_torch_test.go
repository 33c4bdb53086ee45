//go:build torch

package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"math/rand"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/storage"
	"github.com/wardenlab/warden/worker/torch"
)

// brightnessModel trains a small CNN on random 8×8 images labelled by
// whether their mean brightness exceeds 0.5: a real TorchScript model,
// trained by the engine, cached for the test binary.
var brightnessModel = sync.OnceValues(func() ([]byte, error) {
	rng := rand.New(rand.NewSource(7))
	const n = 600
	xs := make([]float32, n*64)
	ys := make([]int64, n)
	for i := 0; i < n; i++ {
		base := rng.Float32()
		var sum float32
		for j := 0; j < 64; j++ {
			v := base + (rng.Float32()-0.5)*0.3
			v = min(max(v, 0), 1)
			xs[i*64+j] = v
			sum += v
		}
		if sum/64 > 0.5 {
			ys[i] = 1
		}
	}
	dir, err := os.MkdirTemp("", "warden-model-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	res, err := torch.TrainCNN(xs, ys, []int64{1, 8, 8}, 2, torch.TrainConfig{Epochs: 15}, filepath.Join(dir, "m.pt"))
	if err != nil {
		return nil, err
	}
	return os.ReadFile(res.ModelPath)
})

const brightnessMeta = `{"input_shape":[1,8,8],"labels":["dark","bright"],"input_range":[0,1],"metrics":{"accuracy":0.97}}`

func uploadModel(t *testing.T, s *stack, creds storage.NewOrgCredentials, name string, file []byte, meta string) (int, map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.WriteField("name", name)
	w.WriteField("type", "CV")
	w.WriteField("version", "1.0.0")
	w.WriteField("metadata", meta)
	fw, _ := w.CreateFormFile("file", "model.pt")
	fw.Write(file)
	w.Close()
	code, m, _ := s.do("POST", "/v1/models", &buf, w.FormDataContentType(), withKey(creds))
	return code, m
}

func waitModel(t *testing.T, s *stack, creds storage.NewOrgCredentials, id string) map[string]any {
	t.Helper()
	var m map[string]any
	testenv.Eventually(t, 60*time.Second, "model "+id+" to be validated", func() bool {
		_, m = s.getJSON("/v1/models/"+id, withKey(creds))
		return m["status"] != "processing"
	})
	return m
}

func grey(v float32) string {
	img := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range img.Pix {
		img.Pix[i] = uint8(v * 255)
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// resultPNG decodes a result's base64 PNG.
func resultPNG(t *testing.T, v any) image.Image {
	t.Helper()
	s, _ := v.(string)
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("not base64: %.80v", v)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	return img
}

func waitAttack(t *testing.T, s *stack, creds storage.NewOrgCredentials, id string) map[string]any {
	t.Helper()
	var m map[string]any
	testenv.Eventually(t, 120*time.Second, "attack "+id+" to end", func() bool {
		_, m = s.getJSON("/v1/attacks/"+id+"/status", withKey(creds))
		return m["status"] == "completed" || m["status"] == "failed" || m["status"] == "cancelled"
	})
	return m
}

// TestModelsAndAttacks drives spec 002 end to end: register a TorchScript
// model, predict, attack it with white- and black-box methods, read results
// and PNG artifacts, cancel, and check tenancy and validation.
func TestModelsAndAttacks(t *testing.T) {
	file, err := brightnessModel()
	if err != nil {
		t.Fatalf("train test model: %v", err)
	}
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(file) }))
	defer files.Close()
	s := newStack(t, true) // the stack allows loopback targets (file server, webhook receiver)
	org := s.org("acme")
	other := s.org("other")

	code, m := uploadModel(t, s, org, "brightness", file, brightnessMeta)
	if code != 201 || m["status"] != "processing" || !strings.HasPrefix(m["id"].(string), "mdl_") {
		t.Fatalf("register: %d %v", code, m)
	}
	id := m["id"].(string)
	// Prediction before validation finishes may answer 409; after, 200.
	d := waitModel(t, s, org, id)
	if d["status"] != "active" {
		t.Fatalf("model not active: %v", d)
	}
	metrics := d["metrics"].(map[string]any)
	if metrics["num_classes"].(float64) != 2 || metrics["accuracy"].(float64) != 0.97 || metrics["forward_latency_ms"].(float64) <= 0 {
		t.Errorf("metrics %v", metrics)
	}
	enum := d["output_schema"].(map[string]any)["properties"].(map[string]any)["prediction"].(map[string]any)["enum"].([]any)
	if len(enum) != 2 || enum[1] != "bright" {
		t.Errorf("output schema %v", d["output_schema"])
	}
	if _, ok := d["input_schema"].(map[string]any)["properties"].(map[string]any)["image"]; !ok {
		t.Errorf("input schema lacks image: %v", d["input_schema"])
	}

	// By URL too, through the SSRF-guarded download.
	code, m = s.postJSON("/v1/models", map[string]any{"name": "by-url", "type": "CV", "model_file_url": files.URL + "/m.pt", "metadata": json.RawMessage(brightnessMeta)}, withKey(org))
	if code != 201 {
		t.Fatalf("register by url: %d %v", code, m)
	}
	if d := waitModel(t, s, org, m["id"].(string)); d["status"] != "active" {
		t.Errorf("model by url: %v", d)
	}
	// A file that is not TorchScript fails validation with the reason.
	code, m = uploadModel(t, s, org, "broken", append([]byte("PK\x03\x04"), bytes.Repeat([]byte{1}, 100)...), brightnessMeta)
	if code != 201 {
		t.Fatalf("register broken: %d %v", code, m)
	}
	broken := m["id"].(string)
	if d := waitModel(t, s, org, broken); d["status"] != "failed" || !strings.Contains(d["error"].(string), "TorchScript") {
		t.Errorf("broken model: %v", d)
	}
	code, m = s.postJSON("/v1/models/"+broken+"/predict", map[string]any{"image": grey(0.9)}, withKey(org))
	assertV1Error(t, code, m, 409, "")

	// Listing: envelope, filters, sort.
	code, m = s.getJSON("/v1/models?status=active&sort_by=name&sort_order=asc&limit=1", withKey(org))
	if code != 200 || m["total"].(float64) != 2 || m["limit"].(float64) != 1 || len(m["data"].([]any)) != 1 ||
		m["data"].([]any)[0].(map[string]any)["name"] != "brightness" {
		t.Errorf("list: %d %v", code, m)
	}
	for _, q := range []string{"sort_by=password", "sort_order=sideways", "type=XX", "limit=0", "status=weird"} {
		code, m := s.getJSON("/v1/models?"+q, withKey(org))
		assertV1Error(t, code, m, 400, "")
	}
	if code, m := s.getJSON("/v1/models", withKey(other)); code != 200 || m["total"].(float64) != 0 {
		t.Errorf("other org lists %v", m)
	}

	// Predictions.
	for _, c := range []struct {
		img  float32
		want string
	}{{0.9, "bright"}, {0.1, "dark"}} {
		code, m = s.postJSON("/v1/models/"+id+"/predict", map[string]any{"image": grey(c.img)}, withKey(org))
		if code != 200 || m["prediction"] != c.want || m["confidence"].(float64) < 0.5 || m["model_id"] != id || len(m["input_hash"].(string)) != 16 {
			t.Errorf("predict %v: %d %v", c.img, code, m)
		}
	}
	for name, body := range map[string]any{
		"not base64": map[string]any{"image": "%%%"}, "not an image": map[string]any{"image": base64.StdEncoding.EncodeToString([]byte("hello"))},
		"wrong size": map[string]any{"input_data": []float32{0.1, 0.2}}, "out of range": map[string]any{"input_data": make64(2)},
		"unknown field": map[string]any{"input": 1}, "both": map[string]any{"image": grey(0.5), "input_data": make64(0.5)},
	} {
		code, m := s.postJSON("/v1/models/"+id+"/predict", body, withKey(org))
		if code != 400 {
			t.Errorf("predict %s: %d %v", name, code, m)
		}
	}
	if code, m := s.postJSON("/v1/models/"+id+"/predict", map[string]any{"image": grey(0.9)}, withKey(other)); code != 404 {
		t.Errorf("other org predicts: %d %v", code, m)
	}

	// Attack catalog.
	code, m = s.getJSON("/v1/attacks?model_type=NLP", withKey(org))
	if code != 200 || m["total"].(float64) != 1 || m["data"].([]any)[0].(map[string]any)["id"] != "attack_textfooler" {
		t.Errorf("catalog NLP: %v", m)
	}
	code, m = s.getJSON("/v1/attacks", withKey(org))
	if code != 200 || m["total"].(float64) < 5 {
		t.Errorf("catalog: %v", m)
	}

	// Launch validation: schema violations answer per-field details.
	for name, c := range map[string]struct {
		body  map[string]any
		field string
	}{
		"epsilon type":   {map[string]any{"model_id": id, "attack_method_id": "attack_fgsm", "input_data": grey(0.8), "attack_parameters": map[string]any{"epsilon": "big"}}, "attack_parameters.epsilon"},
		"unknown param":  {map[string]any{"model_id": id, "attack_method_id": "attack_fgsm", "input_data": grey(0.8), "attack_parameters": map[string]any{"gamma_ray": 1}}, "attack_parameters.gamma_ray"},
		"unknown method": {map[string]any{"model_id": id, "attack_method_id": "attack_nope", "input_data": grey(0.8)}, "attack_method_id"},
		"nlp attack":     {map[string]any{"model_id": id, "attack_method_id": "attack_textfooler", "input_data": grey(0.8)}, "attack_method_id"},
		"no input":       {map[string]any{"model_id": id, "attack_method_id": "attack_fgsm"}, "input_data"},
		"bad input":      {map[string]any{"model_id": id, "attack_method_id": "attack_fgsm", "input_data": "!!"}, "input_data"},
		"bad target":     {map[string]any{"model_id": id, "attack_method_id": "attack_fgsm", "input_data": grey(0.8), "target_label": "purple"}, "target_label"},
	} {
		code, m := s.postJSON("/v1/attacks/launch", c.body, withKey(org))
		if code != 400 {
			t.Errorf("%s: %d %v", name, code, m)
			continue
		}
		assertV1Error(t, code, m, 400, c.field)
	}
	if code, m := s.postJSON("/v1/attacks/launch", map[string]any{"model_id": id, "attack_method_id": "attack_fgsm", "input_data": grey(0.8)}, withKey(other)); code != 404 {
		t.Errorf("other org attacks: %d %v", code, m)
	}

	// FGSM on a batch, with a signed webhook.
	rcv := newReceiver(t, org.WebhookSecret)
	batch := []string{grey(0.55), grey(0.6), grey(0.45), grey(0.4)}
	code, m = s.postJSON("/v1/attacks/launch", map[string]any{"model_id": id, "attack_method_id": "attack_fgsm", "inputs": batch,
		"attack_parameters": map[string]any{"epsilon": 0.2}, "callback_url": rcv.srv.URL}, withKey(org))
	if code != 202 || m["status"] != "initiated" || m["estimated_completion_time_seconds"].(float64) < 1 {
		t.Fatalf("launch: %d %v", code, m)
	}
	atk := m["attack_id"].(string)
	if st := waitAttack(t, s, org, atk); st["status"] != "completed" || st["progress_percentage"].(float64) != 100 || st["result_available_at"] == nil {
		t.Fatalf("status %v", st)
	}
	code, r := s.getJSON("/v1/attacks/"+atk+"/results", withKey(org))
	if code != 200 || r["attack_id"] != atk || r["batch_size"].(float64) != 4 || r["batch_success_rate"].(float64) < 0.75 {
		t.Fatalf("results %d %v", code, r)
	}
	if r["original_prediction"] == r["adversarial_prediction"] || r["attack_success"] != true {
		t.Errorf("first sample not fooled: %v → %v", r["original_prediction"], r["adversarial_prediction"])
	}
	pd := r["perturbation_details"].(map[string]any)
	if linf := pd["linf_norm"].(float64); linf > 0.2+1e-6 || linf <= 0 {
		t.Errorf("FGSM L∞ norm %v with ε=0.2", linf)
	}
	// Sent as base64 images, shown as base64 PNGs at the model's resolution.
	orig, adv := resultPNG(t, r["original_input"]), resultPNG(t, r["adversarial_example"])
	if r["input_format"] != "image" || orig.Bounds() != adv.Bounds() || orig.Bounds().Dx() != 8 {
		t.Fatalf("results in the client's form: format %v, bounds %v %v", r["input_format"], orig.Bounds(), adv.Bounds())
	}
	moved := false
	for y := 0; y < 8; y++ {
		for x := 0; x < 8; x++ {
			o, a := color.GrayModel.Convert(orig.At(x, y)).(color.Gray).Y, color.GrayModel.Convert(adv.At(x, y)).(color.Gray).Y
			if d := int(a) - int(o); d > 52 || d < -52 { // ε=0.2 of 255, rounded
				t.Fatalf("pixel %d,%d moved %d levels", x, y, d)
			} else if d != 0 {
				moved = true
			}
		}
	}
	if !moved {
		t.Error("the adversarial PNG equals the original")
	}
	met := r["metrics"].(map[string]any)
	if met["attack_time_seconds"].(float64) <= 0 || !strings.HasSuffix(met["cpu_usage_avg"].(string), "%") || met["gpu_usage_avg"] != nil {
		t.Errorf("metrics %v", met)
	}
	for _, k := range []string{"original_png", "adversarial_png", "perturbation_png"} {
		link := pd[k].(string)
		req, _ := http.NewRequest("GET", s.srv.URL+link, nil)
		withKey(org)(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(s.readChecked(req, resp)))
		if err != nil || img.Bounds().Dx() != 8 {
			t.Errorf("%s: %v", k, err)
		}
		if code, _ := s.getJSON(link, withKey(other)); code != 404 {
			t.Errorf("other org reads %s: %d", k, code)
		}
	}
	testenv.Eventually(t, 30*time.Second, "attack_completed webhook", func() bool { return len(rcv.received()) == 1 })
	ev := rcv.received()[0]
	if ev["event_type"] != "attack_completed" || ev["attack_id"] != atk || ev["model_id"] != id || ev["attack_method_id"] != "attack_fgsm" ||
		ev["attack_success"] != true || !strings.HasSuffix(ev["result_url"].(string), "/v1/attacks/"+atk+"/results") {
		t.Errorf("webhook %v", ev)
	}

	// Targeted PGD to "bright" from a dark image; Square (score-based, black-box).
	for _, c := range []map[string]any{
		{"model_id": id, "attack_method_id": "attack_pgd", "input_data": grey(0.3), "target_label": "bright", "attack_parameters": map[string]any{"eps": 0.4, "eps_step": 0.05, "max_iter": 30}},
		{"model_id": id, "attack_method_id": "attack_square", "input_data": grey(0.45), "attack_parameters": map[string]any{"eps": 0.3, "max_queries": 500}},
	} {
		code, m := s.postJSON("/v1/attacks/launch", c, withKey(org))
		if code != 202 {
			t.Fatalf("launch %v: %d %v", c["attack_method_id"], code, m)
		}
		waitAttack(t, s, org, m["attack_id"].(string))
		_, r := s.getJSON("/v1/attacks/"+m["attack_id"].(string)+"/results", withKey(org))
		if r["attack_success"] != true {
			t.Errorf("%v did not succeed: %v", c["attack_method_id"], r)
		}
		if c["target_label"] != nil && r["adversarial_prediction"] != "bright" {
			t.Errorf("targeted PGD ended at %v", r["adversarial_prediction"])
		}
	}

	// Cancellation mid-attack: a long HopSkipJump stops within seconds.
	code, m = s.postJSON("/v1/attacks/launch", map[string]any{"model_id": id, "attack_method_id": "attack_hopskipjump", "inputs": []string{grey(0.45), grey(0.55)},
		"attack_parameters": map[string]any{"max_iter": 1000, "max_queries": 2000000, "max_eval": 10000}}, withKey(org))
	if code != 202 {
		t.Fatalf("launch hsj: %d %v", code, m)
	}
	long := m["attack_id"].(string)
	testenv.Eventually(t, 30*time.Second, "attack to start", func() bool {
		_, st := s.getJSON("/v1/attacks/"+long+"/status", withKey(org))
		return st["status"] == "in_progress"
	})
	if code, m := s.postJSON("/v1/attacks/"+long+"/cancel", nil, withKey(other)); code != 404 {
		t.Errorf("other org cancels: %d %v", code, m)
	}
	if code, m := s.postJSON("/v1/attacks/"+long+"/cancel", nil, withKey(org)); code != 200 || m["status"] != "cancelled" {
		t.Fatalf("cancel: %d %v", code, m)
	}
	// The worker slot frees: a new FGSM completes promptly.
	code, m = s.postJSON("/v1/attacks/launch", map[string]any{"model_id": id, "attack_method_id": "attack_fgsm", "input_data": grey(0.6)}, withKey(org))
	if st := waitAttack(t, s, org, m["attack_id"].(string)); st["status"] != "completed" {
		t.Errorf("attack after cancel: %v", st)
	}
	if _, st := s.getJSON("/v1/attacks/"+long+"/status", withKey(org)); st["status"] != "cancelled" {
		t.Errorf("cancelled attack status %v", st)
	}
	if code, m := s.getJSON("/v1/attacks/"+long+"/results", withKey(org)); code != 409 {
		t.Errorf("results of a cancelled attack: %d %v", code, m)
	}
	if code, m := s.postJSON("/v1/attacks/"+long+"/cancel", nil, withKey(org)); code != 409 {
		t.Errorf("second cancel: %d %v", code, m)
	}

	// Delete removes the model and its file.
	code, m, _ = s.do("DELETE", "/v1/models/"+broken, nil, "", withKey(org))
	if code != 200 || m["deleted"] != true {
		t.Errorf("delete: %d %v", code, m)
	}
	if _, err := os.Stat(filepath.Join(s.cfg.BlobDir, "models", broken, "model.pt")); !os.IsNotExist(err) {
		t.Errorf("model file survives: %v", err)
	}
	if code, _ := s.getJSON("/v1/models/"+broken, withKey(org)); code != 404 {
		t.Errorf("deleted model: %d", code)
	}
}

func make64(v float32) []float32 {
	out := make([]float32, 64)
	for i := range out {
		out[i] = v
	}
	return out
}
