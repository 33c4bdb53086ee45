package analysis

import (
	"context"
	"errors"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/jobs"
)

// Temporary until the EVA branch lands (it deletes this function).

func evade(ctx context.Context, v Victim, ds *ais.Dataset, p jobs.AnalysisParams, env Env) (jobs.AnalysisResult, error) {
	return jobs.AnalysisResult{}, errors.New("EVA is not implemented yet")
}
