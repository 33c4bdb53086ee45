package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/modelspec"
)

// InputHash identifies an input in prediction results (first 16 hex
// digits of its SHA-256).
func InputHash(raw []byte) string {
	h := sha256.Sum256(raw)
	return hex.EncodeToString(h[:8])
}

// predict runs one input through a model (queue critical; the API waits).
func (w *Worker) predict(ctx context.Context, r *Run, in jobs.PredictInput) (jobs.PredictResult, error) {
	var none jobs.PredictResult
	clf, _, err := w.activeModel(ctx, in.ModelID)
	if err != nil {
		return none, err
	}
	var probs [][]float32
	if clf.Config().Type == modelspec.TypeNLP {
		var text string
		if err := json.Unmarshal(in.Input, &text); err != nil {
			return none, Permanent("NLP models take a string")
		}
		probs, err = clf.PredictText(ctx, []string{text})
	} else {
		x, eerr := clf.Config().Encode(in.Input)
		if eerr != nil {
			return none, Permanent("%v", eerr)
		}
		probs, err = clf.Predict(ctx, attacks.Batch{Data: x, Shape: intShape(clf.Config().BatchShape(1))})
	}
	if err != nil {
		return none, err
	}
	k := modelspec.Argmax(probs[0])
	all := map[string]float32{}
	for i, p := range probs[0] {
		all[clf.Config().Label(i)] = p
	}
	return jobs.PredictResult{Prediction: clf.Config().Label(k), Confidence: probs[0][k], ModelID: in.ModelID,
		InputHash: InputHash(in.Input), Probabilities: all, Device: w.device.String()}, nil
}
