package verdict

import (
	"strings"
	"testing"
	"time"

	"github.com/wardenlab/warden/media/forensics"
	"github.com/wardenlab/warden/media/sensor"
)

func ml(p, agree float64, gen string) *forensics.Result {
	r := &forensics.Result{AIProbability: p, EnsembleConfidence: agree}
	if gen != "" {
		r.DetectedGenerator = &gen
	}
	return r
}

var (
	noSig    = sensor.Result{Error: sensor.ErrMsgNoSignature}
	captured = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	camera   = sensor.Result{Valid: true, Manufacturer: "Acme Cameras", CameraModel: "X1", SensorID: "SN-1", SignatureAlgorithm: "ECDSA-SHA256", CaptureTime: &captured}
	c2paOK   = C2PAEvidence{Found: true, Valid: true, Issuer: "Acme CA", ClaimGenerator: "Acme Camera App 2.1"}
	c2paAI   = C2PAEvidence{Found: true, Valid: true, Issuer: "OpenAI", ClaimGenerator: "ChatGPT", DigitalSourceTypes: []string{"http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"}}
	c2paBad  = C2PAEvidence{Found: true, Error: "data hash mismatch"}
	// An intact manifest whose signer is not in the trust anchors.
	firefly   = C2PAEvidence{Found: true, Intact: true, Issuer: "Unknown CA", ClaimGenerator: "Adobe_Firefly", SoftwareAgents: []string{"Adobe Firefly"}, Error: "certificate chain not trusted", DigitalSourceTypes: []string{"http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"}}
	untrusted = C2PAEvidence{Found: true, Intact: true, ClaimGenerator: "Adobe Firefly", Error: "certificate chain not trusted"}
)

func TestDecide(t *testing.T) {
	tests := []struct {
		name    string
		e       Evidence
		label   string
		rng     [2]float64
		reasons []string // substrings that must appear
	}{
		{"sensor verified, all agree", Evidence{C2PA: c2paOK, Sensor: camera, ML: ml(0.05, 0.9, "")}, LabelCamera, RangeCamera,
			[]string{"Sensor-PKI signature verified (Acme Cameras, X1, sensor SN-1, ECDSA-SHA256)", "C2PA manifest verified (signed by Acme CA, claim generator Acme Camera App 2.1)"}},
		{"sensor verified, ML disagrees", Evidence{Sensor: sensor.Result{Valid: true, Manufacturer: "Acme"}, ML: ml(0.9, 0.5, "")}, LabelCamera, RangeCamera,
			[]string{"ML detectors indicate AI-generated (probability: 0.90)"}},
		{"c2pa verified", Evidence{C2PA: c2paOK, Sensor: noSig, ML: ml(0.1, 0.8, "")}, LabelC2PA, RangeC2PA,
			[]string{"C2PA manifest verified (signed by Acme CA", "No camera metadata (EXIF make/model absent)"}},
		{"c2pa verified, ML disagrees", Evidence{C2PA: c2paOK, Sensor: noSig, ML: ml(0.8, 0.8, "")}, LabelC2PA, RangeC2PA,
			[]string{"C2PA provenance takes precedence over the ML detectors, which disagree"}},
		{"c2pa declares AI", Evidence{C2PA: c2paAI, Sensor: noSig, ML: ml(0.3, 0.5, "")}, LabelAI, RangeAI,
			[]string{"C2PA manifest declares AI generation: digital source type trainedAlgorithmicMedia"}},
		{"ML above threshold", Evidence{Sensor: noSig, ML: ml(0.83, 0.7, "")}, LabelAI, RangeAI,
			[]string{"ML detectors indicate AI-generated (probability: 0.83)"}},
		{"ML with generator tag", Evidence{Sensor: noSig, ML: ml(0.99, 0.95, "Stable Diffusion")}, LabelAI, RangeAI,
			[]string{"Generator identified from file metadata: Stable Diffusion"}},
		{"invalid c2pa, ML low", Evidence{C2PA: c2paBad, Sensor: noSig, ML: ml(0.2, 0.6, "")}, LabelUnknown, RangeUnknown,
			[]string{"C2PA manifest present but invalid: data hash mismatch", "inconclusive"}},
		{"invalid sensor signature", Evidence{Sensor: sensor.Result{Error: "sensor signature does not match image data: ECDSA verification failed", Manufacturer: "Acme"}, ML: ml(0.3, 0.5, "")}, LabelUnknown, RangeUnknown,
			[]string{"Sensor-PKI signature present but not verified: sensor signature does not match image data"}},
		{"untrusted intact manifest declares AI", Evidence{C2PA: firefly, Sensor: noSig, ML: ml(0.1, 0.5, "")}, LabelAI, RangeAI,
			[]string{"C2PA manifest intact but its signer is not trusted", "declares AI generation: digital source type compositeWithTrainedAlgorithmicMedia (software agent Adobe Firefly, claim generator Adobe_Firefly)"}},
		{"untrusted intact manifest, generator name only", Evidence{C2PA: untrusted, Sensor: noSig, ML: ml(0.1, 0.5, "")}, LabelUnknown, RangeUnknown,
			[]string{"C2PA manifest intact but its signer is not trusted"}},
		{"broken manifest declaring AI is not believed", Evidence{C2PA: C2PAEvidence{Found: true, Error: "claim signature invalid", DigitalSourceTypes: firefly.DigitalSourceTypes}, Sensor: noSig, ML: ml(0.1, 0.5, "")}, LabelUnknown, RangeUnknown,
			[]string{"Unverified C2PA manifest claims AI generation"}},
		{"nothing analysable", Evidence{Sensor: noSig}, LabelError, [2]float64{0, 0},
			[]string{"could not be analysed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Decide(tc.e, 0.5)
			if v.Label != tc.label {
				t.Fatalf("label %q, want %q (reasons %q)", v.Label, tc.label, v.Reasons)
			}
			if v.Confidence < tc.rng[0] || v.Confidence > tc.rng[1] {
				t.Errorf("confidence %.4f outside %v", v.Confidence, tc.rng)
			}
			all := strings.Join(v.Reasons, "\n")
			for _, want := range tc.reasons {
				if !strings.Contains(all, want) {
					t.Errorf("reasons %q lack %q", v.Reasons, want)
				}
			}
		})
	}
}

// TestConfidenceFollowsEvidence checks confidence is derived, not constant:
// stronger evidence within a label gives higher confidence.
func TestConfidenceFollowsEvidence(t *testing.T) {
	pairs := []struct {
		name           string
		weaker, strong Evidence
	}{
		{"camera corroborated", Evidence{Sensor: sensor.Result{Valid: true}, ML: ml(0.9, 0.5, "")}, Evidence{Sensor: camera, C2PA: c2paOK, ML: ml(0.02, 0.9, "")}},
		{"c2pa with issuer and clean pixels", Evidence{C2PA: C2PAEvidence{Found: true, Valid: true}, Sensor: noSig, ML: ml(0.45, 0.5, "")}, Evidence{C2PA: c2paOK, Sensor: noSig, ML: ml(0.05, 0.5, "")}},
		{"ML further past threshold", Evidence{Sensor: noSig, ML: ml(0.55, 0.4, "")}, Evidence{Sensor: noSig, ML: ml(0.95, 0.9, "")}},
		{"signed AI with ML agreement", Evidence{C2PA: c2paAI, Sensor: noSig, ML: ml(0.1, 0.5, "")}, Evidence{C2PA: c2paAI, Sensor: noSig, ML: ml(0.95, 0.5, "")}},
		{"untrusted AI below signed AI", Evidence{C2PA: firefly, Sensor: noSig, ML: ml(0.5, 0.5, "")}, Evidence{C2PA: c2paAI, Sensor: noSig, ML: ml(0.5, 0.5, "")}},
		{"unknown leaning real", Evidence{Sensor: noSig, ML: ml(0.45, 0.3, "")}, Evidence{Sensor: noSig, ML: ml(0.05, 0.9, "")}},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			w, s := Decide(p.weaker, 0.5), Decide(p.strong, 0.5)
			if w.Label != s.Label || w.Confidence >= s.Confidence {
				t.Errorf("weaker %s %.4f, stronger %s %.4f", w.Label, w.Confidence, s.Label, s.Confidence)
			}
		})
	}
}

func TestThreshold(t *testing.T) {
	e := Evidence{Sensor: noSig, ML: ml(0.6, 0.5, "")}
	if v := Decide(e, 0.7); v.Label != LabelUnknown {
		t.Errorf("0.6 at threshold 0.7: %s", v.Label)
	}
	if v := Decide(e, 0); v.Label != LabelAI { // invalid threshold → default 0.5
		t.Errorf("0.6 at default threshold: %s", v.Label)
	}
}
