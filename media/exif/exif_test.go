package exif_test

import (
	"context"
	"errors"
	"image"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wardenlab/warden/media/exif"
	"github.com/wardenlab/warden/media/internal/testimg"
)

func gray() image.Image { return image.NewGray(image.Rect(0, 0, 16, 16)) }

func cameraTIFF() []byte {
	return testimg.TIFF(
		map[uint16]testimg.Value{
			testimg.TagMake:     "Canon",
			testimg.TagModel:    "Canon EOS R5",
			testimg.TagSoftware: "Firmware Version 1.8.1",
		},
		map[uint16]testimg.Value{
			testimg.TagDateTimeOriginal: "2024:05:17 10:11:12",
			testimg.TagBodySerialNumber: "032021001234",
			testimg.TagLensModel:        "RF24-105mm F4 L IS USM",
			testimg.TagExposureTime:     [2]uint32{1, 250},
			testimg.TagFNumber:          [2]uint32{28, 10},
			testimg.TagISO:              uint16(400),
		})
}

func TestParse(t *testing.T) {
	capture := time.Date(2024, 5, 17, 10, 11, 12, 0, time.UTC)
	xmpAI := `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
 xmp:CreatorTool="Adobe Firefly" Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"/>
</rdf:RDF></x:xmpmeta>`
	xmpElem := `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description><tiff:Make>Nikon</tiff:Make><aux:SerialNumber>N123</aux:SerialNumber>
<xmpMM:History><rdf:Seq><rdf:li><stEvt:softwareAgent>Midjourney v6</stEvt:softwareAgent></rdf:li></rdf:Seq></xmpMM:History>
<exif:DateTimeOriginal>2023-01-02T03:04:05Z</exif:DateTimeOriginal></rdf:Description></rdf:RDF></x:xmpmeta>`
	tests := []struct {
		name  string
		data  []byte
		check func(t *testing.T, md exif.Metadata)
	}{
		{"camera jpeg", testimg.JPEG(gray(), 90, testimg.ExifSegment(cameraTIFF())), func(t *testing.T, md exif.Metadata) {
			want := map[string]string{"Make": md.Make, "Model": md.Model, "Serial": md.Serial, "LensModel": md.LensModel, "ExposureTime": md.ExposureTime, "FNumber": md.FNumber, "ISO": md.ISO, "Software": md.Software}
			exp := map[string]string{"Make": "Canon", "Model": "Canon EOS R5", "Serial": "032021001234", "LensModel": "RF24-105mm F4 L IS USM", "ExposureTime": "1/250", "FNumber": "2.8", "ISO": "400", "Software": "Firmware Version 1.8.1"}
			for k, v := range exp {
				if want[k] != v {
					t.Errorf("%s = %q, want %q", k, want[k], v)
				}
			}
			if !md.HasEXIF || md.HasXMP || md.Format != "jpeg" {
				t.Errorf("HasEXIF=%v HasXMP=%v Format=%q", md.HasEXIF, md.HasXMP, md.Format)
			}
			if md.CaptureTime == nil || !md.CaptureTime.Equal(capture) {
				t.Errorf("CaptureTime = %v, want %v", md.CaptureTime, capture)
			}
			if md.Generator != "" || len(md.GeneratorTags) != 0 {
				t.Errorf("camera file has generator evidence %q %v", md.Generator, md.GeneratorTags)
			}
		}},
		{"xmp attributes name firefly and trainedAlgorithmicMedia", testimg.JPEG(gray(), 90, testimg.XMPSegment(xmpAI)), func(t *testing.T, md exif.Metadata) {
			if !md.HasXMP || md.HasEXIF {
				t.Errorf("HasXMP=%v HasEXIF=%v", md.HasXMP, md.HasEXIF)
			}
			if md.Generator != "Adobe Firefly" || md.Software != "Adobe Firefly" {
				t.Errorf("Generator=%q Software=%q", md.Generator, md.Software)
			}
			if !hasTag(md, "DigitalSourceType: trainedAlgorithmicMedia") {
				t.Errorf("tags %v lack DigitalSourceType", md.GeneratorTags)
			}
		}},
		{"xmp elements and history", testimg.JPEG(gray(), 90, testimg.XMPSegment(xmpElem)), func(t *testing.T, md exif.Metadata) {
			if md.Make != "Nikon" || md.Serial != "N123" || md.Generator != "Midjourney" {
				t.Errorf("Make=%q Serial=%q Generator=%q", md.Make, md.Serial, md.Generator)
			}
			if md.CaptureTime == nil || md.CaptureTime.Year() != 2023 {
				t.Errorf("CaptureTime = %v", md.CaptureTime)
			}
		}},
		{"a1111 png", testimg.PNG(gray(), testimg.TextChunk("parameters", "a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1")), func(t *testing.T, md exif.Metadata) {
			if md.Generator != "Stable Diffusion" || !hasTag(md, "AUTOMATIC1111") || md.Format != "png" {
				t.Errorf("Generator=%q tags=%v", md.Generator, md.GeneratorTags)
			}
		}},
		{"comfyui png compressed itxt", testimg.PNG(gray(), testimg.ITextChunk("prompt", `{"3":{"class_type":"KSampler"}}`)), func(t *testing.T, md exif.Metadata) {
			if md.Generator != "ComfyUI" || !hasTag(md, `"prompt"`) {
				t.Errorf("Generator=%q tags=%v", md.Generator, md.GeneratorTags)
			}
		}},
		{"png eXIf", testimg.PNG(gray(), testimg.Chunk("eXIf", cameraTIFF())), func(t *testing.T, md exif.Metadata) {
			if md.Make != "Canon" || !md.HasEXIF {
				t.Errorf("Make=%q HasEXIF=%v", md.Make, md.HasEXIF)
			}
		}},
		{"plain png", testimg.PNG(gray()), func(t *testing.T, md exif.Metadata) {
			if md.HasEXIF || md.HasXMP || md.Generator != "" || len(md.GeneratorTags) > 0 {
				t.Errorf("unexpected metadata %+v", md)
			}
		}},
		{"caption mentioning image is not evidence", testimg.PNG(gray(), testimg.TextChunk("Description", "una imagen de la playa")), func(t *testing.T, md exif.Metadata) {
			if md.Generator != "" || len(md.GeneratorTags) > 0 {
				t.Errorf("false generator evidence %q %v", md.Generator, md.GeneratorTags)
			}
		}},
		{"not an image", []byte("hello"), func(t *testing.T, md exif.Metadata) {
			if md.Format != "" || md.HasEXIF {
				t.Errorf("Format=%q", md.Format)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, exif.Parse(tc.data)) })
	}
}

func hasTag(md exif.Metadata, sub string) bool {
	for _, tag := range md.GeneratorTags {
		if strings.Contains(tag, sub) {
			return true
		}
	}
	return false
}

// TestHostileTIFF checks loops, huge counts and truncation do not hang,
// panic or produce values.
func TestHostileTIFF(t *testing.T) {
	le := func(v ...byte) []byte { return v }
	// IFD0 at 8 with one entry: Exif pointer back to offset 8 (a loop).
	loop := append(le('I', 'I', 42, 0, 8, 0, 0, 0, 1, 0), le(0x69, 0x87, 4, 0, 1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0)...)
	// Make with count 0xFFFFFFFF at a huge offset.
	huge := append(le('I', 'I', 42, 0, 8, 0, 0, 0, 1, 0), le(0x0F, 0x01, 2, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xF0, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0)...)
	full := testimg.ExifSegment(cameraTIFF())
	for name, seg := range map[string][]byte{
		"loop":      testimg.ExifSegment(loop),
		"huge":      testimg.ExifSegment(huge),
		"truncated": full[:len(full)/2],
	} {
		t.Run(name, func(t *testing.T) {
			md := exif.Parse(testimg.JPEG(gray(), 90, seg))
			if md.Make != "" && name != "truncated" {
				t.Errorf("Make = %q from hostile TIFF", md.Make)
			}
		})
	}
}

func TestFixturePhotos(t *testing.T) {
	for _, f := range []string{"china.jpg", "flower.jpg"} {
		data, err := os.ReadFile("../forensics/testdata/" + f)
		if err != nil {
			t.Skipf("fixture: %v", err)
		}
		md := exif.Parse(data)
		if md.Format != "jpeg" || md.Generator != "" || len(md.GeneratorTags) != 0 {
			t.Errorf("%s: Format=%q Generator=%q tags=%v", f, md.Format, md.Generator, md.GeneratorTags)
		}
	}
}

func TestJPEGSegments(t *testing.T) {
	data := testimg.JPEG(gray(), 90, testimg.ExifSegment(cameraTIFF()))
	segs, err := exif.JPEGSegments(data)
	if err != nil {
		t.Fatal(err)
	}
	if segs[0].Marker != 0xE1 || segs[0].Offset != 2 || segs[len(segs)-1].Marker != 0xDA {
		t.Errorf("segments: first %x@%d last %x", segs[0].Marker, segs[0].Offset, segs[len(segs)-1].Marker)
	}
	if _, err := exif.JPEGSegments([]byte("nope")); err == nil {
		t.Error("no error for non-JPEG")
	}
}

// TestParseContextStops: a cancelled job's context stops the parse before
// any field is read, and ParseContext reports the context's error; the same
// bytes with a live context give the camera fields.
func TestParseContextStops(t *testing.T) {
	data := testimg.JPEG(gray(), 90, testimg.ExifSegment(cameraTIFF()))
	md, err := exif.ParseContext(context.Background(), data)
	if err != nil || md.Make == "" {
		t.Fatalf("live context: Make=%q err=%v", md.Make, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	md, err = exif.ParseContext(ctx, data)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: err=%v", err)
	}
	if md.Make != "" || md.HasEXIF {
		t.Errorf("cancelled parse read fields: Make=%q HasEXIF=%v", md.Make, md.HasEXIF)
	}
}
