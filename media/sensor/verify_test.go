package sensor

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"image"
	"image/color"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/wardenlab/warden/media/exif"
	"github.com/wardenlab/warden/media/internal/testimg"
)

// pki is a test manufacturer: root CA and one device certificate.
type pki struct {
	root, device *x509.Certificate
	deviceKey    crypto.Signer
	pool         *x509.CertPool
}

func newPKI(t *testing.T, org, serial string, ed bool) pki {
	t.Helper()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{Organization: []string{org}, CommonName: org + " Root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	var devKey crypto.Signer
	if ed {
		_, devKey, _ = ed25519.GenerateKey(rand.Reader)
	} else {
		devKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	devTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{Organization: []string{org}, CommonName: "sensor", SerialNumber: serial},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
	}
	devDER, err := x509.CreateCertificate(rand.Reader, devTmpl, root, devKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	dev, _ := x509.ParseCertificate(devDER)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return pki{root: root, device: dev, deviceKey: devKey, pool: pool}
}

func photo() image.Image {
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for y := 0; y < 48; y++ {
		for x := 0; x < 64; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 5), uint8(x ^ y), 255})
		}
	}
	return img
}

func cameraJPEG(serial string) []byte {
	return testimg.JPEG(photo(), 92, testimg.ExifSegment(testimg.TIFF(
		map[uint16]testimg.Value{testimg.TagMake: "Acme", testimg.TagModel: "Acme X1"},
		map[uint16]testimg.Value{testimg.TagBodySerialNumber: serial, testimg.TagDateTimeOriginal: "2024:01:02 03:04:05"},
	)))
}

func TestVerify(t *testing.T) {
	acme := newPKI(t, "Acme Cameras", "SN-1", false)
	acmeEd := newPKI(t, "Acme Cameras", "SN-1", true)
	other := newPKI(t, "Other Corp", "SN-1", false)
	mustSign := func(data []byte, p pki) []byte {
		out, err := Sign(data, p.deviceKey, []*x509.Certificate{p.device})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	signed := mustSign(cameraJPEG("SN-1"), acme)
	tampered := append([]byte{}, signed...)
	tampered[len(tampered)-100] ^= 0x01 // a bit of entropy-coded pixel data
	signedPNG := mustSign(testimg.PNG(photo()), acmeEd)
	tamperedPNG := append([]byte{}, signedPNG...)
	tamperedPNG[len(tamperedPNG)-20] ^= 0x01
	wrongSerial := mustSign(cameraJPEG("SN-9"), acme)
	loc, err := locate(signed)
	if err != nil {
		t.Fatal(err)
	}
	// The signature container duplicated: a second, unsigned claim.
	dup := append(append(append([]byte{}, signed[:loc.end]...), signed[loc.start:loc.end]...), signed[loc.end:]...)

	tests := []struct {
		name      string
		data      []byte
		trust     *x509.CertPool
		valid     bool
		errSubstr string
		alg       string
	}{
		{"valid ecdsa jpeg", signed, acme.pool, true, "", AlgECDSASHA256},
		{"valid ed25519 png", signedPNG, acmeEd.pool, true, "", AlgEd25519},
		{"tampered pixels", tampered, acme.pool, false, "does not match image data", AlgECDSASHA256},
		{"tampered png", tamperedPNG, acmeEd.pool, false, "does not match image data", AlgEd25519},
		{"unknown root", signed, other.pool, false, "not trusted", AlgECDSASHA256},
		{"no trust store", signed, nil, false, ErrMsgNoTrust, AlgECDSASHA256},
		{"no signature", cameraJPEG("SN-1"), acme.pool, false, ErrMsgNoSignature, ""},
		{"no signature png", testimg.PNG(photo()), nil, false, ErrMsgNoSignature, ""},
		{"serial mismatch", wrongSerial, acme.pool, false, "does not match device certificate serial", AlgECDSASHA256},
		{"two signatures", dup, acme.pool, false, "exactly one allowed", ""},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md := exif.Parse(tc.data)
			r := Verify(tc.data, md, tc.trust)
			if r.Valid != tc.valid {
				t.Fatalf("Valid = %v (error %q), want %v", r.Valid, r.Error, tc.valid)
			}
			if !strings.Contains(r.Error, tc.errSubstr) || (tc.valid && r.Error != "") {
				t.Errorf("Error = %q, want it to contain %q", r.Error, tc.errSubstr)
			}
			if r.SignatureAlgorithm != tc.alg {
				t.Errorf("SignatureAlgorithm = %q, want %q", r.SignatureAlgorithm, tc.alg)
			}
			if md.Make != "" && r.CameraModel != "Acme X1" {
				t.Errorf("CameraModel = %q, want the EXIF claim", r.CameraModel)
			}
			if tc.valid && md.Make != "" && (r.Manufacturer != "Acme Cameras" || r.SensorID != "SN-1" || r.CaptureTime == nil) {
				t.Errorf("valid result fields %+v", r)
			}
			if !tc.valid && md.Make != "" && r.Manufacturer != "Acme" {
				t.Errorf("invalid result Manufacturer = %q, want EXIF claim", r.Manufacturer)
			}
		})
	}
}

func TestVerifyExpiredAndJSON(t *testing.T) {
	acme := newPKI(t, "Acme Cameras", "SN-1", false)
	signed, err := Sign(cameraJPEG("SN-1"), acme.deviceKey, []*x509.Certificate{acme.device})
	if err != nil {
		t.Fatal(err)
	}
	r := verifyAt(signed, exif.Parse(signed), acme.pool, time.Now().Add(48*time.Hour))
	if r.Valid || !strings.Contains(r.Error, "expired") {
		t.Errorf("expired cert: %+v", r)
	}
	b, _ := json.Marshal(Verify(cameraJPEG("SN-1"), exif.Metadata{Make: "Acme"}, nil))
	if got, want := string(b), `{"valid":false,"error":"No sensor-PKI signature found","manufacturer":"Acme"}`; got != want {
		t.Errorf("JSON = %s, want %s", got, want)
	}
	if _, err := Sign(signed, acme.deviceKey, []*x509.Certificate{acme.device}); err == nil {
		t.Error("re-signing a signed file succeeded")
	}
}
