package c2pa

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"github.com/wardenlab/warden/media"
	"time"

	"github.com/veraison/go-cose"
)

// Claim signature (C2PA "c2pa.signature" box): a tagged COSE_Sign1
// (tag 18) with a detached payload, which is the claim's CBOR bytes exactly
// as stored in the claim box. The signer's certificate chain is in the
// x5chain header (label 33), leaf first.

// supportedAlgs are the COSE algorithms C2PA allows and this package
// verifies.
var supportedAlgs = map[cose.Algorithm]bool{
	cose.AlgorithmES256: true, cose.AlgorithmES384: true, cose.AlgorithmES512: true,
	cose.AlgorithmPS256: true, cose.AlgorithmPS384: true, cose.AlgorithmPS512: true,
	cose.AlgorithmEdDSA: true,
}

// maxChainCerts bounds the certificates accepted from x5chain.
const maxChainCerts = 16

// ParseSignature decodes a COSE_Sign1_Tagged claim signature.
func ParseSignature(b []byte) (*cose.Sign1Message, error) {
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(b); err != nil {
		return nil, fmt.Errorf("decode COSE_Sign1: %w", err)
	}
	return &msg, nil
}

// signatureAlgorithm returns the protected "alg" header if C2PA allows it.
func signatureAlgorithm(msg *cose.Sign1Message) (cose.Algorithm, error) {
	alg, err := msg.Headers.Protected.Algorithm()
	if err != nil {
		return 0, fmt.Errorf("signature algorithm: %w", err)
	}
	if !supportedAlgs[alg] {
		return 0, fmt.Errorf("signature algorithm %v not supported", alg)
	}
	return alg, nil
}

// CertChain returns the x5chain certificates of a claim signature, leaf
// first. The header is looked up in the protected bucket first, then the
// unprotected one (C2PA v1 allowed either); its value is a single bstr or an
// array of bstr.
func CertChain(msg *cose.Sign1Message) ([]*x509.Certificate, error) {
	v, ok := lookupHeader(msg.Headers.Protected, cose.HeaderLabelX5Chain, "x5chain")
	if !ok {
		v, ok = lookupHeader(msg.Headers.Unprotected, cose.HeaderLabelX5Chain, "x5chain")
	}
	if !ok {
		return nil, errors.New("signature has no x5chain header")
	}
	var ders [][]byte
	switch t := v.(type) {
	case []byte:
		ders = [][]byte{t}
	case []any:
		if len(t) > maxChainCerts {
			return nil, fmt.Errorf("x5chain has %d certificates, more than %d", len(t), maxChainCerts)
		}
		for _, e := range t {
			b, ok := e.([]byte)
			if !ok {
				return nil, errors.New("x5chain entry is not a byte string")
			}
			ders = append(ders, b)
		}
	default:
		return nil, fmt.Errorf("x5chain has unexpected type %T", v)
	}
	if len(ders) == 0 {
		return nil, errors.New("x5chain is empty")
	}
	chain := make([]*x509.Certificate, 0, len(ders))
	for i, der := range ders {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("x5chain certificate %d: %w", i, err)
		}
		fixRSAPSSKey(c)
		chain = append(chain, c)
	}
	return chain, nil
}

var oidRSASSAPSS = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}

// fixRSAPSSKey makes a certificate with an id-RSASSA-PSS subject public key
// usable by crypto/x509 and go-cose. Go's x509 parser leaves such keys
// unparsed (PublicKey nil), although C2PA signers and the C2PA test CAs use
// them. The key material is an ordinary PKCS #1 RSAPublicKey, so it is
// decoded here and the certificate is marked as RSA; signatures made with
// the key are still checked as RSASSA-PSS because the signature algorithm
// (of the certificate, or of COSE PS256/384/512) says so. The optional PSS
// parameters restricting the hash are not enforced.
func fixRSAPSSKey(c *x509.Certificate) {
	if c.PublicKey != nil {
		return
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	rest, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki)
	if err != nil || len(rest) > 0 || !spki.Algorithm.Algorithm.Equal(oidRSASSAPSS) {
		return
	}
	k, err := x509.ParsePKCS1PublicKey(spki.PublicKey.RightAlign())
	if err != nil {
		return
	}
	c.PublicKey = k
	c.PublicKeyAlgorithm = x509.RSA
}

// lookupHeader finds a header by integer label or by its text name.
func lookupHeader[M ~map[any]any](h M, label int64, name string) (any, bool) {
	if v, ok := h[label]; ok {
		return v, true
	}
	v, ok := h[name]
	return v, ok
}

// verifySignature checks the COSE signature over the detached claim bytes
// with the leaf certificate's public key.
func verifySignature(msg *cose.Sign1Message, alg cose.Algorithm, leaf *x509.Certificate, claimBytes []byte) error {
	if msg.Payload != nil && !bytes.Equal(msg.Payload, claimBytes) {
		return errors.New("signature payload is not detached and differs from the claim")
	}
	verifier, err := cose.NewVerifier(alg, leaf.PublicKey)
	if err != nil {
		return fmt.Errorf("signer key does not fit %v: %w", alg, err)
	}
	m := *msg
	m.Payload = claimBytes
	if err := m.Verify(nil, verifier); err != nil {
		return fmt.Errorf("claim signature invalid: %w", err)
	}
	return nil
}

// Extended key usages accepted for claim signers: id-kp-emailProtection
// (named by Go) and, compared as OIDs because Go does not name them,
// id-kp-documentSigning, the C2PA claim-signing OID and Microsoft's C2PA
// signing OID. This is deliberately narrower than some trust-list
// configurations (which may also admit timeStamping/OCSPSigning).
var (
	oidEKUDocumentSigning = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 36}
	oidEKUC2PAClaimSign   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 62558, 2, 1}
	oidEKUMSC2PA          = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 76, 59, 1, 9}
)

// VerifyChain verifies the signer chain against the trust anchors at the
// given time and applies the C2PA signer certificate profile to the leaf.
//
// Go's x509 Verify checks extended key usages against the requested ones
// down the whole chain and defaults to serverAuth, which C2PA signers never
// carry. C2PA signers use emailProtection, documentSigning or the C2PA
// claim-signing OID, some of which Go does not name, so the path is built
// with ExtKeyUsageAny and the EKU policy is enforced on the leaf here
// instead: the leaf must not be a CA, must allow digitalSignature when it
// has a key usage extension, and must list at least one C2PA signing EKU
// and not anyExtendedKeyUsage.
func VerifyChain(chain []*x509.Certificate, roots *x509.CertPool, at time.Time) error {
	if len(chain) == 0 {
		return errors.New("no signer certificate")
	}
	if roots == nil {
		return errNoAnchors
	}
	if err := media.VerifyChain(chain, roots, at); err != nil {
		return err
	}
	return checkSignerProfile(chain[0])
}

// checkSignerProfile applies the C2PA claim signer certificate profile.
func checkSignerProfile(leaf *x509.Certificate) error {
	if leaf.BasicConstraintsValid && leaf.IsCA {
		return errors.New("signer certificate is a CA certificate")
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return errors.New("signer certificate key usage lacks digitalSignature")
	}
	ok := false
	for _, u := range leaf.ExtKeyUsage {
		switch u {
		case x509.ExtKeyUsageAny:
			return errors.New("signer certificate has anyExtendedKeyUsage")
		case x509.ExtKeyUsageEmailProtection:
			ok = true
		}
	}
	for _, oid := range leaf.UnknownExtKeyUsage {
		if oid.Equal(oidEKUDocumentSigning) || oid.Equal(oidEKUC2PAClaimSign) || oid.Equal(oidEKUMSC2PA) {
			ok = true
		}
	}
	if !ok {
		return errors.New("signer certificate has no C2PA-compatible extended key usage")
	}
	return nil
}

// certName returns the first non-empty of the given name parts.
func certName(parts ...[]string) string {
	for _, p := range parts {
		if len(p) > 0 && p[0] != "" {
			return p[0]
		}
	}
	return ""
}

// Minimal RFC 3161 / RFC 5652 wrappers of a time-stamp token; the rest is
// in timestamp.go.
type tsContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,tag:0"`
}

var oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}

// tsResp is an RFC 3161 TimeStampResp, which some signers store instead of
// the bare token.
type tsResp struct {
	Status asn1.RawValue
	Token  tsContentInfo
}
