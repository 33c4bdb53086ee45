package c2pa

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"sort"
)

// ErrHashMismatch is wrapped by every hash comparison failure.
var ErrHashMismatch = errors.New("hash mismatch")

// newHash returns the hash function for a C2PA algorithm name; an empty
// name means the C2PA default, sha256.
func newHash(alg string) (hash.Hash, error) {
	switch alg {
	case "", "sha256":
		return sha256.New(), nil
	case "sha384":
		return sha512.New384(), nil
	case "sha512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("unsupported hash algorithm %q", alg)
}

// hashBytes hashes b with the named algorithm.
func hashBytes(alg string, b []byte) ([]byte, error) {
	h, err := newHash(alg)
	if err != nil {
		return nil, err
	}
	h.Write(b)
	return h.Sum(nil), nil
}

// assertionHashInput returns the bytes a hashed URI to a JUMBF superbox
// covers: the superbox without its own LBox/TBox header, i.e. the
// description box followed by the content boxes.
func assertionHashInput(b *Box) []byte {
	return b.Raw[b.HeaderLen:]
}

// verifyHashedURI checks that the superbox b hashes to the value in u,
// using u.Alg or, if empty, the claim's algorithm.
func verifyHashedURI(u HashedURI, claimAlg string, b *Box) error {
	alg := u.Alg
	if alg == "" {
		alg = claimAlg
	}
	got, err := hashBytes(alg, assertionHashInput(b))
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(got, u.Hash) != 1 {
		return fmt.Errorf("%w for %s", ErrHashMismatch, u.URL)
	}
	return nil
}

// DataHash computes the hash of data with the exclusion ranges removed, as
// the c2pa.hash.data assertion specifies. Exclusions must lie within data
// and must not overlap.
func DataHash(alg string, data []byte, exclusions []Range) ([]byte, error) {
	h, err := newHash(alg)
	if err != nil {
		return nil, err
	}
	ex := append([]Range(nil), exclusions...)
	sort.Slice(ex, func(i, j int) bool { return ex[i].Start < ex[j].Start })
	pos := 0
	for _, e := range ex {
		if e.Start < 0 || e.Length < 0 || e.Start > len(data) || e.Length > len(data)-e.Start {
			return nil, fmt.Errorf("exclusion (start %d, length %d) outside the %d byte asset", e.Start, e.Length, len(data))
		}
		if e.Start < pos {
			return nil, fmt.Errorf("exclusion (start %d, length %d) overlaps a previous one", e.Start, e.Length)
		}
		h.Write(data[pos:e.Start])
		pos = e.Start + e.Length
	}
	h.Write(data[pos:])
	return h.Sum(nil), nil
}

// verifyDataHash checks a c2pa.hash.data assertion against the asset.
func verifyDataHash(a *dataHashAssertion, claimAlg string, data []byte) error {
	alg := a.Alg
	if alg == "" {
		alg = claimAlg
	}
	ex := make([]Range, 0, len(a.Exclusions))
	for _, e := range a.Exclusions {
		// Reject values that do not fit an int before converting.
		if e.Start < 0 || e.Length < 0 || e.Start > int64(len(data)) || e.Length > int64(len(data)) {
			return fmt.Errorf("data hash: exclusion (start %d, length %d) outside the %d byte asset", e.Start, e.Length, len(data))
		}
		ex = append(ex, Range{Start: int(e.Start), Length: int(e.Length)})
	}
	got, err := DataHash(alg, data, ex)
	if err != nil {
		return fmt.Errorf("data hash: %w", err)
	}
	if subtle.ConstantTimeCompare(got, a.Hash) != 1 {
		return fmt.Errorf("data hash mismatch: %w: asset bytes outside the manifest were modified after signing", ErrHashMismatch)
	}
	return nil
}
