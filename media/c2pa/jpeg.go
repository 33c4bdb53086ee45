package c2pa

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
)

// JPEG embedding (C2PA spec, "Embedding manifests into JPEG"): the manifest
// store is split across APP11 (0xFFEB) segments in the JPEG XT box format.
// Each segment payload is
//
//	CI "JP" (2) | En box instance (2) | Z sequence number (4) | box data
//
// The first segment (Z=1) carries the start of the JUMBF superbox, header
// included. Every following segment repeats the superbox header
// (LBox/TBox, plus XLBox when LBox == 1), which must be skipped when the
// payloads are concatenated.

const (
	markerAPP11 = 0xEB
	markerSOS   = 0xDA
	markerEOI   = 0xD9
	// maxAPP11Segments bounds the segments collected from one file.
	maxAPP11Segments = 1 << 16
)

func isJPEG(data []byte) bool {
	return len(data) >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF
}

type app11Segment struct {
	seq     uint32
	payload []byte // box data after CI/En/Z
	rng     Range  // whole segment including marker
}

// findJPEG walks the JPEG marker segments up to start-of-scan and
// reassembles the JUMBF box labelled "c2pa".
func findJPEG(data []byte) ([]byte, []Range, error) {
	instances := map[uint16][]app11Segment{}
	var order []uint16
	count := 0
	i := 2
	for i+4 <= len(data) {
		if data[i] != 0xFF {
			return nil, nil, fmt.Errorf("%w: JPEG marker expected at offset %d", ErrNotFound, i)
		}
		m := data[i+1]
		switch {
		case m == 0xFF: // fill byte
			i++
			continue
		case m == 0x01 || (m >= 0xD0 && m <= 0xD7): // standalone markers
			i += 2
			continue
		case m == markerSOS || m == markerEOI:
			i = len(data)
			continue
		}
		l := int(binary.BigEndian.Uint16(data[i+2:]))
		if l < 2 || i+2+l > len(data) {
			break // truncated segment: stop scanning
		}
		seg := data[i+4 : i+2+l]
		if m == markerAPP11 && len(seg) >= 8 && seg[0] == 'J' && seg[1] == 'P' {
			count++
			if count > maxAPP11Segments {
				return nil, nil, fmt.Errorf("%w: too many APP11 segments", ErrMalformedJUMBF)
			}
			en := binary.BigEndian.Uint16(seg[2:])
			if _, ok := instances[en]; !ok {
				order = append(order, en)
			}
			instances[en] = append(instances[en], app11Segment{
				seq:     binary.BigEndian.Uint32(seg[4:]),
				payload: seg[8:],
				rng:     Range{Start: i, Length: 2 + l},
			})
		}
		i += 2 + l
	}
	if len(order) == 0 {
		return nil, nil, ErrNotFound
	}
	var firstErr error
	for _, en := range order {
		store, ranges, err := assembleAPP11(instances[en])
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if isC2PAStore(store) {
			return store, ranges, nil
		}
	}
	if firstErr != nil {
		return nil, nil, firstErr
	}
	return nil, nil, ErrNotFound
}

// assembleAPP11 concatenates the segments of one box instance in sequence
// order, dropping the repeated box header from continuation segments.
func assembleAPP11(segs []app11Segment) ([]byte, []Range, error) {
	sort.SliceStable(segs, func(a, b int) bool { return segs[a].seq < segs[b].seq })
	first := segs[0].payload
	if len(first) < 8 {
		return nil, nil, fmt.Errorf("%w: first APP11 segment too short", ErrMalformedJUMBF)
	}
	hdr := 8
	if binary.BigEndian.Uint32(first) == 1 {
		hdr = 16
	}
	if len(first) < hdr {
		return nil, nil, fmt.Errorf("%w: first APP11 segment too short", ErrMalformedJUMBF)
	}
	total := len(first)
	for _, s := range segs[1:] {
		if len(s.payload) < hdr {
			return nil, nil, fmt.Errorf("%w: APP11 continuation segment %d too short", ErrMalformedJUMBF, s.seq)
		}
		total += len(s.payload) - hdr
	}
	// total is bounded by len(data), so this allocation is safe.
	var buf bytes.Buffer
	buf.Grow(total)
	buf.Write(first)
	ranges := []Range{segs[0].rng}
	for k, s := range segs[1:] {
		if s.seq == segs[k].seq {
			return nil, nil, fmt.Errorf("%w: duplicate APP11 sequence number %d", ErrMalformedJUMBF, s.seq)
		}
		buf.Write(s.payload[hdr:])
		ranges = append(ranges, s.rng)
	}
	return buf.Bytes(), ranges, nil
}

// isC2PAStore reports whether b starts with a JUMBF superbox labelled "c2pa".
func isC2PAStore(b []byte) bool {
	typ, size, hdr, err := readBoxHeader(b)
	if err != nil || typ != "jumb" {
		return false
	}
	p := b[hdr:size]
	dtyp, dsize, dhdr, err := readBoxHeader(p)
	if err != nil || dtyp != "jumd" {
		return false
	}
	d, err := parseDescription(p[dhdr:dsize])
	return err == nil && d.Label == "c2pa"
}
