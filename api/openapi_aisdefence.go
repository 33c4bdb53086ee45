package api

// OpenAPI operations of the customized endpoint defence (aisdefence.go).

var aisCalibrationSchema = obj(map[string]any{
	"target_fpr": num, "fit_samples": integ, "tune_samples": integ, "held_out_samples": integ,
	"fpr":             map[string]any{"type": "number", "description": "Share of held-out clean samples any input check fired on"},
	"check_fpr":       map[string]any{"type": "object", "additionalProperties": num},
	"detection":       map[string]any{"type": "number", "description": "Share of the adversarial examples (that fooled the model) any input check fired on"},
	"check_detection": map[string]any{"type": "object", "additionalProperties": num},
	"adversarial":     str, "adversarial_samples": integ,
	"stream_budget":     integ,
	"stream_flagged_at": map[string]any{"type": "integer", "description": "Query of MEA's replayed stream at which the monitor flagged it (0: never)"},
	"stream_flagged_by": str, "prada_flagged_at": integ, "ood_rate_flagged_at": integ,
	"clean_stream_queries": integ, "clean_stream_flagged_at": integ,
})

var (
	opAISDefenceStart = op{Params: []param{modelIDParam},
		Body: map[string]any{"application/json": obj(withProps(aisParamsProps, map[string]any{
			"target_fpr":   map[string]any{"type": "number", "description": "False-positive rate the thresholds aim at: above 0 and below 0.5 (default 0.05)"},
			"mode":         map[string]any{"type": "string", "enum": []string{"flag", "block"}, "description": "Guarded endpoint: flag (200 with the checks) or block (403 naming the check); default flag"},
			"callback_url": map[string]any{"type": "string", "description": "Signed analysis_completed / analysis_failed / analysis_cancelled webhook"},
		}))},
		Responses: with(aisErrors, map[string]resp{
			"202": {"Queued: a defence analysis (parameters left out come from the latest completed EVA and MEA analyses)", aisAnalysisSchema},
			"404": {"No such registration in the caller's org", aisErrorSchema},
			"412": {"Not available for the task type, or the files are not all uploaded and valid", aisErrorSchema},
		})}
	opAISDefence = op{Params: []param{modelIDParam}, Responses: with(aisErrors, map[string]resp{
		"200": {"The newest defence analysis and, once one completed, its profile's thresholds and measured rates", obj(map[string]any{
			"model_id": str, "analysis": aisAnalysisSchema,
			"profile": obj(map[string]any{"analysis_id": str, "mode": str, "created_at": dt,
				"thresholds":  map[string]any{"type": "object", "additionalProperties": num},
				"calibration": aisCalibrationSchema, "profile_url": str, "predict_url": str})}, "model_id", "analysis", "profile")},
		"404": {"No such registration in the caller's org", aisErrorSchema},
		"412": {"No defence analysis was started for the registration", aisErrorSchema}})}
	opAISDefenceProfile = op{Params: []param{modelIDParam}, Responses: with(aisErrors, map[string]resp{
		"200": {"The profile (attachment): input shape, per-pixel range, class-conditional Mahalanobis OOD scorer, squeezer, monitor thresholds, calibration", nil},
		"404": {"No such registration in the caller's org", aisErrorSchema},
		"412": {"No completed defence analysis yet", aisErrorSchema}})}
	opAISPredict = op{Params: []param{modelIDParam},
		Body: map[string]any{"application/json": obj(map[string]any{
			"input_data": map[string]any{"type": "array", "items": num, "description": "The sample's values, flattened (C·H·W), in the model's input range"},
			"image":      map[string]any{"type": "string", "description": "Or a base64 PNG, JPEG or GIF image"}})},
		Responses: with(aisErrors, map[string]resp{
			"200": {"The prediction and the defence's checks (flag mode, or nothing fired)", obj(map[string]any{
				"prediction": str, "confidence": num, "model_id": str, "input_hash": str,
				"probabilities": map[string]any{"type": "object", "additionalProperties": num},
				"defence": obj(map[string]any{"flagged": boolean, "mode": str,
					"checks": map[string]any{"type": "array", "items": obj(map[string]any{"name": str, "score": num, "threshold": num, "fired": boolean}, "name", "score", "threshold", "fired")},
					"stream": obj(map[string]any{"queries": integ, "flagged_at": integ, "flagged_by": str}, "queries", "flagged_at")}, "flagged", "mode", "checks", "stream")},
				"prediction", "probabilities", "defence")},
			"403": {"The key's role is below the route's, or (profile mode block) a defence check fired: the message and details.checks name it", aisErrorSchema},
			"404": {"No such registration in the caller's org", aisErrorSchema},
			"412": {"No completed defence analysis yet", aisErrorSchema},
			"503": {"No worker serves predictions right now (see Retry-After)", aisErrorSchema},
			"504": {"No prediction within the prediction timeout", aisErrorSchema},
		})}
)
