package analysis

import (
	"context"
	"errors"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/jobs"
)

// Temporary until the MEA and EVA branches land (each deletes its function).

func extract(ctx context.Context, v Victim, ds *ais.Dataset, p jobs.AnalysisParams, env Env) (jobs.AnalysisResult, error) {
	return jobs.AnalysisResult{}, errors.New("MEA is not implemented yet")
}
