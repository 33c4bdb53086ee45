package runner

import (
	"os"
	"strings"
	"testing"
)

// RequireLayers skips a test, saying why, where the kernel refuses a
// confinement layer; with WARDEN_TEST_REQUIRE_SANDBOX=1 (make test) a
// missing layer fails it instead.
func RequireLayers(t testing.TB, layers []string) {
	t.Helper()
	missing := MissingLayers(layers)
	if len(missing) == 0 {
		return
	}
	msg := "this kernel refuses the runner's " + strings.Join(missing, ", ") + " (layers on: " + strings.Join(layers, "; ") + ")"
	if os.Getenv("WARDEN_TEST_REQUIRE_SANDBOX") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
