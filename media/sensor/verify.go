package sensor

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/wardenlab/warden/media"
	"time"

	"github.com/wardenlab/warden/media/exif"
)

// Result is the sensor-PKI verdict, rendered as details.sensor_pki.
// Manufacturer, CameraModel, SensorID, CaptureTime and Software are what the
// file claims (from Exif/XMP) even when Valid is false; when Valid is true
// the manufacturer and sensor ID come from the verified device certificate
// where it names them.
type Result struct {
	Valid              bool       `json:"valid"`
	Error              string     `json:"error,omitempty"`
	Manufacturer       string     `json:"manufacturer,omitempty"`
	CameraModel        string     `json:"camera_model,omitempty"`
	SensorID           string     `json:"sensor_id,omitempty"`
	SignatureAlgorithm string     `json:"signature_algorithm,omitempty"`
	CaptureTime        *time.Time `json:"capture_time,omitempty"`
	Software           string     `json:"software,omitempty"`
}

// Reasons reported in Result.Error.
const (
	ErrMsgNoSignature = "No sensor-PKI signature found"
	ErrMsgNoTrust     = "no manufacturer trust store configured"
)

// Verify checks the file's embedded sensor signature (see the package doc
// for the format) against the manufacturer roots in trust. A nil trust pool
// means no store is configured, and no signature can be valid.
func Verify(data []byte, md exif.Metadata, trust *x509.CertPool) Result {
	return verifyAt(data, md, trust, time.Now())
}

func verifyAt(data []byte, md exif.Metadata, trust *x509.CertPool, now time.Time) Result {
	r := Result{
		Manufacturer: md.Make,
		CameraModel:  md.Model,
		SensorID:     md.Serial,
		CaptureTime:  md.CaptureTime,
		Software:     md.Software,
	}
	loc, err := locate(data)
	if errors.Is(err, errNoSignature) {
		r.Error = ErrMsgNoSignature
		return r
	} else if err != nil {
		r.Error = "invalid sensor signature: " + err.Error()
		return r
	}
	env, ders, err := parseEnvelope(loc.payload)
	r.SignatureAlgorithm = env.Alg
	if err != nil {
		r.Error = "malformed sensor signature: " + err.Error()
		return r
	}
	if trust == nil {
		r.Error = ErrMsgNoTrust
		return r
	}
	leaf, err := verifyChain(ders, trust, now)
	if err != nil {
		r.Error = "sensor certificate not trusted: " + err.Error()
		return r
	}
	if err := checkSignature(env, leaf, digest(data, loc.start, loc.end)); err != nil {
		r.Error = "sensor signature does not match image data: " + err.Error()
		return r
	}
	if sn := leaf.Subject.SerialNumber; sn != "" {
		if md.Serial != "" && md.Serial != sn {
			r.Error = fmt.Sprintf("EXIF serial %q does not match device certificate serial %q", md.Serial, sn)
			return r
		}
		r.SensorID = sn
	}
	if len(leaf.Subject.Organization) > 0 {
		r.Manufacturer = leaf.Subject.Organization[0]
	}
	r.Valid = true
	return r
}

// verifyChain parses the chain and verifies the leaf against trust.
func verifyChain(ders [][]byte, trust *x509.CertPool, now time.Time) (*x509.Certificate, error) {
	certs := make([]*x509.Certificate, 0, len(ders))
	for i, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", i, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("verify chain: no certificates")
	}
	if err := media.VerifyChain(certs, trust, now); err != nil {
		return nil, fmt.Errorf("verify chain: %w", err)
	}
	leaf := certs[0]
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return nil, errors.New("device certificate lacks digitalSignature key usage")
	}
	return leaf, nil
}

// checkSignature verifies env.Sig over digest with the leaf's key.
func checkSignature(env envelope, leaf *x509.Certificate, digest []byte) error {
	switch pub := leaf.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if env.Alg != AlgECDSASHA256 {
			return fmt.Errorf("algorithm %q does not fit an ECDSA key", env.Alg)
		}
		if !ecdsa.VerifyASN1(pub, digest, env.Sig) {
			return errors.New("ECDSA verification failed")
		}
	case ed25519.PublicKey:
		if env.Alg != AlgEd25519 {
			return fmt.Errorf("algorithm %q does not fit an Ed25519 key", env.Alg)
		}
		if !ed25519.Verify(pub, digest, env.Sig) {
			return errors.New("Ed25519 verification failed")
		}
	default:
		return fmt.Errorf("unsupported device key type %T", leaf.PublicKey)
	}
	return nil
}
