package ais

import (
	"archive/zip"
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/wardenlab/warden/attacks"
)

var (
	npyDescr   = regexp.MustCompile(`'descr'\s*:\s*'([^']*)'`)
	npyFortran = regexp.MustCompile(`'fortran_order'\s*:\s*(True|False)`)
	npyDims    = regexp.MustCompile(`'shape'\s*:\s*\(([^)]*)\)`)
)

// npyTypes are the element types Decode reads: size and byte order.
var npyTypes = map[string]struct {
	size int
	big  bool
	kind byte // f float, u uint8
}{
	"<f4": {4, false, 'f'}, ">f4": {4, true, 'f'}, "<f8": {8, false, 'f'}, ">f8": {8, true, 'f'},
	"|u1": {1, false, 'u'}, "<u1": {1, false, 'u'}, ">u1": {1, false, 'u'}, "u1": {1, false, 'u'},
}

// npy reads a NumPy array of shape [N, H, W] (→ [N, 1, H, W]),
// [N, C, H, W] or [N, F]: float32 and float64 values are kept (they must
// be finite), uint8 values are divided by 255.
func (d *decoder) npy(z *zipFile, f *zip.File) (attacks.Batch, error) {
	rc, err := z.open(f)
	if err != nil {
		return attacks.Batch{}, err
	}
	defer rc.Close()
	r := bufio.NewReader(rc)
	bad := func(format string, a ...any) (attacks.Batch, error) {
		return attacks.Batch{}, z.errf("%q: %s", f.Name, fmt.Sprintf(format, a...))
	}
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil || string(pre[:6]) != "\x93NUMPY" {
		return bad("not a NumPy .npy array")
	}
	var hlen int
	switch pre[6] {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return bad("truncated .npy header")
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return bad("truncated .npy header")
		}
		hlen = int(binary.LittleEndian.Uint32(b[:]))
	default:
		return bad(".npy format version %d is not supported", pre[6])
	}
	if hlen > 1<<16 {
		return bad(".npy header of %d bytes (at most 65536)", hlen)
	}
	hb := make([]byte, hlen)
	if _, err := io.ReadFull(r, hb); err != nil {
		return bad("truncated .npy header")
	}
	h := string(hb)
	m := npyDescr.FindStringSubmatch(h)
	if m == nil {
		return bad("the .npy header has no 'descr'")
	}
	descr := m[1]
	typ, ok := npyTypes[descr]
	if !ok {
		return bad("element type %q is not supported (float32, float64 or uint8)", m[1])
	}
	if m := npyFortran.FindStringSubmatch(h); m == nil || m[1] != "False" {
		return bad("Fortran-ordered or unreadable 'fortran_order' (save a C-ordered array)")
	}
	m = npyDims.FindStringSubmatch(h)
	if m == nil {
		return bad("the .npy header has no 'shape'")
	}
	var shape []int
	for _, s := range strings.Split(m[1], ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 1 || v > d.lim.MaxValues {
			return bad("shape dimension %q is not a count from 1 to %d", s, d.lim.MaxValues)
		}
		shape = append(shape, int(v))
	}
	switch len(shape) {
	case 2:
	case 3:
		shape = []int{shape[0], 1, shape[1], shape[2]}
	case 4:
		if shape[1] > 4 {
			return bad("%d channels: [N, C, H, W] takes 1 to 4", shape[1])
		}
	default:
		return bad("shape (%s) is not [N, H, W], [N, C, H, W] or [N, F]", m[1])
	}
	if err := d.samples(z, fmt.Sprintf("%q", f.Name), shape[0]); err != nil {
		return attacks.Batch{}, err
	}
	if len(shape) == 4 && (shape[2] > d.lim.MaxImageSide || shape[3] > d.lim.MaxImageSide) {
		return bad("%d×%d images; each side must be at most %d", shape[3], shape[2], d.lim.MaxImageSide)
	}
	total := int64(1)
	for _, v := range shape {
		total *= int64(v) // each factor ≤ MaxValues: checked below before it can overflow
		if total > d.lim.MaxValues {
			return bad("shape %v holds more than %d values, the limit", shape, d.lim.MaxValues)
		}
	}
	if err := d.reserve(z, fmt.Sprintf("%q", f.Name), total); err != nil {
		return attacks.Batch{}, err
	}
	prefix := 12 // magic, version, 4-byte header length
	if pre[6] == 1 {
		prefix = 10
	}
	if want := uint64(prefix+len(hb)) + uint64(typ.size)*uint64(total); f.UncompressedSize64 != want {
		return bad("%d bytes, but an array of shape %v and type %s needs %d", f.UncompressedSize64, shape, descr, want)
	}
	out := make([]float32, total)
	order := binary.ByteOrder(binary.LittleEndian)
	if typ.big {
		order = binary.BigEndian
	}
	buf := make([]byte, 64<<10-(64<<10)%typ.size)
	for i := 0; i < len(out); {
		if i%(1<<20) == 0 {
			if err := d.ctx.Err(); err != nil {
				return attacks.Batch{}, err
			}
		}
		n := min(len(buf), (len(out)-i)*typ.size)
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return bad("the array ends after %d of %d values", i, total)
			}
			return bad("%v", err)
		}
		for k := 0; k < n; k += typ.size {
			var v float64
			switch {
			case typ.kind == 'u':
				v = float64(buf[k]) / 255
			case typ.size == 4:
				v = float64(math.Float32frombits(order.Uint32(buf[k:])))
			default:
				v = math.Float64frombits(order.Uint64(buf[k:]))
			}
			if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > math.MaxFloat32 {
				return bad("value %d is not a finite float32 (%g)", i, v)
			}
			out[i] = float32(v)
			i++
		}
	}
	return attacks.Batch{Data: out, Shape: shape}, nil
}
