package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
)

// TestVerifyErrorDetailIsSorted: spec 003's detail string lists the fields
// in name order, the same every time (a map has no order), even where a
// field name is a prefix of another.
func TestVerifyErrorDetailIsSorted(t *testing.T) {
	details := map[string]string{"url": "bad", "file": "missing", "a.b": "2", "a": "1", "z_last": "9", "b": "x", "callback_url": "private"}
	const want = "a: 1; a.b: 2; b: x; callback_url: private; file: missing; url: bad; z_last: 9"
	for i := 0; i < 50; i++ {
		rec := httptest.NewRecorder()
		c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/api/verify/x", nil), rec)
		if err := renderVerifyError(c, apiError{Status: http.StatusBadRequest, Message: "Invalid request", Details: details}); err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if body["detail"] != want {
			t.Fatalf("detail %q, want %q", body["detail"], want)
		}
	}
}
