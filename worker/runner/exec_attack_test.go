package runner

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"math"
	"testing"

	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/modelspec"
)

// brightness is a pure-Go Model (no libtorch): it calls an image "bright"
// when its mean value is above 0.5, with logits ±k·(mean−0.5), and
// exposes the exact cross-entropy gradient, so white-box attacks run on it.
type brightness struct{ cfg modelspec.Config }

const brightnessK = 20

func newBrightness(shape ...int) brightness {
	return brightness{cfg: modelspec.Config{Type: modelspec.TypeCV, InputShape: shape, Labels: []string{"dark", "bright"}, ClipMin: 0, ClipMax: 1}}
}

func (b brightness) probs(x []float32) []float32 {
	var sum float64
	for _, v := range x {
		sum += float64(v)
	}
	z := brightnessK * (sum/float64(len(x)) - 0.5)
	p1 := float32(1 / (1 + math.Exp(-2*z)))
	return []float32{1 - p1, p1}
}

func (b brightness) Predict(_ context.Context, x attacks.Batch) ([][]float32, error) {
	out := make([][]float32, x.N())
	for i := range out {
		out[i] = b.probs(x.Sample(i))
	}
	return out, nil
}

func (b brightness) LossGradient(_ context.Context, x attacks.Batch, labels []int) (attacks.Batch, []float32, error) {
	g := attacks.Batch{Data: make([]float32, len(x.Data)), Shape: append([]int(nil), x.Shape...)}
	loss := make([]float32, x.N())
	n := float32(x.SampleSize())
	for i := 0; i < x.N(); i++ {
		p := b.probs(x.Sample(i))
		// d logit1/dx = k/n, d logit0/dx = -k/n.
		d := (p[1]-b1(labels[i] == 1))*brightnessK/n - (p[0]-b1(labels[i] == 0))*brightnessK/n
		for j := range x.Sample(i) {
			g.Data[i*x.SampleSize()+j] = d
		}
		loss[i] = -float32(math.Log(float64(p[labels[i]]) + 1e-12))
	}
	return g, loss, nil
}

func b1(c bool) float32 {
	if c {
		return 1
	}
	return 0
}

func (b brightness) NumClasses() int          { return 2 }
func (b brightness) Labels() []string         { return b.cfg.Labels }
func (b brightness) Config() modelspec.Config { return b.cfg }
func (b brightness) Device() string           { return "cpu" }
func (b brightness) PredictText(context.Context, []string) ([][]float32, error) {
	return nil, nil
}

// greyPNG is a w×h PNG of one grey level, base64-encoded as a client sends it.
func greyPNG(t *testing.T, w, h int, level uint8) string {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = level
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// decodePNG reads a base64 PNG of a result and checks its size.
func decodePNG(t *testing.T, b64 string, w, h int) image.Image {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("not base64: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("PNG of %dx%d, want the model's %dx%d", b.Dx(), b.Dy(), w, h)
	}
	return img
}

func fgsmInput(t *testing.T, inputs ...json.RawMessage) jobs.AttackInput {
	t.Helper()
	params, _, err := attacks.ValidateParams(attacks.IDFGSM, json.RawMessage(`{"epsilon":0.3}`))
	if err != nil {
		t.Fatal(err)
	}
	return jobs.AttackInput{ModelID: "mdl_b", AttackMethodID: attacks.IDFGSM, Params: params, Inputs: inputs}
}

// roundTrip sends a result through JSON, as the runner's pipe and the
// result row do.
func roundTrip(t *testing.T, r jobs.AttackResult) jobs.AttackResult {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var out jobs.AttackResult
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAttackResultsInTheClientsForm: a base64 image comes back as base64
// PNGs at the model's input resolution (the adversarial one as the
// attack left it), numbers come back as numbers, each sample of a mixed
// batch in its own form, and the PNG artifacts are the inline images.
func TestAttackResultsInTheClientsForm(t *testing.T) {
	m := newBrightness(1, 4, 4)
	img, _ := json.Marshal(greyPNG(t, 8, 8, 115)) // 0.45: dark; FGSM adds 0.3
	nums, _ := json.Marshal(make16(0.45))
	stored := map[string][]byte{}
	sink := Sink{Artifact: func(_ context.Context, name, _ string, data []byte) (string, error) {
		stored[name] = data
		return name, nil
	}}
	d, err := Execute(context.Background(), m, Request{Op: OpAttack, Attack: ptr(fgsmInput(t, img, nums))}, Env{}, sink)
	if err != nil {
		t.Fatal(err)
	}
	res := roundTrip(t, *d.Attack)
	if len(res.BatchResults) != 2 {
		t.Fatalf("batch of %d", len(res.BatchResults))
	}
	first, second := res.BatchResults[0], res.BatchResults[1]
	if !first.AttackSuccess || !second.AttackSuccess {
		t.Fatalf("FGSM did not flip the brightness model: %+v", res)
	}
	if first.InputFormat != jobs.FormatImage || first.OriginalInput == nil || !first.OriginalInput.IsText || first.AdversarialExample == nil {
		t.Fatalf("image sample: %+v", first)
	}
	orig := decodePNG(t, first.OriginalInput.Text, 4, 4)
	adv := decodePNG(t, first.AdversarialExample.Text, 4, 4)
	if g := color.GrayModel.Convert(orig.At(1, 1)).(color.Gray).Y; g < 113 || g > 117 {
		t.Errorf("original PNG level %d, want about 115", g)
	}
	if g := color.GrayModel.Convert(adv.At(1, 1)).(color.Gray).Y; g < 188 || g > 194 {
		t.Errorf("adversarial PNG level %d, want about 191 (0.45+0.3)", g)
	}
	if res.OriginalInput == nil || res.OriginalInput.Text != first.OriginalInput.Text {
		t.Error("the top-level sample is not the first one")
	}
	raw, _ := base64.StdEncoding.DecodeString(first.AdversarialExample.Text)
	if !bytes.Equal(stored["0_adversarial.png"], raw) {
		t.Error("the adversarial artifact differs from the inline PNG")
	}
	if second.InputFormat != jobs.FormatNumbers || second.OriginalInput == nil || second.OriginalInput.IsText || len(second.AdversarialExample.Numbers) != 16 {
		t.Fatalf("numbers sample: %+v", second)
	}
	if v := second.AdversarialExample.Numbers[0]; v < 0.74 || v > 0.76 {
		t.Errorf("adversarial value %g, want 0.75", v)
	}
	if b, _ := json.Marshal(first); !bytes.Contains(b, []byte(`"original_input":"iVBOR`)) {
		t.Errorf("the image is not a base64 PNG string in JSON: %.200s", b)
	}
}

// TestAttackResultsKeepLargeInputs: inputs far above the old 4096-value
// cap are returned, in either form.
func TestAttackResultsKeepLargeInputs(t *testing.T) {
	m := newBrightness(3, 64, 64) // 12288 values
	img, _ := json.Marshal(greyPNG(t, 100, 100, 100))
	xs := make([]float32, 3*64*64)
	for i := range xs {
		xs[i] = 0.4
	}
	nums, _ := json.Marshal(xs)
	d, err := Execute(context.Background(), m, Request{Op: OpAttack, Attack: ptr(fgsmInput(t, img, nums))}, Env{}, Sink{})
	if err != nil {
		t.Fatal(err)
	}
	res := roundTrip(t, *d.Attack)
	decodePNG(t, res.BatchResults[0].AdversarialExample.Text, 64, 64)
	if n := len(res.BatchResults[1].AdversarialExample.Numbers); n != len(xs) {
		t.Errorf("numbers result has %d values, want %d", n, len(xs))
	}
}

// TestInlineSampleBudget: past the budget a sample's values are left out
// (the format still says how they would have come); the budget is spent.
func TestInlineSampleBudget(t *testing.T) {
	m := newBrightness(1, 4, 4)
	x := attacks.Batch{Data: make16(0.5), Shape: []int{1, 1, 4, 4}}
	pngs := samplePNGs{cfg: m.cfg, x: x, adv: x}
	img, _ := json.Marshal(greyPNG(t, 4, 4, 128))
	for _, tc := range []struct {
		raw    json.RawMessage
		budget int
		inline bool
		format string
	}{
		{img, 1 << 20, true, jobs.FormatImage},
		{img, 10, false, jobs.FormatImage},
		{json.RawMessage(` [0.5]`), 16 * 32, true, jobs.FormatNumbers},
		{json.RawMessage(`[0.5]`), 16*32 - 1, false, jobs.FormatNumbers},
	} {
		budget := tc.budget
		format, orig, adv, err := inlineSample(tc.raw, &pngs, &budget)
		if err != nil {
			t.Fatal(err)
		}
		if format != tc.format || (orig != nil) != tc.inline || (adv != nil) != tc.inline {
			t.Errorf("%s with budget %d: format %q inline %v/%v, want %q %v", tc.format, tc.budget, format, orig != nil, adv != nil, tc.format, tc.inline)
		}
		if tc.inline == (budget == tc.budget) {
			t.Errorf("%s: budget %d → %d", tc.format, tc.budget, budget)
		}
	}
}

func make16(v float32) []float32 {
	xs := make([]float32, 16)
	for i := range xs {
		xs[i] = v
	}
	return xs
}

func ptr[T any](v T) *T { return &v }
