// Package modelspec says how a registered model is fed and read: the input
// shape, value range and labels of an image classifier, the vocabulary of a
// bag-of-words text classifier, how a client's input (base64 image, raw
// numbers, text) becomes the float vector the model takes, and how logits
// become a label and a confidence. The API uses it to reject bad input
// before enqueueing; the worker uses it to build tensors.
package modelspec

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	_ "image/gif" // decoders for client images
	_ "image/jpeg"
	_ "image/png"
	"math"
	"strings"
	"unicode"

	"github.com/wardenlab/warden"
	"golang.org/x/sync/semaphore"
)

// Model types (spec 002).
const (
	TypeCV  = "CV"
	TypeNLP = "NLP"
)

// Tokenizers of NLP models.
const (
	TokenizerBOW  = "bow"  // a TorchScript module over word counts of Vocabulary
	TokenizerText = "text" // a remote endpoint that takes the text itself
)

// Config is derived from a model's type and metadata at registration.
type Config struct {
	Type       string   `json:"type"`
	InputShape []int    `json:"input_shape"` // per sample: C,H,W for images; [V] for bag-of-words text
	Labels     []string `json:"labels,omitempty"`
	ClipMin    float32  `json:"clip_min"`
	ClipMax    float32  `json:"clip_max"`
	Tokenizer  string   `json:"tokenizer,omitempty"` // "bow"
	Vocabulary []string `json:"vocabulary,omitempty"`
	// AnyOutput: the model's output need not be class logits [batch,
	// classes] (AISpectra's segmentation, forecasting and detection
	// models); set by the runner for analyses, never by metadata.
	AnyOutput  bool `json:"-"`
	vocabIndex map[string]int
}

// Limits on what metadata may declare.
const (
	maxElements = 3 * 512 * 512
	maxVocab    = 200000
	maxLabels   = 10000
	maxRange    = 1e6 // |input_range| bound: keeps max-min and the image scaling finite in float32
)

// ParseConfig validates metadata for a model type. details maps each bad
// field to its reason. Metadata is free-form: these keys are read when
// present, any other key is the owner's and is kept as it is.
//
// CV metadata: "input_shape" [C,H,W] (C 1 or 3) or [features]; optional
// "labels", "input_range" [min,max] (default [0,1]).
// NLP metadata: "tokenizer" "bow" with "vocabulary" [words] (a vocabulary
// alone means "bow"), or "text" (the model takes the text itself);
// optional "labels".
// A CV model without input_shape or an NLP model without tokenizer is
// valid: validation infers what is missing (Incomplete reports it).
func ParseConfig(modelType string, metadata json.RawMessage) (Config, map[string]string) {
	details := map[string]string{}
	var md struct {
		InputShape []int     `json:"input_shape"`
		Labels     []string  `json:"labels"`
		InputRange []float32 `json:"input_range"`
		Tokenizer  string    `json:"tokenizer"`
		Vocabulary []string  `json:"vocabulary"`
	}
	if len(metadata) > 0 && string(metadata) != "null" {
		if err := json.Unmarshal(metadata, &md); err != nil {
			details["metadata"] = "must be an object: " + err.Error()
			return Config{}, details
		}
	}
	c := Config{Type: modelType, Labels: md.Labels, ClipMin: 0, ClipMax: 1}
	if len(md.Labels) > maxLabels {
		details["metadata.labels"] = fmt.Sprintf("at most %d labels", maxLabels)
	}
	switch modelType {
	case TypeCV:
		if md.InputShape != nil { // absent: inferred by validation
			if why := CheckInputShape(md.InputShape); why != "" {
				details["metadata.input_shape"] = why
			}
		}
		c.InputShape = md.InputShape
		if md.InputRange != nil {
			if len(md.InputRange) != 2 || !(md.InputRange[0] < md.InputRange[1]) ||
				math.Abs(float64(md.InputRange[0])) > maxRange || math.Abs(float64(md.InputRange[1])) > maxRange {
				details["metadata.input_range"] = fmt.Sprintf("must be [min, max] with min < max, both within ±%g", float64(maxRange))
			} else {
				c.ClipMin, c.ClipMax = md.InputRange[0], md.InputRange[1]
			}
		}
	case TypeNLP:
		if md.Tokenizer == "" && md.Vocabulary != nil {
			md.Tokenizer = TokenizerBOW
		}
		switch md.Tokenizer {
		case "": // detected by validation from the model's forward
		case TokenizerBOW:
			if len(md.Vocabulary) == 0 || len(md.Vocabulary) > maxVocab {
				details["metadata.vocabulary"] = fmt.Sprintf("required for bag-of-words models: 1 to %d words", maxVocab)
			}
		case TokenizerText:
		default:
			details["metadata.tokenizer"] = `"bow" (bag of words over metadata.vocabulary) or "text" (the model takes the text itself); leave it out to let validation detect a forward that takes List[str]`
		}
		c.Tokenizer, c.Vocabulary = md.Tokenizer, md.Vocabulary
		c.InputShape = []int{len(md.Vocabulary)}
	default:
		details["type"] = `must be "CV" or "NLP"`
	}
	if len(details) > 0 {
		return Config{}, details
	}
	c.index()
	return c, nil
}

// CheckInputShape says what is wrong with an input shape ("" if nothing).
func CheckInputShape(shape []int) string {
	n := 1 // the product, checked at each step so that it cannot wrap
	for _, d := range shape {
		if d < 1 || d > maxElements || n*d > maxElements {
			n = -1
			break
		}
		n *= d
	}
	switch {
	case len(shape) != 1 && len(shape) != 3:
		return "[channels, height, width] or [features]"
	case n < 1 || n > maxElements:
		return fmt.Sprintf("dimensions must be positive with at most %d elements", maxElements)
	case len(shape) == 3 && shape[0] != 1 && shape[0] != 3:
		return "channels must be 1 or 3"
	}
	return ""
}

// Incomplete names the metadata key that validation must infer
// ("input_shape" or "tokenizer"), or "" when the metadata says how to feed
// the model.
func (c Config) Incomplete() string {
	switch {
	case c.Type == TypeCV && len(c.InputShape) == 0:
		return "input_shape"
	case c.Type == TypeNLP && c.Tokenizer == "":
		return "tokenizer"
	}
	return ""
}

// Complete returns the metadata with what validation inferred (the
// model's input shape, or its tokenizer) written in, the owner's other
// keys kept, and checks the result as ParseConfig would.
func Complete(modelType string, metadata json.RawMessage, inputShape []int, tokenizer string) (json.RawMessage, error) {
	md := map[string]json.RawMessage{}
	if len(metadata) > 0 && string(metadata) != "null" {
		if err := json.Unmarshal(metadata, &md); err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
	}
	set := func(k string, v any) {
		b, _ := json.Marshal(v)
		md[k] = b
	}
	switch modelType {
	case TypeCV:
		set("input_shape", inputShape)
	case TypeNLP:
		set("tokenizer", tokenizer)
	}
	out, err := json.Marshal(md)
	if err != nil {
		return nil, err
	}
	cfg, details := ParseConfig(modelType, out)
	if details != nil {
		return nil, fmt.Errorf("inferred metadata is invalid: %v", details)
	}
	if k := cfg.Incomplete(); k != "" {
		return nil, fmt.Errorf("metadata.%s is still missing", k)
	}
	return out, nil
}

func (c *Config) index() {
	if c.Tokenizer == TokenizerBOW && c.vocabIndex == nil {
		c.vocabIndex = make(map[string]int, len(c.Vocabulary))
		for i, w := range c.Vocabulary {
			c.vocabIndex[strings.ToLower(w)] = i
		}
	}
}

// SampleSize is the number of floats in one input.
func (c Config) SampleSize() int {
	n := 1
	for _, d := range c.InputShape {
		n *= d
	}
	return n
}

// BatchShape is the tensor shape of n inputs.
func (c Config) BatchShape(n int) []int64 {
	s := []int64{int64(n)}
	for _, d := range c.InputShape {
		s = append(s, int64(d))
	}
	return s
}

// Label names class i ("0", "1"… when the model declared no labels).
func (c Config) Label(i int) string {
	if i >= 0 && i < len(c.Labels) {
		return c.Labels[i]
	}
	return fmt.Sprint(i)
}

// LabelNames names each of a model's classes: by Labels, else by index.
func (c Config) LabelNames(classes int) []string {
	out := make([]string, classes)
	for i := range out {
		out[i] = c.Label(i)
	}
	return out
}

// LabelIndex finds a label by name (or by its index written as a number).
func (c Config) LabelIndex(name string, classes int) (int, bool) {
	for i, l := range c.Labels {
		if l == name && i < classes {
			return i, true
		}
	}
	var i int
	if _, err := fmt.Sscan(name, &i); err == nil && fmt.Sprint(i) == name && i >= 0 && i < classes {
		return i, true
	}
	return 0, false
}

func bad(field, msg string) error {
	return &warden.Error{Code: warden.EINVALID, Message: "Invalid input", Details: map[string]string{field: msg}}
}

// Encode turns one client input into the model's float vector: for CV a
// base64 image (PNG, JPEG, GIF; resized to the model's height and width,
// converted to its channels, scaled to its input range) or a JSON array of
// numbers of the model's exact size; for NLP a string.
func (c Config) Encode(in json.RawMessage) ([]float32, error) {
	return c.encode(in, true)
}

// Check validates an input as Encode would, without decoding an image's
// pixels (only its header): the API checks inputs before queueing, and
// only workers and runners pay for decoding.
func (c Config) Check(in json.RawMessage) error {
	_, err := c.encode(in, false)
	return err
}

func (c Config) encode(in json.RawMessage, decodeImages bool) ([]float32, error) {
	in = bytes.TrimSpace(in)
	if len(in) == 0 {
		return nil, bad("input_data", "input is required")
	}
	switch c.Type {
	case TypeNLP:
		var s string
		if err := json.Unmarshal(in, &s); err != nil {
			return nil, bad("input_data", "NLP models take a string")
		}
		if strings.TrimSpace(s) == "" {
			return nil, bad("input_data", "text is empty")
		}
		return c.EncodeText(s), nil
	case TypeCV:
		if in[0] == '[' {
			var ptrs []*float32 // pointers, so that a null element is refused, not read as 0
			if err := json.Unmarshal(in, &ptrs); err != nil {
				return nil, bad("input_data", "must be an array of numbers: "+err.Error())
			}
			xs := make([]float32, len(ptrs))
			for i, p := range ptrs {
				if p == nil {
					return nil, bad("input_data", fmt.Sprintf("element %d is null; send numbers", i))
				}
				xs[i] = *p
			}
			if len(xs) != c.SampleSize() {
				return nil, bad("input_data", fmt.Sprintf("has %d numbers, the model takes %d (shape %v)", len(xs), c.SampleSize(), c.InputShape))
			}
			for _, x := range xs {
				if x < c.ClipMin || x > c.ClipMax || math.IsNaN(float64(x)) {
					return nil, bad("input_data", fmt.Sprintf("values must lie in [%g, %g]", c.ClipMin, c.ClipMax))
				}
			}
			return xs, nil
		}
		var b64 string
		if err := json.Unmarshal(in, &b64); err != nil {
			return nil, bad("image", "must be a base64-encoded image or an array of numbers")
		}
		if !decodeImages {
			_, _, err := c.imageHeader(b64)
			return nil, err
		}
		return c.EncodeImage(b64)
	}
	return nil, bad("model", "unsupported model type "+c.Type)
}

// MaxImagePixels bounds the images a client may send.
const MaxImagePixels = 25_000_000

// decodeBudget is the pixels this process decodes at once, shared by
// concurrent decodes: two of the largest images fit, a third waits.
var decodeBudget = semaphore.NewWeighted(2 * MaxImagePixels)

// imageHeader decodes the base64 and reads the image's header only.
func (c Config) imageHeader(b64 string) ([]byte, image.Config, error) {
	if len(c.InputShape) != 3 {
		return nil, image.Config{}, bad("image", "this model takes a feature vector (input_data), not an image")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, image.Config{}, bad("image", "not valid base64")
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(raw))
	if err != nil {
		return nil, cfg, bad("image", "not a PNG, JPEG or GIF image")
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > MaxImagePixels || cfg.Height > MaxImagePixels ||
		cfg.Width*cfg.Height > MaxImagePixels {
		return nil, cfg, bad("image", fmt.Sprintf("image of %dx%d pixels; at most %d megapixels", cfg.Width, cfg.Height, MaxImagePixels/1_000_000))
	}
	return raw, cfg, nil
}

// EncodeImage decodes a base64 image and converts it to the model's input.
func (c Config) EncodeImage(b64 string) ([]float32, error) {
	raw, cfg, err := c.imageHeader(b64)
	if err != nil {
		return nil, err
	}
	px := int64(cfg.Width * cfg.Height)
	if err := decodeBudget.Acquire(context.Background(), px); err != nil {
		return nil, err
	}
	defer decodeBudget.Release(px) // the decoded image lives until converted
	img, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		return nil, bad("image", "image could not be decoded: "+err.Error())
	}
	ch, h, w := c.InputShape[0], c.InputShape[1], c.InputShape[2]
	out := make([]float32, ch*h*w)
	bnd := img.Bounds()
	scale := c.ClipMax - c.ClipMin
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			// Box-average the source pixels that fall into this cell.
			x0, x1 := bnd.Min.X+x*bnd.Dx()/w, bnd.Min.X+(x+1)*bnd.Dx()/w
			y0, y1 := bnd.Min.Y+y*bnd.Dy()/h, bnd.Min.Y+(y+1)*bnd.Dy()/h
			if x1 <= x0 {
				x1 = x0 + 1
			}
			if y1 <= y0 {
				y1 = y0 + 1
			}
			var r, g, b, n float64
			for yy := y0; yy < y1; yy++ {
				for xx := x0; xx < x1; xx++ {
					cr, cg, cb, _ := img.At(xx, yy).RGBA()
					r, g, b, n = r+float64(cr), g+float64(cg), b+float64(cb), n+1
				}
			}
			r, g, b = r/n/65535, g/n/65535, b/n/65535
			if ch == 1 {
				out[y*w+x] = c.ClipMin + scale*float32(0.299*r+0.587*g+0.114*b)
			} else {
				out[0*h*w+y*w+x] = c.ClipMin + scale*float32(r)
				out[1*h*w+y*w+x] = c.ClipMin + scale*float32(g)
				out[2*h*w+y*w+x] = c.ClipMin + scale*float32(b)
			}
		}
	}
	return out, nil
}

// Tokens splits text into lower-case word tokens.
func Tokens(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && r != '\'' })
}

// EncodeText is the bag-of-words count vector of s over the vocabulary.
func (c Config) EncodeText(s string) []float32 {
	c.index()
	v := make([]float32, len(c.Vocabulary))
	for _, t := range Tokens(s) {
		if i, ok := c.vocabIndex[t]; ok {
			v[i]++
		}
	}
	return v
}

// Softmax turns logits into probabilities (numerically stable).
func Softmax(logits []float32) []float32 {
	out := make([]float32, len(logits))
	if len(logits) == 0 {
		return out
	}
	m := logits[0]
	for _, v := range logits {
		if v > m {
			m = v
		}
	}
	if math.IsInf(float64(m), 1) { // the +Inf logits share all the mass
		var n float32
		for _, v := range logits {
			if math.IsInf(float64(v), 1) {
				n++
			}
		}
		for i, v := range logits {
			if math.IsInf(float64(v), 1) {
				out[i] = 1 / n
			}
		}
		return out
	}
	var sum float64
	for i, v := range logits {
		e := math.Exp(float64(v - m))
		out[i] = float32(e)
		sum += e
	}
	for i := range out {
		out[i] = float32(float64(out[i]) / sum)
	}
	return out
}

// Argmax returns the index of the largest value.
func Argmax(xs []float32) int {
	best := 0
	for i, v := range xs {
		if v > xs[best] {
			best = i
		}
	}
	return best
}

// InputHash identifies an input in prediction results and audit records
// (the first 16 hex digits of its SHA-256).
func InputHash(raw []byte) string {
	h := sha256.Sum256(raw)
	return hex.EncodeToString(h[:8])
}
