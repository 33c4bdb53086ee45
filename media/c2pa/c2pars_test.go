package c2pa

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// oracleResult is one line of testdata/c2pa_rs_oracle.mjs.
type oracleResult struct {
	File               string   `json:"file"`
	State              string   `json:"state"`
	Failures           []string `json:"failures"`
	IngredientFailures []string `json:"ingredientFailures"`
	Error              string   `json:"error"`
}

// runOracle validates files with c2pa-rs (npm @contentauth/c2pa-wasm, run
// by node). Without node or the package the test is skipped, unless
// WARDEN_TEST_REQUIRE_NODE=1 (make test sets it; `make assets` installs
// the package).
func runOracle(t *testing.T, anchors string, files []string) map[string]oracleResult {
	t.Helper()
	need := func(format string, args ...any) {
		if os.Getenv("WARDEN_TEST_REQUIRE_NODE") == "1" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format+" (set WARDEN_TEST_REQUIRE_NODE=1 to fail instead)", args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		need("c2pa-rs oracle needs node: %v", err)
	}
	if _, err := os.Stat(filepath.Join("..", "..", "node_modules", "@contentauth", "c2pa-wasm", "package.json")); err != nil {
		need("c2pa-rs oracle needs npm @contentauth/c2pa-wasm (npm ci): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join("testdata", "c2pa_rs_oracle.mjs"), anchors}, files...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("c2pa-rs oracle: %v: %s", err, stderr.Bytes())
	}
	res := map[string]oracleResult{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r oracleResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("oracle line %q: %v", sc.Text(), err)
		}
		res[r.File] = r
	}
	return res
}

// oracleState maps c2pa-rs's validation_state to wardenState's names; a
// file without a manifest is "none".
func oracleState(r oracleResult) string {
	switch {
	case r.State == "Trusted":
		return "trusted"
	case r.State == "Valid":
		return "intact"
	case r.State == "Invalid":
		return "invalid"
	case strings.Contains(r.Error, "JumbfNotFound") || strings.Contains(r.Error, "not found"):
		return "none"
	}
	return "?" + r.State + r.Error
}

// TestAgreesWithC2PARS: on the C2PA public test files and on the files the
// tests build, Warden's verdict on the active manifest (trusted / intact
// but untrusted / invalid) and on ingredient manifests equals c2pa-rs's.
func TestAgreesWithC2PARS(t *testing.T) {
	dir := t.TempDir()
	type item struct {
		path    string
		warden  Result
		anchors string
	}
	var items []item
	fixtureAnchors := filepath.Join("testdata", "certs", "test_cert_root_bundle.pem")
	// c2pa-rs judges at the current time; so does Warden here.
	now := Options{TrustAnchors: testAnchors(t)}
	for _, f := range []string{"C.jpg", "CA.jpg", "XCA.jpg", "no_manifest.jpg"} {
		p := filepath.Join("testdata", f)
		items = append(items, item{p, Verify(readFixture(t, f), now), fixtureAnchors})
	}
	anchorsPEM, scenarios := buildScenarios(t)
	builtAnchors := filepath.Join(dir, "anchors.pem")
	if err := os.WriteFile(builtAnchors, anchorsPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pool, err := LoadTrustAnchors(anchorsPEM)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scenarios {
		p := filepath.Join(dir, sc.name+".jpg")
		if err := os.WriteFile(p, sc.data, 0o600); err != nil {
			t.Fatal(err)
		}
		items = append(items, item{p, Verify(sc.data, Options{TrustAnchors: pool}), builtAnchors})
	}
	byAnchors := map[string][]string{}
	for _, it := range items {
		byAnchors[it.anchors] = append(byAnchors[it.anchors], it.path)
	}
	oracle := map[string]oracleResult{}
	for a, files := range byAnchors {
		for k, v := range runOracle(t, a, files) {
			oracle[k] = v
		}
	}
	for _, it := range items {
		o, ok := oracle[it.path]
		if !ok {
			t.Errorf("%s: no c2pa-rs result", it.path)
			continue
		}
		want := oracleState(o)
		got := wardenState(it.warden)
		if !it.warden.Found {
			got = "none"
		}
		if got != want {
			t.Errorf("%s: Warden %s (failures %q), c2pa-rs %s (failures %q)", filepath.Base(it.path), got, it.warden.Failures, want, o.Failures)
		}
		ingredientFault := false
		for _, in := range it.warden.IngredientManifests {
			ingredientFault = ingredientFault || !in.Valid
		}
		if ingredientFault != (len(o.IngredientFailures) > 0) {
			t.Errorf("%s: Warden ingredients %+v, c2pa-rs ingredient failures %q", filepath.Base(it.path), it.warden.IngredientManifests, o.IngredientFailures)
		}
		t.Logf("%s: %s; c2pa-rs failures %q, ingredient failures %q", filepath.Base(it.path), got, o.Failures, o.IngredientFailures)
	}
}
