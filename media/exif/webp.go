package exif

import (
	"bytes"
	"encoding/binary"
)

// parseWebP reads the EXIF and XMP chunks of a RIFF WebP file.
func parseWebP(data []byte, md *Metadata) {
	i := 12
	for n := 0; n < maxChunks && i+8 <= len(data) && !md.stopped(); n++ {
		typ := string(data[i : i+4])
		size := uint64(binary.LittleEndian.Uint32(data[i+4:]))
		if uint64(i)+8+size > uint64(len(data)) {
			md.set("WebPError", "chunk "+typ+" overruns file")
			return
		}
		body := data[i+8 : i+8+int(size)]
		switch typ {
		case "EXIF":
			// Some writers keep the JPEG "Exif\0\0" prefix.
			body = bytes.TrimPrefix(body, exifHeader)
			if err := parseTIFF(body, md); err != nil {
				md.set("ExifError", err.Error())
			}
		case "XMP ":
			parseXMP(body, md)
		}
		i += 8 + int(size) + int(size&1)
	}
}
