package c2pa

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// IngredientStatus is the validation status of an ingredient's manifest
// (one level deep: the active manifest's ingredients). Its hard binding is
// not checked: it binds the ingredient asset, which the file does not hold.
type IngredientStatus struct {
	Title           string     `json:"title,omitempty"`
	Manifest        string     `json:"manifest"` // the manifest's label
	Valid           bool       `json:"valid"`    // signature ok AND chain trusted AND all hashes match
	Intact          bool       `json:"intact"`   // as Result.Intact
	SignatureValid  bool       `json:"signature_valid"`
	TrustChainValid bool       `json:"trust_chain_valid"`
	Signer          string     `json:"signer,omitempty"`
	Issuer          string     `json:"issuer,omitempty"`
	ClaimGenerator  string     `json:"claim_generator,omitempty"`
	TimeStamp       *TimeStamp `json:"time_stamp,omitempty"`
	Error           string     `json:"error,omitempty"`
	Failures        []string   `json:"failures,omitempty"`
}

// manifestRef returns the hashed URI of the ingredient's manifest: v1/v2
// "c2pa_manifest", v3 "activeManifest"; nil when it has none.
func (a *ingredientAssertion) manifestRef() *HashedURI {
	if a.ActiveManifest != nil {
		return a.ActiveManifest
	}
	return a.C2PAManifest
}

// verifyIngredients verifies the manifest of each ingredient reference of
// the active manifest, each manifest once and at most
// MaxIngredientManifests of them.
func (v *verifier) verifyIngredients(active *Box, refs []ingredientRef) []IngredientStatus {
	var out []IngredientStatus
	done := make(map[*Box]bool)
	for _, r := range refs {
		if r.manifest == nil {
			continue // no provenance of its own
		}
		if len(out) == MaxIngredientManifests || v.opts.Context.Err() != nil {
			break
		}
		var res Result
		m, err := v.ingredientManifest(active, *r.manifest)
		if m != nil && done[m] {
			continue
		}
		if err != nil {
			res.fail(err.Error())
		} else {
			done[m] = true
			if v.budget.spend(&res, len(assertionHashInput(m))) {
				if err := verifyHashedURI(*r.manifest, "", m); err != nil {
					res.fail(fmt.Sprintf("ingredient manifest: %v", err))
				}
				v.verifyManifest(&res, m, false)
			}
		}
		st := IngredientStatus{Title: r.title, Valid: res.Valid, Intact: res.Intact,
			SignatureValid: res.SignatureValid, TrustChainValid: res.TrustChainValid, Signer: res.Signer,
			Issuer: res.Issuer, ClaimGenerator: res.ClaimGenerator, TimeStamp: res.TimeStamp,
			Error: res.Error, Failures: res.Failures}
		if m != nil {
			st.Manifest = m.Label()
		}
		out = append(out, st)
	}
	return out
}

// ingredientManifest resolves an ingredient's manifest reference to a
// manifest of the store other than the active one.
func (v *verifier) ingredientManifest(active *Box, u HashedURI) (*Box, error) {
	m, err := resolveURI(v.store, active, u.URL)
	if err != nil {
		return nil, fmt.Errorf("ingredient manifest: %w", err)
	}
	if m == active {
		return nil, fmt.Errorf("ingredient manifest %s is the active manifest", u.URL)
	}
	for _, c := range v.store.Children {
		if c == m && c.Desc != nil {
			return m, nil
		}
	}
	return nil, fmt.Errorf("ingredient manifest %s is not a manifest of the store", u.URL)
}

// softwareAgentName returns an action's softwareAgent: a string (claims
// v1) or a generator-info map with a name and an optional version (v2).
func softwareAgentName(raw cbor.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if err := cborDec.Unmarshal(raw, &s); err == nil {
		return s
	}
	var info generatorInfo
	if err := cborDec.Unmarshal(raw, &info); err != nil || info.Name == "" {
		return ""
	}
	if info.Version != "" {
		return info.Name + "/" + info.Version
	}
	return info.Name
}
