package jobs

import (
	"github.com/wardenlab/warden/media/c2pa"
	"github.com/wardenlab/warden/media/forensics"
	"github.com/wardenlab/warden/media/sensor"
)

// VerifyInput is a verification job's input: the stored file and where it
// came from (spec 003).
type VerifyInput struct {
	Source      string `json:"source"` // "upload" or "url"
	Filename    string `json:"filename,omitempty"`
	URL         string `json:"url,omitempty"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	BlobKey     string `json:"blob_key"`
}

// VerifyResult is a verification job's result: the verdict and the three
// kinds of evidence behind it.
type VerifyResult struct {
	Label      string        `json:"label"`
	Confidence float64       `json:"confidence"`
	Reasons    []string      `json:"reasons"`
	Details    VerifyDetails `json:"details"`
	File       VerifiedFile  `json:"file"`
	MLError    string        `json:"ml_error,omitempty"`
}

// VerifyDetails is the evidence of a verification.
type VerifyDetails struct {
	C2PA        c2pa.Result       `json:"c2pa"`
	SensorPKI   sensor.Result     `json:"sensor_pki"`
	MLDetection *forensics.Result `json:"ml_detection"`
}

// VerifiedFile describes the file that was verified.
type VerifiedFile struct {
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
}

// Summary is the verification label.
func (r VerifyResult) Summary() string { return r.Label }
