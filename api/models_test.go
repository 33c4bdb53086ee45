package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
)

// withRole is an API key of the org with the given role.
func (h *apiHarness) withRole(org storage.NewOrgCredentials, role string) storage.NewOrgCredentials {
	h.t.Helper()
	_, key, err := h.db.CreateCredential(context.Background(), org.OrgID, records.CredentialAPIKey, role)
	if err != nil {
		h.t.Fatal(err)
	}
	org.APIKey = key
	return org
}

// TestRegisterModelSpecExample: spec 002's own POST /models body (free-form
// metadata, a .pth URL, no input shape, no tokenizer) is accepted from a
// developer with 201 and status processing; the owner's metadata keys come
// back unchanged in the model's detail.
func TestRegisterModelSpecExample(t *testing.T) {
	h := newAPIHarness(t)
	org := h.org("spec-example")
	dev := h.withRole(org, records.RoleDeveloper)
	for _, c := range []struct{ name, body string }{
		{"spec NLP", `{"name":"New Text Classifier for Spam","type":"NLP","version":"1.0.0","description":"Custom model for spam detection.",
			"model_file_url":"https://models.example.com/models/spam_classifier_v1.pth","metadata":{"trained_on":"public_spam_dataset","framework":"pytorch"}}`},
		{"CV without input_shape", `{"name":"cnn","type":"CV","model_file_url":"https://models.example.com/cnn.pth","metadata":{"framework":"pytorch","labels":["a","b"]}}`},
		{"CV without metadata", `{"name":"cnn","type":"CV","model_file_url":"https://models.example.com/cnn.pt"}`},
		{"NLP with vocabulary alone", `{"name":"bow","type":"NLP","model_file_url":"https://models.example.com/bow.pt","metadata":{"vocabulary":["free","win"]}}`},
		{"NLP taking text", `{"name":"txt","type":"NLP","model_file_url":"https://models.example.com/t.pt","metadata":{"tokenizer":"text"}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := h.postJSON("/v1/models", c.body, as(dev))
			if r.Code != http.StatusCreated || r.Body["status"] != records.ModelProcessing {
				t.Fatalf("%d %s", r.Code, r.Raw)
			}
			var sent struct {
				Name, Type string
				Metadata   map[string]any
			}
			json.Unmarshal([]byte(c.body), &sent)
			if r.Body["name"] != sent.Name || r.Body["type"] != sent.Type || r.Body["created_at"] == nil {
				t.Errorf("answer %s", r.Raw)
			}
			g := h.do("GET", "/v1/models/"+r.Body["id"].(string), nil, as(org))
			if g.Code != 200 {
				t.Fatalf("get: %d %s", g.Code, g.Raw)
			}
			md, _ := g.Body["metadata"].(map[string]any)
			for k, v := range sent.Metadata {
				if b1, _ := json.Marshal(md[k]); string(b1) != mustJSON(v) {
					t.Errorf("metadata.%s = %v, want %v", k, md[k], v)
				}
			}
			if g.Body["input_schema"] != nil {
				t.Errorf("input_schema before validation: %v", g.Body["input_schema"])
			}
		})
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestRegisterModelRefusals: what registration still refuses, each with
// 400 naming the field; a viewer may not register.
func TestRegisterModelRefusals(t *testing.T) {
	h := newAPIHarness(t)
	org := h.org("refusals")
	dev := h.withRole(org, records.RoleDeveloper)
	for _, c := range []struct{ name, body, field, want string }{
		{"s3 URL without an S3 store", `{"name":"s","type":"NLP","model_file_url":"s3://your-bucket/models/spam_classifier_v1.pth","metadata":{"framework":"pytorch"}}`,
			"model_file_url", storage.S3Unconfigured},
		{"endpoint CV without input_shape", `{"name":"e","type":"CV","model_endpoint_url":"https://ml.example.com/score"}`, "metadata.input_shape", "model_endpoint_url"},
		{"endpoint NLP without tokenizer", `{"name":"e","type":"NLP","model_endpoint_url":"https://ml.example.com/score","metadata":{"trained_on":"x"}}`, "metadata.tokenizer", "model_endpoint_url"},
		{"metadata an array", `{"name":"m","type":"CV","model_file_url":"https://models.example.com/m.pt","metadata":[1,2]}`, "metadata", "object"},
		{"metadata a string", `{"name":"m","type":"CV","model_file_url":"https://models.example.com/m.pt","metadata":"pytorch"}`, "metadata", "object"},
		{"bad input_shape", `{"name":"m","type":"CV","model_file_url":"https://models.example.com/m.pt","metadata":{"input_shape":[2,32,32]}}`, "metadata.input_shape", "channels"},
		{"empty input_shape", `{"name":"m","type":"CV","model_file_url":"https://models.example.com/m.pt","metadata":{"input_shape":[]}}`, "metadata.input_shape", ""},
		{"unknown tokenizer", `{"name":"m","type":"NLP","model_file_url":"https://models.example.com/m.pt","metadata":{"tokenizer":"bpe"}}`, "metadata.tokenizer", "List[str]"},
		{"bow without vocabulary", `{"name":"m","type":"NLP","model_file_url":"https://models.example.com/m.pt","metadata":{"tokenizer":"bow"}}`, "metadata.vocabulary", ""},
		{"unknown type", `{"name":"m","type":"AUDIO","model_file_url":"https://models.example.com/m.pt"}`, "type", ""},
		{"no file", `{"name":"m","type":"CV","metadata":{"framework":"pytorch"}}`, "model_file_url", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := h.postJSON("/v1/models", c.body, as(dev))
			assertSandboxError(t, c.name, r, http.StatusBadRequest, "invalid")
			why, _ := r.Body["details"].(map[string]any)[c.field].(string)
			if why == "" || !strings.Contains(why, c.want) {
				t.Errorf("details %v: want %q naming %q", r.Body["details"], c.field, c.want)
			}
		})
	}
	if n := h.jobCount(); n != 0 {
		t.Errorf("refused registrations left %d jobs", n)
	}
	viewer := h.withRole(org, records.RoleViewer)
	r := h.postJSON("/v1/models", `{"name":"v","type":"CV","model_file_url":"https://models.example.com/m.pt"}`, as(viewer))
	assertSandboxError(t, "viewer registers", r, http.StatusForbidden, "forbidden")
}
