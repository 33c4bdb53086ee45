// Package c2pa finds, parses and verifies C2PA (Content Credentials)
// manifests embedded in JPEG and PNG images or given as a raw ".c2pa"
// manifest store, in pure Go.
//
// Verification covers the active manifest: the COSE_Sign1 claim signature,
// the signer's certificate chain against configured trust anchors (at the
// time of a verified RFC 3161 time-stamp, else now), the hashed URIs of all
// assertions referenced by the claim and the c2pa.hash.data hard binding
// over the asset bytes. The manifests of the active manifest's direct
// ingredients are verified the same way (without the hard binding, which
// binds the ingredient's own asset) and reported beside it; as in c2pa-rs
// they do not change the active manifest's result.
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
	// Now is the clock used for certificate validity when the signature
	// carries no verified time-stamp; nil means time.Now. A verified
	// sigTst/sigTst2 time-stamp (TSA chained to TrustAnchors) replaces it.
	Now func() time.Time
	// Context stops a verification that is cancelled or times out (the
	// job's); nil never stops.
	Context context.Context
}

// Result is rendered as the `details.c2pa` object of the verification API;
// JSON tags matter.
type Result struct {
	Found bool `json:"found"`
	Valid bool `json:"valid"` // signature ok AND chain trusted AND all hashes match
	// Intact: the signature and every hash verify and the only failure is
	// that the signer does not chain to the trust anchors (c2pa-rs's
	// "Valid" state; Valid is its "Trusted").
	Intact             bool       `json:"intact"`
	Error              string     `json:"error,omitempty"` // first failure reason, human readable
	Issuer             string     `json:"issuer,omitempty"`
	Signer             string     `json:"signer,omitempty"`
	TrustChainValid    bool       `json:"trust_chain_valid"`
	SignatureValid     bool       `json:"signature_valid"`
	DataHashValid      bool       `json:"data_hash_valid"`
	ClaimGenerator     string     `json:"claim_generator,omitempty"`
	Algorithm          string     `json:"signature_algorithm,omitempty"`
	SigningTime        *time.Time `json:"signing_time,omitempty"` // genTime of the time-stamp, verified or not
	TimeStamp          *TimeStamp `json:"time_stamp,omitempty"`
	Actions            []string   `json:"actions,omitempty"`
	DigitalSourceTypes []string   `json:"digital_source_types,omitempty"`
	SoftwareAgents     []string   `json:"software_agents,omitempty"` // of the actions
	Ingredients        []string   `json:"ingredients,omitempty"`     // titles
	// IngredientManifests is the validation status of each ingredient
	// manifest the active manifest refers to.
	IngredientManifests []IngredientStatus `json:"ingredient_manifests,omitempty"`
	Title               string             `json:"title,omitempty"`
	Format              string             `json:"format,omitempty"`
	Failures            []string           `json:"failures,omitempty"` // every check that failed
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
	v := &verifier{opts: opts, data: data, store: store, budget: newBudget(len(data))}
	if v.opts.Now == nil {
		v.opts.Now = time.Now
	}
	if v.opts.Context == nil {
		v.opts.Context = context.Background()
	}
	refs := v.verifyManifest(&res, m, true)
	res.IngredientManifests = v.verifyIngredients(m, refs)
	for _, in := range res.IngredientManifests {
		judgeIngredient(&res, in)
	}
	return res
}

// judgeIngredient folds an ingredient manifest's status into the result as
// c2pa-rs does: a broken ingredient makes the asset invalid, an intact but
// untrusted one makes it untrusted.
func judgeIngredient(res *Result, in IngredientStatus) {
	if in.Valid {
		return
	}
	name := in.Title
	if name == "" {
		name = in.Manifest
	}
	res.Valid = false
	if in.Intact {
		res.Failures = append(res.Failures, fmt.Sprintf("ingredient %q manifest signer not trusted: %s", name, in.Error))
		if res.Error == "" {
			res.Error = res.Failures[len(res.Failures)-1]
		}
		return
	}
	res.Intact = false
	res.fail(fmt.Sprintf("ingredient %q manifest invalid: %s", name, in.Error))
}

// verifier holds what the checks of one asset share: the options, the
// asset, its manifest store and the hash budget.
type verifier struct {
	opts   Options
	data   []byte
	store  *Box
	budget *budget
}

// verifyManifest checks the claim, its signature and its assertions and
// sets res.Valid and res.Intact. The hard binding is checked only for the
// active manifest. It returns the manifest's ingredient references.
func (v *verifier) verifyManifest(res *Result, m *Box, active bool) []ingredientRef {
	claim, claimBytes, err := manifestClaim(m)
	if err != nil {
		res.fail(err.Error())
		return nil
	}
	res.ClaimGenerator = claim.Generator()
	res.Title = claim.Title

	untrustedOnly := v.checkSignature(res, m, claim, claimBytes)
	assertionsOK, refs := v.checkAssertions(res, m, claim, active)
	bound := res.DataHashValid || !active
	res.Valid = res.SignatureValid && res.TrustChainValid && bound && assertionsOK && len(res.Failures) == 0
	res.Intact = res.Valid || (res.SignatureValid && untrustedOnly && bound && assertionsOK && len(res.Failures) == 1)
	return refs
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

// checkSignature verifies the claim signature, its time-stamp and the
// signer chain. The chain is judged at the time-stamp's genTime when the
// time-stamp verifies, else at the current time. It reports whether the
// chain failed only for want of a trust anchor (the credential itself is
// well-formed and inside its validity).
func (v *verifier) checkSignature(res *Result, m *Box, claim *Claim, claimBytes []byte) (untrustedOnly bool) {
	sb := m.Child("c2pa.signature")
	if sb == nil {
		res.fail("manifest has no claim signature")
		return false
	}
	if claim.Signature != "" {
		if target, err := resolveURI(v.store, m, claim.Signature); err != nil || target != sb {
			res.fail(fmt.Sprintf("claim signature reference %q does not point at the manifest's signature box", claim.Signature))
		}
	}
	content := sb.FirstContent("cbor")
	if content == nil {
		res.fail("signature box has no CBOR content")
		return false
	}
	msg, err := ParseSignature(content.Payload)
	if err != nil {
		res.fail(err.Error())
		return false
	}
	alg, err := signatureAlgorithm(msg)
	if err != nil {
		res.fail(err.Error())
		return false
	}
	res.Algorithm = alg.String()
	chain, err := CertChain(msg)
	if err != nil {
		res.fail(err.Error())
		return false
	}
	leaf := chain[0]
	res.Signer = certName([]string{leaf.Subject.CommonName}, leaf.Subject.Organization)
	res.Issuer = certName(leaf.Issuer.Organization, []string{leaf.Issuer.CommonName})

	if err := verifySignature(msg, alg, leaf, claimBytes); err != nil {
		res.fail(err.Error())
	} else {
		res.SignatureValid = true
	}
	at := v.opts.Now()
	if ts := claimTimeStamp(msg, claimBytes, v.opts.TrustAnchors); ts != nil {
		res.TimeStamp = ts
		res.SigningTime = ts.Time
		if ts.Verified {
			at = *ts.Time
		}
	}
	if err := VerifyChain(chain, v.opts.TrustAnchors, at); err != nil {
		res.fail(err.Error())
		return untrusted(err) && checkSignerProfile(leaf) == nil && !at.Before(leaf.NotBefore) && !at.After(leaf.NotAfter)
	}
	res.TrustChainValid = true
	return false
}

// errNoAnchors is VerifyChain's error when no trust anchors are configured.
var errNoAnchors = errors.New("no trust anchors configured")

// untrusted reports whether a VerifyChain error says only that the chain
// leads to no trust anchor.
func untrusted(err error) bool {
	var ua x509.UnknownAuthorityError
	return errors.Is(err, errNoAnchors) || errors.As(err, &ua)
}

// ingredientRef is an ingredient assertion of a manifest: its title and
// the hashed URI of the ingredient's manifest, if it has one.
type ingredientRef struct {
	title    string
	manifest *HashedURI
}

// checkAssertions verifies every hashed URI of the claim, the hard binding
// (for the active manifest) and collects actions and ingredients. It
// reports whether all assertion hashes matched.
//
// A hostile claim can reference the same large box thousands of times or
// name thousands of assertions: references are capped (MaxAssertions),
// identical references are hashed once, and the bytes hashed in all stay
// within a budget proportional to the file (hashBudget).
func (v *verifier) checkAssertions(res *Result, m *Box, claim *Claim, active bool) (bool, []ingredientRef) {
	ok := true
	hardBindings := 0
	var refs []ingredientRef
	all := claim.AllAssertions()
	if len(all) > MaxAssertions {
		res.fail(fmt.Sprintf("claim references %d assertions, more than %d", len(all), MaxAssertions))
		return false, nil
	}
	seen := make(map[string]bool, len(all))
	for _, u := range all {
		if err := v.opts.Context.Err(); err != nil {
			res.fail(fmt.Sprintf("verification stopped: %v", err))
			return false, refs
		}
		key := u.URL + "\x00" + u.Alg + "\x00" + string(u.Hash)
		if seen[key] {
			continue // the same reference again: already hashed
		}
		seen[key] = true
		box, err := resolveURI(v.store, m, u.URL)
		if err != nil {
			res.fail(fmt.Sprintf("assertion %s: %v", u.URL, err))
			ok = false
			continue
		}
		if !v.budget.spend(res, len(assertionHashInput(box))) {
			return false, refs
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
			if active && !v.checkDataHash(res, box, claim) {
				continue
			}
		case label == "c2pa.hash.bmff" || label == "c2pa.hash.bmff.v2" || label == "c2pa.hash.bmff.v3" ||
			label == "c2pa.hash.boxes" || label == "c2pa.hash.collection.data":
			hardBindings++
			if active {
				res.fail(fmt.Sprintf("hard binding %s is not supported", label))
			}
		case label == "c2pa.actions" || label == "c2pa.actions.v2":
			collectActions(res, box, label)
		case strings.HasPrefix(label, "c2pa.ingredient"):
			var a ingredientAssertion
			if err := decodeAssertion(box, &a); err != nil {
				res.fail(fmt.Sprintf("%s: %v", label, err))
				continue
			}
			res.Ingredients = append(res.Ingredients, a.Title)
			ref := ingredientRef{title: a.Title}
			if mr := a.manifestRef(); mr != nil {
				u := *mr
				if u.Alg == "" {
					u.Alg = claim.Alg
				}
				ref.manifest = &u
			}
			refs = append(refs, ref)
		}
	}
	switch {
	case !active: // an ingredient's binding is to its own asset
	case hardBindings == 0:
		res.fail("claim has no hard binding (c2pa.hash.data) assertion")
	case hardBindings > 1:
		res.fail("claim has more than one hard binding assertion")
		res.DataHashValid = false
	}
	return ok, refs
}

// checkDataHash verifies a c2pa.hash.data assertion against the asset.
func (v *verifier) checkDataHash(res *Result, box *Box, claim *Claim) bool {
	var a dataHashAssertion
	if err := decodeAssertion(box, &a); err != nil {
		res.fail(fmt.Sprintf("c2pa.hash.data: %v", err))
		return false
	}
	if !v.budget.spend(res, len(v.data)) {
		return false
	}
	if err := verifyDataHash(&a, claim.Alg, v.data); err != nil {
		res.fail(err.Error())
		return false
	}
	res.DataHashValid = true
	return true
}

// collectActions records the actions, digital source types and software
// agents of an actions assertion.
func collectActions(res *Result, box *Box, label string) {
	var a actionsAssertion
	if err := decodeAssertion(box, &a); err != nil {
		res.fail(fmt.Sprintf("%s: %v", label, err))
		return
	}
	for _, act := range a.Actions {
		if act.Action != "" {
			res.Actions = append(res.Actions, act.Action)
		}
		if act.DigitalSourceType != "" {
			res.DigitalSourceTypes = appendUnique(res.DigitalSourceTypes, act.DigitalSourceType)
		}
		if agent := softwareAgentName(act.SoftwareAgent); agent != "" {
			res.SoftwareAgents = appendUnique(res.SoftwareAgents, agent)
		}
	}
}

// MaxAssertions caps the assertion references of one claim (real claims
// have a few dozen).
const MaxAssertions = 1000

// MaxIngredientManifests caps the ingredient manifests verified per asset.
const MaxIngredientManifests = 32

// hashBudget is how many bytes verifying a file of size n may hash: each
// assertion once, the asset a few times, and some room for small files.
func hashBudget(n int) int64 { return 4*int64(n) + 16<<20 }

// budget is what is left of hashBudget for one asset, shared by the active
// manifest and its ingredients.
type budget struct {
	left, total int64
	size        int
}

func newBudget(n int) *budget {
	return &budget{left: hashBudget(n), total: hashBudget(n), size: n}
}

// spend takes n bytes from the budget; once it is exhausted it records the
// failure in res and returns false.
func (b *budget) spend(res *Result, n int) bool {
	b.left -= int64(n)
	if b.left < 0 {
		res.fail(fmt.Sprintf("claim asks to hash more than %d bytes for a %d byte file", b.total, b.size))
		return false
	}
	return true
}

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
