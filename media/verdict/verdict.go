// Package verdict combines the media-verification evidence — sensor-PKI,
// C2PA and forensic detection — into a label, a confidence and reasons.
//
// Precedence: a verified sensor signature wins (authentic_camera); then a
// valid C2PA manifest, which is likely_ai_generated when it declares an AI
// digital source type or names a generator and authentic_c2pa otherwise;
// then an intact C2PA manifest whose signer is not in the trust anchors
// but which declares an AI digital source type (likely_ai_generated: trust
// is needed to believe "authentic", not to believe a file's own statement
// that it was generated); then the forensic ai_probability against the
// threshold; else unknown.
// With no evidence at all (no decodable pixels, no manifest, no signature)
// the label is error.
//
// Each label has a confidence range; the confidence is interpolated inside
// it from the strength of the evidence (see the strength functions), so it
// is never a constant.
package verdict

import (
	"fmt"
	"math"
	"strings"

	"github.com/wardenlab/warden/media/forensics"
	"github.com/wardenlab/warden/media/sensor"
)

// Labels.
const (
	LabelCamera  = "authentic_camera"
	LabelC2PA    = "authentic_c2pa"
	LabelAI      = "likely_ai_generated"
	LabelUnknown = "unknown"
	LabelError   = "error"
)

// Confidence ranges per label, [lo, hi].
var (
	RangeCamera  = [2]float64{0.95, 0.98}
	RangeC2PA    = [2]float64{0.85, 0.92}
	RangeAI      = [2]float64{0.70, 0.95}
	RangeUnknown = [2]float64{0.40, 0.60}
)

// DefaultAIThreshold is used when Decide gets a threshold outside (0, 1).
const DefaultAIThreshold = 0.5

// C2PAEvidence is the outcome of C2PA manifest validation.
type C2PAEvidence struct {
	Found, Valid bool
	// Intact: signature and hashes verify, only the signer is not trusted.
	Intact             bool
	SoftwareAgents     []string
	Issuer             string
	ClaimGenerator     string
	Error              string
	DigitalSourceTypes []string
	Actions            []string
}

// Evidence is everything the verdict is decided from. ML is nil when the
// pixels could not be analysed.
type Evidence struct {
	C2PA   C2PAEvidence
	Sensor sensor.Result
	ML     *forensics.Result
}

// Verdict is the decided label, its confidence and the reasons behind it.
type Verdict struct {
	Label      string
	Confidence float64
	Reasons    []string
}

// aiSourceTypes are IPTC digital source types that declare generation by a
// trained model. "algorithmicMedia" is deliberately absent: IPTC defines it
// as media made by an algorithm "not based on any sampled training data"
// (procedural graphics, the c2pa-rs test fixtures), which is synthetic but
// not AI-generated; Decide still reports it as a reason.
var aiSourceTypes = []string{"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"}

// generatorNames appear in C2PA claim generators of AI image services.
var generatorNames = []string{"dall-e", "dall·e", "openai", "chatgpt", "firefly", "midjourney", "stable diffusion", "imagen", "bing image creator"}

// Decide returns the verdict for e. aiThreshold is the ai_probability above
// which forensic detection alone labels an image likely_ai_generated.
func Decide(e Evidence, aiThreshold float64) Verdict {
	if aiThreshold <= 0 || aiThreshold >= 1 {
		aiThreshold = DefaultAIThreshold
	}
	var reasons []string
	say := func(format string, args ...any) { reasons = append(reasons, fmt.Sprintf(format, args...)) }

	// What each source says, written before the decision so that every
	// verdict shows all the evidence.
	s := e.Sensor
	switch {
	case s.Valid:
		say("Sensor-PKI signature verified (%s)", join(s.Manufacturer, s.CameraModel, prefix("sensor ", s.SensorID), s.SignatureAlgorithm))
	case s.Error != "" && s.Error != sensor.ErrMsgNoSignature:
		say("Sensor-PKI signature present but not verified: %s", s.Error)
	}
	aiDecl := ""
	if e.C2PA.Found {
		aiDecl = c2paAIDeclaration(e.C2PA)
		if e.C2PA.Valid {
			say("C2PA manifest verified (%s)", join(prefix("signed by ", e.C2PA.Issuer), prefix("claim generator ", e.C2PA.ClaimGenerator)))
			if aiDecl != "" {
				say("C2PA manifest declares AI generation: %s", aiDecl)
			} else if hasSourceType(e.C2PA.DigitalSourceTypes, "algorithmicMedia") {
				say("C2PA manifest declares computer-generated content (digital source type algorithmicMedia, not a trained model)")
			}
		} else if e.C2PA.Intact {
			say("C2PA manifest intact but its signer is not trusted: %s", orDefault(e.C2PA.Error, "untrusted signer"))
			if untrustedAI(e.C2PA) {
				say("C2PA manifest declares AI generation: %s (%s)", aiDecl, join(prefix("software agent ", strings.Join(e.C2PA.SoftwareAgents, ", ")), prefix("claim generator ", e.C2PA.ClaimGenerator)))
			}
		} else {
			say("C2PA manifest present but invalid: %s", orDefault(e.C2PA.Error, "validation failed"))
			if aiDecl != "" {
				say("Unverified C2PA manifest claims AI generation: %s", aiDecl)
			}
		}
	}
	if s.Manufacturer == "" && s.CameraModel == "" {
		say("No camera metadata (EXIF make/model absent)")
	}
	ml := e.ML
	if ml != nil {
		if ml.AIProbability > aiThreshold {
			say("ML detectors indicate AI-generated (probability: %.2f)", ml.AIProbability)
		} else {
			say("ML detectors found no AI-generation signal above the threshold %.2f (probability: %.2f)", aiThreshold, ml.AIProbability)
		}
		if ml.DetectedGenerator != nil {
			say("Generator identified from file metadata: %s", *ml.DetectedGenerator)
		}
	} else {
		say("Forensic detection unavailable: the image could not be analysed")
	}

	switch {
	case s.Valid:
		return Verdict{LabelCamera, interpolate(RangeCamera, cameraStrength(e, aiThreshold)), reasons}
	case e.C2PA.Found && e.C2PA.Valid && aiDecl != "":
		return Verdict{LabelAI, interpolate(RangeAI, signedAIStrength(e)), reasons}
	case e.C2PA.Found && e.C2PA.Valid:
		if ml != nil && ml.AIProbability > aiThreshold {
			say("C2PA provenance takes precedence over the ML detectors, which disagree")
		}
		return Verdict{LabelC2PA, interpolate(RangeC2PA, c2paStrength(e, aiThreshold)), reasons}
	case e.C2PA.Found && untrustedAI(e.C2PA):
		return Verdict{LabelAI, interpolate(RangeAI, untrustedAIStrength(e)), reasons}
	case ml != nil && ml.AIProbability > aiThreshold:
		return Verdict{LabelAI, interpolate(RangeAI, mlStrength(e, aiThreshold)), reasons}
	case ml == nil && !e.C2PA.Found && s.Error == sensor.ErrMsgNoSignature:
		return Verdict{LabelError, 0, reasons}
	}
	say("Evidence is inconclusive: no verified provenance and no strong AI-generation signal")
	return Verdict{LabelUnknown, interpolate(RangeUnknown, unknownStrength(e, aiThreshold)), reasons}
}

// cameraStrength: a verified sensor signature is strong by itself; it rises
// to the top of the range as independent evidence agrees — a signed
// capture time (1/3), a valid C2PA manifest without an AI declaration
// (1/3), and forensic detection below the threshold, scaled by how far
// below (1/3).
func cameraStrength(e Evidence, thr float64) float64 {
	var s float64
	if e.Sensor.CaptureTime != nil {
		s += 1.0 / 3
	}
	if e.C2PA.Valid && c2paAIDeclaration(e.C2PA) == "" {
		s += 1.0 / 3
	}
	if e.ML != nil && e.ML.AIProbability <= thr {
		s += (1 - e.ML.AIProbability/thr) / 3
	}
	return s
}

// signedAIStrength: a signed AI declaration starts at 0.7 of the range;
// forensic agreement adds up to 0.3 (ai_probability itself).
func signedAIStrength(e Evidence) float64 {
	s := 0.7
	if e.ML != nil {
		s += 0.3 * e.ML.AIProbability
	}
	return s
}

// untrustedAIStrength: an intact but untrusted AI declaration starts at
// 0.4 of the range (anyone can sign one, but nobody gains by falsely
// calling a picture generated); forensic agreement adds up to 0.3.
func untrustedAIStrength(e Evidence) float64 {
	s := 0.4
	if e.ML != nil {
		s += 0.3 * e.ML.AIProbability
	}
	return s
}

// c2paStrength: half from the manifest naming its signer, half from the
// forensic detectors agreeing (1 − ai_probability/threshold, 0 above it).
func c2paStrength(e Evidence, thr float64) float64 {
	var s float64
	if e.C2PA.Issuer != "" {
		s += 0.5
	}
	if e.ML != nil {
		s += 0.5 * math.Max(0, 1-e.ML.AIProbability/thr)
	}
	return s
}

// mlStrength: how far ai_probability is past the threshold (0.6), how much
// the detectors agree (0.2), and generator evidence in the metadata (0.2).
func mlStrength(e Evidence, thr float64) float64 {
	ml := e.ML
	s := 0.6*(ml.AIProbability-thr)/(1-thr) + 0.2*ml.EnsembleConfidence
	if ml.DetectedGenerator != nil {
		s += 0.2
	}
	return s
}

// unknownStrength is the confidence that the inconclusive verdict leans
// the right way: how clearly the detectors say "not AI" (distance below the
// threshold) times how much they agree; 0 without forensic results.
func unknownStrength(e Evidence, thr float64) float64 {
	if e.ML == nil {
		return 0
	}
	return math.Max(0, 1-e.ML.AIProbability/thr) * e.ML.EnsembleConfidence
}

// interpolate maps strength s (clamped to [0, 1]) into r.
func interpolate(r [2]float64, s float64) float64 {
	s = math.Max(0, math.Min(1, s))
	return math.Round((r[0]+s*(r[1]-r[0]))*1e4) / 1e4
}

// untrustedAI reports whether an intact manifest whose signer is not
// trusted declares a trained-model digital source type (a generator name
// alone is not enough without trust).
func untrustedAI(c C2PAEvidence) bool {
	return !c.Valid && c.Intact && strings.HasPrefix(c2paAIDeclaration(C2PAEvidence{DigitalSourceTypes: c.DigitalSourceTypes}), "digital source type")
}

// c2paAIDeclaration describes the manifest's AI declaration, or "".
func c2paAIDeclaration(c C2PAEvidence) string {
	for _, d := range c.DigitalSourceTypes {
		short := d[strings.LastIndexAny(d, "/#:")+1:]
		for _, t := range aiSourceTypes {
			if short == t {
				return "digital source type " + t
			}
		}
	}
	lg := strings.ToLower(c.ClaimGenerator)
	for _, g := range generatorNames {
		if strings.Contains(lg, g) {
			return "claim generator " + c.ClaimGenerator
		}
	}
	return ""
}

func join(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return "no signer details"
	}
	return strings.Join(out, ", ")
}

func prefix(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// hasSourceType reports whether any declared IPTC source type URI ends in name.
func hasSourceType(types []string, name string) bool {
	for _, t := range types {
		if t == name || strings.HasSuffix(t, "/"+name) {
			return true
		}
	}
	return false
}
