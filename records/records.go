// Package models holds Warden's domain types as they are persisted with GORM.
package records

import "time"

// Job statuses, shared by every job kind. Each API surface maps them to the
// words of its own spec.
const (
	JobQueued     = "queued"
	JobInProgress = "in_progress"
	JobCompleted  = "completed"
	JobFailed     = "failed"
	JobCancelled  = "cancelled"
)

// Roles, from least to most privileged.
const (
	RoleViewer    = "viewer"
	RoleDeveloper = "developer"
	RoleAdmin     = "admin"
)

// RoleRank orders roles so that a check can ask "at least developer".
func RoleRank(role string) int {
	switch role {
	case RoleViewer:
		return 1
	case RoleDeveloper:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Org owns every other row.
type Org struct {
	ID            string `gorm:"primaryKey;size:64"`
	Name          string `gorm:"size:200;not null"`
	WebhookSecret string `gorm:"size:512;not null"` // "whsec_" + base64, sealed at rest when WARDEN_SECRET_KEY is set (secretbox)
	CreatedAt     time.Time
}

// Credential kinds.
const (
	CredentialAPIKey = "api_key"
	CredentialClient = "oauth_client"
)

// Credential is an API key or an OAuth2 client. Only a SHA-256 of the secret
// is stored; secrets are 32 random bytes, so a slow hash adds nothing.
type Credential struct {
	ID         string `gorm:"primaryKey;size:64"` // API keys: key prefix; clients: client_id
	OrgID      string `gorm:"size:64;not null;index"`
	Kind       string `gorm:"size:32;not null"`
	Role       string `gorm:"size:32;not null"`
	SecretHash string `gorm:"size:64;not null"`
	CreatedAt  time.Time
	RevokedAt  *time.Time
}

// Job is one unit of background work. Its ID is also the asynq TaskID.
type Job struct {
	ID          string  `gorm:"primaryKey;size:64"`
	OrgID       *string `gorm:"size:64;index"` // nil for anonymous verification jobs
	Kind        string  `gorm:"size:64;not null;index"`
	Queue       string  `gorm:"size:32;not null"`
	Status      string  `gorm:"size:32;not null"` // indexed only where unfinished (migration 5)
	Progress    int     `gorm:"not null;default:0"`
	Stage       string  `gorm:"size:128"`
	Input       string  `gorm:"type:text"` // JSON payload as submitted (validated)
	Error       string  `gorm:"type:text"`
	CallbackURL string  `gorm:"size:2048"`
	// Subject is what the job is about where one thing has many jobs
	// (an AISpectra registration's analyses); "" otherwise.
	Subject    string    `gorm:"size:64;index"`
	Attempts   int       `gorm:"not null;default:0"`
	CreatedAt  time.Time `gorm:"index"`
	UpdatedAt  time.Time
	StartedAt  *time.Time
	FinishedAt *time.Time
	Deadline   time.Time // indexed only where unfinished (migration 5)
}

// Org is the id of the org that owns the job, "" for an anonymous one.
func (j Job) Org() string {
	if j.OrgID == nil {
		return ""
	}
	return *j.OrgID
}

// Result is the output of a job; job_id is unique so that a retried handler
// can never produce a second result.
type Result struct {
	ID         uint   `gorm:"primaryKey"`
	JobID      string `gorm:"size:64;not null;uniqueIndex"`
	Label      string `gorm:"size:64;index"` // verification label, attack outcome…
	Data       string `gorm:"type:text"`     // JSON document, shape depends on job kind
	DurationMS int64
	CreatedAt  time.Time `gorm:"index"`
}

// Blob records a stored object that belongs to a job, so deleting the job
// deletes every one of them.
type Blob struct {
	Key         string `gorm:"primaryKey;size:512"`
	JobID       string `gorm:"size:64;not null;index"`
	ContentType string `gorm:"size:128"`
	Size        int64
	CreatedAt   time.Time
}

// Webhook delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed" // gave up after the retry window
)

// WebhookDelivery is one event to POST to a job's callback_url.
type WebhookDelivery struct {
	ID          string `gorm:"primaryKey;size:64"` // also the webhook-id header
	OrgID       string `gorm:"size:64;not null;index"`
	JobID       string `gorm:"size:64;not null;index"`
	EventType   string `gorm:"size:64;not null"`
	URL         string `gorm:"size:2048;not null"`
	Payload     string `gorm:"type:text;not null"`
	Status      string `gorm:"size:32;not null;index"`
	Attempts    int    `gorm:"not null;default:0"`
	CreatedAt   time.Time
	UpdatedAt   time.Time
	DeliveredAt *time.Time
}

// WebhookAttempt records one POST of a delivery.
type WebhookAttempt struct {
	ID           uint   `gorm:"primaryKey"`
	DeliveryID   string `gorm:"size:64;not null;index"`
	Attempt      int
	StatusCode   int
	Error        string `gorm:"type:text"`
	ResponseBody string `gorm:"type:text"` // first 1 KiB
	DurationMS   int64
	CreatedAt    time.Time
}

// SigningKey is an HMAC key for the API's access tokens, shared by every API
// replica through the database. Keys whose RetiredAt is nil verify tokens;
// the newest of them signs. HMAC needs the secret itself (as signing
// webhooks needs the org's webhook secret): storage seals both at rest under
// WARDEN_SECRET_KEY, in clear without it; WARDEN_JWT_KEYS overrides the
// table.
type SigningKey struct {
	KID       string `gorm:"column:kid;primaryKey;size:64"`
	Secret    string `gorm:"size:512;not null"` // standard base64 of 32 random bytes, sealed at rest (secretbox)
	CreatedAt time.Time
	RetiredAt *time.Time
}

// Model statuses (spec 002).
const (
	ModelProcessing = "processing"
	ModelActive     = "active"
	ModelFailed     = "failed"
	ModelDeprecated = "deprecated"
)

// Model is a registered model an org can predict with and attack. Its file
// is a TorchScript module stored as a blob; Config says how to feed it.
type Model struct {
	ID          string    `gorm:"primaryKey;size:64"`
	OrgID       string    `gorm:"size:64;not null;index"`
	Name        string    `gorm:"size:200;not null;index"`
	Type        string    `gorm:"size:16;not null;index"` // CV | NLP
	Version     string    `gorm:"size:64"`
	Description string    `gorm:"type:text"`
	Status      string    `gorm:"size:32;not null;index"`
	Error       string    `gorm:"type:text"`
	SourceURL   string    `gorm:"size:2048"` // model_file_url as submitted ("upload" for multipart)
	EndpointURL string    `gorm:"size:2048"` // a remote prediction endpoint instead of a file (black-box only)
	BlobKey     string    `gorm:"size:512"`
	FileSize    int64     `gorm:"default:0"` // bytes of the file at BlobKey (the org's storage quota counts them)
	Metadata    string    `gorm:"type:text"` // client metadata, JSON object
	Metrics     string    `gorm:"type:text"` // JSON object: owner-reported and measured (num_classes…); the surface renders schemas from it and the metadata
	Device      string    `gorm:"size:32"`   // where validation ran
	CreatedAt   time.Time `gorm:"index"`
	UpdatedAt   time.Time `gorm:"index"`
}

// BlobDeletion is a tombstone: a stored object whose owning rows are gone
// and which must be deleted from the blob store. It is written in the
// transaction that drops those rows and removed once the delete succeeds;
// a failed delete is retried from NextAt with a growing delay.
type BlobDeletion struct {
	Key       string    `gorm:"primaryKey;size:512"`
	Reason    string    `gorm:"size:200"` // what dropped it: "deleted job <id>", "deleted model <id>"…
	Attempts  int       `gorm:"not null;default:0"`
	NextAt    time.Time `gorm:"not null;index"`
	LastError string    `gorm:"type:text"`
	CreatedAt time.Time
}

// Prediction is the audit record of one synchronous prediction (POST
// /v1/models/{id}/predict): who asked which model, a hash of the input
// (not the input), the answer or why there was none, and how long it took.
type Prediction struct {
	ID           string `gorm:"primaryKey;size:64"` // prd_…
	OrgID        string `gorm:"size:64;not null;index"`
	ModelID      string `gorm:"size:64;not null;index"`
	CredentialID string `gorm:"size:64"`
	InputHash    string `gorm:"size:32"`
	Status       string `gorm:"size:32;not null"` // ok, or the error code the client got (invalid, internal, timeout, unavailable)
	Prediction   string `gorm:"size:256"`
	Confidence   float32
	Error        string    `gorm:"type:text"`
	LatencyMS    float64   // as the API saw it
	Batch        int       // predictions that shared the forward pass
	Worker       string    `gorm:"size:256"`
	CreatedAt    time.Time `gorm:"index"`
}

// ResultStat keeps what /api/metrics needs of results whose rows were
// deleted (a client deleting its verification after reading it, as spec
// 003 advises; the anonymous retention sweep): per hour of completion, job
// kind and label, how many and their total duration. Nothing in it
// identifies a job, a file or an owner.
type ResultStat struct {
	Hour          time.Time `gorm:"primaryKey"`
	Kind          string    `gorm:"primaryKey;size:64"`
	Label         string    `gorm:"primaryKey;size:64"`
	Count         int64     `gorm:"not null"`
	DurationMSSum int64     `gorm:"not null"`
}

// AIS registration states (spec 000).
const (
	AISAwaitingUploads = "awaiting_uploads"
	AISReady           = "ready" // every required file uploaded and valid
)

// AISModel is a model registered through AISpectra (spec 000): its task
// and analysis types and the files it needs (AISFile), uploaded once
// through signed URLs that expire at UploadsExpireAt.
type AISModel struct {
	ID           string `gorm:"primaryKey;size:64"`
	OrgID        string `gorm:"size:64;not null;index"`
	CredentialID string `gorm:"size:64"`
	TaskType     string `gorm:"size:16;not null"`
	AnalysisType string `gorm:"size:32;not null"`
	// Params (JSON) and CallbackURL are those of the analysis the
	// registration asked for, started when its uploads are complete.
	Params          string    `gorm:"type:text"`
	CallbackURL     string    `gorm:"size:2048"`
	UploadsExpireAt time.Time `gorm:"not null"`
	CreatedAt       time.Time `gorm:"index"`
}

// AIS file states.
const (
	AISFilePending   = "pending"   // URL issued, nothing received
	AISFileReceiving = "receiving" // the URL was used; the body is being read
	AISFileValid     = "valid"
	AISFileInvalid   = "invalid" // Errors says why; the URL is spent
)

// AISFile is one file of an AISModel (model, data, label, clean_model_1…)
// and the state of its single-use upload URL. UsedAt is set once, by the
// upload that claims the URL.
type AISFile struct {
	ID        string `gorm:"primaryKey;size:64"`
	ModelID   string `gorm:"size:64;not null;index"`
	OrgID     string `gorm:"size:64;not null"`
	Name      string `gorm:"size:32;not null"`
	Status    string `gorm:"size:32;not null"`
	ExpiresAt time.Time
	UsedAt    *time.Time
	BlobKey   string `gorm:"size:512"`
	Size      int64
	Summary   string `gorm:"type:text"` // JSON (ais.Summary) of a valid file
	Errors    string `gorm:"type:text"` // JSON array of strings
	UpdatedAt time.Time
}
