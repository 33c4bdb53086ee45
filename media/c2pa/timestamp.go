package c2pa

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
	"github.com/wardenlab/warden/media"
)

// TimeStamp reports the RFC 3161 time-stamp of a claim signature (the
// sigTst / sigTst2 COSE header). Only a Verified time-stamp moves the time
// at which the signer's certificate validity is judged; any fault is
// informational, as in c2pa-rs.
type TimeStamp struct {
	Time      *time.Time `json:"time,omitempty"`      // TSTInfo.genTime
	Authority string     `json:"authority,omitempty"` // the TSA certificate's subject
	Verified  bool       `json:"verified"`            // token signature, imprint and TSA chain all verified
	Error     string     `json:"error,omitempty"`     // why it is not verified
}

// Object identifiers of RFC 3161 / RFC 5652.
var (
	oidTSTInfo       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
	oidAttrContent   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidAttrDigest    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSHA256        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidEKUTimeStamps = x509.ExtKeyUsageTimeStamping
)

// maxTimeStampCerts bounds the certificates accepted from a token.
const maxTimeStampCerts = 16

// RFC 5652 SignedData with the fields verification needs.
type cmsSignedData struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	EncapContentInfo struct {
		EContentType asn1.ObjectIdentifier
		EContent     []byte `asn1:"explicit,tag:0"`
	}
	Certificates asn1.RawValue   `asn1:"optional,tag:0"`
	CRLs         asn1.RawValue   `asn1:"optional,tag:1"`
	SignerInfos  []cmsSignerInfo `asn1:"set"`
}

type cmsSignerInfo struct {
	Version            int
	SID                asn1.RawValue
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue `asn1:"optional,tag:0"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
	UnsignedAttrs      asn1.RawValue `asn1:"optional,tag:1"`
}

type cmsIssuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type cmsAttribute struct {
	Type   asn1.ObjectIdentifier
	Values asn1.RawValue `asn1:"set"`
}

type tstInfo struct {
	Version        int
	Policy         asn1.ObjectIdentifier
	MessageImprint struct {
		HashAlgorithm pkix.AlgorithmIdentifier
		HashedMessage []byte
	}
	SerialNumber *big.Int
	GenTime      time.Time `asn1:"generalized"`
}

// claimTimeStamp finds the first time-stamp token of the signature's
// sigTst2 (C2PA 2.x: over the signature value) or sigTst (1.x: over the
// claim) header and verifies it. It returns nil when there is none.
func claimTimeStamp(msg *cose.Sign1Message, claimBytes []byte, roots *x509.CertPool) *TimeStamp {
	for _, h := range []struct {
		name string
		v2   bool
	}{{"sigTst2", true}, {"sigTst", false}} {
		v, ok := msg.Headers.Unprotected[h.name]
		if !ok {
			continue
		}
		der, err := timeStampToken(v)
		if err != nil {
			return &TimeStamp{Error: fmt.Sprintf("%s: %v", h.name, err)}
		}
		payload := claimBytes
		if h.v2 {
			if payload, err = cbor.Marshal(msg.Signature); err != nil {
				return &TimeStamp{Error: fmt.Sprintf("%s: %v", h.name, err)}
			}
		}
		tbs, err := countersignData(msg.Headers.RawProtected, payload)
		if err != nil {
			return &TimeStamp{Error: fmt.Sprintf("%s: %v", h.name, err)}
		}
		return verifyTimeStampToken(der, tbs, roots)
	}
	return nil
}

// timeStampToken returns the single token of a sigTst/sigTst2 header value,
// {"tstTokens": [{"val": bstr}]}; c2pa-rs allows exactly one.
func timeStampToken(v any) ([]byte, error) {
	m, ok := v.(map[any]any)
	if !ok {
		return nil, errors.New("header is not a map")
	}
	toks, ok := m["tstTokens"].([]any)
	if !ok || len(toks) == 0 {
		return nil, errors.New("no tstTokens")
	}
	if len(toks) > 1 {
		return nil, errors.New("only a single time-stamp token is allowed")
	}
	tm, ok := toks[0].(map[any]any)
	if !ok {
		return nil, errors.New("token is not a map")
	}
	der, ok := tm["val"].([]byte)
	if !ok {
		return nil, errors.New("token value is not a byte string")
	}
	return der, nil
}

// countersignData is the COSE Sig_structure with the "CounterSignature"
// context over payload, which is what the time-stamp's message imprint
// hashes (c2pa-rs cose_countersign_data).
func countersignData(rawProtected, payload []byte) ([]byte, error) {
	if len(rawProtected) == 0 {
		rawProtected = []byte{0x40}
	}
	var protected []byte
	if err := cborDec.Unmarshal(rawProtected, &protected); err != nil {
		return nil, fmt.Errorf("protected header: %w", err)
	}
	return cbor.Marshal([]any{"CounterSignature", protected, []byte{}, payload})
}

// verifyTimeStampToken verifies an RFC 3161 TimeStampToken (or a
// TimeStampResp holding one) over tbs: the message imprint, the CMS
// signature over the signed attributes and the TSA certificate, which must
// allow time-stamping and chain to roots at genTime.
func verifyTimeStampToken(der, tbs []byte, roots *x509.CertPool) *TimeStamp {
	ts := &TimeStamp{}
	sd, info, err := parseTimeStampToken(der)
	if err != nil {
		ts.Error = err.Error()
		return ts
	}
	gt := info.GenTime.UTC()
	ts.Time = &gt
	certs, err := tokenCertificates(sd)
	if err != nil {
		ts.Error = err.Error()
		return ts
	}
	signer, err := checkTimeStampSignature(sd, certs, info, tbs)
	if signer != nil {
		ts.Authority = certName([]string{signer.Subject.CommonName}, signer.Subject.Organization)
	}
	if err != nil {
		ts.Error = err.Error()
		return ts
	}
	if err := checkTSACertificate(signer, certs, roots, gt); err != nil {
		ts.Error = err.Error()
		return ts
	}
	ts.Verified = true
	return ts
}

// parseTimeStampToken decodes the SignedData and TSTInfo of a token.
func parseTimeStampToken(der []byte) (*cmsSignedData, *tstInfo, error) {
	var ci tsContentInfo
	if rest, err := asn1.Unmarshal(der, &ci); err != nil || len(rest) > 0 || !ci.ContentType.Equal(oidSignedData) {
		var resp tsResp
		if _, err2 := asn1.Unmarshal(der, &resp); err2 != nil {
			return nil, nil, errors.New("time-stamp token does not parse")
		}
		ci = resp.Token
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return nil, nil, errors.New("time-stamp token is not SignedData")
	}
	var sd cmsSignedData
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return nil, nil, fmt.Errorf("time-stamp SignedData: %w", err)
	}
	if !sd.EncapContentInfo.EContentType.Equal(oidTSTInfo) {
		return nil, nil, errors.New("time-stamp content is not TSTInfo")
	}
	var info tstInfo
	if _, err := asn1.Unmarshal(sd.EncapContentInfo.EContent, &info); err != nil {
		return nil, nil, fmt.Errorf("time-stamp TSTInfo: %w", err)
	}
	if len(sd.SignerInfos) != 1 {
		return nil, nil, fmt.Errorf("time-stamp has %d signers, want 1", len(sd.SignerInfos))
	}
	return &sd, &info, nil
}

// hashForOID maps a digest algorithm OID to its hash.
func hashForOID(oid asn1.ObjectIdentifier) (crypto.Hash, error) {
	switch {
	case oid.Equal(oidSHA256):
		return crypto.SHA256, nil
	case oid.Equal(oidSHA384):
		return crypto.SHA384, nil
	case oid.Equal(oidSHA512):
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("time-stamp digest algorithm %v not supported", oid)
}

func digest(h crypto.Hash, b []byte) []byte {
	d := h.New()
	d.Write(b)
	return d.Sum(nil)
}

// checkTimeStampSignature checks the message imprint against tbs and the
// signer's signature over the signed attributes, which must bind the
// TSTInfo (content type and message digest). It returns the signer
// certificate, found among the token's certificates.
func checkTimeStampSignature(sd *cmsSignedData, certs []*x509.Certificate, info *tstInfo, tbs []byte) (*x509.Certificate, error) {
	ih, err := hashForOID(info.MessageImprint.HashAlgorithm.Algorithm)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(digest(ih, tbs), info.MessageImprint.HashedMessage) != 1 {
		return nil, errors.New("time-stamp message imprint does not match the signature")
	}
	si := sd.SignerInfos[0]
	signer, err := findSigner(certs, si.SID)
	if err != nil {
		return nil, err
	}
	dh, err := hashForOID(si.DigestAlgorithm.Algorithm)
	if err != nil {
		return signer, err
	}
	if len(si.SignedAttrs.FullBytes) == 0 {
		return signer, errors.New("time-stamp has no signed attributes")
	}
	if err := checkSignedAttrs(si.SignedAttrs.Bytes, digest(dh, sd.EncapContentInfo.EContent)); err != nil {
		return signer, err
	}
	// The signature covers the attributes DER-encoded as a SET OF, not
	// with the [0] IMPLICIT tag they are stored under.
	signed := append([]byte{0x31}, si.SignedAttrs.FullBytes[1:]...)
	if err := verifyCMSSignature(signer.PublicKey, si.SignatureAlgorithm.Algorithm, dh, signed, si.Signature); err != nil {
		return signer, fmt.Errorf("time-stamp signature invalid: %w", err)
	}
	return signer, nil
}

// tokenCertificates parses the certificates a SignedData carries.
func tokenCertificates(sd *cmsSignedData) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := sd.Certificates.Bytes
	for len(rest) > 0 {
		if len(certs) == maxTimeStampCerts {
			return nil, fmt.Errorf("time-stamp carries more than %d certificates", maxTimeStampCerts)
		}
		var raw asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &raw); err != nil {
			return nil, fmt.Errorf("time-stamp certificates: %w", err)
		}
		if raw.Class != asn1.ClassUniversal { // other certificate choices
			continue
		}
		c, err := x509.ParseCertificate(raw.FullBytes)
		if err != nil {
			return nil, fmt.Errorf("time-stamp certificate: %w", err)
		}
		fixRSAPSSKey(c)
		certs = append(certs, c)
	}
	return certs, nil
}

// findSigner returns the certificate a SignerIdentifier names: an
// IssuerAndSerialNumber or a [0] SubjectKeyIdentifier.
func findSigner(certs []*x509.Certificate, sid asn1.RawValue) (*x509.Certificate, error) {
	for _, c := range certs {
		if sid.Class == asn1.ClassContextSpecific && sid.Tag == 0 {
			if len(c.SubjectKeyId) > 0 && bytes.Equal(c.SubjectKeyId, sid.Bytes) {
				return c, nil
			}
			continue
		}
		var ias cmsIssuerAndSerial
		if _, err := asn1.Unmarshal(sid.FullBytes, &ias); err != nil {
			return nil, fmt.Errorf("time-stamp signer identifier: %w", err)
		}
		if bytes.Equal(ias.Issuer.FullBytes, c.RawIssuer) && ias.Serial != nil && ias.Serial.Cmp(c.SerialNumber) == 0 {
			return c, nil
		}
	}
	return nil, errors.New("time-stamp signer certificate not included")
}

// checkSignedAttrs requires the content-type attribute to be TSTInfo and
// the message-digest attribute to equal want.
func checkSignedAttrs(attrs, want []byte) error {
	var ctOK, mdOK bool
	for rest := attrs; len(rest) > 0; {
		var a cmsAttribute
		var err error
		if rest, err = asn1.Unmarshal(rest, &a); err != nil {
			return fmt.Errorf("time-stamp signed attributes: %w", err)
		}
		switch {
		case a.Type.Equal(oidAttrContent):
			var ct asn1.ObjectIdentifier
			_, err := asn1.Unmarshal(a.Values.Bytes, &ct)
			ctOK = err == nil && ct.Equal(oidTSTInfo)
		case a.Type.Equal(oidAttrDigest):
			var md []byte
			_, err := asn1.Unmarshal(a.Values.Bytes, &md)
			mdOK = err == nil && subtle.ConstantTimeCompare(md, want) == 1
		}
	}
	if !ctOK {
		return errors.New("time-stamp content-type attribute is not TSTInfo")
	}
	if !mdOK {
		return errors.New("time-stamp message digest does not match its TSTInfo")
	}
	return nil
}

// verifyCMSSignature verifies sig over signed with the key of the TSA.
func verifyCMSSignature(pub any, sigAlg asn1.ObjectIdentifier, h crypto.Hash, signed, sig []byte) error {
	d := digest(h, signed)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if sigAlg.Equal(oidRSASSAPSS) {
			return rsa.VerifyPSS(k, h, d, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		}
		return rsa.VerifyPKCS1v15(k, h, d, sig)
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, d, sig) {
			return errors.New("ECDSA verification failed")
		}
		return nil
	case ed25519.PublicKey:
		if !ed25519.Verify(k, signed, sig) {
			return errors.New("Ed25519 verification failed")
		}
		return nil
	}
	return fmt.Errorf("unsupported time-stamp key type %T", pub)
}

// checkTSACertificate requires the TSA certificate to allow time-stamping
// and to chain, through the token's certificates, to roots at genTime.
func checkTSACertificate(tsa *x509.Certificate, certs []*x509.Certificate, roots *x509.CertPool, at time.Time) error {
	eku := false
	for _, u := range tsa.ExtKeyUsage {
		eku = eku || u == oidEKUTimeStamps
	}
	if !eku {
		return errors.New("time-stamp authority certificate lacks the timeStamping key usage")
	}
	if roots == nil {
		return errors.New("time-stamp authority not trusted: no trust anchors configured")
	}
	chain := []*x509.Certificate{tsa}
	for _, c := range certs {
		if c != tsa {
			chain = append(chain, c)
		}
	}
	if err := media.VerifyChain(chain, roots, at); err != nil {
		return fmt.Errorf("time-stamp authority %w", err)
	}
	return nil
}
