package c2pa

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// testDesc serialises a jumd box with a label.
func testDesc(label string) []byte {
	p := append(bytes.Repeat([]byte{0}, 16), toggleRequestable|toggleLabel)
	p = append(p, label...)
	return testBox("jumd", append(p, 0))
}

func TestParseJUMBF(t *testing.T) {
	inner := testBox("jumb", testDesc("inner"), testBox("cbor", []byte{0xa0}))
	outer := testBox("jumb", testDesc("outer"), inner, testBox("json", []byte("{}")))
	b, err := ParseJUMBF(outer)
	if err != nil {
		t.Fatal(err)
	}
	if b.Label() != "outer" || len(b.Children) != 2 || b.Child("inner") == nil {
		t.Fatalf("unexpected tree %+v", b)
	}
	c := b.Child("inner").FirstContent("cbor")
	if c == nil || !bytes.Equal(c.Payload, []byte{0xa0}) || !bytes.Equal(outer[c.Offset:c.Offset+len(c.Raw)], c.Raw) {
		t.Fatalf("content box %+v", c)
	}
}

func TestParseJUMBFHostile(t *testing.T) {
	valid := testBox("jumb", testDesc("x"), testBox("cbor", []byte{0xa0}))
	huge := bytes.Clone(valid)
	binary.BigEndian.PutUint32(huge, 0xFFFFFFF0)
	ext := append([]byte{0, 0, 0, 1, 'j', 'u', 'm', 'b'}, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)
	small := bytes.Clone(valid)
	binary.BigEndian.PutUint32(small, 4)
	noLabelEnd := testBox("jumb", testBox("jumd", append(bytes.Repeat([]byte{0}, 16), toggleLabel, 'a', 'b')))
	notJumd := testBox("jumb", testBox("cbor", []byte{0xa0}))

	deep := testBox("cbor", nil)
	for i := 0; i < maxJUMBFDepth+2; i++ {
		deep = testBox("jumb", testDesc("d"), deep)
	}
	var many [][]byte
	many = append(many, testDesc("many"))
	for i := 0; i < maxJUMBFBoxes+1; i++ {
		many = append(many, testBox("free"))
	}
	tests := map[string][]byte{
		"empty": nil, "huge-length": huge, "ext-length": ext, "length-below-header": small,
		"label-unterminated": noLabelEnd, "no-description": notJumd, "too-deep": deep,
		"too-many": testBox("jumb", many...), "not-jumb": testBox("cbor", []byte{0xa0}),
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseJUMBF(in); !errors.Is(err, ErrMalformedJUMBF) {
				t.Fatalf("err = %v, want ErrMalformedJUMBF", err)
			}
		})
	}
}

func TestAssembleAPP11OutOfOrder(t *testing.T) {
	store := testBox("jumb", testDesc("c2pa"), testBox("cbor", bytes.Repeat([]byte{7}, 100)))
	seg := func(z uint32, part []byte) []byte {
		p := []byte{'J', 'P', 0x02, 0x11}
		p = binary.BigEndian.AppendUint32(p, z)
		p = append(p, part...)
		s := []byte{0xFF, 0xEB}
		s = binary.BigEndian.AppendUint16(s, uint16(len(p)+2))
		return append(s, p...)
	}
	// Split after 60 bytes; the continuation repeats the 8 byte header.
	jpg := []byte{0xFF, 0xD8}
	jpg = append(jpg, seg(2, append(bytes.Clone(store[:8]), store[60:]...))...)
	jpg = append(jpg, seg(1, store[:60])...)
	jpg = append(jpg, 0xFF, 0xD9)
	got, ranges, err := FindManifestStore(jpg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, store) || len(ranges) != 2 {
		t.Fatalf("reassembled %d bytes (want %d), %d ranges", len(got), len(store), len(ranges))
	}
}

func TestDataHashExclusions(t *testing.T) {
	data := []byte("0123456789")
	want, _ := hashBytes("sha256", []byte("01789"))
	got, err := DataHash("sha256", data, []Range{{Start: 5, Length: 2}, {Start: 2, Length: 3}})
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got %x %v want %x", got, err, want)
	}
	for _, ex := range [][]Range{{{Start: 8, Length: 5}}, {{Start: -1, Length: 1}}, {{Start: 1, Length: 3}, {Start: 2, Length: 1}}} {
		if _, err := DataHash("sha256", data, ex); err == nil {
			t.Errorf("exclusions %v accepted", ex)
		}
	}
	if _, err := DataHash("md5", data, nil); err == nil {
		t.Error("md5 accepted")
	}
}

func TestRawStoreNeedsC2PALabel(t *testing.T) {
	other := testBox("jumb", testDesc("not-c2pa"), testBox("cbor", []byte{0xa0}))
	if _, _, err := FindManifestStore(other); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	r := Verify(other, Options{})
	if r.Found || r.Error != NotFoundError {
		t.Fatalf("got %+v", r)
	}
}
