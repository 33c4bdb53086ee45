package forensics

import (
	"fmt"
	"math"

	"github.com/wardenlab/warden/media/exif"
)

// stdLuma and stdChroma are the ITU-T T.81 Annex K example quantisation
// tables (natural order) that libjpeg, PIL, Go and most software encoders
// scale by the IJG quality formula.
var (
	stdLuma = [64]int{
		16, 11, 10, 16, 24, 40, 51, 61,
		12, 12, 14, 19, 26, 58, 60, 55,
		14, 13, 16, 24, 40, 57, 69, 56,
		14, 17, 22, 29, 51, 87, 80, 62,
		18, 22, 37, 56, 68, 109, 103, 77,
		24, 35, 55, 64, 81, 104, 113, 92,
		49, 64, 78, 87, 103, 121, 120, 101,
		72, 92, 95, 98, 112, 100, 103, 99,
	}
	stdChroma = [64]int{
		17, 18, 24, 47, 99, 99, 99, 99,
		18, 21, 26, 66, 99, 99, 99, 99,
		24, 26, 56, 99, 99, 99, 99, 99,
		47, 66, 99, 99, 99, 99, 99, 99,
		99, 99, 99, 99, 99, 99, 99, 99,
		99, 99, 99, 99, 99, 99, 99, 99,
		99, 99, 99, 99, 99, 99, 99, 99,
		99, 99, 99, 99, 99, 99, 99, 99,
	}
	// zigzag[k] is the natural-order index of the k-th DQT entry.
	zigzag = [64]int{
		0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
		12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
		35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
		58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
	}
)

// jpegQuant describes a JPEG file's quantisation tables.
type jpegQuant struct {
	Tables   int  // number of distinct tables defined
	Standard bool // every table is an IJG-scaled Annex K table at one quality
	Quality  int  // IJG quality: exact when Standard, else the closest fit
}

// parseDQT reads the quantisation tables (natural order, by table id) of a
// JPEG file. It returns an error if there are none or one is malformed.
func parseDQT(data []byte) (map[int][64]int, error) {
	segs, err := exif.JPEGSegments(data)
	if len(segs) == 0 && err != nil {
		return nil, fmt.Errorf("jpeg segments: %w", err)
	}
	tables := map[int][64]int{}
	for _, s := range segs {
		if s.Marker != 0xDB {
			continue
		}
		p := s.Payload
		for len(p) > 0 {
			prec, id := int(p[0]>>4), int(p[0]&0x0F)
			size := 64 * (1 + prec)
			if prec > 1 || id > 3 || len(p) < 1+size {
				return nil, fmt.Errorf("malformed DQT segment at offset %d", s.Offset)
			}
			var t [64]int
			for k := 0; k < 64; k++ {
				v := int(p[1+k])
				if prec == 1 {
					v = int(p[1+2*k])<<8 | int(p[2+2*k])
				}
				t[zigzag[k]] = v
			}
			tables[id] = t
			p = p[1+size:]
		}
	}
	if len(tables) == 0 {
		return nil, fmt.Errorf("no DQT tables")
	}
	return tables, nil
}

// ijgScale scales an Annex K table to quality q the way libjpeg does
// (jpeg_quality_scaling with force_baseline).
func ijgScale(std *[64]int, q int) [64]int {
	scale := 200 - 2*q
	if q < 50 {
		scale = 5000 / q
	}
	var t [64]int
	for i, v := range std {
		x := (v*scale + 50) / 100
		t[i] = min(max(x, 1), 255)
	}
	return t
}

// analyzeQuant compares the tables with IJG-scaled Annex K tables at every
// quality 1…100: table 0 against the luminance table, others against the
// chrominance table.
func analyzeQuant(tables map[int][64]int) jpegQuant {
	jq := jpegQuant{Tables: len(tables)}
	bestErr := math.Inf(1)
	for q := 1; q <= 100; q++ {
		luma, chroma := ijgScale(&stdLuma, q), ijgScale(&stdChroma, q)
		var errSum float64
		exact := true
		for id, t := range tables {
			ref := &chroma
			if id == 0 {
				ref = &luma
			}
			for i := range t {
				d := t[i] - ref[i]
				if d != 0 {
					exact = false
				}
				if id == 0 {
					errSum += math.Abs(float64(d))
				}
			}
		}
		if exact {
			return jpegQuant{Tables: len(tables), Standard: true, Quality: q}
		}
		if errSum < bestErr {
			bestErr, jq.Quality = errSum, q
		}
	}
	return jq
}
