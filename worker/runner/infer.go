package runner

import (
	"fmt"
	"strings"

	"github.com/wardenlab/warden/modelspec"
	"github.com/wardenlab/warden/worker/torch"
)

// textInput is the TorchScript type of a forward that takes raw texts.
const textInput = "List[str]"

// inputHint says how a model's owner settles what validation could not.
const inputHint = `give metadata.input_shape ([channels, height, width] or [features])`

// imageSizes are the heights (= widths) tried for a model whose first layer
// is a convolution, most likely first: ImageNet's for 3 channels, MNIST's
// for 1. The first that gives logits [1, classes] is taken.
var imageSizes = map[int64][]int{
	3: {224, 32, 64, 96, 128, 256, 299, 28, 16, 8},
	1: {28, 32, 64, 8, 16, 96, 128, 224, 256},
}

// resolveInput settles how the model is fed: it checks the metadata against
// the types forward takes (a List[str] forward gets the texts themselves)
// and infers what the metadata left out (a CV model's input shape, from
// the first layer's weights, confirmed by a trial forward pass).
func resolveInput(mod *torch.Module, cfg modelspec.Config) (modelspec.Config, error) {
	types, err := mod.ForwardInputTypes()
	if err != nil {
		return cfg, Permanent("cannot read the signature of forward: %v", err)
	}
	text := len(types) == 1 && types[0] == textInput
	takes := "(" + strings.Join(types, ", ") + ")"
	switch {
	case cfg.Type == modelspec.TypeNLP && text:
		if cfg.Tokenizer == modelspec.TokenizerBOW {
			return cfg, Permanent("forward takes List[str] (the texts themselves), but metadata.tokenizer is \"bow\"; leave tokenizer and vocabulary out")
		}
		cfg.Tokenizer = modelspec.TokenizerText
		return cfg, nil
	case cfg.Type == modelspec.TypeNLP && cfg.Tokenizer != modelspec.TokenizerBOW:
		return cfg, Permanent("forward takes %s: an NLP model either takes the texts (forward(self, texts: List[str])) or word counts, "+
			"for which give metadata.tokenizer \"bow\" and metadata.vocabulary", takes)
	case cfg.Type == modelspec.TypeCV && text:
		return cfg, Permanent("forward takes List[str], but a CV model takes a tensor; register it as NLP")
	case cfg.Incomplete() == "":
		return cfg, nil
	}
	shape, err := inferShape(mod)
	if err != nil {
		return cfg, err
	}
	cfg.InputShape = shape
	return cfg, nil
}

// inferShape reads the first convolution's or linear layer's weights
// (whichever comes first among the parameters) and tries the shapes they
// allow until a forward pass gives logits [1, classes].
func inferShape(mod *torch.Module) ([]int, error) {
	params, err := mod.Parameters()
	if err != nil {
		return nil, Permanent("cannot list the model's parameters (%v); %s", err, inputHint)
	}
	var conv, linear []int64 // the first 4-D and 2-D weights
	var candidates [][]int
	for _, p := range params {
		if !strings.HasSuffix(p.Name, "weight") {
			continue
		}
		switch {
		case len(p.Shape) == 4 && conv == nil:
			conv = p.Shape
			if sizes, ok := imageSizes[p.Shape[1]]; ok {
				for _, hw := range sizes {
					candidates = append(candidates, []int{int(p.Shape[1]), hw, hw})
				}
			}
		case len(p.Shape) == 2 && linear == nil:
			linear = p.Shape
			candidates = append(candidates, []int{int(p.Shape[1])})
		}
	}
	if len(candidates) == 0 {
		switch {
		case conv != nil:
			return nil, Permanent("the first convolution takes %d input channels; Warden feeds 1 or 3", conv[1])
		default:
			return nil, Permanent("could not infer the input shape: the model has no convolution or linear weights to read it from; %s", inputHint)
		}
	}
	var tried []string
	last := "no shape to try"
	for _, shape := range candidates {
		if modelspec.CheckInputShape(shape) != "" {
			continue
		}
		cfg := modelspec.Config{InputShape: shape}
		y, err := mod.Forward(&torch.Tensor{Data: make([]float32, cfg.SampleSize()), Shape: cfg.BatchShape(1)})
		if err == nil && (len(y.Shape) != 2 || y.Shape[0] != 1 || y.Shape[1] < 2) {
			err = fmt.Errorf("output shape %v, want [1, classes ≥ 2]", y.Shape)
		}
		if err == nil {
			return shape, nil
		}
		tried, last = append(tried, fmt.Sprint(shape)), lastLine(err.Error()) // a TorchScript traceback ends with what went wrong
	}
	return nil, Permanent("could not infer the input shape: no trial forward pass gave logits [1, classes] (tried %s; last: %s); %s",
		strings.Join(tried, ", "), last, inputHint)
}
