package ais

// runnable are the analyses this version runs; the others may be
// registered (the spec offers them) but not started yet.
var runnable = map[string]bool{AnalysisMEA: true, AnalysisEVA: true, AnalysisModelPoisoning: true, AnalysisDataPoisoning: true,
	AnalysisDefence: true}

// Runnable reports whether analyses of this canonical type can be started.
func Runnable(analysis string) bool { return runnable[analysis] }
