package exif_test

import (
	"testing"

	"github.com/wardenlab/warden/media/exif"
	"github.com/wardenlab/warden/media/internal/testimg"
)

// FuzzParse checks Parse never panics and keeps its size bounds.
func FuzzParse(f *testing.F) {
	f.Add(testimg.JPEG(gray(), 50, testimg.ExifSegment(cameraTIFF()), testimg.XMPSegment(`<x:xmpmeta><rdf:Description xmp:CreatorTool="DALL-E"/></x:xmpmeta>`)))
	f.Add(testimg.PNG(gray(), testimg.TextChunk("parameters", "Steps: 1, Sampler: x"), testimg.ITextChunk("workflow", "{}"), testimg.Chunk("eXIf", cameraTIFF())))
	f.Add(append([]byte("RIFF\x00\x00\x00\x00WEBPEXIF\x10\x00\x00\x00"), cameraTIFF()...))
	f.Fuzz(func(t *testing.T, data []byte) {
		md := exif.Parse(data)
		if len(md.Raw) > 512 {
			t.Fatalf("Raw has %d entries", len(md.Raw))
		}
		for k, v := range md.Raw {
			if len(v) > 4096 {
				t.Fatalf("Raw[%q] has %d bytes", k, len(v))
			}
		}
	})
}
