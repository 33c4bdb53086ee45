package c2pa

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// scenario is a signed file the tests build, and what Warden must say.
type scenario struct {
	name string
	data []byte
	// want: "trusted" (Valid), "intact" (Intact, not Valid) or "invalid".
	want string
	// wantFailure is a substring of Error (when not trusted).
	wantFailure string
	// ingredientBroken: the first ingredient manifest must not be intact.
	ingredientBroken bool
	// stamped: the signature carries a time-stamp that must verify.
	stamped bool
}

// scenarioNow is after the expired signer's validity, inside the others'.
var scenarioNow = day(2026, 1, 1)

// buildScenarios makes the test PKI and the files; anchors is the PEM
// bundle of trusted roots.
func buildScenarios(t *testing.T) (anchors []byte, scenarios []scenario) {
	t.Helper()
	base := readFixture(t, "no_manifest.jpg")
	root := testRoot(t, "Warden Test Root")
	otherRoot := testRoot(t, "Untrusted Root")
	tsa := testTSA(t, root)
	good := testSigner(t, root, "Warden Test Signer", day(2020, 1, 1), day(2040, 1, 1))
	expired := testSigner(t, root, "Expired Signer", day(2020, 1, 1), day(2021, 1, 1))
	stranger := testSigner(t, otherRoot, "Stranger Signer", day(2020, 1, 1), day(2040, 1, 1))
	stampAt := func(at time.Time) func([]byte) []byte {
		return func(tbs []byte) []byte { return makeTimeStamp(t, tsa, nil, tbs, at) }
	}
	spec := func(n int, signer *testCA, gen string, extra ...testAssertion) func(testAssertion) manifestSpec {
		return func(hd testAssertion) manifestSpec {
			return manifestSpec{label: uuidLabel(n), generator: gen, signer: signer, assertions: append(extra, hd)}
		}
	}
	with := func(f func(testAssertion) manifestSpec, mod func(*manifestSpec)) func(testAssertion) manifestSpec {
		return func(hd testAssertion) manifestSpec { s := f(hd); mod(&s); return s }
	}
	aiAction := createdAction("trainedAlgorithmicMedia", "Adobe Firefly")

	add := func(sc scenario) { scenarios = append(scenarios, sc) }
	add(scenario{name: "trusted", want: "trusted",
		data: buildJPEG(t, base, nil, spec(1, good, "Warden Test/1.0", createdAction("digitalCapture", "")))})
	add(scenario{name: "untrusted_ai", want: "intact", wantFailure: "not trusted",
		data: buildJPEG(t, base, nil, spec(2, stranger, "Adobe_Firefly", aiAction))})
	add(scenario{name: "expired_timestamped", want: "trusted", stamped: true,
		data: buildJPEG(t, base, nil, with(spec(3, expired, "Warden Test/1.0", createdAction("digitalCapture", "")),
			func(s *manifestSpec) { s.timeStamp = stampAt(day(2020, 6, 1)) }))})
	add(scenario{name: "expired", want: "invalid", wantFailure: "expired",
		data: buildJPEG(t, base, nil, spec(4, expired, "Warden Test/1.0", createdAction("digitalCapture", "")))})
	add(scenario{name: "expired_bad_timestamp", want: "invalid", wantFailure: "expired",
		data: buildJPEG(t, base, nil, with(spec(5, expired, "Warden Test/1.0", createdAction("digitalCapture", "")),
			func(s *manifestSpec) {
				s.timeStamp = func(tbs []byte) []byte { return makeTimeStamp(t, tsa, nil, append(tbs, 0), day(2020, 6, 1)) }
			}))})
	add(scenario{name: "expired_stamped_after_expiry", want: "invalid", wantFailure: "expired", stamped: true,
		data: buildJPEG(t, base, nil, with(spec(6, expired, "Warden Test/1.0", createdAction("digitalCapture", "")),
			func(s *manifestSpec) { s.timeStamp = stampAt(day(2022, 6, 1)) }))})

	ingredient := buildManifest(t, manifestSpec{label: uuidLabel(7), generator: "Warden Test/1.0", signer: good,
		assertions:     []testAssertion{createdAction("digitalCapture", "")},
		breakSignature: true})
	add(scenario{name: "broken_ingredient", want: "invalid", wantFailure: "ingredient \"parent.jpg\" manifest invalid: claim signature invalid", ingredientBroken: true,
		data: buildJPEG(t, base, [][]byte{ingredient}, spec(8, good, "Warden Test/1.0",
			createdAction("", ""), ingredientOf(t, "parent.jpg", ingredient)))})

	foreign := buildManifest(t, manifestSpec{label: uuidLabel(9), generator: "Other Tool/2.0", signer: stranger,
		assertions: []testAssertion{createdAction("digitalCapture", "")}})
	add(scenario{name: "untrusted_ingredient", want: "intact", wantFailure: "ingredient \"foreign.jpg\" manifest signer not trusted",
		data: buildJPEG(t, base, [][]byte{foreign}, spec(10, good, "Warden Test/1.0",
			createdAction("", ""), ingredientOf(t, "foreign.jpg", foreign)))})

	tampered := bytes.Clone(scenarios[0].data)
	tampered[len(tampered)-10] ^= 0xFF
	add(scenario{name: "tampered", want: "invalid", wantFailure: "data hash mismatch", data: tampered})
	return pemCerts(root.cert), scenarios
}

func TestVerifyBuiltManifests(t *testing.T) {
	anchorsPEM, scenarios := buildScenarios(t)
	anchors, err := LoadTrustAnchors(anchorsPEM)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			r := Verify(sc.data, Options{TrustAnchors: anchors, Now: func() time.Time { return scenarioNow }})
			if got := wardenState(r); got != sc.want {
				t.Fatalf("state %s, want %s; failures %q", got, sc.want, r.Failures)
			}
			if sc.wantFailure != "" && !strings.Contains(r.Error, sc.wantFailure) {
				t.Errorf("error %q, want it to contain %q", r.Error, sc.wantFailure)
			}
			if sc.stamped && (r.TimeStamp == nil || !r.TimeStamp.Verified || r.TimeStamp.Authority != "Warden Test TSA") {
				t.Errorf("time-stamp %+v, want verified", r.TimeStamp)
			}
			if sc.ingredientBroken {
				if len(r.IngredientManifests) != 1 {
					t.Fatalf("ingredient manifests %+v", r.IngredientManifests)
				}
				in := r.IngredientManifests[0]
				if in.Intact || in.SignatureValid || !in.TrustChainValid || in.Title != "parent.jpg" ||
					in.Manifest != uuidLabel(7) || !strings.Contains(in.Error, "signature") {
					t.Errorf("ingredient %+v", in)
				}
			}
		})
	}
}

// wardenState maps a Result to c2pa-rs's validation_state vocabulary.
func wardenState(r Result) string {
	switch {
	case r.Valid:
		return "trusted"
	case r.Intact:
		return "intact"
	}
	return "invalid"
}

// TestUntrustedAIDetails: the AI declaration and its software agent are
// reported from an intact, untrusted manifest.
func TestUntrustedAIDetails(t *testing.T) {
	_, scenarios := buildScenarios(t)
	r := Verify(scenarios[1].data, Options{Now: func() time.Time { return scenarioNow }})
	if !r.Intact || r.Valid || r.ClaimGenerator != "Adobe_Firefly" ||
		strings.Join(r.SoftwareAgents, ",") != "Adobe Firefly" || len(r.DigitalSourceTypes) != 1 ||
		!strings.HasSuffix(r.DigitalSourceTypes[0], "/trainedAlgorithmicMedia") {
		t.Fatalf("got %+v", r)
	}
	b, _ := json.Marshal(r)
	if !bytes.Contains(b, []byte(`"intact":true`)) || !bytes.Contains(b, []byte(`"software_agents":["Adobe Firefly"]`)) {
		t.Errorf("JSON %s", b)
	}
}
