package c2pa

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// testClock is a fixed time inside the validity of the c2pa-rs test
// certificates (2022-06-10 .. 2030-08-26) and after the fixtures' signing
// time (timestamp genTime 2024-08-06T21:53:37Z).
func testClock() time.Time { return time.Date(2024, 8, 7, 0, 0, 0, 0, time.UTC) }

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testAnchors(t testing.TB) *x509.CertPool {
	t.Helper()
	pool, err := LoadTrustAnchors(readFixture(t, "certs/test_cert_root_bundle.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

func testOptions(t testing.TB) Options {
	return Options{TrustAnchors: testAnchors(t), Now: testClock}
}

func TestVerifyFixtures(t *testing.T) {
	opts := testOptions(t)
	tests := []struct {
		file                         string
		found, valid, chain, sig, dh bool
		errContains                  string
		actions                      []string
		ingredients                  []string
	}{
		{file: "C.jpg", found: true, valid: true, chain: true, sig: true, dh: true,
			actions: []string{"c2pa.created"}},
		{file: "CA.jpg", found: true, valid: true, chain: true, sig: true, dh: true,
			actions: []string{"c2pa.opened", "c2pa.color_adjustments"}, ingredients: []string{"A.jpg"}},
		{file: "XCA.jpg", found: true, valid: false, chain: true, sig: true, dh: false,
			errContains: "data hash mismatch", ingredients: []string{"A.jpg"}},
		{file: "no_manifest.jpg", errContains: NotFoundError},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			r := Verify(readFixture(t, tc.file), opts)
			if r.Found != tc.found || r.Valid != tc.valid || r.TrustChainValid != tc.chain ||
				r.SignatureValid != tc.sig || r.DataHashValid != tc.dh {
				t.Fatalf("got found=%v valid=%v chain=%v sig=%v dh=%v (failures %q), want %v %v %v %v %v",
					r.Found, r.Valid, r.TrustChainValid, r.SignatureValid, r.DataHashValid, r.Failures,
					tc.found, tc.valid, tc.chain, tc.sig, tc.dh)
			}
			if tc.errContains != "" && !strings.Contains(r.Error, tc.errContains) {
				t.Errorf("error %q does not contain %q", r.Error, tc.errContains)
			}
			if tc.valid && (r.Error != "" || len(r.Failures) != 0) {
				t.Errorf("valid result has error %q / failures %q", r.Error, r.Failures)
			}
			if r.Format != FormatJPEG {
				t.Errorf("format %q", r.Format)
			}
			if !tc.found {
				return
			}
			if r.Issuer == "" || r.Signer == "" || r.ClaimGenerator == "" {
				t.Errorf("issuer %q signer %q generator %q: want non-empty", r.Issuer, r.Signer, r.ClaimGenerator)
			}
			if r.Algorithm != "PS256" {
				t.Errorf("algorithm %q, want PS256", r.Algorithm)
			}
			if r.SigningTime == nil || !r.SigningTime.Equal(time.Date(2024, 8, 6, 21, 53, 37, 0, time.UTC)) {
				t.Errorf("signing time %v", r.SigningTime)
			}
			if tc.actions != nil && strings.Join(r.Actions, ",") != strings.Join(tc.actions, ",") {
				t.Errorf("actions %q, want %q", r.Actions, tc.actions)
			}
			if strings.Join(r.Ingredients, ",") != strings.Join(tc.ingredients, ",") {
				t.Errorf("ingredients %q, want %q", r.Ingredients, tc.ingredients)
			}
		})
	}
}

func TestVerifyDetails(t *testing.T) {
	r := Verify(readFixture(t, "C.jpg"), testOptions(t))
	if r.Signer != "C2PA Signer" || r.Issuer != "C2PA Test Intermediate Root CA" {
		t.Errorf("signer %q issuer %q", r.Signer, r.Issuer)
	}
	if r.Title != "C.jpg" {
		t.Errorf("title %q", r.Title)
	}
	want := "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicMedia"
	if len(r.DigitalSourceTypes) != 1 || r.DigitalSourceTypes[0] != want {
		t.Errorf("digital source types %q", r.DigitalSourceTypes)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"found", "valid", "trust_chain_valid", "signature_valid", "data_hash_valid",
		"issuer", "signer", "claim_generator", "signature_algorithm", "signing_time", "actions",
		"digital_source_types", "title", "format"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
	if _, ok := m["error"]; ok {
		t.Errorf("valid result renders error: %s", b)
	}
}

func TestVerifyUntrusted(t *testing.T) {
	other, err := LoadTrustAnchors(readFixture(t, "certs/es256.pub")) // unrelated: signer + intermediate only
	if err != nil {
		t.Fatal(err)
	}
	for name, pool := range map[string]*x509.CertPool{"nil": nil, "empty": x509.NewCertPool(), "unrelated": other} {
		t.Run(name, func(t *testing.T) {
			r := Verify(readFixture(t, "C.jpg"), Options{TrustAnchors: pool, Now: testClock})
			if !r.Found || r.Valid || r.TrustChainValid || !r.SignatureValid || !r.DataHashValid {
				t.Fatalf("got %+v", r)
			}
			if r.Error == "" {
				t.Error("no error reason")
			}
		})
	}
}

func TestVerifyExpired(t *testing.T) {
	late := func() time.Time { return time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC) }
	r := Verify(readFixture(t, "C.jpg"), Options{TrustAnchors: testAnchors(t), Now: late})
	if r.Valid || r.TrustChainValid || !strings.Contains(r.Error, "expired") {
		t.Fatalf("got valid=%v chain=%v error %q", r.Valid, r.TrustChainValid, r.Error)
	}
}

// signatureOffset returns the file offset of the COSE signature value of
// the active manifest, which is the last element of the COSE_Sign1 array.
func signatureOffset(t *testing.T, data []byte) (int, int) {
	t.Helper()
	storeBytes, _, err := FindManifestStore(data)
	if err != nil {
		t.Fatal(err)
	}
	store, err := ParseJUMBF(storeBytes)
	if err != nil {
		t.Fatal(err)
	}
	m, err := activeManifest(store)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := ParseSignature(m.Child("c2pa.signature").FirstContent("cbor").Payload)
	if err != nil {
		t.Fatal(err)
	}
	off := bytes.Index(data, msg.Signature)
	if off < 0 || bytes.Index(data[off+1:], msg.Signature) >= 0 {
		t.Fatal("signature bytes not found exactly once")
	}
	return off, len(msg.Signature)
}

func TestVerifyFlippedSignature(t *testing.T) {
	for _, f := range []string{"C.jpg", "CA.jpg"} {
		t.Run(f, func(t *testing.T) {
			data := bytes.Clone(readFixture(t, f))
			off, n := signatureOffset(t, data)
			data[off+n/2] ^= 0x01
			r := Verify(data, testOptions(t))
			if !r.Found || r.Valid || r.SignatureValid || !r.TrustChainValid || !r.DataHashValid {
				t.Fatalf("got %+v", r)
			}
			if !strings.Contains(r.Error, "signature") {
				t.Errorf("error %q", r.Error)
			}
		})
	}
}

// storeFileOffset maps an offset inside the manifest store of a
// single-segment JPEG to the file offset.
func storeFileOffset(t *testing.T, data []byte, storeOff int) int {
	_, ranges, err := FindManifestStore(data)
	if err != nil || len(ranges) != 1 {
		t.Fatalf("want one APP11 segment: %v %v", ranges, err)
	}
	return ranges[0].Start + 4 + 8 + storeOff // marker+length, CI/En/Z
}

func TestVerifyTamperedAssertion(t *testing.T) {
	data := bytes.Clone(readFixture(t, "C.jpg"))
	storeBytes, _, _ := FindManifestStore(data)
	store, _ := ParseJUMBF(storeBytes)
	m, _ := activeManifest(store)
	actions := m.Child("c2pa.assertions").Child("c2pa.actions")
	if actions == nil {
		t.Fatal("no c2pa.actions assertion")
	}
	c := actions.FirstContent("cbor")
	i := bytes.Index(c.Payload, []byte("c2pa.created"))
	off := storeFileOffset(t, data, c.Offset+c.HeaderLen+i)
	if string(data[off:off+12]) != "c2pa.created" {
		t.Fatalf("offset mapping wrong: %q", data[off:off+12])
	}
	copy(data[off:], "c2pa.crEated")
	r := Verify(data, testOptions(t))
	if r.Valid || !r.SignatureValid || !r.DataHashValid || !strings.Contains(r.Error, "c2pa.actions") {
		t.Fatalf("got valid=%v error %q failures %q", r.Valid, r.Error, r.Failures)
	}
}

func TestVerifyPNGAndRawStore(t *testing.T) {
	data := readFixture(t, "C.jpg")
	storeBytes, _, err := FindManifestStore(data)
	if err != nil {
		t.Fatal(err)
	}
	png := append([]byte(nil), pngSignature...)
	png = appendPNGChunk(png, "IHDR", make([]byte, 13))
	png = appendPNGChunk(png, "caBX", storeBytes)
	png = appendPNGChunk(png, "IEND", nil)
	for name, tc := range map[string]struct {
		data   []byte
		format string
	}{"png": {png, FormatPNG}, "raw": {storeBytes, FormatC2PA}} {
		t.Run(name, func(t *testing.T) {
			r := Verify(tc.data, testOptions(t))
			// The store is authentic but bound to the JPEG, not this file.
			if !r.Found || r.Format != tc.format || !r.SignatureValid || !r.TrustChainValid || r.DataHashValid || r.Valid {
				t.Fatalf("got %+v", r)
			}
		})
	}
}

func appendPNGChunk(b []byte, typ string, data []byte) []byte {
	n := len(data)
	b = append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	b = append(b, typ...)
	b = append(b, data...)
	return append(b, 0, 0, 0, 0) // CRC is not checked
}

func TestVerifyGarbage(t *testing.T) {
	inputs := map[string][]byte{
		"nil":        nil,
		"empty":      {},
		"soi":        {0xFF, 0xD8},
		"soi-ff":     {0xFF, 0xD8, 0xFF},
		"text":       []byte("hello world, this is not an image"),
		"png-sig":    pngSignature,
		"jumb-hdr":   []byte("\x00\x00\x00\x10jumb\x00\x00\x00\x08jumd"),
		"app11-tiny": {0xFF, 0xD8, 0xFF, 0xEB, 0x00, 0x0A, 'J', 'P', 0, 1, 0, 0, 0, 1},
		"app11-huge": {0xFF, 0xD8, 0xFF, 0xEB, 0x00, 0x12, 'J', 'P', 0, 1, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xF0, 'j', 'u', 'm', 'b'},
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			r := verify(in, testOptions(t))
			if r.Valid {
				t.Fatalf("garbage verified: %+v", r)
			}
			if r.Error == "" {
				t.Error("no error")
			}
		})
	}
}

func TestVerifyTruncated(t *testing.T) {
	opts := testOptions(t)
	for _, f := range []string{"C.jpg", "CA.jpg", "XCA.jpg"} {
		data := readFixture(t, f)
		for _, n := range truncationPoints(len(data)) {
			r := verify(data[:n], opts) // unguarded: a panic fails the test
			if r.Valid {
				t.Fatalf("%s truncated to %d bytes verified", f, n)
			}
		}
	}
}

// truncationPoints covers the manifest region densely and the rest sparsely.
func truncationPoints(n int) []int {
	var pts []int
	for i := 0; i < n && i < 512; i++ {
		pts = append(pts, i)
	}
	for i := 512; i < n; i += 499 {
		pts = append(pts, i)
	}
	return append(pts, n-1)
}

func TestVerifyUnsupportedHardBinding(t *testing.T) {
	bmff := testBox("jumb", testDesc("c2pa.hash.bmff.v2"), testBox("cbor", []byte{0xa0}))
	sum, _ := hashBytes("sha256", bmff[8:])
	claim, err := cbor.Marshal(map[string]any{
		"claim_generator": "warden-test/1",
		"signature":       "self#jumbf=c2pa.signature",
		"alg":             "sha256",
		"assertions": []map[string]any{
			{"url": "self#jumbf=c2pa.assertions/c2pa.hash.bmff.v2", "hash": sum},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	store := testBox("jumb", testDesc("c2pa"),
		testBox("jumb", testDesc("urn:uuid:test"),
			testBox("jumb", testDesc("c2pa.assertions"), bmff),
			testBox("jumb", testDesc("c2pa.claim"), testBox("cbor", claim))))
	r := Verify(store, testOptions(t))
	if !r.Found || r.Valid || r.ClaimGenerator != "warden-test/1" {
		t.Fatalf("got %+v", r)
	}
	want := []string{"manifest has no claim signature", "hard binding c2pa.hash.bmff.v2 is not supported"}
	if strings.Join(r.Failures, "|") != strings.Join(want, "|") {
		t.Fatalf("failures %q, want %q", r.Failures, want)
	}
}
