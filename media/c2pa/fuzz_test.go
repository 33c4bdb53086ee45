package c2pa

import (
	"encoding/binary"
	"testing"
)

var fuzzFixtures = []string{"C.jpg", "CA.jpg", "XCA.jpg"}

// shrinkBox re-serialises a box tree with embedded binary data ("bidb",
// the thumbnails) cut to 16 bytes, so that fuzz seeds stay small (about
// 16 KiB instead of 100+ KiB) while keeping claims, signatures and
// certificate chains intact.
func shrinkBox(b *Box) []byte {
	if b.Desc == nil {
		if b.Type == "bidb" && len(b.Payload) > 16 {
			return testBox(b.Type, b.Payload[:16])
		}
		return b.Raw
	}
	parts := [][]byte{descRaw(b)}
	for _, c := range b.Children {
		parts = append(parts, shrinkBox(c))
	}
	return testBox("jumb", parts...)
}

// fuzzSeedStores returns the fixtures' manifest stores, shrunk.
func fuzzSeedStores(f *testing.F) [][]byte {
	var out [][]byte
	for _, name := range fuzzFixtures {
		store, _, err := FindManifestStore(readFixture(f, name))
		if err != nil {
			f.Fatal(err)
		}
		b, err := ParseJUMBF(store)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, shrinkBox(b))
	}
	return out
}

// jpegWithStore embeds a store in a minimal JPEG, split over two APP11
// segments.
func jpegWithStore(store []byte) []byte {
	seg := func(z uint32, part []byte) []byte {
		p := binary.BigEndian.AppendUint32([]byte{'J', 'P', 0x02, 0x11}, z)
		p = append(p, part...)
		s := binary.BigEndian.AppendUint16([]byte{0xFF, 0xEB}, uint16(len(p)+2))
		return append(s, p...)
	}
	half := len(store) / 2
	jpg := []byte{0xFF, 0xD8}
	jpg = append(jpg, seg(1, store[:half])...)
	jpg = append(jpg, seg(2, append(append([]byte(nil), store[:8]...), store[half:]...))...)
	return append(jpg, 0xFF, 0xDA, 0x00, 0x02, 0xFF, 0xD9)
}

// FuzzVerify checks that verification of arbitrary input never panics and
// never reports an invalid-looking result as valid.
func FuzzVerify(f *testing.F) {
	opts := testOptions(f)
	// The full fixtures (100+ KiB) make the fuzzer crawl; they are covered
	// by the unit tests. Seed with their shrunk stores instead, raw and
	// embedded in a JPEG and a PNG.
	for _, store := range fuzzSeedStores(f) {
		f.Add(store)
		f.Add(jpegWithStore(store))
		png := appendPNGChunk(append([]byte(nil), pngSignature...), "caBX", store)
		f.Add(appendPNGChunk(png, "IEND", nil))
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
	for _, store := range fuzzSeedStores(f) {
		f.Add(store)
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
