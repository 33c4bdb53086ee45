package api

// AISpectra's (spec 000) OpenAPI operations. Its errors have one shape,
// aisErrorSchema, on every route of the surface.

var aisErrorSchema = obj(map[string]any{"code": str, "message": str,
	"details": map[string]any{"type": "object", "additionalProperties": str},
	"errors":  map[string]any{"type": "array", "items": str, "description": "Every reason, as text: each detail as \"field: reason\", or each problem of a rejected upload"}},
	"code", "message", "details", "errors")

var aisErrors = map[string]resp{
	"400": {"Malformed body, unknown task_type or analysis_type", aisErrorSchema},
	"401": {"x-api-key missing, wrong, or not a key of the Org-Id", aisErrorSchema},
	"403": {"The key's role is below the route's", aisErrorSchema},
	"429": {"Rate limit exceeded (see Retry-After)", aisErrorSchema},
}

var aisFileEnum = map[string]any{"type": "string", "enum": []string{"pending", "receiving", "valid", "invalid"}}

var aisSummarySchema = obj(map[string]any{"format": map[string]any{"type": "string", "enum": []string{"torchscript", "images", "npy", "csv", "text"}},
	"entries": integ, "uncompressed_bytes": integ, "samples": integ})

var (
	opAISRegister = op{
		Body: map[string]any{"application/json": obj(map[string]any{
			"task_type": map[string]any{"type": "string", "enum": []string{"IC", "IS", "TC", "TSF", "TS", "NLP", "Text", "OD"},
				"description": "IC image classification, IS image segmentation, TC tabular classification, TSF time-series forecasting, TS time-series classification, NLP (or Text) text classification, OD object detection"},
			"analysis_type": map[string]any{"type": "string", "enum": []string{"MEA", "EVA", "data-poisoning", "poisoning", "model-poisoning"},
				"description": "Offered pairs: IC-MEA, IC-EVA, IC-data-poisoning, IC-model-poisoning, IS-MEA, TC-MEA, TC-EVA, TSF-MEA, NLP-MEA, TS-MEA, OD-EVA"},
		}, "task_type", "analysis_type")},
		Responses: with(aisErrors, map[string]resp{
			"200": {"Registered: upload every file to its URL within ten minutes (single use each)", obj(map[string]any{
				"model_id": str, "task_type": str, "analysis_type": str,
				"upload_urls": obj(map[string]any{"model": str, "data": str, "label": str, "clean_model_1": str, "clean_model_2": str}, "model", "data", "label"),
				"expires_at":  dt, "status_url": str}, "model_id", "upload_urls", "expires_at")},
			"412": {"A task_type/analysis_type pair the spec does not offer", aisErrorSchema},
		}),
	}
	opAISStatus = op{Params: []param{modelIDParam}, Responses: with(aisErrors, map[string]resp{
		"200": {"The registration and its files", obj(map[string]any{"model_id": str, "task_type": str, "analysis_type": str,
			"status":     map[string]any{"type": "string", "enum": []string{"awaiting_uploads", "ready", "expired"}},
			"created_at": dt, "expires_at": dt,
			"files": map[string]any{"type": "object", "additionalProperties": obj(map[string]any{"status": aisFileEnum, "size": integ,
				"summary": aisSummarySchema, "errors": map[string]any{"type": "array", "items": str}, "uploaded_at": dt})},
			"errors": map[string]any{"type": "array", "items": str, "description": "Problems between files (data and label sample counts)"}})},
		"404": {"No such registration in the caller's org", aisErrorSchema}})}
	opAISUpload = op{
		Security: []any{map[string]any{}},
		Params: []param{{Name: "upload_id", In: "path", Type: "string", Required: true},
			{Name: "token", In: "query", Type: "string", Required: true, Description: "The signed token of the URL the registration returned"}},
		Body: map[string]any{
			"application/zip":          map[string]any{"type": "string", "format": "binary"},
			"application/octet-stream": map[string]any{"type": "string", "format": "binary"},
			"multipart/form-data":      obj(map[string]any{"file": map[string]any{"type": "string", "format": "binary"}}, "file"),
		},
		Responses: map[string]resp{
			"200": {"Stored and valid", obj(map[string]any{"model_id": str, "file": str, "status": aisFileEnum, "size": integ,
				"summary": aisSummarySchema, "registration_status": str})},
			"400": {"Not a valid zip for this file and task type (errors lists every problem); the URL may be used again until it expires", aisErrorSchema},
			"401": {"Token malformed, tampered with or signed by no current key", aisErrorSchema},
			"403": {"The URL has expired", aisErrorSchema},
			"409": {"The URL has already been used for a valid file, or an upload to it is in progress", aisErrorSchema},
			"413": {"Larger than WARDEN_MAX_MODEL_BYTES", aisErrorSchema},
			"415": {"A url-encoded form (send the zip as the body, or multipart)", aisErrorSchema},
			"404": {"No such upload (its registration is gone)", aisErrorSchema},
			"429": {"Rate limit exceeded (see Retry-After)", aisErrorSchema},
		},
	}
	opAISExample = op{
		Security: []any{map[string]any{}},
		Params: []param{{Name: "task_type", In: "path", Type: "string", Required: true, Description: "IC, IS, TC, TSF, TS, NLP (or Text), OD"},
			{Name: "file", In: "path", Type: "string", Required: true, Description: "data.zip, label.zip or FORMAT.md"}},
		Responses: map[string]resp{
			"200": {"data.zip or label.zip (application/zip): a small valid example, built reproducibly from public data sets; " +
				"FORMAT.md (text/markdown): what the task type's model, data and label zips must hold, the model's input and output shapes included", nil},
			"404": {"Unknown task type or file", aisErrorSchema},
			"429": {"Rate limit exceeded (see Retry-After)", aisErrorSchema},
		},
	}
)
