package c2pa

// Test helpers that build and sign C2PA manifests, test PKIs and RFC 3161
// time-stamp tokens, so the tests can make the files they need (expired
// signer with a time-stamp, untrusted AI declaration, broken ingredient).

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"math/big"
	"sort"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
)

// testCA is a certificate with its key.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var serial int64 = 100

func newTestCert(t *testing.T, tmpl *x509.Certificate, parent *testCA) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	ski := sha256.Sum256([]byte(fmt.Sprint("ski", serial)))
	tmpl.SubjectKeyId = ski[:20]
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: c, key: key}
}

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// testRoot makes a self-signed root CA.
func testRoot(t *testing.T, name string) *testCA {
	return newTestCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: name, Organization: []string{"Warden Test"}},
		NotBefore: day(2019, 1, 1), NotAfter: day(2045, 1, 1), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}, nil)
}

// testSigner makes a C2PA claim signer valid from notBefore to notAfter.
func testSigner(t *testing.T, root *testCA, name string, notBefore, notAfter time.Time) *testCA {
	return newTestCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: name, Organization: []string{"Warden Test"}},
		NotBefore: notBefore, NotAfter: notAfter, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}}, root)
}

// testTSA makes a time-stamping authority with a critical timeStamping EKU.
func testTSA(t *testing.T, root *testCA) *testCA {
	eku, _ := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}})
	return newTestCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Warden Test TSA", Organization: []string{"Warden Test"}},
		NotBefore: day(2019, 1, 1), NotAfter: day(2045, 1, 1), BasicConstraintsValid: true,
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: true, Value: eku}}}, root)
}

func pemCerts(cs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range cs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// tlv encodes one DER element.
func tlv(tag byte, parts ...[]byte) []byte {
	content := bytes.Join(parts, nil)
	n := len(content)
	var l []byte
	switch {
	case n < 0x80:
		l = []byte{byte(n)}
	case n < 0x100:
		l = []byte{0x81, byte(n)}
	case n < 0x10000:
		l = []byte{0x82, byte(n >> 8), byte(n)}
	default:
		l = []byte{0x83, byte(n >> 16), byte(n >> 8), byte(n)}
	}
	return append(append([]byte{tag}, l...), content...)
}

func mustDER(t *testing.T, v any, params ...string) []byte {
	t.Helper()
	var b []byte
	var err error
	if len(params) > 0 {
		b, err = asn1.MarshalWithParams(v, params[0])
	} else {
		b, err = asn1.Marshal(v)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// makeTimeStamp builds an RFC 3161 TimeStampResp (status granted) whose
// token, signed by tsa, time-stamps sha256(tbs) at genTime.
func makeTimeStamp(t *testing.T, tsa *testCA, chain []*x509.Certificate, tbs []byte, genTime time.Time) []byte {
	t.Helper()
	sha256Alg := mustDER(t, pkix.AlgorithmIdentifier{Algorithm: oidSHA256})
	imprint := sha256.Sum256(tbs)
	info := tlv(0x30,
		mustDER(t, 1),
		mustDER(t, asn1.ObjectIdentifier{1, 2, 3, 4, 1}),
		tlv(0x30, sha256Alg, mustDER(t, imprint[:])),
		mustDER(t, big.NewInt(genTime.Unix())),
		mustDER(t, genTime, "generalized"))
	infoDigest := sha256.Sum256(info)
	certHash := sha256.Sum256(tsa.cert.Raw)
	attrs := [][]byte{
		tlv(0x30, mustDER(t, oidAttrContent), tlv(0x31, mustDER(t, oidTSTInfo))),
		tlv(0x30, mustDER(t, oidAttrDigest), tlv(0x31, mustDER(t, infoDigest[:]))),
		// ESS signingCertificateV2 naming the TSA certificate.
		tlv(0x30, mustDER(t, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}),
			tlv(0x31, tlv(0x30, tlv(0x30, tlv(0x30, mustDER(t, certHash[:])))))),
	}
	sort.Slice(attrs, func(i, j int) bool { return bytes.Compare(attrs[i], attrs[j]) < 0 })
	signedSet := tlv(0x31, attrs...)
	d := sha256.Sum256(signedSet)
	sig, err := ecdsa.SignASN1(rand.Reader, tsa.key, d[:])
	if err != nil {
		t.Fatal(err)
	}
	signerInfo := tlv(0x30,
		mustDER(t, 1),
		tlv(0x30, tsa.cert.RawIssuer, mustDER(t, tsa.cert.SerialNumber)),
		sha256Alg,
		append([]byte{0xA0}, signedSet[1:]...),
		mustDER(t, pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}}),
		mustDER(t, sig))
	var certs [][]byte
	for _, c := range append([]*x509.Certificate{tsa.cert}, chain...) {
		certs = append(certs, c.Raw)
	}
	signedData := tlv(0x30,
		mustDER(t, 3),
		tlv(0x31, sha256Alg),
		tlv(0x30, mustDER(t, oidTSTInfo), tlv(0xA0, mustDER(t, info))),
		tlv(0xA0, certs...),
		tlv(0x31, signerInfo))
	token := tlv(0x30, mustDER(t, oidSignedData), tlv(0xA0, signedData))
	return tlv(0x30, tlv(0x30, mustDER(t, 0)), token)
}

// C2PA JUMBF description types: the four characters then the common
// C2PA UUID suffix.
func c2paDesc(fourCC, label string) []byte {
	p := append([]byte(fourCC), 0x00, 0x11, 0x00, 0x10, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71)
	p = append(p, toggleRequestable|toggleLabel)
	p = append(p, label...)
	return testBox("jumd", append(p, 0))
}

// testAssertion is an assertion label and its CBOR value.
type testAssertion struct {
	label string
	value any
}

// manifestSpec says how to build and sign one manifest.
type manifestSpec struct {
	label      string // "urn:uuid:..."
	generator  string
	assertions []testAssertion
	signer     *testCA
	chain      []*x509.Certificate // after the signer
	// timeStamp, when set, makes a sigTst for the signature; it gets the
	// bytes the imprint must cover.
	timeStamp func(tbs []byte) []byte
	// breakSignature flips a bit of the COSE signature value.
	breakSignature bool
}

func cborBytes(t *testing.T, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// buildManifest returns the manifest superbox of spec (a v1 claim).
func buildManifest(t *testing.T, spec manifestSpec) []byte {
	t.Helper()
	var boxes [][]byte
	var refs []map[string]any
	for _, a := range spec.assertions {
		box := testBox("jumb", c2paDesc("cbor", a.label), testBox("cbor", cborBytes(t, a.value)))
		sum := sha256.Sum256(box[8:])
		refs = append(refs, map[string]any{"url": "self#jumbf=c2pa.assertions/" + a.label, "alg": "sha256", "hash": sum[:]})
		boxes = append(boxes, box)
	}
	claim := cborBytes(t, map[string]any{
		"claim_generator":      spec.generator,
		"claim_generator_info": []map[string]any{{"name": spec.generator}},
		"signature":            "self#jumbf=c2pa.signature",
		"assertions":           refs,
		"dc:format":            "image/jpeg",
		"instanceID":           "xmp:iid:" + spec.label[len("urn:uuid:"):],
		"alg":                  "sha256",
	})
	sig := signManifestClaim(t, spec, claim)
	return testBox("jumb", c2paDesc("c2ma", spec.label),
		testBox("jumb", append([][]byte{c2paDesc("c2as", "c2pa.assertions")}, boxes...)...),
		testBox("jumb", c2paDesc("c2cl", "c2pa.claim"), testBox("cbor", claim)),
		testBox("jumb", c2paDesc("c2cs", "c2pa.signature"), testBox("cbor", sig)))
}

// signManifestClaim signs claim with ES256 and the x5chain in the
// protected header, adding a sigTst time-stamp when the spec asks.
func signManifestClaim(t *testing.T, spec manifestSpec, claim []byte) []byte {
	t.Helper()
	x5 := []any{spec.signer.cert.Raw}
	for _, c := range spec.chain {
		x5 = append(x5, c.Raw)
	}
	signer, err := cose.NewSigner(cose.AlgorithmES256, spec.signer.key)
	if err != nil {
		t.Fatal(err)
	}
	msg := cose.Sign1Message{Headers: cose.Headers{
		Protected:   cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmES256, cose.HeaderLabelX5Chain: x5},
		Unprotected: cose.UnprotectedHeader{}}, Payload: claim}
	if err := msg.Sign(rand.Reader, nil, signer); err != nil {
		t.Fatal(err)
	}
	msg.Payload = nil
	b, err := msg.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	var out cose.Sign1Message
	if err := out.UnmarshalCBOR(b); err != nil {
		t.Fatal(err)
	}
	if spec.timeStamp != nil {
		tbs, err := countersignData(out.Headers.RawProtected, claim)
		if err != nil {
			t.Fatal(err)
		}
		out.Headers.RawUnprotected = nil
		out.Headers.Unprotected["sigTst"] = map[string]any{"tstTokens": []any{map[string]any{"val": spec.timeStamp(tbs)}}}
	}
	if spec.breakSignature {
		out.Signature = bytes.Clone(out.Signature)
		out.Signature[len(out.Signature)/2] ^= 1
	}
	if b, err = out.MarshalCBOR(); err != nil {
		t.Fatal(err)
	}
	return b
}

// buildJPEG embeds a manifest store into base (a JPEG without one): the
// active manifest is built last by active, which gets the c2pa.hash.data
// assertion binding the final file. ingredients are earlier manifests of
// the store.
func buildJPEG(t *testing.T, base []byte, ingredients [][]byte, active func(hashData testAssertion) manifestSpec) []byte {
	t.Helper()
	h := sha256.New()
	h.Write(base[:2])
	h.Write(base[2:])
	sum := h.Sum(nil)
	length := 0
	// The store's size depends on the exclusion length it declares, and
	// on ASN.1 ECDSA signature lengths (time-stamps): rebuild until stable.
	for i := 0; i < 64; i++ {
		hd := testAssertion{"c2pa.hash.data", map[string]any{
			"exclusions": []map[string]any{{"start": 2, "length": length}},
			"name":       "jumbf manifest", "alg": "sha256", "hash": sum, "pad": []byte{}}}
		parts := append([][]byte{c2paDesc("c2pa", "c2pa")}, ingredients...)
		parts = append(parts, buildManifest(t, active(hd)))
		store := testBox("jumb", parts...)
		seg := segmentAPP11(t, store)
		if len(seg) == length {
			out := append(bytes.Clone(base[:2]), seg...)
			return append(out, base[2:]...)
		}
		length = len(seg)
	}
	t.Fatal("exclusion length did not settle")
	return nil
}

// segmentAPP11 wraps a manifest store in one APP11 segment.
func segmentAPP11(t *testing.T, store []byte) []byte {
	t.Helper()
	n := 2 + 8 + len(store)
	if n > 0xFFFF {
		t.Fatalf("store of %d bytes needs more than one APP11 segment", len(store))
	}
	seg := []byte{0xFF, markerAPP11, byte(n >> 8), byte(n), 'J', 'P', 0, 1}
	seg = binary.BigEndian.AppendUint32(seg, 1)
	return append(seg, store...)
}

// actionsAssertion returns a v1 c2pa.actions assertion with one
// c2pa.created action.
func createdAction(sourceType, agent string) testAssertion {
	act := map[string]any{"action": "c2pa.created"}
	if sourceType != "" {
		act["digitalSourceType"] = "http://cv.iptc.org/newscodes/digitalsourcetype/" + sourceType
	}
	if agent != "" {
		act["softwareAgent"] = agent
	}
	return testAssertion{"c2pa.actions", map[string]any{"actions": []any{act}}}
}

// ingredientAssertion returns a c2pa.ingredient assertion pointing at the
// manifest box m (its label and hash).
func ingredientOf(t *testing.T, title string, m []byte) testAssertion {
	box, err := ParseJUMBF(m)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(m[box.HeaderLen:])
	return testAssertion{"c2pa.ingredient", map[string]any{
		"dc:title": title, "dc:format": "image/jpeg", "instanceID": "xmp:iid:" + title,
		"relationship":  "parentOf",
		"c2pa_manifest": map[string]any{"url": "self#jumbf=/c2pa/" + box.Label(), "alg": "sha256", "hash": sum[:]},
	}}
}

// uuidLabel returns a distinct manifest label.
func uuidLabel(n int) string {
	return fmt.Sprintf("urn:uuid:00000000-0000-4000-8000-%012d", n)
}
