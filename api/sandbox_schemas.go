package api

import (
	"fmt"

	"github.com/wardenlab/warden/modelspec"
)

// modelSchemas describes a validated model's request and response as JSON
// Schemas for GET /v1/models/{id}.
func modelSchemas(cfg modelspec.Config) (in, out map[string]any) {
	labels := cfg.Labels
	out = map[string]any{"type": "object", "properties": map[string]any{
		"prediction": map[string]any{"type": "string", "enum": labels, "description": "Predicted class label"},
		"confidence": map[string]any{"type": "number", "format": "float", "description": "Softmax probability of the prediction"},
	}}
	n := cfg.SampleSize()
	if cfg.Type == modelspec.TypeNLP {
		desc := "Text; tokenised into a bag of words over the model's vocabulary"
		if cfg.Tokenizer == modelspec.TokenizerText {
			desc = "Text, sent as it is to the model's endpoint"
		}
		return map[string]any{"type": "object", "properties": map[string]any{
			"input_data": map[string]any{"type": "string", "description": desc},
		}, "required": []string{"input_data"}}, out
	}
	props := map[string]any{
		"input_data": map[string]any{"type": "array", "items": map[string]any{"type": "number", "minimum": cfg.ClipMin, "maximum": cfg.ClipMax},
			"minItems": n, "maxItems": n, "description": fmt.Sprintf("Raw input of shape %v, row-major", cfg.InputShape)},
	}
	if len(cfg.InputShape) == 3 {
		props["image"] = map[string]any{"type": "string", "format": "byte",
			"description": fmt.Sprintf("Base64 PNG, JPEG or GIF; resized to %dx%d, %d channel(s), scaled to [%g, %g]", cfg.InputShape[2], cfg.InputShape[1], cfg.InputShape[0], cfg.ClipMin, cfg.ClipMax)}
	}
	return map[string]any{"type": "object", "properties": props, "oneOf": []any{
		map[string]any{"required": []string{"image"}}, map[string]any{"required": []string{"input_data"}}}}, out
}
