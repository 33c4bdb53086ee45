package forensics

import (
	"context"
	"fmt"
	"math"

	"github.com/wardenlab/warden/media/exif"
)

// Result is the ML/forensic detection result, rendered as
// details.ml_detection.
type Result struct {
	AIProbability        float64  `json:"ai_probability"`
	CNNScore             *float64 `json:"cnn_score"`
	CNNUnavailableReason string   `json:"cnn_unavailable_reason,omitempty"`
	PRNUScore            float64  `json:"prnu_score"`
	SpectralScore        float64  `json:"spectral_score"`
	JPEGScore            *float64 `json:"jpeg_quantization_score"`
	MetadataAnomalyScore float64  `json:"metadata_anomaly_score"`
	EnsembleConfidence   float64  `json:"ensemble_confidence"`
	DetectedGenerator    *string  `json:"detected_generator"`
	ArtifactsFound       []string `json:"artifacts_found"`
	Width                int      `json:"width"`
	Height               int      `json:"height"`
}

// CNNUnavailable is the reason reported while no CNN detector is loaded.
const CNNUnavailable = "TorchScript detector not loaded: libtorch worker not built"

// Ensemble weights. They sum to 1; a detector that does not apply (the JPEG
// detector on a PNG) is left out and the rest renormalised.
const (
	// WeightPRNU: the noise residual is the most direct physical evidence
	// of a sensor, and its absence or periodicity the most common
	// generator trace in the pixels.
	WeightPRNU = 0.30
	// WeightSpectral: periodic up-sampling peaks are specific (natural
	// photos measure no peaks) but absent from generators with clean
	// decoders, so they weigh as much as the residual but no more.
	WeightSpectral = 0.30
	// WeightJPEG: quantisation tables say which encoder last wrote the
	// file, not who made the pixels; web re-saves share generators' tables.
	WeightJPEG = 0.10
	// WeightMetadata: metadata is trivially stripped or forged, and
	// missing metadata is common on shared real photos, but generator tags
	// are explicit evidence.
	WeightMetadata = 0.30
)

// Logistic combination of the weighted mean score m:
// ai_probability = 1 / (1 + exp(−(LogisticGain·(m − LogisticCenter) + shift))).
const (
	// LogisticCenter is the mean score that maps to probability 0.5.
	LogisticCenter = 0.5
	// LogisticGain turns a mean of 0.25 into 0.12 and 0.75 into 0.88.
	LogisticGain = 8.0
	// GeneratorEvidenceShift is added to the logit when the metadata
	// carries generator evidence (a named generator, an AI digital source
	// type or generation parameters): explicit provenance outweighs clean
	// pixels.
	GeneratorEvidenceShift = 2.0
)

// Analyze decodes data and runs every detector. md is the file's parsed
// metadata (exif.Parse). It returns an error for undecodable images, for
// images over MaxPixels (wrapping ErrTooLarge) and when ctx ends.
func Analyze(ctx context.Context, data []byte, md exif.Metadata) (Result, error) {
	res := Result{CNNUnavailableReason: CNNUnavailable, ArtifactsFound: []string{}}
	lum, w, h, format, err := decodeLuma(ctx, data)
	if err != nil {
		return res, fmt.Errorf("forensics: %w", err)
	}
	res.Width, res.Height = w, h
	r, err := residual(ctx, lum)
	if err != nil {
		return res, fmt.Errorf("forensics: %w", err)
	}
	var notes []string
	add := func(n []string) { notes = append(notes, n...) }

	st := measureResidual(r)
	var n []string
	res.PRNUScore, n = prnuScore(st)
	add(n)

	peaks, err := spectralPeaks(ctx, r)
	if err != nil {
		return res, fmt.Errorf("forensics: %w", err)
	}
	isJPEG := format == "jpeg"
	res.SpectralScore, n = spectralScore(peaks, isJPEG)
	add(n)
	if peaks == nil {
		add([]string{fmt.Sprintf("Image smaller than %d px: spectral analysis skipped", minFFTSize)})
	}

	scores := []float64{res.PRNUScore, res.SpectralScore}
	weights := []float64{WeightPRNU, WeightSpectral}
	if isJPEG {
		if tables, err := parseDQT(data); err == nil {
			s, n := jpegScore(analyzeQuant(tables), md.Make != "" || md.Model != "")
			res.JPEGScore = &s
			add(n)
			scores, weights = append(scores, s), append(weights, WeightJPEG)
		} else {
			add([]string{"JPEG quantisation tables unreadable: " + err.Error()})
		}
	}
	res.MetadataAnomalyScore, n = metadataScore(md, format)
	add(n)
	scores, weights = append(scores, res.MetadataAnomalyScore), append(weights, WeightMetadata)

	shift := 0.0
	if len(md.GeneratorTags) > 0 {
		shift = GeneratorEvidenceShift
	}
	res.AIProbability, res.EnsembleConfidence = combine(scores, weights, shift)
	if md.Generator != "" {
		g := md.Generator
		res.DetectedGenerator = &g
	}
	res.ArtifactsFound = append(res.ArtifactsFound, notes...)
	return res, nil
}

// combine returns the logistic ai_probability of the weighted mean score
// and the ensemble confidence: 1 − (weighted standard deviation of the
// scores)/0.5, where 0.5 is the largest standard deviation scores in
// [0, 1] can have — 1 when every detector agrees, 0 when they split
// evenly between 0 and 1.
func combine(scores, weights []float64, shift float64) (prob, confidence float64) {
	var sw, m float64
	for i, s := range scores {
		m += weights[i] * s
		sw += weights[i]
	}
	m /= sw
	var v float64
	for i, s := range scores {
		v += weights[i] * (s - m) * (s - m)
	}
	sd := math.Sqrt(v / sw)
	prob = 1 / (1 + math.Exp(-(LogisticGain*(m-LogisticCenter) + shift)))
	return prob, clamp01(1 - sd/0.5)
}
