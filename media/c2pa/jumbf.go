package c2pa

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// JUMBF (ISO/IEC 19566-5) box parsing.
//
// A JUMBF superbox ("jumb") holds a description box ("jumd") followed by
// content boxes ("cbor", "json", "bfdb", "bidb", "uuid", ...) or nested
// superboxes. The C2PA manifest store is one such superbox labelled "c2pa".
//
// The parser never allocates based on lengths read from the input: every box
// is a sub-slice of the input buffer, and the nesting depth and total number
// of boxes are bounded.

const (
	// maxJUMBFDepth bounds superbox nesting.
	maxJUMBFDepth = 32
	// maxJUMBFBoxes bounds the total number of boxes parsed from one buffer.
	maxJUMBFBoxes = 20000
	// maxLabelLen bounds a jumd label.
	maxLabelLen = 1024
)

// Description toggle bits of a jumd box.
const (
	toggleRequestable = 0x01
	toggleLabel       = 0x02
	toggleID          = 0x04
	toggleHash        = 0x08
	togglePrivate     = 0x10
)

// ErrMalformedJUMBF is wrapped by all JUMBF parse errors.
var ErrMalformedJUMBF = errors.New("malformed JUMBF")

// Box is one parsed ISO BMFF-style box. For a JUMBF superbox ("jumb") the
// Desc and Children fields are set; for other boxes Payload holds the
// content after the box header.
type Box struct {
	// Type is the four character box type, e.g. "jumb", "cbor".
	Type string
	// Offset is the position of the box in the buffer given to ParseJUMBF.
	Offset int
	// Raw is the whole box including its header.
	Raw []byte
	// HeaderLen is the size of the LBox/TBox(/XLBox) header within Raw.
	HeaderLen int
	// Payload is Raw without the header.
	Payload []byte
	// Desc is the description of a superbox (nil for other boxes).
	Desc *Description
	// Children are the content boxes of a superbox, after the description box.
	Children []*Box
}

// Description is the content of a JUMBF description ("jumd") box.
type Description struct {
	// UUID is the JUMBF content type.
	UUID [16]byte
	// Toggles is the raw toggle byte.
	Toggles byte
	// Label is the optional label (empty if absent).
	Label string
	// ID is the optional box ID; HasID reports whether it was present.
	ID    uint32
	HasID bool
	// Hash is the optional SHA-256 signature field (nil if absent).
	Hash []byte
}

// TypeFourCC returns the first four bytes of the description UUID, which
// for C2PA content types spell the type ("c2pa", "c2ma", "c2as", "c2cl",
// "c2cs", "cbor", "json", ...).
func (d *Description) TypeFourCC() string {
	return string(d.UUID[:4])
}

// UUIDString renders the description UUID as hex.
func (d *Description) UUIDString() string {
	return hex.EncodeToString(d.UUID[:])
}

// Label returns the superbox label, or "" for non-superboxes.
func (b *Box) Label() string {
	if b == nil || b.Desc == nil {
		return ""
	}
	return b.Desc.Label
}

// Child returns the first child superbox with the given label, or nil.
func (b *Box) Child(label string) *Box {
	if b == nil {
		return nil
	}
	for _, c := range b.Children {
		if c.Desc != nil && c.Desc.Label == label {
			return c
		}
	}
	return nil
}

// FirstContent returns the first non-superbox child with the given type, or
// nil.
func (b *Box) FirstContent(typ string) *Box {
	if b == nil {
		return nil
	}
	for _, c := range b.Children {
		if c.Desc == nil && c.Type == typ {
			return c
		}
	}
	return nil
}

// ParseJUMBF parses the single JUMBF superbox at the start of data. Trailing
// bytes after the box are ignored.
func ParseJUMBF(data []byte) (*Box, error) {
	p := &jumbfParser{}
	b, _, err := p.parseBox(data, 0, 0)
	if err != nil {
		return nil, err
	}
	if b.Type != "jumb" {
		return nil, fmt.Errorf("%w: top-level box is %q, want \"jumb\"", ErrMalformedJUMBF, b.Type)
	}
	return b, nil
}

type jumbfParser struct {
	boxes int
}

// readBoxHeader reads the LBox/TBox(/XLBox) header at the start of data and
// returns the box type, the total box length and the header length. A zero
// LBox means "to the end of data".
func readBoxHeader(data []byte) (typ string, size, hdr int, err error) {
	if len(data) < 8 {
		return "", 0, 0, fmt.Errorf("%w: box header truncated (%d bytes)", ErrMalformedJUMBF, len(data))
	}
	l := uint64(binary.BigEndian.Uint32(data))
	typ = string(data[4:8])
	hdr = 8
	switch l {
	case 0:
		l = uint64(len(data))
	case 1:
		if len(data) < 16 {
			return "", 0, 0, fmt.Errorf("%w: extended box header truncated", ErrMalformedJUMBF)
		}
		l = binary.BigEndian.Uint64(data[8:16])
		hdr = 16
	}
	if l < uint64(hdr) {
		return "", 0, 0, fmt.Errorf("%w: box %q length %d smaller than header", ErrMalformedJUMBF, printable(typ), l)
	}
	if l > uint64(len(data)) {
		return "", 0, 0, fmt.Errorf("%w: box %q length %d exceeds remaining %d bytes", ErrMalformedJUMBF, printable(typ), l, len(data))
	}
	return typ, int(l), hdr, nil
}

// parseBox parses one box at the start of data; base is the offset of data
// within the top-level buffer. It returns the box and its total length.
func (p *jumbfParser) parseBox(data []byte, base, depth int) (*Box, int, error) {
	p.boxes++
	if p.boxes > maxJUMBFBoxes {
		return nil, 0, fmt.Errorf("%w: more than %d boxes", ErrMalformedJUMBF, maxJUMBFBoxes)
	}
	typ, size, hdr, err := readBoxHeader(data)
	if err != nil {
		return nil, 0, err
	}
	b := &Box{
		Type:      typ,
		Offset:    base,
		Raw:       data[:size],
		HeaderLen: hdr,
		Payload:   data[hdr:size],
	}
	if typ != "jumb" {
		return b, size, nil
	}
	if depth >= maxJUMBFDepth {
		return nil, 0, fmt.Errorf("%w: superboxes nested deeper than %d", ErrMalformedJUMBF, maxJUMBFDepth)
	}
	// A superbox starts with its description box.
	payload := b.Payload
	dtyp, dsize, dhdr, err := readBoxHeader(payload)
	if err != nil {
		return nil, 0, fmt.Errorf("superbox description: %w", err)
	}
	if dtyp != "jumd" {
		return nil, 0, fmt.Errorf("%w: superbox starts with %q, want \"jumd\"", ErrMalformedJUMBF, printable(dtyp))
	}
	p.boxes++
	desc, err := parseDescription(payload[dhdr:dsize])
	if err != nil {
		return nil, 0, err
	}
	b.Desc = desc
	off := dsize
	for off < len(payload) {
		child, n, err := p.parseBox(payload[off:], base+hdr+off, depth+1)
		if err != nil {
			return nil, 0, fmt.Errorf("in superbox %q: %w", desc.Label, err)
		}
		b.Children = append(b.Children, child)
		off += n
	}
	return b, size, nil
}

// parseDescription decodes the content of a jumd box.
func parseDescription(d []byte) (*Description, error) {
	if len(d) < 17 {
		return nil, fmt.Errorf("%w: description box too short (%d bytes)", ErrMalformedJUMBF, len(d))
	}
	desc := &Description{Toggles: d[16]}
	copy(desc.UUID[:], d[:16])
	rest := d[17:]
	if desc.Toggles&toggleLabel != 0 {
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return nil, fmt.Errorf("%w: description label not NUL-terminated", ErrMalformedJUMBF)
		}
		if i > maxLabelLen {
			return nil, fmt.Errorf("%w: description label longer than %d bytes", ErrMalformedJUMBF, maxLabelLen)
		}
		desc.Label = string(rest[:i])
		rest = rest[i+1:]
	}
	if desc.Toggles&toggleID != 0 {
		if len(rest) < 4 {
			return nil, fmt.Errorf("%w: description ID truncated", ErrMalformedJUMBF)
		}
		desc.ID = binary.BigEndian.Uint32(rest)
		desc.HasID = true
		rest = rest[4:]
	}
	if desc.Toggles&toggleHash != 0 {
		if len(rest) < 32 {
			return nil, fmt.Errorf("%w: description hash truncated", ErrMalformedJUMBF)
		}
		desc.Hash = rest[:32]
	}
	// A private box (togglePrivate) may follow; it carries nothing C2PA
	// validation needs, so it is not parsed.
	return desc, nil
}

// printable returns s with non-printable bytes replaced, for error messages.
func printable(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}
