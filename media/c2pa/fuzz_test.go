package c2pa

import (
	"testing"
)

var fuzzFixtures = []string{"C.jpg", "CA.jpg", "XCA.jpg", "no_manifest.jpg"}

// FuzzVerify checks that verification of arbitrary input never panics and
// never reports an invalid-looking result as valid.
func FuzzVerify(f *testing.F) {
	opts := testOptions(f)
	for _, name := range fuzzFixtures {
		data := readFixture(f, name)
		f.Add(data)
		if store, _, err := FindManifestStore(data); err == nil {
			f.Add(store)
		}
	}
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xEB, 0x00, 0x0A, 'J', 'P', 0, 1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := verify(data, opts) // unguarded so that panics surface
		if r.Valid && (!r.SignatureValid || !r.TrustChainValid || !r.DataHashValid || len(r.Failures) > 0) {
			t.Fatalf("inconsistent result %+v", r)
		}
		if !r.Found && r.Error != NotFoundError {
			t.Fatalf("not found but error %q", r.Error)
		}
	})
}

// FuzzParseJUMBF checks the box parser on arbitrary input.
func FuzzParseJUMBF(f *testing.F) {
	for _, name := range fuzzFixtures {
		if store, _, err := FindManifestStore(readFixture(f, name)); err == nil {
			f.Add(store)
		}
	}
	f.Add(testBox("jumb", testDesc("c2pa"), testBox("cbor", []byte{0xa0})))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseJUMBF(data)
		if err != nil {
			return
		}
		var walk func(*Box, int)
		walk = func(b *Box, depth int) {
			if depth > maxJUMBFDepth {
				t.Fatalf("depth %d exceeds limit", depth)
			}
			if b.Offset < 0 || b.Offset+len(b.Raw) > len(data) || string(data[b.Offset:b.Offset+len(b.Raw)]) != string(b.Raw) {
				t.Fatalf("box %q offset %d does not map to input", b.Type, b.Offset)
			}
			for _, c := range b.Children {
				walk(c, depth+1)
			}
		}
		walk(b, 0)
	})
}
