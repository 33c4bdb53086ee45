package worker

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/media/c2pa"
	"github.com/wardenlab/warden/media/exif"
	"github.com/wardenlab/warden/media/forensics"
	"github.com/wardenlab/warden/media/sensor"
	"github.com/wardenlab/warden/media/verdict"
)

// TrustStores are the PEM bundles verification checks signatures against.
type TrustStores struct {
	C2PA   *x509.CertPool
	Sensor *x509.CertPool
}

// LoadTrustStores reads WARDEN_C2PA_TRUST_ANCHORS and
// WARDEN_SENSOR_TRUST_ANCHORS; an unset path leaves that store empty, so
// nothing verifies against it (reported as such, never assumed trusted).
func LoadTrustStores(c2paPath, sensorPath string) (TrustStores, error) {
	var ts TrustStores
	if c2paPath != "" {
		b, err := os.ReadFile(c2paPath)
		if err != nil {
			return ts, fmt.Errorf("WARDEN_C2PA_TRUST_ANCHORS: %w", err)
		}
		if ts.C2PA, err = c2pa.LoadTrustAnchors(b); err != nil {
			return ts, fmt.Errorf("WARDEN_C2PA_TRUST_ANCHORS: %w", err)
		}
	}
	if sensorPath != "" {
		b, err := os.ReadFile(sensorPath)
		if err != nil {
			return ts, fmt.Errorf("WARDEN_SENSOR_TRUST_ANCHORS: %w", err)
		}
		ts.Sensor = x509.NewCertPool()
		if !ts.Sensor.AppendCertsFromPEM(b) {
			return ts, fmt.Errorf("WARDEN_SENSOR_TRUST_ANCHORS: no certificates in %s", sensorPath)
		}
	}
	return ts, nil
}

// verifyMedia gathers the three kinds of evidence (C2PA provenance,
// sensor-PKI signature, signal-level forensics) and decides the label.
func (w *Worker) verifyMedia(ctx context.Context, r *Run, in jobs.VerifyInput) (jobs.VerifyResult, error) {
	r.Progress(ctx, 5, "reading_file")
	rc, err := w.Blobs.Open(ctx, in.BlobKey)
	if err != nil {
		if warden.ErrorCode(err) == warden.ENOTFOUND {
			return jobs.VerifyResult{}, Permanent("the uploaded file is no longer stored")
		}
		return jobs.VerifyResult{}, fmt.Errorf("open blob: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(rc, w.Config.MaxUploadBytes+1))
	rc.Close()
	if err != nil {
		return jobs.VerifyResult{}, fmt.Errorf("read blob: %w", err)
	}
	var rep jobs.VerifyResult
	sum := sha256.Sum256(data)
	rep.File.ContentType, rep.File.Size, rep.File.SHA256 = in.ContentType, int64(len(data)), hex.EncodeToString(sum[:])

	r.Progress(ctx, 15, "c2pa")
	rep.Details.C2PA = c2pa.Verify(data, c2pa.Options{TrustAnchors: w.Trust.C2PA, Context: ctx})
	if err := ctx.Err(); err != nil {
		return jobs.VerifyResult{}, err
	}
	r.Progress(ctx, 35, "sensor_pki")
	md, err := exif.ParseContext(ctx, data)
	if err != nil {
		return jobs.VerifyResult{}, err
	}
	rep.Details.SensorPKI = sensor.Verify(data, md, w.Trust.Sensor)

	r.Progress(ctx, 50, "ml_detection")
	ml, err := forensics.Analyze(ctx, data, md)
	if err != nil {
		if ctx.Err() != nil {
			return jobs.VerifyResult{}, ctx.Err()
		}
		rep.MLError = err.Error()
	} else {
		rep.Details.MLDetection = &ml
	}

	r.Progress(ctx, 90, "verdict")
	v := verdict.Decide(verdict.Evidence{
		C2PA:   c2paEvidence(rep.Details.C2PA),
		Sensor: rep.Details.SensorPKI,
		ML:     rep.Details.MLDetection,
	}, w.Config.AIThreshold)
	rep.Label, rep.Confidence, rep.Reasons = v.Label, v.Confidence, v.Reasons
	if rep.MLError != "" {
		rep.Reasons = append(rep.Reasons, "Pixel analysis failed: "+rep.MLError)
	}
	return rep, nil
}

// c2paEvidence is what the verdict needs of a C2PA result.
func c2paEvidence(c c2pa.Result) verdict.C2PAEvidence {
	return verdict.C2PAEvidence{Found: c.Found, Valid: c.Valid, Intact: c.Intact, Issuer: c.Issuer,
		ClaimGenerator: c.ClaimGenerator, Error: c.Error, DigitalSourceTypes: c.DigitalSourceTypes,
		Actions: c.Actions, SoftwareAgents: c.SoftwareAgents}
}
