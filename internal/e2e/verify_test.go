package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/webhook"
)

// TestVerifyFixtures uploads the four C2PA fixtures and a real photo through
// the API and checks the verdict the worker reaches for each.
func TestVerifyFixtures(t *testing.T) {
	s := newStack(t, true)
	cases := []struct {
		file      string
		label     string
		c2paFound bool
		c2paValid bool
		reason    string // substring of one reason
	}{
		{"media/c2pa/testdata/C.jpg", "authentic_c2pa", true, true, "C2PA manifest verified"},
		{"media/c2pa/testdata/CA.jpg", "authentic_c2pa", true, true, "C2PA manifest verified"},
		{"media/c2pa/testdata/XCA.jpg", "unknown", true, false, "data hash mismatch"},
		{"media/c2pa/testdata/no_manifest.jpg", "unknown", false, false, "No camera metadata"},
		{"media/forensics/testdata/china.jpg", "unknown", false, false, "ML detectors found no AI-generation signal"},
	}
	ids := make([]string, len(cases))
	for i, c := range cases {
		code, m := s.upload(filepath.Base(c.file), fixture(t, c.file), nil)
		if code != 200 || m["status"] != "pending" || m["job_id"] == "" {
			t.Fatalf("%s: upload answered %d %v", c.file, code, m)
		}
		ids[i] = m["job_id"].(string)
	}
	for i, c := range cases {
		t.Run(filepath.Base(c.file), func(t *testing.T) {
			m := s.waitVerify(ids[i])
			if m["status"] != "completed" || m["label"] != c.label {
				t.Fatalf("got status %v label %v, want completed %s; %v", m["status"], m["label"], c.label, m["reasons"])
			}
			conf := m["confidence"].(float64)
			r := specRanges[c.label]
			if conf < r[0] || conf > r[1] {
				t.Errorf("confidence %v outside the spec's range %v for %s", conf, r, c.label)
			}
			details := m["details"].(map[string]any)
			cp := details["c2pa"].(map[string]any)
			if cp["found"] != c.c2paFound || cp["valid"] != c.c2paValid {
				t.Errorf("c2pa found/valid = %v/%v, want %v/%v (%v)", cp["found"], cp["valid"], c.c2paFound, c.c2paValid, cp["error"])
			}
			if !c.c2paFound && cp["error"] != "No C2PA manifest found" {
				t.Errorf("c2pa error %q", cp["error"])
			}
			if sp := details["sensor_pki"].(map[string]any); sp["valid"] != false || sp["error"] == "" {
				t.Errorf("sensor_pki %v, want invalid with a reason", sp)
			}
			ml := details["ml_detection"].(map[string]any)
			if p := ml["ai_probability"].(float64); p < 0 || p > 1 {
				t.Errorf("ai_probability %v", p)
			}
			if ml["cnn_score"] != nil {
				t.Errorf("cnn_score %v, want null until the TorchScript detector exists", ml["cnn_score"])
			}
			if ml["detected_generator"] != nil {
				t.Errorf("detected_generator %v without generator evidence", ml["detected_generator"])
			}
			found := false
			for _, r := range m["reasons"].([]any) {
				found = found || strings.Contains(r.(string), c.reason)
			}
			if !found {
				t.Errorf("no reason mentions %q: %v", c.reason, m["reasons"])
			}
		})
	}
	code, m := s.getJSON("/api/metrics?days=1")
	if code != 200 || m["total_verifications"].(float64) != 5 || m["authentic_c2pa"].(float64) != 2 || m["unknown"].(float64) != 3 {
		t.Errorf("metrics = %d %v", code, m)
	}
	if m["avg_processing_time"].(float64) <= 0 {
		t.Errorf("avg_processing_time %v", m["avg_processing_time"])
	}
}

// specRanges are spec 003's typical confidence ranges per label.
var specRanges = map[string][2]float64{"authentic_camera": {0.95, 0.98}, "authentic_c2pa": {0.85, 0.92}, "likely_ai_generated": {0.70, 0.95}, "unknown": {0.40, 0.60}}

// receiver is an httptest webhook endpoint that checks signatures.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []map[string]any
	bad    []string
	fail   int // answer 500 to this many first requests
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.fail > 0 {
			r.fail--
			http.Error(w, "try later", 500)
			return
		}
		if err := webhook.Verify(secret, req.Header, body, time.Now(), 5*time.Minute); err != nil {
			r.bad = append(r.bad, err.Error())
			http.Error(w, err.Error(), 400)
			return
		}
		var m map[string]any
		json.Unmarshal(body, &m)
		m["_webhook_id"] = req.Header.Get("webhook-id")
		r.events = append(r.events, m)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) received() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.events...)
}

// TestVerifyWebhook: upload with a callback → worker → completed → a signed
// webhook whose signature the receiver verifies; a first failing answer is
// retried, every attempt is recorded and visible, and redelivery works.
func TestVerifyWebhook(t *testing.T) {
	s := newStack(t, true)
	org := s.org("acme")
	rcv := newReceiver(t, org.WebhookSecret)
	rcv.fail = 1
	code, m := s.upload("no_manifest.jpg", fixture(t, "media/c2pa/testdata/no_manifest.jpg"), map[string]string{"callback_url": rcv.srv.URL + "/hook"}, withKey(org))
	if code != 200 {
		t.Fatalf("upload: %d %v", code, m)
	}
	id := m["job_id"].(string)
	done := s.waitVerify(id, withKey(org))
	if done["status"] != "completed" {
		t.Fatalf("job %v", done)
	}
	testenv.Eventually(t, 30*time.Second, "signed webhook", func() bool { return len(rcv.received()) == 1 })
	ev := rcv.received()[0]
	if ev["event_type"] != "verification_completed" || ev["job_id"] != id || ev["label"] != done["label"] || !strings.HasSuffix(ev["result_url"].(string), "/api/verify/"+id) {
		t.Errorf("event %v", ev)
	}
	if len(rcv.bad) != 0 {
		t.Errorf("signature failures: %v", rcv.bad)
	}
	// Deliveries are listed with both attempts (500, then 200).
	code, list := s.getJSON("/v1/webhooks/deliveries?job_id="+id, withKey(org))
	if code != 200 || list["total"].(float64) != 1 {
		t.Fatalf("deliveries %d %v", code, list)
	}
	did := list["data"].([]any)[0].(map[string]any)["id"].(string)
	if did != ev["_webhook_id"] {
		t.Errorf("delivery id %s, webhook-id header %s", did, ev["_webhook_id"])
	}
	// The worker records an attempt after the receiver answers, so wait for
	// the delivery row rather than the receiver.
	var d map[string]any
	testenv.Eventually(t, 10*time.Second, "the delivery to be recorded as delivered", func() bool {
		code, d = s.getJSON("/v1/webhooks/deliveries/"+did, withKey(org))
		return d["status"] == "delivered"
	})
	hist, _ := d["attempt_history"].([]any)
	if code != 200 || d["status"] != "delivered" || len(hist) != 2 ||
		hist[0].(map[string]any)["status_code"].(float64) != 500 || hist[1].(map[string]any)["status_code"].(float64) != 200 {
		t.Fatalf("delivery %d %v", code, d)
	}
	// Another org sees neither the job nor the delivery.
	other := s.org("other")
	if code, _ := s.getJSON("/api/verify/"+id, withKey(other)); code != 404 {
		t.Errorf("other org reads the job: %d", code)
	}
	if code, _ := s.getJSON("/api/verify/" + id); code != 404 {
		t.Errorf("anonymous caller reads an org's job: %d", code)
	}
	if code, _ := s.getJSON("/v1/webhooks/deliveries/"+did, withKey(other)); code != 404 {
		t.Errorf("other org reads the delivery: %d", code)
	}
	if code, _ := s.postJSON("/v1/webhooks/deliveries/"+did+"/redeliver", nil, withKey(other)); code != 404 {
		t.Errorf("other org redelivers: %d", code)
	}
	// Redelivery sends the same event again, signed again.
	if code, r := s.postJSON("/v1/webhooks/deliveries/"+did+"/redeliver", nil, withKey(org)); code != 202 {
		t.Fatalf("redeliver %d %v", code, r)
	}
	testenv.Eventually(t, 30*time.Second, "redelivered webhook", func() bool { return len(rcv.received()) == 2 })
	if got := rcv.received()[1]; got["_webhook_id"] != did || got["job_id"] != id {
		t.Errorf("redelivered %v", got)
	}
}

// TestDeleteRemovesEverything: DELETE removes the row and the stored file.
func TestDeleteRemovesEverything(t *testing.T) {
	s := newStack(t, true)
	code, m := s.upload("no_manifest.jpg", fixture(t, "media/c2pa/testdata/no_manifest.jpg"), nil)
	if code != 200 {
		t.Fatal(code, m)
	}
	id := m["job_id"].(string)
	s.waitVerify(id)
	blob := filepath.Join(s.cfg.BlobDir, "jobs", id, "input")
	if _, err := os.Stat(blob); err != nil {
		t.Fatalf("blob not stored at %s: %v", blob, err)
	}
	code, m, _ = s.do("DELETE", "/api/verify/"+id, nil, "")
	if code != 200 || m["deleted"] != true || m["job_id"] != id || m["message"] == "" {
		t.Fatalf("delete %d %v", code, m)
	}
	if _, err := os.Stat(blob); !os.IsNotExist(err) {
		t.Errorf("blob still on disk after delete: %v", err)
	}
	if code, m := s.getJSON("/api/verify/" + id); code != 404 || m["error"] == nil || m["job_id"] != id {
		t.Errorf("after delete: %d %v", code, m)
	}
	if code, _, _ := s.do("DELETE", "/api/verify/"+id, nil, ""); code != 404 {
		t.Errorf("second delete %d", code)
	}
}
