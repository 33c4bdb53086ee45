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
		Body: map[string]any{"application/json": obj(withProps(aisParamsProps, map[string]any{
			"model_id":     map[string]any{"type": "string", "description": "An existing registration: start analysis_type on its uploaded files (task_type may then be left out)"},
			"callback_url": map[string]any{"type": "string", "description": "Signed analysis_completed / analysis_failed / analysis_cancelled webhook"},
			"parameters":   aisParamsSchema,
			"task_type": map[string]any{"type": "string", "enum": []string{"IC", "IS", "TC", "TSF", "TS", "NLP", "Text", "OD"},
				"description": "IC image classification, IS image segmentation, TC tabular classification, TSF time-series forecasting, TS time-series classification, NLP (or Text) text classification, OD object detection"},
			"analysis_type": map[string]any{"type": "string", "enum": []string{"MEA", "EVA", "data-poisoning", "poisoning", "model-poisoning"},
				"description": "Offered pairs: IC-MEA, IC-EVA, IC-data-poisoning, IC-model-poisoning, IS-MEA, TC-MEA, TC-EVA, TC-data-poisoning, TSF-MEA, NLP-MEA, TS-MEA, OD-EVA"},
		}), "analysis_type")},
		Responses: with(aisErrors, map[string]resp{
			"200": {"Registered: upload every file to its URL within ten minutes (single use each); the analysis starts when the last is uploaded. With model_id: the analysis started on the registration's files",
				map[string]any{"oneOf": []any{obj(map[string]any{
					"model_id": str, "task_type": str, "analysis_type": str,
					"upload_urls": obj(map[string]any{"model": str, "data": str, "label": str, "clean_model_1": str, "clean_model_2": str}, "model", "data", "label"),
					"expires_at":  dt, "status_url": str, "analysis_id": str}, "model_id", "upload_urls", "expires_at"), aisAnalysisSchema}}},
			"404": {"model_id names no registration of the caller's org", aisErrorSchema},
			"412": {"A task_type/analysis_type pair the spec does not offer; with model_id: the files are not all uploaded and valid, or the analysis is not available yet", aisErrorSchema},
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
				"summary": aisSummarySchema, "registration_status": str, "analysis_id": map[string]any{"type": "string", "description": "The registration's analysis, started by the upload that completed its files"}})},
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

var analysisIDParam = param{Name: "analysis_id", In: "path", Type: "string", Required: true}

// aisParamsSchema are an analysis's parameters (all optional).
var aisParamsSchema = obj(map[string]any{
	"query_budget":  map[string]any{"type": "integer", "minimum": 10, "maximum": maxQueryBudget, "description": "MEA: victim queries the extraction may spend (default 2000)"},
	"curve_points":  map[string]any{"type": "array", "items": integ, "description": "MEA: query counts of the fidelity curve (default 5, 10, 25, 50, 75, 100 % of the budget)"},
	"epsilons":      map[string]any{"type": "array", "items": num, "description": "EVA: L∞ budgets of the robustness curve, in [0,1] (tabular: a fraction of each feature's range)"},
	"attack":        map[string]any{"type": "string", "enum": []string{"fgsm", "pgd"}, "description": "EVA: the attack (default pgd)"},
	"steps":         map[string]any{"type": "integer", "minimum": 1, "maximum": maxSteps, "description": "EVA: PGD steps (default 10)"},
	"samples":       map[string]any{"type": "integer", "minimum": 1, "maximum": maxEVASamples, "description": "EVA: samples attacked (default 200); model-poisoning: at most this many optimisation samples and as many held-out samples"},
	"trigger_steps": map[string]any{"type": "integer", "minimum": 1, "maximum": maxTriggerSteps, "description": "model-poisoning: Adam steps of the trigger reverse-engineering per class (default 300)"},
	"seed":          map[string]any{"type": "integer", "description": "Makes a run reproducible (default 1)"},
})

// aisParamsProps are the parameters, also accepted at a body's top level.
var aisParamsProps = aisParamsSchema["properties"].(map[string]any)

var aisAnalysisSchema = obj(map[string]any{"analysis_id": str, "model_id": str, "task_type": str, "analysis_type": str,
	"status":              map[string]any{"type": "string", "enum": []string{"queued", "in_progress", "completed", "failed", "cancelled"}},
	"progress_percentage": integ, "current_stage": str, "error": nullable(str),
	"created_at": dt, "started_at": nullable(dt), "finished_at": nullable(dt),
	"status_url": str, "report_url": nullable(str), "report_html_url": nullable(str)},
	"analysis_id", "model_id", "status", "progress_percentage", "status_url")

var aisReportSchema = obj(map[string]any{"analysis_id": str, "status": str, "generated_at": dt, "model_id": str, "task_type": str, "analysis_type": str,
	"verdict": obj(map[string]any{"vulnerable": boolean, "severity": map[string]any{"type": "string", "enum": []string{"none", "low", "medium", "high"}},
		"summary": str, "definition": str}, "vulnerable", "severity", "definition"),
	"metrics": map[string]any{"type": "array", "items": obj(map[string]any{"name": str, "value": num, "unit": str, "help": str}, "name", "value")},
	"curves": map[string]any{"type": "array", "items": obj(map[string]any{"name": str, "x_label": str, "y_label": str,
		"kind":   map[string]any{"type": "string", "enum": []string{"line", "scatter"}, "description": "line (default when absent) or scatter: a point cloud, one group per point"},
		"groups": map[string]any{"type": "array", "items": str, "description": "scatter: each point's group (e.g. its cluster), in x's order"},
		"x":      map[string]any{"type": "array", "items": num}, "y": map[string]any{"type": "array", "items": num}})},
	"table":     obj(map[string]any{"title": str, "columns": strList, "rows": map[string]any{"type": "array", "items": strList}}),
	"samples":   map[string]any{"type": "array", "items": obj(map[string]any{"caption": str, "images": map[string]any{"type": "object", "additionalProperties": str}})},
	"artifacts": map[string]any{"type": "array", "items": obj(map[string]any{"name": str, "content_type": str, "description": str})},
	"params":    aisParamsSchema, "notes": strList, "device": str, "seconds": num,
	"files": map[string]any{"type": "object", "additionalProperties": str, "description": "Each file of the report (sample images, surrogate model) → its URL"}},
	"analysis_id", "verdict", "metrics")

var aisAnalysisErrors = with(aisErrors, map[string]resp{"404": {"No such analysis in the caller's org", aisErrorSchema}})

var (
	opAISAnalyze = op{
		Body: map[string]any{"application/json": obj(withProps(aisParamsProps, map[string]any{
			"model_id":      map[string]any{"type": "string", "description": "The model_id a registration returned"},
			"analysis_type": map[string]any{"type": "string", "enum": []string{"MEA", "EVA", "data-poisoning", "poisoning", "model-poisoning"}, "description": "Default: the registration's"},
			"task_type":     map[string]any{"type": "string", "description": "Optional; must be the registration's"},
			"callback_url":  map[string]any{"type": "string", "description": "Signed analysis_completed / analysis_failed / analysis_cancelled webhook"},
			"parameters":    aisParamsSchema,
		}), "model_id")},
		Responses: with(aisErrors, map[string]resp{
			"202": {"Queued", aisAnalysisSchema},
			"404": {"No such registration in the caller's org", aisErrorSchema},
			"412": {"Not an offered pair, not available yet, or the files are not all uploaded and valid", aisErrorSchema},
		}),
	}
	opAISAnalysisStatus = op{Params: []param{analysisIDParam}, Responses: with(aisAnalysisErrors, map[string]resp{"200": {"The analysis", aisAnalysisSchema}})}
	opAISReport         = op{Params: []param{analysisIDParam}, Responses: with(aisAnalysisErrors, map[string]resp{
		"200": {"The report", aisReportSchema},
		"409": {"The analysis has not completed (details.status says where it is)", aisErrorSchema}})}
	opAISReportHTML = op{Params: []param{analysisIDParam}, Responses: with(aisAnalysisErrors, map[string]resp{
		"200": {"The report as a self-contained HTML page (plots as SVG, images inline)", nil},
		"409": {"The analysis has not completed", aisErrorSchema}})}
	opAISArtifact = op{Params: []param{analysisIDParam, {Name: "name", In: "path", Type: "string", Required: true, Description: "A name the report lists (samples' images, artifacts)"}},
		Responses: with(aisAnalysisErrors, map[string]resp{"200": {"The file (PNG, or a TorchScript model as an attachment)", nil}})}
	opAISCancel = op{Params: []param{analysisIDParam}, Responses: with(aisAnalysisErrors, map[string]resp{
		"200": {"Cancelled", aisAnalysisSchema},
		"409": {"The analysis has already ended", aisErrorSchema}})}
	opAISDelete = op{Params: []param{modelIDParam}, Responses: with(aisErrors, map[string]resp{
		"200": {"Deleted with its files and analyses", obj(map[string]any{"model_id": str, "deleted": boolean, "analyses_deleted": integ}, "model_id", "deleted")},
		"404": {"No such registration in the caller's org", aisErrorSchema}})}
	opAISAnalyses = op{Params: []param{modelIDParam}, Responses: with(aisErrors, map[string]resp{
		"200": {"The registration's analyses, newest first", obj(map[string]any{"model_id": str, "total": integ,
			"analyses": map[string]any{"type": "array", "items": aisAnalysisSchema}}, "model_id", "total", "analyses")},
		"404": {"No such registration in the caller's org", aisErrorSchema}})}
)
