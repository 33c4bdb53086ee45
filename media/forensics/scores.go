package forensics

import (
	"fmt"
	"math"

	"github.com/wardenlab/warden/media/exif"
)

// Residual-score thresholds (luminance levels and correlation coefficients).
const (
	// A residual std at or above smoothStdCamera is an ordinary sensor noise
	// floor (measured: 3.9 and 18 on the fixture photos, 2.2 for σ=3 noise
	// after JPEG q90); at or below smoothStdSynthetic the image is too clean
	// for a camera (0.27–0.85 for up-sampled smooth synthetic images).
	smoothStdCamera    = 2.0
	smoothStdSynthetic = 0.5
	// Residual autocorrelation at lag 2 or 8 below corrNone is what sensor
	// noise and natural texture give (|r| ≤ 0.06 on the fixtures); at
	// corrStrong the residual is dominated by a periodic structure.
	corrNone   = 0.15
	corrStrong = 0.5
	// A quadrant noise-level CV above quadrantCVNormal (natural content
	// gives 0.27–0.34) rising to quadrantCVHigh indicates regions with
	// different noise floors (splicing, inpainting).
	quadrantCVNormal = 0.5
	quadrantCVHigh   = 1.0
)

// Spectral-score thresholds: peak-to-median ratios. Real photos measure
// 1.0–1.9 at every tested period, up-sampled or patterned synthetic images
// 4–160.
const (
	peakNone   = 2.0  // ratio giving score 0
	peakStrong = 20.0 // ratio giving score 1 (log-linear in between)
	peakReport = 3.0  // smallest ratio listed in ArtifactsFound
)

// clamp01 limits x to [0, 1].
func clamp01(x float64) float64 { return math.Max(0, math.Min(1, x)) }

// prnuScore maps residual features to [0, 1], higher meaning less
// camera-like. Three indicators — over-smoothness, periodic residual
// correlation and inconsistent noise level across quadrants — are combined
// by noisy-OR, 1 − Π(1 − wᵢsᵢ), so any one can raise the score: smoothness
// and periodicity with weight 0.9, quadrant inconsistency (weaker: content
// also varies) with 0.5.
func prnuScore(st residualStats) (float64, []string) {
	var notes []string
	smooth := clamp01((smoothStdCamera - st.Std) / (smoothStdCamera - smoothStdSynthetic))
	if smooth > 0.5 {
		notes = append(notes, fmt.Sprintf("Very low noise residual (std %.2f levels): no sensor noise floor", st.Std))
	}
	lag, c := 2, st.Corr2
	if math.Abs(st.Corr8) > math.Abs(c) {
		lag, c = 8, st.Corr8
	}
	periodic := clamp01((math.Abs(c) - corrNone) / (corrStrong - corrNone))
	if periodic > 0.3 {
		notes = append(notes, fmt.Sprintf("Noise residual correlated at lag %d (r=%.2f): periodic structure", lag, c))
	}
	quad := clamp01((st.QuadrantCV - quadrantCVNormal) / (quadrantCVHigh - quadrantCVNormal))
	if quad > 0 {
		notes = append(notes, fmt.Sprintf("Noise level inconsistent across image quadrants (CV %.2f)", st.QuadrantCV))
	}
	score := 1 - (1-0.9*smooth)*(1-0.9*periodic)*(1-0.5*quad)
	return score, notes
}

// spectralScore maps the strongest periodic peak to [0, 1] log-linearly
// between peakNone and peakStrong. For JPEG input, period-8 peaks (and
// their 4- and 2-pixel harmonics) may come from the 8×8 block grid, so the
// ratio must be twice as strong to count and the finding says so.
func spectralScore(peaks []spectralPeak, isJPEG bool) (float64, []string) {
	var score float64
	var notes []string
	for _, p := range peaks {
		ratio := p.Ratio
		if isJPEG {
			ratio /= 2
		}
		s := clamp01(math.Log(ratio/peakNone) / math.Log(peakStrong/peakNone))
		score = math.Max(score, s)
		if p.Ratio >= peakReport && (!isJPEG || s > 0) {
			where := "noise residual"
			if p.OfAbs {
				where = "residual magnitude (periodic interpolation)"
			}
			note := fmt.Sprintf("Periodic spectral peaks at 1/%d frequency (ratio %.1f) in %s", p.Period, p.Ratio, where)
			if isJPEG {
				note += "; stronger than the JPEG 8×8 block grid explains"
			}
			notes = append(notes, note)
		}
	}
	return score, notes
}

// JPEG quantisation scores.
const (
	// jpegCustomScore: camera firmware and phone ISPs use their own tables;
	// generators and their web pipelines almost never do.
	jpegCustomScore = 0.15
	// jpegStandardScore: IJG-scaled Annex K tables mean a software encoder
	// (libjpeg, PIL, browsers, Go) — what generator pipelines use, but also
	// any web re-save.
	jpegStandardScore = 0.55
	// jpegDefaultQualityBonus: quality 75 is the libjpeg/PIL default, the
	// usual "save as JPEG" of generator scripts.
	jpegDefaultQualityBonus = 0.15
)

// jpegScore scores the quantisation tables; hasCamera says the metadata
// names a camera (standard tables then mean the file was re-saved).
func jpegScore(jq jpegQuant, hasCamera bool) (float64, []string) {
	if !jq.Standard {
		return jpegCustomScore, []string{fmt.Sprintf("JPEG uses custom (non-libjpeg) quantisation tables, closest IJG quality %d", jq.Quality)}
	}
	s := jpegStandardScore
	note := fmt.Sprintf("JPEG uses standard libjpeg quantisation tables at quality %d", jq.Quality)
	if jq.Quality == 75 {
		s += jpegDefaultQualityBonus
		note += " (the libjpeg/PIL default)"
	}
	notes := []string{note}
	if hasCamera {
		notes = append(notes, "Camera metadata present but tables are a software encoder's: the file was re-encoded after capture")
	}
	return s, notes
}

// Metadata anomaly contributions, summed and capped at 1.
const (
	metaNoEXIF       = 0.30 // neither Exif nor XMP at all
	metaNoCamera     = 0.20 // no make and model
	metaNoExposure   = 0.15 // no exposure time, f-number or ISO
	metaNoCapture    = 0.10 // no original capture time
	metaLosslessNoCa = 0.10 // lossless PNG with no camera metadata
	// metaGenerator is the score when the metadata carries generator
	// evidence: the file says it was generated.
	metaGenerator = 1.0
)

// metadataScore scores what the metadata lacks or claims.
func metadataScore(md exif.Metadata, format string) (float64, []string) {
	var s float64
	var notes []string
	if !md.HasEXIF && !md.HasXMP {
		s += metaNoEXIF
		notes = append(notes, "No EXIF or XMP metadata")
	}
	if md.Make == "" && md.Model == "" {
		s += metaNoCamera
		notes = append(notes, "No camera metadata (EXIF make/model absent)")
	}
	if md.ExposureTime == "" && md.FNumber == "" && md.ISO == "" {
		s += metaNoExposure
		notes = append(notes, "No exposure data (exposure time, f-number, ISO)")
	}
	if md.CaptureTime == nil {
		s += metaNoCapture
		notes = append(notes, "No original capture time")
	}
	if format == "png" && md.Make == "" {
		s += metaLosslessNoCa
		notes = append(notes, "Lossless PNG without camera metadata")
	}
	for _, tag := range md.GeneratorTags {
		notes = append(notes, "Generator evidence: "+tag)
	}
	if len(md.GeneratorTags) > 0 {
		s = metaGenerator
	}
	return clamp01(s), notes
}
