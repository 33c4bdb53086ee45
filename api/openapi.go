package api

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"
)

// route is a registered endpoint and what the OpenAPI document says of it.
type route struct {
	Method, Path, Tag, Summary string
	Role                       string // least role required; "" = anonymous allowed
	Op                         op
}

type op struct {
	Security  []any // overrides the default for routes with a Role
	Params    []param
	Body      map[string]any // content type → schema
	Responses map[string]resp
}

type param struct {
	Name, In, Type, Description string
	Required                    bool
}

type resp struct {
	Description string
	Schema      any // nil for no body
}

// bodyContent is an operation's request body by media type. A body given
// only as application/json is read by decodeBody, which takes the same
// fields as a form too, so both form types are listed with its schema.
func bodyContent(body map[string]any) map[string]any {
	content := map[string]any{}
	for ct, sc := range body {
		content[ct] = map[string]any{"schema": sc}
	}
	if sc, ok := body[echo.MIMEApplicationJSON]; ok && len(body) == 1 {
		content[mimeForm] = map[string]any{"schema": sc}
		content[mimeMultipart] = map[string]any{"schema": sc}
	}
	return content
}

// tokenRequest is POST /v1/auth/token's body, as a form or JSON.
var tokenRequest = obj(map[string]any{
	"grant_type":    map[string]any{"type": "string", "enum": []string{"client_credentials"}},
	"client_id":     map[string]any{"type": "string", "description": "Unless sent with HTTP Basic"},
	"client_secret": map[string]any{"type": "string", "description": "Unless sent with HTTP Basic"},
	"scope":         map[string]any{"type": "string", "description": "Space-separated roles (viewer, developer, admin); the token gets the highest, at most the client's role"},
}, "grant_type")

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func obj(props map[string]any, required ...string) map[string]any {
	m := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		m["required"] = required
	}
	return m
}

var (
	str     = map[string]any{"type": "string"}
	num     = map[string]any{"type": "number"}
	integ   = map[string]any{"type": "integer"}
	boolean = map[string]any{"type": "boolean"}
	dt      = map[string]any{"type": "string", "format": "date-time"}
	anyObj  = map[string]any{"type": "object", "additionalProperties": true}
	anyJSON = map[string]any{"description": "Any JSON value"}
	strList = map[string]any{"type": "array", "items": str}
)

// nullable is schema sc that also admits null.
func nullable(sc map[string]any) map[string]any {
	return withProps(sc, map[string]any{"nullable": true})
}

// retryAfterHeader is the Retry-After header of a 429 or 503 answer.
var retryAfterHeader = map[string]any{"description": "Seconds to wait before retrying", "schema": integ}

var verifyErrors = map[string]resp{
	"400": {"Invalid request", ref("VerifyError")},
	"429": {"Rate limit exceeded, or the org's active-job quota (see Retry-After)", ref("VerifyError")},
	"500": {"Server error", ref("VerifyError")},
}

// verifyAuthErrors are the answers of the verification routes that read
// optional credentials.
var verifyAuthErrors = map[string]resp{
	"401": {"Invalid credentials (a request without any is anonymous)", ref("VerifyError")},
	"403": {"Insufficient role, or a cross-site browser request", ref("VerifyError")},
}

var v1Errors = map[string]resp{
	"400": {"Invalid input", ref("Error")},
	"401": {"Missing or invalid credentials", ref("Error")},
	"403": {"Insufficient role", ref("Error")},
	"404": {"Not found (or owned by another org)", ref("Error")},
	"429": {"Rate limit exceeded, or the org's active-job quota (job_quota_exceeded); see Retry-After", ref("Error")},
	"500": {"Server error", ref("Error")},
}

func with(base map[string]resp, extra map[string]resp) map[string]resp {
	out := map[string]resp{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

var jobIDParam = param{Name: "job_id", In: "path", Type: "string", Required: true, Description: "Job identifier"}

var (
	opVerifyUpload = op{
		Body: map[string]any{"multipart/form-data": obj(map[string]any{
			"file":         map[string]any{"type": "string", "format": "binary", "description": "Image or video, at most 100 MB; type is sniffed from the bytes"},
			"callback_url": map[string]any{"type": "string", "format": "uri", "description": "Optional; needs credentials. Receives a signed webhook when the job ends"},
		}, "file")},
		Responses: with(with(verifyErrors, verifyAuthErrors), map[string]resp{"200": {"File accepted", ref("VerifyAccepted")}, "413": {"File exceeds 100MB limit, or the org's storage quota", ref("VerifyError")}}),
	}
	opVerifyURL = op{
		Body: map[string]any{"application/json": obj(map[string]any{"url": map[string]any{"type": "string", "format": "uri"},
			"callback_url": map[string]any{"type": "string", "format": "uri"}}, "url")},
		Responses: with(with(verifyErrors, verifyAuthErrors), map[string]resp{"200": {"URL accepted", ref("VerifyAccepted")}, "413": {"File exceeds 100MB limit, or the org's storage quota", ref("VerifyError")}}),
	}
	opVerifyGet = op{Params: []param{jobIDParam},
		Responses: with(with(verifyErrors, verifyAuthErrors), map[string]resp{"200": {"Result", ref("VerifyResult")}, "404": {"Job not found", ref("VerifyError")}})}
	opVerifyDelete = op{Params: []param{jobIDParam},
		Responses: with(with(verifyErrors, verifyAuthErrors), map[string]resp{"200": {"Deleted", obj(map[string]any{"job_id": str, "deleted": boolean, "message": str})}, "404": {"Job not found", ref("VerifyError")}})}
	opVerifyMetrics = op{Params: []param{{Name: "days", In: "query", Type: "integer", Description: "Days to aggregate (default 7)"}},
		Responses: with(verifyErrors, map[string]resp{"200": {"Metrics", obj(map[string]any{"total_verifications": integ, "authentic_camera": integ,
			"authentic_c2pa": integ, "ai_generated": integ, "unknown": integ, "error": integ, "avg_processing_time": num,
			"days": map[string]any{"type": "integer", "description": "The days aggregated"}})}})}
	opHealth = op{Responses: map[string]resp{
		"200": {"Healthy", ref("Health")}, "503": {"A dependency is down", ref("Health")}}}
	opJobGet  = op{Params: []param{jobIDParam}, Responses: with(v1Errors, map[string]resp{"200": {"Job", ref("Job")}})}
	opJobList = op{Params: []param{{Name: "kind", In: "query", Type: "string", Description: "verify_media, attack, analysis, model_validate or probe"},
		{Name: "status", In: "query", Type: "string", Description: "queued, in_progress, completed, failed or cancelled"},
		{Name: "limit", In: "query", Type: "integer"}, {Name: "offset", In: "query", Type: "integer"}},
		Responses: with(v1Errors, map[string]resp{"200": {"Jobs (without results)", obj(map[string]any{"total": integ, "limit": integ, "offset": integ,
			"data": map[string]any{"type": "array", "items": ref("Job")}})}})}
	opJobCancel = op{Params: []param{jobIDParam}, Responses: with(v1Errors, map[string]resp{"200": {"Cancelled", obj(map[string]any{"job_id": str, "status": str})}, "409": {"Already finished", ref("Error")}})}
	opProbe     = op{Body: map[string]any{"application/json": obj(map[string]any{"hold_ms": integ, "callback_url": str})},
		Responses: with(v1Errors, map[string]resp{"202": {"Enqueued", obj(map[string]any{"job_id": str, "status": str})}})}
	opDeliveries = op{Params: []param{{Name: "job_id", In: "query", Type: "string"}, {Name: "limit", In: "query", Type: "integer"}, {Name: "offset", In: "query", Type: "integer"}},
		Responses: with(v1Errors, map[string]resp{"200": {"Deliveries", obj(map[string]any{"total": integ, "limit": integ, "offset": integ,
			"data": map[string]any{"type": "array", "items": ref("Delivery")}})}})}
	opDelivery = op{Params: []param{{Name: "delivery_id", In: "path", Type: "string", Required: true}}, Responses: with(v1Errors, map[string]resp{"200": {"Delivery with attempts", ref("Delivery")}})}
	opToken    = op{
		Security: []any{map[string]any{}, map[string]any{"clientBasic": []string{}}},
		Body:     map[string]any{"application/x-www-form-urlencoded": tokenRequest, "application/json": tokenRequest},
		Responses: map[string]resp{
			"200": {"Access token (RFC 6749 §5.1)", ref("TokenResponse")},
			"400": {"invalid_request, unsupported_grant_type or invalid_scope (RFC 6749 §5.2)", ref("OAuthError")},
			"401": {"invalid_client (RFC 6749 §5.2)", ref("OAuthError")},
			"403": {"A cross-site browser request (Origin not allowed)", ref("OAuthError")},
			"429": {"Rate limit exceeded (see Retry-After)", ref("OAuthError")},
			"500": {"server_error", ref("OAuthError")},
			"503": {"temporarily_unavailable", ref("OAuthError")},
		},
	}
	credentialIDParam = param{Name: "credential_id", In: "path", Type: "string", Required: true}
	opCredentials     = op{Params: []param{{Name: "limit", In: "query", Type: "integer"}, {Name: "offset", In: "query", Type: "integer"}},
		Responses: with(v1Errors, map[string]resp{"200": {"Credentials", obj(map[string]any{"total": integ, "limit": integ, "offset": integ,
			"data": map[string]any{"type": "array", "items": ref("Credential")}})}})}
	opCredentialCreate = op{Body: map[string]any{"application/json": obj(map[string]any{
		"kind": map[string]any{"type": "string", "enum": []string{"oauth_client", "api_key"}},
		"role": map[string]any{"type": "string", "enum": []string{"viewer", "developer", "admin"}}}, "kind", "role")},
		Responses: with(v1Errors, map[string]resp{"201": {"Created; the secret is not shown again", ref("NewCredential")}})}
	opCredentialRevoke = op{Params: []param{credentialIDParam}, Responses: with(v1Errors, map[string]resp{"200": {"Revoked", ref("Credential")}})}
	opRedeliver        = op{Params: []param{{Name: "delivery_id", In: "path", Type: "string", Required: true}}, Responses: with(v1Errors, map[string]resp{"202": {"Queued again", ref("Delivery")}})}
)

var credentialProps = map[string]any{"id": map[string]any{"type": "string", "description": "The client_id of an oauth_client"},
	"kind": map[string]any{"type": "string", "enum": []string{"oauth_client", "api_key"}},
	"role": map[string]any{"type": "string", "enum": []string{"viewer", "developer", "admin"}}, "created_at": dt,
	"revoked_at": nullable(dt)}

func withProps(base map[string]any, extra map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

var (
	opText       = op{Responses: map[string]resp{"200": {"Prometheus text exposition format", nil}}}
	opHTML       = op{Responses: map[string]resp{"200": {"HTML page", nil}}}
	opRedoc      = op{Responses: map[string]resp{"200": {"HTML page", nil}, "302": {"To /docs, in a build without ReDoc (make assets embeds it)", nil}}}
	opMonitoring = op{Responses: map[string]resp{"200": {"HTML page", nil},
		"401": {"Operator credentials required (HTTP Basic)", ref("VerifyError")}, "404": {"The operator surface is off (no WARDEN_OPERATOR_TOKEN)", ref("VerifyError")},
		"429": {"Rate limit exceeded (see Retry-After)", ref("VerifyError")}}}
	opJSON = op{Responses: map[string]resp{"200": {"JSON document", anyObj}}}
)

var modelIDParam = param{Name: "model_id", In: "path", Type: "string", Required: true}
var attackIDParam = param{Name: "attack_id", In: "path", Type: "string", Required: true}

var (
	opModelList = op{Params: []param{{Name: "type", In: "query", Type: "string", Description: "CV or NLP"}, {Name: "status", In: "query", Type: "string"},
		{Name: "limit", In: "query", Type: "integer"}, {Name: "offset", In: "query", Type: "integer"},
		{Name: "sort_by", In: "query", Type: "string", Description: "id, name, type, status, created_at, updated_at"}, {Name: "sort_order", In: "query", Type: "string", Description: "asc or desc"}},
		Responses: with(v1Errors, map[string]resp{"200": {"Models", obj(map[string]any{"total": integ, "limit": integ, "offset": integ, "data": map[string]any{"type": "array", "items": ref("ModelSummary")}})}})}
	opModelCreate = op{Body: map[string]any{
		"application/json": ref("ModelRequest"),
		"multipart/form-data": obj(map[string]any{"file": map[string]any{"type": "string", "format": "binary", "description": "TorchScript archive (torch.jit.save)"},
			"name": str, "type": str, "version": str, "description": str, "metadata": map[string]any{"type": "string", "description": "JSON object"}}, "file", "name", "type"),
	}, Responses: with(v1Errors, map[string]resp{"201": {"Registered; validation runs asynchronously", obj(map[string]any{"id": str, "name": str, "type": str, "status": str, "created_at": dt, "validation_job_id": str})}, "413": {"Model file too large, or the org's storage quota (storage_quota_exceeded)", ref("Error")}})}
	opModelGet    = op{Params: []param{modelIDParam}, Responses: with(v1Errors, map[string]resp{"200": {"Model", ref("ModelDetails")}})}
	opModelDelete = op{Params: []param{modelIDParam}, Responses: with(v1Errors, map[string]resp{"200": {"Deleted", obj(map[string]any{"id": str, "deleted": boolean})}})}
	opPredict     = op{Params: []param{modelIDParam}, Body: map[string]any{"application/json": obj(map[string]any{"input_data": map[string]any{"description": "Text (NLP) or an array of numbers (CV)"}, "image": map[string]any{"type": "string", "format": "byte"}})},
		Responses: with(v1Errors, map[string]resp{"200": {"Prediction", obj(map[string]any{"prediction": str, "confidence": num, "model_id": str, "input_hash": str, "probabilities": anyObj})},
			"409": {"Model not active", ref("Error")}, "415": {"Body not application/json", ref("Error")},
			"429": {"Rate limit, or the org's in-flight predictions (job_quota_exceeded); see Retry-After", ref("Error")},
			"503": {"No worker could serve the prediction, or it stopped meanwhile; retry after Retry-After", ref("Error")},
			"504": {"No prediction within WARDEN_PREDICT_TIMEOUT (the model's runner is stopped)", ref("Error")}})}
	opAttackList = op{Params: []param{{Name: "model_type", In: "query", Type: "string", Description: "CV or NLP"}},
		Responses: with(v1Errors, map[string]resp{"200": {"Attack methods", obj(map[string]any{"total": integ, "data": map[string]any{"type": "array", "items": ref("AttackMethod")}})}})}
	opAttackLaunch = op{Body: map[string]any{"application/json": ref("AttackLaunch")},
		Responses: with(v1Errors, map[string]resp{"202": {"Accepted", obj(map[string]any{"attack_id": str, "status": str, "message": str, "estimated_completion_time_seconds": integ})}, "409": {"Model not active", ref("Error")}})}
	opAttackStatus = op{Params: []param{attackIDParam}, Responses: with(v1Errors, map[string]resp{"200": {"Status", obj(map[string]any{"attack_id": str,
		"status": map[string]any{"type": "string", "enum": []string{"initiated", "queued", "in_progress", "completed", "failed", "cancelled"}}, "progress_percentage": integ,
		"current_stage": str, "started_at": nullable(dt), "updated_at": dt, "result_available_at": nullable(dt), "error": nullable(str)})}})}
	opAttackResults  = op{Params: []param{attackIDParam}, Responses: with(v1Errors, map[string]resp{"200": {"Results", ref("AttackResults")}, "409": {"Not completed", ref("Error")}})}
	opAttackCancel   = op{Params: []param{attackIDParam}, Responses: with(v1Errors, map[string]resp{"200": {"Cancelled", obj(map[string]any{"attack_id": str, "status": str})}, "409": {"Already finished", ref("Error")}})}
	opAttackArtifact = op{Params: []param{attackIDParam, {Name: "name", In: "path", Type: "string", Required: true, Description: "<index>_(original|adversarial|perturbation).png"}},
		Responses: with(v1Errors, map[string]resp{"200": {"PNG image", nil}})}
)

// attackSampleProps are the fields of one input's attack outcome; the
// results document has the first input's at its top level.
var attackSampleProps = map[string]any{"input_format": str,
	"original_input": map[string]any{"description": "In the form the client sent: the text, a base64 PNG at the model's input resolution, or the array of numbers"}, "original_prediction": str, "original_confidence": num,
	"adversarial_example": map[string]any{"description": "As original_input: text, base64 PNG or array of numbers"}, "adversarial_prediction": str, "adversarial_confidence": num, "attack_success": boolean,
	"perturbation_details": withProps(anyObj, map[string]any{"description": "linf_norm and l2_norm (images) or words_changed and levenshtein_distance (texts); original_png, adversarial_png and perturbation_png link the images"}),
	"queries":              integ}

// c2paStatusProps are the validation fields of a C2PA manifest: the active
// one (details.c2pa) and each ingredient's.
var c2paStatusProps = map[string]any{"valid": boolean, "intact": boolean, "signature_valid": boolean, "trust_chain_valid": boolean,
	"signer": str, "issuer": str, "claim_generator": str, "error": str, "failures": strList,
	"time_stamp": obj(map[string]any{"time": dt, "authority": str, "verified": boolean, "error": str})}

var schemas = map[string]any{
	"ModelSummary": obj(map[string]any{"id": str, "name": str, "type": str, "version": str, "description": str, "status": str, "created_at": dt, "updated_at": dt}),
	"ModelDetails": obj(map[string]any{"id": str, "name": str, "type": str, "version": str, "description": str, "status": str, "created_at": dt, "updated_at": dt,
		"input_schema":  nullable(withProps(anyObj, map[string]any{"description": "JSON Schema of predict's body; null until the model is validated"})),
		"output_schema": nullable(anyObj), "metrics": nullable(anyObj), "metadata": nullable(anyObj), "error": nullable(str), "device": str,
		"model_endpoint_url": map[string]any{"type": "string", "format": "uri", "description": "A remote model's endpoint (absent for a model file)"}}),
	"ModelRequest": obj(map[string]any{"name": str, "type": map[string]any{"type": "string", "enum": []string{"CV", "NLP"}}, "version": str, "description": str,
		"model_file_url":     map[string]any{"type": "string", "format": "uri", "description": "https:// URL of a TorchScript file; or, on a server with an S3 blob store (WARDEN_BLOB_URL), s3://<bucket>/<prefix>imports/<org_id>/<file> in the org's own import folder of that bucket (any other s3:// URL is refused)"},
		"model_endpoint_url": map[string]any{"type": "string", "format": "uri", "description": "Instead of a file: a remote endpoint taking {\"inputs\": [[numbers]]} (CV) or {\"texts\": [strings]} (NLP) and answering {\"probabilities\": [[…]]}; black-box attacks only"},
		"metadata": obj(map[string]any{
			"input_shape": map[string]any{"type": "array", "items": integ, "description": "CV: [channels, height, width] or [features]; when absent, validation infers it from the TorchScript graph (first convolution or linear layer, confirmed by a trial forward pass) and writes it here"},
			"labels":      map[string]any{"type": "array", "items": str}, "input_range": map[string]any{"type": "array", "items": num},
			"tokenizer": map[string]any{"type": "string", "enum": []string{"bow", "text"}, "description": "NLP: bow (word counts over vocabulary) or text (the model takes the texts: a forward taking List[str], or an endpoint); when absent, validation detects a forward taking List[str]"}, "vocabulary": map[string]any{"type": "array", "items": str},
			"metrics": anyObj})}, "name", "type"),
	"AttackMethod": obj(map[string]any{"id": str, "name": str, "description": str, "compatible_model_types": map[string]any{"type": "array", "items": str}, "access": str,
		"parameters_schema": map[string]any{"type": "object", "description": "Spec 002's flat map: parameter name → {type, default, description} (plus minimum, maximum, enum and the aliases it is also accepted under)",
			"additionalProperties": map[string]any{"type": "object", "additionalProperties": true}},
		"parameters_json_schema": map[string]any{"type": "object", "additionalProperties": true, "description": "The same parameters as one JSON Schema (draft 2020-12) of attack_parameters"}}),
	"AttackLaunch": obj(map[string]any{"model_id": str, "attack_method_id": str, "input_data": map[string]any{"description": "One input as predict takes it: text (NLP), a base64 image, {\"image\": base64}, {\"input_data\": …} or an array of numbers (CV); or a list of these (a batch)"},
		"inputs":      map[string]any{"type": "array", "items": anyJSON, "maxItems": maxAttackBatch, "description": "A batch of inputs instead of input_data"},
		"true_labels": map[string]any{"type": "array", "items": anyJSON, "description": "Label names or indices, one per input"}, "target_label": map[string]any{"description": "Label name or index; makes the attack targeted"},
		"attack_parameters": anyObj, "callback_url": map[string]any{"type": "string", "format": "uri"}}, "model_id", "attack_method_id"),
	"AttackSample": obj(attackSampleProps),
	"AttackResults": obj(withProps(attackSampleProps, map[string]any{"attack_id": str, "status": str, "model_id": str, "attack_method_id": str,
		"batch_size": integ, "batch_success_rate": num, "batch_results": map[string]any{"type": "array", "items": ref("AttackSample"), "description": "Every input's outcome, for a batch of more than one"},
		"queries":              map[string]any{"type": "integer", "description": "Model queries: the whole batch's for image attacks, the first input's for text attacks"},
		"gradient_evaluations": integ, "perturbation_summary": anyObj,
		"metrics": obj(map[string]any{"attack_time_seconds": num, "cpu_usage_avg": str, "gpu_usage_avg": nullable(withProps(str, map[string]any{"description": "null: not measured"})),
			"device": str, "torch_threads": integ}),
		"generated_at": dt})),
	"TokenResponse": obj(map[string]any{"access_token": str, "token_type": map[string]any{"type": "string", "enum": []string{"Bearer"}},
		"expires_in": integ, "scope": str}, "access_token", "token_type", "expires_in"),
	"OAuthError": obj(map[string]any{"error": map[string]any{"type": "string", "description": "RFC 6749 §5.2 code (invalid_request, invalid_client, unsupported_grant_type, invalid_scope), else the code below"},
		"error_description": str, "code": str, "message": str, "details": map[string]any{"type": "object", "additionalProperties": str}},
		"error", "error_description", "code", "message", "details"),
	"Credential": obj(credentialProps, "id", "kind", "role", "created_at"),
	"NewCredential": obj(withProps(credentialProps, map[string]any{"org_id": str,
		"secret": map[string]any{"type": "string", "description": "client_secret of an oauth_client, or the whole x-api-key value of an api_key"}}), "id", "kind", "role", "secret"),
	"VerifyAccepted": obj(map[string]any{"job_id": str, "status": map[string]any{"type": "string", "enum": []string{"pending"}}}, "job_id", "status"),
	"VerifyError":    obj(map[string]any{"error": str, "detail": str, "job_id": str}, "error"),
	"Error":          obj(map[string]any{"code": str, "message": str, "details": map[string]any{"type": "object", "additionalProperties": str}}, "code", "message"),
	"VerifyResult": obj(map[string]any{
		"job_id": str, "status": map[string]any{"type": "string", "enum": []string{"pending", "processing", "completed", "failed"}},
		"label":      map[string]any{"type": "string", "enum": []string{"authentic_camera", "authentic_c2pa", "likely_ai_generated", "unknown", "error"}},
		"confidence": map[string]any{"type": "number", "minimum": 0, "maximum": 1},
		"reasons":    map[string]any{"type": "array", "items": str},
		"details": obj(map[string]any{
			"c2pa": obj(withProps(c2paStatusProps, map[string]any{"found": boolean, "data_hash_valid": boolean,
				"signature_algorithm": str, "signing_time": dt, "title": str, "format": str,
				"actions": strList, "digital_source_types": strList, "software_agents": strList,
				"ingredients":          withProps(strList, map[string]any{"description": "Titles of the ingredients"}),
				"ingredient_manifests": map[string]any{"type": "array", "items": obj(withProps(c2paStatusProps, map[string]any{"title": str, "manifest": str}))}})),
			"sensor_pki": obj(map[string]any{"valid": boolean, "error": str, "manufacturer": str, "camera_model": str, "sensor_id": str, "signature_algorithm": str,
				"capture_time": dt, "software": str}),
			"ml_detection": nullable(obj(map[string]any{"ai_probability": num, "cnn_score": nullable(num), "cnn_unavailable_reason": str,
				"prnu_score": num, "spectral_score": num, "jpeg_quantization_score": nullable(num), "metadata_anomaly_score": num, "ensemble_confidence": num,
				"detected_generator": nullable(str), "artifacts_found": strList, "width": integ, "height": integ})),
		}),
		"progress_percentage": integ, "current_stage": str, "error": str,
		"created_at": dt, "updated_at": dt, "completed_at": dt,
	}, "job_id", "status", "reasons", "created_at", "updated_at"),
	"Health": obj(map[string]any{"status": str, "version": str, "timestamp": dt, "database": str, "redis": str, "ml_models_loaded": boolean, "workers": integ,
		"sandbox": map[string]any{"type": "array", "items": anyObj, "description": "Per live worker: the confinement layers of its model runners and whether it accepts tenant models"}}),
	"Job": obj(map[string]any{"job_id": str, "kind": str, "status": str, "progress_percentage": integ, "current_stage": str, "attempts": integ,
		"error": nullable(str), "result": anyObj, "created_at": dt, "started_at": nullable(dt), "updated_at": dt, "completed_at": nullable(dt)}),
	"Delivery": obj(map[string]any{"id": str, "job_id": str, "event_type": str, "url": str, "status": map[string]any{"type": "string", "enum": []string{"pending", "delivered", "failed"}},
		"attempts": integ, "payload": anyObj, "created_at": dt, "updated_at": dt, "delivered_at": nullable(dt),
		"attempt_history": map[string]any{"type": "array", "items": obj(map[string]any{"attempt": integ, "status_code": integ, "error": str, "response_body": str, "duration_ms": integ, "at": dt})}}),
}

var pathParam = regexp.MustCompile(`:([a-z_]+)`)

// impliedErrors are the answers the middleware gives whatever the handler:
// every state-changing request may be refused as cross-site (403), and
// every request body may come too slowly (408), be too large (413) or of a
// type the route does not read (415). They take the shape of the route's
// 400.
func impliedErrors(r route) map[string]resp {
	out := map[string]resp{}
	if r.Method != http.MethodGet {
		out["403"] = resp{"A cross-site browser request (Origin not allowed)", nil}
	}
	if r.Op.Body != nil {
		out["408"] = resp{"Request body not received in time", nil}
		out["413"] = resp{"Request body too large", nil}
		out["415"] = resp{"Content-Type not accepted", nil}
	}
	return out
}

// responsesOf is the responses object of r's operation.
func responsesOf(r route) map[string]any {
	all := r.Op.Responses
	if bad, ok := all["400"]; ok {
		implied := impliedErrors(r)
		for code, rs := range implied {
			rs.Schema = bad.Schema
			implied[code] = rs
		}
		all = with(implied, all)
	}
	responses := map[string]any{}
	for code, rs := range all {
		x := map[string]any{"description": rs.Description}
		switch code {
		case "429":
			x["headers"] = map[string]any{"Retry-After": withProps(retryAfterHeader, map[string]any{"required": true})}
		case "503":
			x["headers"] = map[string]any{"Retry-After": retryAfterHeader}
		}
		if rs.Schema != nil {
			x["content"] = map[string]any{"application/json": map[string]any{"schema": rs.Schema}}
		}
		responses[code] = x
	}
	return responses
}

// OpenAPI builds the OpenAPI 3 document of every registered route.
func (s *Server) OpenAPI() map[string]any {
	paths := map[string]any{}
	for _, r := range s.routes {
		p := pathParam.ReplaceAllString(r.Path, "{$1}")
		item, _ := paths[p].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[p] = item
		}
		o := map[string]any{"summary": r.Summary, "tags": []string{r.Tag}, "operationId": strings.ToLower(r.Method) + strings.NewReplacer("/", "_", "{", "", "}", "", "-", "_").Replace(p)}
		var params []any
		for _, pa := range r.Op.Params {
			params = append(params, map[string]any{"name": pa.Name, "in": pa.In, "required": pa.Required || pa.In == "path",
				"description": pa.Description, "schema": map[string]any{"type": pa.Type}})
		}
		if params != nil {
			o["parameters"] = params
		}
		if r.Op.Body != nil {
			o["requestBody"] = map[string]any{"required": true, "content": bodyContent(r.Op.Body)}
		}
		o["responses"] = responsesOf(r)
		if r.Role != "" {
			o["security"] = []any{map[string]any{"bearerAuth": []string{}}, map[string]any{"apiKey": []string{}, "orgId": []string{}}}
			o["description"] = "Requires role " + r.Role + " or higher."
		}
		if r.Op.Security != nil {
			o["security"] = r.Op.Security
		}
		item[strings.ToLower(r.Method)] = o
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "Warden API", "version": Version,
			"description": "Self-hosted AI model security lab: media verification (spec 003), adversarial sandbox (/v1) and platform endpoints."},
		"servers": []any{map[string]any{"url": s.Config.PublicURL}},
		"paths":   paths,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{
				"apiKey": map[string]any{"type": "apiKey", "in": "header", "name": "x-api-key"},
				"orgId":  map[string]any{"type": "apiKey", "in": "header", "name": "Org-Id"},
				"bearerAuth": map[string]any{"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
					"description": "Access token from POST /v1/auth/token (OAuth2 client credentials)"},
				"clientBasic": map[string]any{"type": "http", "scheme": "basic", "description": "OAuth2 client_id and client_secret (RFC 6749 §2.3.1)"},
			},
		},
	}
}

func (s *Server) getOpenAPI(c echo.Context) error { return c.JSON(http.StatusOK, s.OpenAPI()) }
