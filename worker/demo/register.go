package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/wardenlab/warden"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/records"
	"github.com/wardenlab/warden/storage"
	"github.com/wardenlab/warden/worker/torch"
)

// Set is the pair of demo models.
type Set struct {
	Digits *Trained `json:"digits"`
	Text   *Trained `json:"text"`
}

// All lists the set's models.
func (s *Set) All() []*Trained { return []*Trained{s.Digits, s.Text} }

// cacheVersion names the cache subdirectory; change it when a recipe
// changes so old caches are not reused.
const cacheVersion = "v1"

// CacheDir is where EnsureDemoModels keeps trained files under a data dir.
func CacheDir(dataDir string) string { return filepath.Join(dataDir, "demo-models", cacheVersion) }

// LoadOrTrain returns the demo models cached in dir (set.json and the .pt
// files), training and caching them first when they are missing.
func LoadOrTrain(dir, wordnetDir string) (*Set, error) {
	if s, err := loadSet(dir); err == nil {
		return s, nil
	}
	if !torch.Available() {
		return nil, torch.ErrUnavailable
	}
	d, err := TrainDigits(dir)
	if err != nil {
		return nil, err
	}
	t, err := TrainText(wordnetDir, dir)
	if err != nil {
		return nil, err
	}
	s := &Set{Digits: d, Text: t}
	b, _ := json.MarshalIndent(s, "", "  ")
	tmp := filepath.Join(dir, "set.json.tmp")
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return nil, err
	}
	return s, os.Rename(tmp, filepath.Join(dir, "set.json"))
}

func loadSet(dir string) (*Set, error) {
	b, err := os.ReadFile(filepath.Join(dir, "set.json"))
	if err != nil {
		return nil, err
	}
	var s Set
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	if s.Digits == nil || s.Text == nil {
		return nil, errors.New("demo: incomplete cache")
	}
	for _, m := range s.All() {
		m.ModelPath = filepath.Join(dir, filepath.Base(m.ModelPath))
		if _, err := os.Stat(m.ModelPath); err != nil {
			return nil, err
		}
	}
	return &s, nil
}

// Deps are what registration needs.
type Deps struct {
	DB         *storage.DB
	Blobs      storage.BlobStore
	Jobs       jobs.Service // registers each model as POST /v1/models does
	DataDir    string       // the trained files are cached in CacheDir(DataDir)
	WordNetDir string
}

// Registered is the outcome of registering one demo model.
type Registered struct {
	Name    string
	ModelID string
	JobID   string // validation job; "" when the model already existed
	Existed bool
}

// Register stores each trained model's file in the blob store and creates
// its model row and validation job as POST /v1/models does for an upload
// (status processing; the worker validates it and makes it active). A
// name the org already has is left alone, so registering twice creates no
// duplicates.
func Register(ctx context.Context, d Deps, orgID string, trained []*Trained) ([]Registered, error) {
	var out []Registered
	for _, t := range trained {
		if m, err := d.DB.FindModelByName(ctx, orgID, t.Name); err == nil {
			out = append(out, Registered{Name: t.Name, ModelID: m.ID, Existed: true})
			continue
		} else if warden.ErrorCode(err) != warden.ENOTFOUND {
			return out, err
		}
		r, err := registerOne(ctx, d, orgID, t)
		if err != nil {
			return out, fmt.Errorf("register %s: %w", t.Name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func registerOne(ctx context.Context, d Deps, orgID string, t *Trained) (Registered, error) {
	id := storage.NewModelID()
	key := storage.ModelBlobKey(id)
	f, err := os.Open(t.ModelPath)
	if err != nil {
		return Registered{}, err
	}
	n, err := d.Blobs.Put(ctx, key, f)
	f.Close()
	if err != nil {
		return Registered{}, err
	}
	m := &records.Model{ID: id, OrgID: orgID, Name: t.Name, Type: t.Type, Version: t.Version, Description: t.Description,
		SourceURL: "upload", BlobKey: key, FileSize: n, Metadata: string(t.Metadata)}
	job, err := d.Jobs.RegisterModel(ctx, m, []records.Blob{{Key: key, ContentType: "application/zip", Size: n}})
	if err != nil {
		d.DB.DiscardBlobs(context.WithoutCancel(ctx), d.Blobs, "demo model not registered", key)
		return Registered{}, err
	}
	return Registered{Name: t.Name, ModelID: id, JobID: job.ID}, nil
}

// ErrNoTorch is returned by TrainAndRegister in a build without libtorch.
var ErrNoTorch = errors.New("this warden binary was built without libtorch, so it cannot train the demo models; build it with `make -f mk/torch.mk torch-build` (go build -modfile=.build/go.torch.mod -tags torch)")

// TrainAndRegister trains (or loads from the cache) the demo models and
// registers those the org does not have yet.
func TrainAndRegister(ctx context.Context, d Deps, orgID string) (*Set, []Registered, error) {
	if !torch.Available() {
		return nil, nil, ErrNoTorch
	}
	s, err := LoadOrTrain(CacheDir(d.DataDir), d.WordNetDir)
	if err != nil {
		return nil, nil, err
	}
	r, err := Register(ctx, d, orgID, s.All())
	return s, r, err
}

// EnsureDemoModels is called when `warden dev` starts: when the demo org
// lacks any of the demo models it trains them (or reuses the files cached
// in the data dir, so later starts are instant) and registers them. In a
// build without libtorch it logs a warning and returns nil.
func EnsureDemoModels(ctx context.Context, d Deps, orgID string) error {
	if orgID == "" {
		return nil
	}
	if !torch.Available() {
		slog.Warn("demo models skipped: " + torch.Reason() + "; build with -tags torch to get a demo digits CNN and a demo text classifier")
		return nil
	}
	missing := false
	for _, name := range []string{DigitsName, TextName} {
		if _, err := d.DB.FindModelByName(ctx, orgID, name); warden.ErrorCode(err) == warden.ENOTFOUND {
			missing = true
		} else if err != nil {
			return err
		}
	}
	if !missing {
		return nil
	}
	start := time.Now()
	s, regs, err := TrainAndRegister(ctx, d, orgID)
	if err != nil {
		return err
	}
	for _, r := range regs {
		if !r.Existed {
			var sc Scores
			for _, t := range s.All() {
				if t.Name == r.Name {
					sc = t.Scores
				}
			}
			slog.Info("demo model registered", "org_id", orgID, "name", r.Name, "model_id", r.ModelID, "validation_job_id", r.JobID,
				"held_out_accuracy", sc.Accuracy, "held_out_f1", sc.F1)
		}
	}
	slog.Info("demo models ready", "seconds", time.Since(start).Seconds(), "cache", CacheDir(d.DataDir))
	return nil
}
