package c2pa

import (
	"encoding/binary"
	"fmt"
)

// PNG embedding: the manifest store is the data of a "caBX" chunk.

var pngSignature = []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}

func isPNG(data []byte) bool {
	return len(data) >= 8 && string(data[:8]) == string(pngSignature)
}

// findPNG walks the PNG chunks and returns the first caBX chunk's data.
func findPNG(data []byte) ([]byte, []Range, error) {
	i := 8
	for i+8 <= len(data) {
		l := uint64(binary.BigEndian.Uint32(data[i:]))
		typ := string(data[i+4 : i+8])
		end := uint64(i) + 12 + l // length + type + data + CRC
		if end > uint64(len(data)) {
			return nil, nil, fmt.Errorf("%w: PNG chunk %q truncated", ErrNotFound, printable(typ))
		}
		if typ == "caBX" {
			return data[i+8 : i+8+int(l)], []Range{{Start: i, Length: int(end) - i}}, nil
		}
		if typ == "IEND" {
			break
		}
		i = int(end)
	}
	return nil, nil, ErrNotFound
}
