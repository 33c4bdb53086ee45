package c2pa

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"testing"

	"github.com/veraison/go-cose"
)

// loadSigner reads a c2pa-rs test key and its certificate chain.
func loadSigner(t *testing.T, name string) (crypto.Signer, [][]byte) {
	t.Helper()
	block, _ := pem.Decode(readFixture(t, "certs/"+name+".pem"))
	if block == nil {
		t.Fatal("no PEM key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var chain [][]byte
	rest := readFixture(t, "certs/"+name+".pub")
	for {
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		chain = append(chain, block.Bytes)
	}
	return k.(crypto.Signer), chain
}

// signClaim returns a COSE_Sign1_Tagged signature over claim with a
// detached payload, as a C2PA signer produces it.
func signClaim(t *testing.T, alg cose.Algorithm, key crypto.Signer, chain [][]byte, claim []byte, chainProtected bool) []byte {
	t.Helper()
	signer, err := cose.NewSigner(alg, key)
	if err != nil {
		t.Fatal(err)
	}
	x5 := make([]any, len(chain))
	for i, c := range chain {
		x5[i] = c
	}
	hdr := cose.Headers{Protected: cose.ProtectedHeader{cose.HeaderLabelAlgorithm: alg}, Unprotected: cose.UnprotectedHeader{}}
	if chainProtected {
		hdr.Protected[cose.HeaderLabelX5Chain] = x5
	} else {
		hdr.Unprotected[cose.HeaderLabelX5Chain] = x5
	}
	msg := cose.Sign1Message{Headers: hdr, Payload: claim}
	if err := msg.Sign(rand.Reader, nil, signer); err != nil {
		t.Fatal(err)
	}
	msg.Payload = nil
	b, err := msg.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testBox serialises a box.
func testBox(typ string, payload ...[]byte) []byte {
	n := 8
	for _, p := range payload {
		n += len(p)
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	b = append(b, typ...)
	for _, p := range payload {
		b = append(b, p...)
	}
	return b
}

// descRaw returns the serialised description box of superbox b.
func descRaw(b *Box) []byte {
	n := len(b.Payload)
	for _, c := range b.Children {
		n -= len(c.Raw)
	}
	return b.Payload[:n]
}

// resignStore replaces the active manifest's signature in store bytes.
func resignStore(t *testing.T, storeBytes, sig []byte) []byte {
	t.Helper()
	store, err := ParseJUMBF(storeBytes)
	if err != nil {
		t.Fatal(err)
	}
	m, err := activeManifest(store)
	if err != nil {
		t.Fatal(err)
	}
	var mparts [][]byte
	mparts = append(mparts, descRaw(m))
	for _, c := range m.Children {
		if c.Label() == "c2pa.signature" {
			sb := testBox("jumb", descRaw(c), testBox("cbor", sig))
			mparts = append(mparts, sb)
			continue
		}
		mparts = append(mparts, c.Raw)
	}
	sparts := [][]byte{descRaw(store)}
	for _, c := range store.Children {
		if c == m {
			sparts = append(sparts, testBox("jumb", mparts...))
			continue
		}
		sparts = append(sparts, c.Raw)
	}
	return testBox("jumb", sparts...)
}

func TestSignatureAlgorithms(t *testing.T) {
	storeBytes, _, err := FindManifestStore(readFixture(t, "C.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	store, _ := ParseJUMBF(storeBytes)
	m, _ := activeManifest(store)
	_, claimBytes, err := manifestClaim(m)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key       string
		alg       cose.Algorithm
		protected bool
	}{
		{"es256", cose.AlgorithmES256, true},
		{"es256", cose.AlgorithmES256, false},
		{"ed25519", cose.AlgorithmEdDSA, true},
	}
	for _, tc := range tests {
		t.Run(tc.alg.String(), func(t *testing.T) {
			key, chain := loadSigner(t, tc.key)
			sig := signClaim(t, tc.alg, key, chain, claimBytes, tc.protected)
			r := Verify(resignStore(t, storeBytes, sig), testOptions(t))
			if !r.Found || !r.SignatureValid || !r.TrustChainValid || r.Algorithm != tc.alg.String() {
				t.Fatalf("got %+v", r)
			}
			// Signing a different payload must not verify.
			bad := signClaim(t, tc.alg, key, chain, append([]byte{0xa0}, claimBytes...), tc.protected)
			r = Verify(resignStore(t, storeBytes, bad), testOptions(t))
			if r.SignatureValid || r.Valid {
				t.Fatalf("signature over other payload accepted: %+v", r)
			}
		})
	}
}

func TestSignerProfile(t *testing.T) {
	_, chain := loadSigner(t, "es256")
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := checkSignerProfile(leaf); err != nil {
		t.Fatalf("test signer rejected: %v", err)
	}
	ca, err := x509.ParseCertificate(chain[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := checkSignerProfile(ca); err == nil {
		t.Fatal("CA certificate accepted as signer")
	}
	anyEKU := *leaf
	anyEKU.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
	if err := checkSignerProfile(&anyEKU); err == nil {
		t.Fatal("anyExtendedKeyUsage accepted")
	}
	docSign := *leaf
	docSign.ExtKeyUsage = nil
	docSign.UnknownExtKeyUsage = []asn1.ObjectIdentifier{oidEKUDocumentSigning}
	if err := checkSignerProfile(&docSign); err != nil {
		t.Fatalf("documentSigning signer rejected: %v", err)
	}
	noEKU := docSign
	noEKU.UnknownExtKeyUsage = nil
	if err := checkSignerProfile(&noEKU); err == nil {
		t.Fatal("signer without EKU accepted")
	}
	server := *leaf
	server.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	if err := checkSignerProfile(&server); err == nil {
		t.Fatal("serverAuth-only signer accepted")
	}
}

func TestLoadTrustAnchors(t *testing.T) {
	if _, err := LoadTrustAnchors([]byte("nothing here")); err == nil {
		t.Fatal("empty input accepted")
	}
	bad := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}})
	if _, err := LoadTrustAnchors(bad); err == nil {
		t.Fatal("broken certificate accepted")
	}
}
