// Package c2pa finds, parses and verifies C2PA (Content Credentials)
// manifests embedded in JPEG and PNG images or given as a raw ".c2pa"
// manifest store, in pure Go.
//
// Verification covers the active manifest: the COSE_Sign1 claim signature,
// the signer's certificate chain against configured trust anchors, the
// hashed URIs of all assertions referenced by the claim and the
// c2pa.hash.data hard binding over the asset bytes. Ingredient manifests
// are reported but their signatures are not validated.
package c2pa

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Options configures Verify.
type Options struct {
	// TrustAnchors are the root certificates a signer chain must lead to.
	// nil means no chain can be trusted (TrustChainValid=false with a reason).
	TrustAnchors *x509.CertPool
	// Now is the clock used for certificate validity; nil means time.Now.
	// The sigTst timestamp is reported as Result.SigningTime but, since its
	// TSA signature is not verified, it is never used as validation time.
	Now func() time.Time
	// Context stops a verification that is cancelled or times out (the
	// job's); nil never stops.
	Context context.Context
}

// Result is rendered as the `details.c2pa` object of the verification API;
// JSON tags matter.
type Result struct {
	Found              bool       `json:"found"`
	Valid              bool       `json:"valid"`           // signature ok AND chain trusted AND all hashes match
	Error              string     `json:"error,omitempty"` // first failure reason, human readable
	Issuer             string     `json:"issuer,omitempty"`
	Signer             string     `json:"signer,omitempty"`
	TrustChainValid    bool       `json:"trust_chain_valid"`
	SignatureValid     bool       `json:"signature_valid"`
	DataHashValid      bool       `json:"data_hash_valid"`
	ClaimGenerator     string     `json:"claim_generator,omitempty"`
	Algorithm          string     `json:"signature_algorithm,omitempty"`
	SigningTime        *time.Time `json:"signing_time,omitempty"`
	Actions            []string   `json:"actions,omitempty"`
	DigitalSourceTypes []string   `json:"digital_source_types,omitempty"`
	Ingredients        []string   `json:"ingredients,omitempty"`
	Title              string     `json:"title,omitempty"`
	Format             string     `json:"format,omitempty"`
	Failures           []string   `json:"failures,omitempty"` // every check that failed
}

// NotFoundError is the Result.Error text when an asset has no manifest.
const NotFoundError = "No C2PA manifest found"

// LoadTrustAnchors parses PEM certificates into a pool. It fails if the
// input holds no certificate or a CERTIFICATE block does not parse.
// Anchors with RSASSA-PSS keys (as the C2PA test roots have) are only usable
// when loaded through this function, which makes their keys visible to
// crypto/x509; see fixRSAPSSKey.
func LoadTrustAnchors(pemBytes []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("trust anchor %d: %w", n+1, err)
		}
		fixRSAPSSKey(c)
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("no PEM certificates found")
	}
	return pool, nil
}

// Verify finds the C2PA manifest store in data and validates its active
// manifest. It never panics; any internal error is reported in the Result.
func Verify(data []byte, opts Options) (res Result) {
	defer func() {
		if r := recover(); r != nil {
			res.Valid = false
			res.fail(fmt.Sprintf("internal error: %v", r))
		}
	}()
	return verify(data, opts)
}

// fail records a failed check; the first one becomes Error.
func (r *Result) fail(msg string) {
	if r.Error == "" {
		r.Error = msg
	}
	r.Failures = append(r.Failures, msg)
}

// verify is Verify without the panic guard, so fuzzing sees panics.
func verify(data []byte, opts Options) Result {
	var res Result
	storeBytes, _, format, err := findManifestStore(data)
	res.Format = format
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			res.Error = NotFoundError
			return res
		}
		res.Found = true
		res.fail(fmt.Sprintf("manifest store: %v", err))
		return res
	}
	res.Found = true

	store, err := ParseJUMBF(storeBytes)
	if err != nil {
		res.fail(fmt.Sprintf("manifest store: %v", err))
		return res
	}
	m, err := activeManifest(store)
	if err != nil {
		res.fail(err.Error())
		return res
	}

	claim, claimBytes, err := manifestClaim(m)
	if err != nil {
		res.fail(err.Error())
		return res
	}
	res.ClaimGenerator = claim.Generator()
	res.Title = claim.Title

	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	checkSignature(&res, store, m, claim, claimBytes, opts.TrustAnchors, now())
	ctx := opts.Context
	if ctx == nil {
		ctx = context.Background()
	}
	assertionsOK := checkAssertions(ctx, &res, data, store, m, claim)

	res.Valid = res.SignatureValid && res.TrustChainValid && res.DataHashValid && assertionsOK && len(res.Failures) == 0
	return res
}

// activeManifest returns the last manifest superbox of the store.
func activeManifest(store *Box) (*Box, error) {
	if store.Label() != "c2pa" {
		return nil, fmt.Errorf("manifest store label is %q, want \"c2pa\"", store.Label())
	}
	var last *Box
	for _, c := range store.Children {
		if c.Desc != nil {
			last = c
		}
	}
	if last == nil {
		return nil, errors.New("manifest store holds no manifest")
	}
	return last, nil
}

// manifestClaim decodes the claim of manifest m and returns it together
// with its CBOR bytes as stored (the signed payload).
func manifestClaim(m *Box) (*Claim, []byte, error) {
	cb := m.Child("c2pa.claim.v2")
	if cb == nil {
		cb = m.Child("c2pa.claim")
	}
	if cb == nil {
		return nil, nil, fmt.Errorf("manifest %q has no claim", m.Label())
	}
	content := cb.FirstContent("cbor")
	if content == nil {
		return nil, nil, errors.New("claim box has no CBOR content")
	}
	claim, err := ParseClaim(content.Payload)
	if err != nil {
		return nil, nil, err
	}
	return claim, content.Payload, nil
}

// checkSignature verifies the claim signature and the signer chain.
func checkSignature(res *Result, store, m *Box, claim *Claim, claimBytes []byte, roots *x509.CertPool, now time.Time) {
	sb := m.Child("c2pa.signature")
	if sb == nil {
		res.fail("manifest has no claim signature")
		return
	}
	if claim.Signature != "" {
		if target, err := resolveURI(store, m, claim.Signature); err != nil || target != sb {
			res.fail(fmt.Sprintf("claim signature reference %q does not point at the manifest's signature box", claim.Signature))
		}
	}
	content := sb.FirstContent("cbor")
	if content == nil {
		res.fail("signature box has no CBOR content")
		return
	}
	msg, err := ParseSignature(content.Payload)
	if err != nil {
		res.fail(err.Error())
		return
	}
	if t, ok := signingTime(msg); ok {
		t = t.UTC()
		res.SigningTime = &t
	}
	alg, err := signatureAlgorithm(msg)
	if err != nil {
		res.fail(err.Error())
		return
	}
	res.Algorithm = alg.String()
	chain, err := CertChain(msg)
	if err != nil {
		res.fail(err.Error())
		return
	}
	leaf := chain[0]
	res.Signer = certName([]string{leaf.Subject.CommonName}, leaf.Subject.Organization)
	res.Issuer = certName(leaf.Issuer.Organization, []string{leaf.Issuer.CommonName})

	if err := verifySignature(msg, alg, leaf, claimBytes); err != nil {
		res.fail(err.Error())
	} else {
		res.SignatureValid = true
	}
	if err := VerifyChain(chain, roots, now); err != nil {
		res.fail(err.Error())
	} else {
		res.TrustChainValid = true
	}
}

// checkAssertions verifies every hashed URI of the claim, the hard binding
// and collects actions and ingredients. It reports whether all assertion
// hashes matched.
//
// A hostile claim can reference the same large box thousands of times or
// name thousands of assertions: references are capped (MaxAssertions),
// identical references are hashed once, and the bytes hashed in all stay
// within a budget proportional to the file (hashBudget).
func checkAssertions(ctx context.Context, res *Result, data []byte, store, m *Box, claim *Claim) bool {
	ok := true
	hardBindings := 0
	all := claim.AllAssertions()
	if len(all) > MaxAssertions {
		res.fail(fmt.Sprintf("claim references %d assertions, more than %d", len(all), MaxAssertions))
		return false
	}
	budget := hashBudget(len(data))
	spend := func(n int) bool {
		budget -= int64(n)
		if budget < 0 {
			res.fail(fmt.Sprintf("claim asks to hash more than %d bytes for a %d byte file", hashBudget(len(data)), len(data)))
			return false
		}
		return true
	}
	seen := make(map[string]bool, len(all))
	for _, u := range all {
		if err := ctx.Err(); err != nil {
			res.fail(fmt.Sprintf("verification stopped: %v", err))
			return false
		}
		key := u.URL + "\x00" + u.Alg + "\x00" + string(u.Hash)
		if seen[key] {
			continue // the same reference again: already hashed
		}
		seen[key] = true
		box, err := resolveURI(store, m, u.URL)
		if err != nil {
			res.fail(fmt.Sprintf("assertion %s: %v", u.URL, err))
			ok = false
			continue
		}
		if !spend(len(assertionHashInput(box))) {
			return false
		}
		if err := verifyHashedURI(u, claim.Alg, box); err != nil {
			res.fail(fmt.Sprintf("assertion %v", err))
			ok = false
			continue
		}
		label := baseLabel(box.Label())
		switch {
		case label == "c2pa.hash.data":
			hardBindings++
			var a dataHashAssertion
			if err := decodeAssertion(box, &a); err != nil {
				res.fail(fmt.Sprintf("c2pa.hash.data: %v", err))
				continue
			}
			if !spend(len(data)) {
				return false
			}
			if err := verifyDataHash(&a, claim.Alg, data); err != nil {
				res.fail(err.Error())
				continue
			}
			res.DataHashValid = true
		case label == "c2pa.hash.bmff" || label == "c2pa.hash.bmff.v2" || label == "c2pa.hash.bmff.v3" ||
			label == "c2pa.hash.boxes" || label == "c2pa.hash.collection.data":
			hardBindings++
			res.fail(fmt.Sprintf("hard binding %s is not supported", label))
		case label == "c2pa.actions" || label == "c2pa.actions.v2":
			var a actionsAssertion
			if err := decodeAssertion(box, &a); err != nil {
				res.fail(fmt.Sprintf("%s: %v", label, err))
				continue
			}
			for _, act := range a.Actions {
				if act.Action != "" {
					res.Actions = append(res.Actions, act.Action)
				}
				if act.DigitalSourceType != "" {
					res.DigitalSourceTypes = appendUnique(res.DigitalSourceTypes, act.DigitalSourceType)
				}
			}
		case strings.HasPrefix(label, "c2pa.ingredient"):
			var a ingredientAssertion
			if err := decodeAssertion(box, &a); err != nil {
				res.fail(fmt.Sprintf("%s: %v", label, err))
				continue
			}
			res.Ingredients = append(res.Ingredients, a.Title)
		}
	}
	if hardBindings == 0 {
		res.fail("claim has no hard binding (c2pa.hash.data) assertion")
	} else if hardBindings > 1 {
		res.fail("claim has more than one hard binding assertion")
		res.DataHashValid = false
	}
	return ok
}

// MaxAssertions caps the assertion references of one claim (real claims
// have a few dozen).
const MaxAssertions = 1000

// hashBudget is how many bytes verifying a file of size n may hash: each
// assertion once, the asset a few times, and some room for small files.
func hashBudget(n int) int64 { return 4*int64(n) + 16<<20 }

// baseLabel strips a "__N" instance suffix from an assertion label.
func baseLabel(l string) string {
	if i := strings.LastIndex(l, "__"); i > 0 {
		return l[:i]
	}
	return l
}

// decodeAssertion decodes the CBOR content of an assertion superbox.
func decodeAssertion(b *Box, v any) error {
	c := b.FirstContent("cbor")
	if c == nil {
		return errors.New("assertion has no CBOR content")
	}
	if err := cborDec.Unmarshal(c.Payload, v); err != nil {
		return fmt.Errorf("decode assertion: %w", err)
	}
	return nil
}

func appendUnique(s []string, v string) []string {
	for _, e := range s {
		if e == v {
			return s
		}
	}
	return append(s, v)
}

// resolveURI resolves a JUMBF URI ("self#jumbf=..."), absolute ("/c2pa/...")
// from the store root or relative to manifest m, to a superbox.
func resolveURI(store, m *Box, uri string) (*Box, error) {
	const prefix = "self#jumbf="
	if !strings.HasPrefix(uri, prefix) {
		return nil, fmt.Errorf("unsupported URI %q", uri)
	}
	path := strings.TrimPrefix(uri, prefix)
	cur := m
	if strings.HasPrefix(path, "/") {
		parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
		if len(parts) == 0 || parts[0] != store.Label() {
			return nil, fmt.Errorf("URI %q does not start at the manifest store", uri)
		}
		cur = store
		path = strings.Join(parts[1:], "/")
	}
	if path == "" {
		return cur, nil
	}
	for _, p := range strings.Split(path, "/") {
		next := cur.Child(p)
		if next == nil {
			return nil, fmt.Errorf("URI %q: box %q not found", uri, p)
		}
		cur = next
	}
	return cur, nil
}
