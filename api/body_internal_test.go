package api

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/wardenlab/warden"
)

// formTarget has a field of every kind a form value maps onto.
type formTarget struct {
	Name     string          `json:"name"`
	Count    int             `json:"count"`
	Ratio    float64         `json:"ratio"`
	On       bool            `json:"on"`
	Limit    *int            `json:"limit,omitempty"`
	Tags     []string        `json:"tags"`
	Shape    []int           `json:"shape"`
	Metadata map[string]any  `json:"metadata"`
	Input    json.RawMessage `json:"input_data"`
	Anything any             `json:"anything"`
	embeddedTarget
}

type embeddedTarget struct {
	Inner string `json:"inner"`
}

// decodeWith runs decodeBody on a request with the given body and type.
func decodeWith(t *testing.T, body, ct string, v any, max int64) error {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(body))
	if ct != "" {
		req.Header.Set(echo.HeaderContentType, ct)
	}
	c := echo.New().NewContext(req, httptest.NewRecorder())
	return decodeBody(c, v, max)
}

func TestDecodeBodyFormMapsJSONKeys(t *testing.T) {
	form := "name=a+b&count=3&ratio=0.25&on=true&limit=7&tags=x&tags=y&shape=%5B1%2C3%5D" +
		"&metadata=%7B%22framework%22%3A%22pytorch%22%7D&input_data=aGVsbG8%3D&anything=plain&inner=in"
	var got formTarget
	if err := decodeWith(t, form, "application/x-www-form-urlencoded", &got, 1<<20); err != nil {
		t.Fatal(err)
	}
	seven := 7
	want := formTarget{Name: "a b", Count: 3, Ratio: 0.25, On: true, Limit: &seven, Tags: []string{"x", "y"}, Shape: []int{1, 3},
		Metadata: map[string]any{"framework": "pytorch"}, Input: json.RawMessage(`"aGVsbG8="`), Anything: "plain",
		embeddedTarget: embeddedTarget{Inner: "in"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("form\n got %+v\nwant %+v", got, want)
	}
	// One plain value of a list of strings, and a JSON array of them.
	for _, f := range []string{"tags=solo", `tags=["solo"]`} {
		var v formTarget
		if err := decodeWith(t, f, "application/x-www-form-urlencoded", &v, 1<<20); err != nil || !reflect.DeepEqual(v.Tags, []string{"solo"}) {
			t.Errorf("%s: %v %v", f, v.Tags, err)
		}
	}
}

func TestDecodeBodyMultipartFields(t *testing.T) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	_ = w.WriteField("count", "2")
	fw, _ := w.CreateFormFile("input_data", "doc.json")
	_, _ = fw.Write([]byte(`{"image":"AAAA"}`))
	_ = w.Close()
	var got formTarget
	if err := decodeWith(t, buf.String(), w.FormDataContentType(), &got, 1<<20); err != nil {
		t.Fatal(err)
	}
	if got.Count != 2 || string(got.Input) != `{"image":"AAAA"}` {
		t.Errorf("got %+v", got)
	}
	// A map target takes every name.
	var m map[string]json.RawMessage
	if err := decodeWith(t, "image=QUJD&top_k=3", "application/x-www-form-urlencoded", &m, 1<<20); err != nil {
		t.Fatal(err)
	}
	if string(m["image"]) != `"QUJD"` || string(m["top_k"]) != "3" {
		t.Errorf("map: %s %s", m["image"], m["top_k"])
	}
}

func TestDecodeBodyRefusesHostileForms(t *testing.T) {
	cases := []struct {
		name, body, ct string
		max            int64
		code, detail   string
	}{
		{"unknown field", "name=a&surprise=1", "application/x-www-form-urlencoded", 1 << 20, warden.EINVALID, "surprise"},
		{"number from words", "count=three", "application/x-www-form-urlencoded", 1 << 20, warden.EINVALID, "count"},
		{"fraction into an int", "count=1.5", "application/x-www-form-urlencoded", 1 << 20, warden.EINVALID, "count"},
		{"NaN", "ratio=NaN", "application/x-www-form-urlencoded", 1 << 20, warden.EINVALID, "ratio"},
		{"bool from words", "on=perhaps", "application/x-www-form-urlencoded", 1 << 20, warden.EINVALID, "on"},
		{"object that is not JSON", "metadata=%7Bbroken", "application/x-www-form-urlencoded", 1 << 20, warden.EINVALID, "metadata"},
		{"object that is an array", "metadata=%5B1%5D", "application/x-www-form-urlencoded", 1 << 20, warden.EINVALID, "metadata"},
		{"repeated single field", "name=a&name=b", "application/x-www-form-urlencoded", 1 << 20, warden.EINVALID, "name"},
		{"bad escape", "name=%zz", "application/x-www-form-urlencoded", 1 << 20, warden.EINVALID, ""},
		{"multipart without boundary", "x", "multipart/form-data", 1 << 20, warden.EINVALID, "boundary"},
		{"truncated multipart", "--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nx", "multipart/form-data; boundary=b", 1 << 20, warden.EINVALID, ""},
		{"form over the cap", "name=" + strings.Repeat("a", 100), "application/x-www-form-urlencoded", 64, warden.ETOOLARGE, ""},
		{"text/plain", `{"name":"a"}`, "text/plain", 1 << 20, warden.EUNSUPPORTEDMEDIA, ""},
		{"no type", `{"name":"a"}`, "", 1 << 20, warden.EUNSUPPORTEDMEDIA, ""},
	}
	for _, tc := range cases {
		var v formTarget
		err := decodeWith(t, tc.body, tc.ct, &v, tc.max)
		if warden.ErrorCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
			continue
		}
		if d := warden.ErrorDetails(err); tc.detail != "" && !strings.Contains(d["body"]+d[tc.detail]+d["name"], tc.detail) {
			t.Errorf("%s: details %v do not name %q", tc.name, d, tc.detail)
		}
	}
}
