package c2pa

import (
	"fmt"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

// cborDec decodes untrusted CBOR with bounded nesting and container sizes.
// fxamacker/cbor checks well-formedness before allocating, so declared
// lengths larger than the input are rejected without allocation.
var cborDec = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		MaxNestedLevels:  32,
		MaxArrayElements: 65536,
		MaxMapPairs:      65536,
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthAllowed,
		TagsMd:           cbor.TagsAllowed,
	}.DecMode()
	if err != nil {
		panic(err) // static options; cannot fail
	}
	return dm
}()

// HashedURI is a C2PA hashed URI: a JUMBF URI plus the hash of the box it
// points to.
type HashedURI struct {
	URL  string `cbor:"url"`
	Alg  string `cbor:"alg,omitempty"`
	Hash []byte `cbor:"hash"`
}

// Claim is the decoded subset of a C2PA claim (v1 "c2pa.claim" or v2
// "c2pa.claim.v2") that validation needs.
type Claim struct {
	ClaimGenerator     string          `cbor:"claim_generator,omitempty"`
	ClaimGeneratorInfo cbor.RawMessage `cbor:"claim_generator_info,omitempty"`
	Signature          string          `cbor:"signature"`
	Assertions         []HashedURI     `cbor:"assertions,omitempty"`
	CreatedAssertions  []HashedURI     `cbor:"created_assertions,omitempty"`
	GatheredAssertions []HashedURI     `cbor:"gathered_assertions,omitempty"`
	Title              string          `cbor:"dc:title,omitempty"`
	Format             string          `cbor:"dc:format,omitempty"`
	InstanceID         string          `cbor:"instanceID,omitempty"`
	Alg                string          `cbor:"alg,omitempty"`
}

// ParseClaim decodes claim CBOR bytes.
func ParseClaim(b []byte) (*Claim, error) {
	var c Claim
	if err := cborDec.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("decode claim: %w", err)
	}
	return &c, nil
}

// AllAssertions returns the assertion references of the claim: the v1
// "assertions" list, or the v2 created plus gathered lists.
func (c *Claim) AllAssertions() []HashedURI {
	out := make([]HashedURI, 0, len(c.Assertions)+len(c.CreatedAssertions)+len(c.GatheredAssertions))
	out = append(out, c.Assertions...)
	out = append(out, c.CreatedAssertions...)
	return append(out, c.GatheredAssertions...)
}

// generatorInfo is one claim_generator_info entry.
type generatorInfo struct {
	Name    string `cbor:"name"`
	Version string `cbor:"version,omitempty"`
}

// Generator returns a human readable claim generator: claim_generator when
// present, otherwise "name/version" entries of claim_generator_info (an
// array in v1 claims, a single map in v2 claims).
func (c *Claim) Generator() string {
	if c.ClaimGenerator != "" {
		return c.ClaimGenerator
	}
	if len(c.ClaimGeneratorInfo) == 0 {
		return ""
	}
	var infos []generatorInfo
	if err := cborDec.Unmarshal(c.ClaimGeneratorInfo, &infos); err != nil {
		var one generatorInfo
		if err := cborDec.Unmarshal(c.ClaimGeneratorInfo, &one); err != nil {
			return ""
		}
		infos = []generatorInfo{one}
	}
	var parts []string
	for _, i := range infos {
		if i.Name == "" {
			continue
		}
		s := i.Name
		if i.Version != "" {
			s += "/" + i.Version
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// actionsAssertion is the c2pa.actions / c2pa.actions.v2 assertion.
type actionsAssertion struct {
	Actions []struct {
		Action            string          `cbor:"action"`
		DigitalSourceType string          `cbor:"digitalSourceType,omitempty"`
		SoftwareAgent     cbor.RawMessage `cbor:"softwareAgent,omitempty"`
	} `cbor:"actions"`
}

// ingredientAssertion is the subset of c2pa.ingredient (v1-v3) used here:
// the title and the reference to the ingredient's own manifest.
type ingredientAssertion struct {
	Title          string     `cbor:"dc:title,omitempty"`
	C2PAManifest   *HashedURI `cbor:"c2pa_manifest,omitempty"`
	ActiveManifest *HashedURI `cbor:"activeManifest,omitempty"`
}

// dataHashAssertion is the c2pa.hash.data assertion.
type dataHashAssertion struct {
	Exclusions []struct {
		Start  int64 `cbor:"start"`
		Length int64 `cbor:"length"`
	} `cbor:"exclusions,omitempty"`
	Name string `cbor:"name,omitempty"`
	Alg  string `cbor:"alg,omitempty"`
	Hash []byte `cbor:"hash"`
	// Pad and Pad2 are zero-filled byte strings used to keep the manifest
	// size stable while the exclusion values are written; they are not
	// part of the hashed data and are ignored.
	Pad  []byte `cbor:"pad,omitempty"`
	Pad2 []byte `cbor:"pad2,omitempty"`
}
