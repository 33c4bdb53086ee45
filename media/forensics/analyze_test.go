package forensics

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"os"
	"strings"
	"testing"

	"golang.org/x/image/bmp"

	"github.com/wardenlab/warden/media/exif"
	"github.com/wardenlab/warden/media/internal/testimg"
)

func analyze(t *testing.T, data []byte) Result {
	t.Helper()
	res, err := Analyze(context.Background(), data, exif.Parse(data))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRealPhotosScoreBelowSynthetic is the end-to-end check: the two real
// photographs must score lower than every synthetic generator mimic.
func TestRealPhotosScoreBelowSynthetic(t *testing.T) {
	sm := smoothField(256, 256, 1, 0.5)
	patterned := upsample2x(sm, true)
	addPeriodic(patterned, 8, 1.5)
	synthetic := map[string][]byte{
		"bilinear 2x, stripped PNG": testimg.PNG(toImage(upsample2x(sm, true))),
		"nearest 2x, stripped PNG":  testimg.PNG(toImage(upsample2x(sm, false))),
		"bilinear 2x + period-8 grid + A1111 parameters": testimg.PNG(toImage(patterned),
			testimg.TextChunk("parameters", "a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, CFG scale: 7")),
	}
	maxReal := 0.0
	for _, f := range []string{"china.jpg", "flower.jpg"} {
		res := analyze(t, fixture(t, f))
		t.Logf("%s: ai_probability %.3f (prnu %.2f spectral %.2f jpeg %.2f metadata %.2f)", f, res.AIProbability, res.PRNUScore, res.SpectralScore, *res.JPEGScore, res.MetadataAnomalyScore)
		if res.AIProbability > 0.35 || res.DetectedGenerator != nil {
			t.Errorf("%s: ai_probability %.3f, generator %v", f, res.AIProbability, res.DetectedGenerator)
		}
		if res.Width != 640 || res.Height != 427 {
			t.Errorf("%s: size %d×%d", f, res.Width, res.Height)
		}
		maxReal = max(maxReal, res.AIProbability)
	}
	for name, data := range synthetic {
		res := analyze(t, data)
		t.Logf("%s: ai_probability %.3f (prnu %.2f spectral %.2f metadata %.2f) %q", name, res.AIProbability, res.PRNUScore, res.SpectralScore, res.MetadataAnomalyScore, res.ArtifactsFound)
		if res.AIProbability < 0.6 || res.AIProbability <= maxReal+0.3 {
			t.Errorf("%s: ai_probability %.3f, real photos up to %.3f", name, res.AIProbability, maxReal)
		}
		if res.JPEGScore != nil {
			t.Errorf("%s: PNG has a JPEG score", name)
		}
	}
	res := analyze(t, synthetic["bilinear 2x + period-8 grid + A1111 parameters"])
	if res.DetectedGenerator == nil || *res.DetectedGenerator != "Stable Diffusion" || res.AIProbability < 0.95 {
		t.Errorf("A1111 file: generator %v probability %.3f", res.DetectedGenerator, res.AIProbability)
	}
	if res := analyze(t, synthetic["nearest 2x, stripped PNG"]); res.DetectedGenerator != nil {
		t.Errorf("generator %q guessed without evidence", *res.DetectedGenerator)
	}
}

// TestSpectralDetector checks the FFT detector on inputs whose answer is
// known: white noise has no peaks, an injected period-8 grid and 2×
// nearest-neighbour up-sampling do.
func TestSpectralDetector(t *testing.T) {
	withGrid := gaussianNoise(512, 512, 4, 2)
	addPeriodic(withGrid, 8, 3)
	tests := []struct {
		name       string
		field      [][]float64
		wantPeriod int // 0: no peak expected
	}{
		{"white noise", gaussianNoise(512, 512, 4, 1), 0},
		{"noise + period-8 grid", withGrid, 8},
		{"bilinear 2x up-sampled noise", upsample2x(gaussianNoise(256, 256, 4, 3), true), 2},
		{"nearest 2x up-sampled smooth field", upsample2x(smoothField(256, 256, 3, 0.5), false), 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lum, _, _, _, err := decodeLuma(context.Background(), testimg.PNG(toImage(tc.field)))
			if err != nil {
				t.Fatal(err)
			}
			r, err := residual(context.Background(), lum)
			if err != nil {
				t.Fatal(err)
			}
			peaks, err := spectralPeaks(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			score, notes := spectralScore(peaks, false)
			t.Logf("peaks %+v score %.2f", peaks, score)
			if tc.wantPeriod == 0 {
				if score > 0.05 || len(notes) > 0 {
					t.Errorf("score %.2f notes %q on white noise", score, notes)
				}
				return
			}
			if score < 0.5 {
				t.Errorf("score %.2f, want ≥ 0.5", score)
			}
			for _, p := range peaks {
				if p.Period == tc.wantPeriod && p.Ratio < 5 {
					t.Errorf("period %d ratio %.1f, want ≥ 5", p.Period, p.Ratio)
				}
			}
			if !strings.Contains(strings.Join(notes, "|"), "1/"+string(rune('0'+tc.wantPeriod))+" frequency") {
				t.Errorf("notes %q lack the period-%d peak", notes, tc.wantPeriod)
			}
		})
	}
}

// TestResidualStats checks the noise-residual features on constructed
// inputs.
func TestResidualStats(t *testing.T) {
	grid := gaussianNoise(256, 256, 4, 5)
	addPeriodic(grid, 8, 6)
	tests := []struct {
		name  string
		field [][]float64
		check func(st residualStats) bool
	}{
		{"gaussian noise: kurtosis ≈ 3, white, uniform", gaussianNoise(256, 256, 10, 4), func(st residualStats) bool {
			return st.Kurtosis > 2.5 && st.Kurtosis < 4.5 && st.Std > 6 && st.Std < 12 &&
				abs(st.Corr2) < 0.1 && abs(st.Corr8) < 0.05 && st.QuadrantCV < 0.05
		}},
		{"smooth up-sampled: tiny residual", upsample2x(smoothField(128, 128, 1, 0.5), true), func(st residualStats) bool {
			return st.Std < smoothStdSynthetic
		}},
		{"period-8 grid: lag-8 correlation", grid, func(st residualStats) bool {
			return st.Corr8 > 0.3
		}},
		{"noisy left half, clean right half: quadrant CV", halfNoise(), func(st residualStats) bool {
			return st.QuadrantCV > quadrantCVHigh*0.9
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lum, _, _, _, err := decodeLuma(context.Background(), testimg.PNG(toImage(tc.field)))
			if err != nil {
				t.Fatal(err)
			}
			r, _ := residual(context.Background(), lum)
			st := measureResidual(r)
			if !tc.check(st) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func halfNoise() [][]float64 {
	f := gaussianNoise(256, 256, 8, 6)
	for y := range f {
		for x := 128; x < 256; x++ {
			f[y][x] = 128
		}
	}
	return f
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestJPEGQuantisation checks table parsing and quality estimation, and
// that a camera-style custom table is told apart.
func TestJPEGQuantisation(t *testing.T) {
	img := toImage(gaussianNoise(64, 64, 5, 1))
	custom := testimg.JPEG(img, 90)
	// Perturb the first luminance DQT entry: no longer an IJG table.
	segs, err := exif.JPEGSegments(custom)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		if s.Marker == 0xDB {
			custom[s.Offset+5]++ // marker(2) length(2) Pq/Tq(1), then entry 0
			break
		}
	}
	tests := []struct {
		name     string
		data     []byte
		standard bool
		quality  int
		score    float64
	}{
		{"go q75", testimg.JPEG(img, 75), true, 75, jpegStandardScore + jpegDefaultQualityBonus},
		{"go q90", testimg.JPEG(img, 90), true, 90, jpegStandardScore},
		{"go q30", testimg.JPEG(img, 30), true, 30, jpegStandardScore},
		{"custom table", custom, false, 90, jpegCustomScore},
		{"china.jpg", fixture(t, "china.jpg"), true, 96, jpegStandardScore},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tables, err := parseDQT(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			jq := analyzeQuant(tables)
			if jq.Standard != tc.standard || jq.Quality != tc.quality {
				t.Errorf("got %+v, want standard=%v quality=%d", jq, tc.standard, tc.quality)
			}
			if s, _ := jpegScore(jq, false); abs(s-tc.score) > 1e-9 {
				t.Errorf("score %.2f, want %.2f", s, tc.score)
			}
		})
	}
	if _, err := parseDQT(testimg.PNG(img)); err == nil {
		t.Error("DQT parsed from a PNG")
	}
}

func TestMetadataScore(t *testing.T) {
	cam := exif.Parse(testimg.JPEG(toImage(gaussianNoise(16, 16, 1, 1)), 90, testimg.ExifSegment(testimg.TIFF(
		map[uint16]testimg.Value{testimg.TagMake: "Canon", testimg.TagModel: "EOS"},
		map[uint16]testimg.Value{testimg.TagExposureTime: [2]uint32{1, 100}, testimg.TagDateTimeOriginal: "2024:01:01 00:00:00"}))))
	tests := []struct {
		name   string
		md     exif.Metadata
		format string
		want   float64
	}{
		{"full camera record", cam, "jpeg", 0},
		{"nothing, jpeg", exif.Metadata{}, "jpeg", metaNoEXIF + metaNoCamera + metaNoExposure + metaNoCapture},
		{"nothing, png", exif.Metadata{}, "png", metaNoEXIF + metaNoCamera + metaNoExposure + metaNoCapture + metaLosslessNoCa},
		{"camera without exposure", exif.Metadata{HasEXIF: true, Make: "X", CaptureTime: cam.CaptureTime}, "jpeg", metaNoExposure},
		{"generator tag", exif.Metadata{HasEXIF: true, Make: "X", GeneratorTags: []string{"Software names DALL-E"}}, "jpeg", metaGenerator},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, notes := metadataScore(tc.md, tc.format)
			if abs(got-tc.want) > 1e-9 {
				t.Errorf("score %.2f, want %.2f (%q)", got, tc.want, notes)
			}
		})
	}
}

func TestCombine(t *testing.T) {
	w := []float64{WeightPRNU, WeightSpectral, WeightMetadata}
	tests := []struct {
		name              string
		scores            []float64
		shift             float64
		minP, maxP, confi float64
	}{
		{"all agree real", []float64{0, 0, 0}, 0, 0, 0.03, 1},
		{"all agree AI", []float64{1, 1, 1}, 0, 0.97, 1, 1},
		{"neutral", []float64{0.5, 0.5, 0.5}, 0, 0.5, 0.5, 1},
		{"generator shift", []float64{0.5, 0.5, 0.5}, GeneratorEvidenceShift, 0.85, 0.9, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, c := combine(tc.scores, w, tc.shift)
			if p < tc.minP || p > tc.maxP || abs(c-tc.confi) > 1e-9 {
				t.Errorf("p=%.3f c=%.3f", p, c)
			}
		})
	}
	if _, c := combine([]float64{0, 1}, []float64{1, 1}, 0); abs(c) > 1e-9 {
		t.Errorf("even split confidence %.3f, want 0", c)
	}
	if WeightPRNU+WeightSpectral+WeightJPEG+WeightMetadata != 1 {
		t.Error("weights do not sum to 1")
	}
}

func TestAnalyzeErrors(t *testing.T) {
	// A PNG header claiming 20000×20000 with no pixel data.
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], 20000)
	binary.BigEndian.PutUint32(ihdr[4:], 20000)
	ihdr[8], ihdr[9] = 8, 2
	huge := append([]byte("\x89PNG\r\n\x1a\n"), pngChunk("IHDR", ihdr)...)
	if _, err := Analyze(context.Background(), huge, exif.Metadata{}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("huge image: err %v, want ErrTooLarge", err)
	}
	if _, err := Analyze(context.Background(), []byte("not an image"), exif.Metadata{}); err == nil {
		t.Error("garbage decoded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Analyze(ctx, fixture(t, "china.jpg"), exif.Metadata{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err %v", err)
	}
}

func pngChunk(typ string, data []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	out = append(append(out, typ...), data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(out[4:]))
}

func TestResultJSON(t *testing.T) {
	res := analyze(t, testimg.PNG(toImage(gaussianNoise(32, 32, 3, 1))))
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"cnn_score":null`, `"cnn_unavailable_reason":"` + CNNUnavailable, `"jpeg_quantization_score":null`, `"detected_generator":null`, `"width":32`, `"height":32`, `"artifacts_found":[`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
}

// TestDecodesOtherFormats checks the golang.org/x/image decoders are wired:
// a BMP is analysed like any other lossless file.
func TestDecodesOtherFormats(t *testing.T) {
	var buf bytes.Buffer
	if err := bmp.Encode(&buf, toImage(gaussianNoise(96, 80, 6, 9))); err != nil {
		t.Fatal(err)
	}
	res := analyze(t, buf.Bytes())
	if res.Width != 96 || res.Height != 80 || res.JPEGScore != nil || res.PRNUScore > 0.1 {
		t.Errorf("bmp result %+v", res)
	}
}
