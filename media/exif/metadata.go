package exif

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"time"
)

// Metadata is what a file says about its origin. Every field is taken from
// the file; nothing is inferred.
type Metadata struct {
	Make      string // EXIF/XMP camera make
	Model     string // EXIF/XMP camera model
	Serial    string // body serial number (Exif BodySerialNumber, DNG CameraSerialNumber or XMP aux:SerialNumber)
	Software  string // EXIF Software or XMP CreatorTool
	LensModel string
	// ExposureTime, FNumber and ISO are the exposure record a camera writes;
	// generators and editors that synthesise images usually leave them out.
	ExposureTime string
	FNumber      string
	ISO          string
	// CaptureTime is DateTimeOriginal (falling back to XMP
	// DateTimeOriginal/CreateDate), interpreted in its recorded offset or UTC.
	CaptureTime *time.Time
	HasEXIF     bool
	HasXMP      bool
	// Format is the container that was parsed: "jpeg", "png", "webp" or ""
	// when the bytes are none of them.
	Format string
	// GeneratorTags are human-readable evidence strings, one per finding,
	// e.g. `PNG text chunk "parameters" (Stable Diffusion AUTOMATIC1111)`.
	GeneratorTags []string
	// Generator names the image generator when, and only when, the evidence
	// names one. It is empty when evidence only says "AI-generated".
	Generator string
	// DigitalSourceType is the IPTC digital source type from XMP, if any.
	DigitalSourceType string
	// Raw holds every extracted field by name ("Make", "XMP:CreatorTool",
	// "PNG:parameters", ...). Values are truncated to maxRawValue bytes.
	Raw map[string]string

	ctx context.Context // while parsing: stops the loops when done
}

const (
	maxRawValue   = 4096    // longest value kept in Raw
	maxRawEntries = 512     // most entries kept in Raw
	maxInflate    = 1 << 20 // most bytes inflated from one compressed PNG chunk
)

// Parse extracts metadata from a JPEG, PNG or WebP file. Unknown formats and
// damaged files yield whatever could be read before the damage.
func Parse(data []byte) Metadata {
	md, _ := ParseContext(context.Background(), data)
	return md
}

// ParseContext is Parse that stops between segments, chunks, IFD entries
// and XMP tokens once ctx is done (the job was cancelled or timed out),
// returning what was read and ctx's error.
func ParseContext(ctx context.Context, data []byte) (Metadata, error) {
	md := Metadata{Raw: map[string]string{}, ctx: ctx}
	switch {
	case len(data) >= 3 && data[0] == 0xFF && data[1] == 0xD8:
		md.Format = "jpeg"
		parseJPEG(data, &md)
	case bytes.HasPrefix(data, pngSignature):
		md.Format = "png"
		parsePNG(data, &md)
	case len(data) >= 12 && string(data[0:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		md.Format = "webp"
		parseWebP(data, &md)
	}
	md.finish()
	err := ctx.Err()
	md.ctx = nil
	return md, err
}

// stopped reports whether the parse's context is done.
func (md *Metadata) stopped() bool {
	return md.ctx != nil && md.ctx.Err() != nil
}

// set records a raw field, keeping the first value seen for a name.
func (md *Metadata) set(name, value string) {
	value = strings.TrimSpace(value)
	if value == "" || len(md.Raw) >= maxRawEntries {
		return
	}
	if _, ok := md.Raw[name]; ok {
		return
	}
	if len(value) > maxRawValue {
		value = value[:maxRawValue]
	}
	md.Raw[name] = value
}

// first returns the first non-empty raw value among names.
func (md *Metadata) first(names ...string) string {
	for _, n := range names {
		if v := md.Raw[n]; v != "" {
			return v
		}
	}
	return ""
}

// finish derives the typed fields from Raw and runs generator detection.
func (md *Metadata) finish() {
	md.Make = md.first("Make", "XMP:Make")
	md.Model = md.first("Model", "XMP:Model")
	md.Serial = md.first("BodySerialNumber", "CameraSerialNumber", "XMP:BodySerialNumber", "XMP:SerialNumber")
	md.Software = md.first("Software", "XMP:CreatorTool")
	md.LensModel = md.first("LensModel", "XMP:LensModel", "XMP:Lens")
	md.ExposureTime = md.first("ExposureTime", "XMP:ExposureTime")
	md.FNumber = md.first("FNumber", "XMP:FNumber")
	md.ISO = md.first("ISOSpeedRatings", "XMP:ISOSpeedRatings", "XMP:PhotographicSensitivity")
	md.DigitalSourceType = md.first("XMP:DigitalSourceType")
	if t, ok := parseExifTime(md.first("DateTimeOriginal"), md.first("OffsetTimeOriginal")); ok {
		md.CaptureTime = &t
	} else if t, ok := parseXMPTime(md.first("XMP:DateTimeOriginal", "XMP:CreateDate")); ok {
		md.CaptureTime = &t
	}
	detectGenerator(md)
	sort.Strings(md.GeneratorTags)
}

// parseExifTime parses "2006:01:02 15:04:05" with an optional "+07:00"
// offset; without an offset the time is taken as UTC.
func parseExifTime(s, offset string) (time.Time, bool) {
	s = strings.TrimSpace(strings.TrimRight(s, "\x00"))
	if len(s) < 19 {
		return time.Time{}, false
	}
	loc := time.UTC
	if o, err := time.Parse("-07:00", strings.TrimSpace(offset)); err == nil {
		loc = o.Location()
	}
	t, err := time.ParseInLocation("2006:01:02 15:04:05", s[:19], loc)
	if err != nil || t.Year() < 1900 {
		return time.Time{}, false
	}
	return t, true
}

// parseXMPTime parses the ISO 8601 forms XMP uses.
func parseXMPTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
