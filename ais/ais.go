// Package ais is AISpectra's (spec 000) vocabulary and file formats: the
// task and analysis types, which pairs the spec allows, which files a
// registration needs, and the validation of an uploaded zip (structure,
// archive-level attacks, and what can be read without libtorch).
package ais

import (
	"fmt"
	"strings"
)

// Task types, as the spec spells them. NLP is also accepted as "Text".
// TS is time-series classification (a window of a series → a class), TSF
// time-series forecasting (a window → the next value(s)): the spec lists
// both without defining TS.
const (
	TaskIC  = "IC"  // image classification
	TaskIS  = "IS"  // image segmentation
	TaskTC  = "TC"  // tabular classification
	TaskTSF = "TSF" // time-series forecasting
	TaskTS  = "TS"  // time-series classification
	TaskNLP = "NLP" // text classification
	TaskOD  = "OD"  // object detection
)

// Analysis types. "poisoning" is the spec's alias of data-poisoning.
const (
	AnalysisMEA            = "MEA"
	AnalysisEVA            = "EVA"
	AnalysisDataPoisoning  = "data-poisoning"
	AnalysisModelPoisoning = "model-poisoning"
	// AnalysisDefence builds the endpoint-defence profile (a Warden
	// extension: started through …/defence, not a registration's type).
	AnalysisDefence = "defence"
)

// File names a registration asks for.
const (
	FileModel       = "model"
	FileData        = "data"
	FileLabel       = "label"
	FileCleanModel1 = "clean_model_1"
	FileCleanModel2 = "clean_model_2"
)

// ParseTask returns the canonical task type, or false for an unknown one.
func ParseTask(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "Text") {
		return TaskNLP, true
	}
	for _, t := range []string{TaskIC, TaskIS, TaskTC, TaskTSF, TaskTS, TaskNLP, TaskOD} {
		if strings.EqualFold(s, t) {
			return t, true
		}
	}
	return "", false
}

// ParseAnalysis returns the canonical analysis type, or false.
func ParseAnalysis(s string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "mea":
		return AnalysisMEA, true
	case "eva":
		return AnalysisEVA, true
	case "data-poisoning", "poisoning":
		return AnalysisDataPoisoning, true
	case "model-poisoning":
		return AnalysisModelPoisoning, true
	}
	return "", false
}

// allowed are the spec's pairs (IC-POS covers both poisoning kinds), and
// TC-data-poisoning, which Warden adds: activation clustering needs only a
// classifier with a linear last layer and labelled rows.
var allowed = map[string][]string{
	TaskIC:  {AnalysisMEA, AnalysisEVA, AnalysisDataPoisoning, AnalysisModelPoisoning},
	TaskIS:  {AnalysisMEA},
	TaskTC:  {AnalysisMEA, AnalysisEVA, AnalysisDataPoisoning},
	TaskTSF: {AnalysisMEA},
	TaskNLP: {AnalysisMEA},
	TaskTS:  {AnalysisMEA},
	TaskOD:  {AnalysisEVA},
}

// Allowed reports whether the spec lists the pair of canonical types;
// the defence analysis (Warden's) is offered for IC.
func Allowed(task, analysis string) bool {
	if analysis == AnalysisDefence {
		return task == TaskIC
	}
	for _, a := range allowed[task] {
		if a == analysis {
			return true
		}
	}
	return false
}

// AllowedPairs lists the allowed pairs as "TASK-ANALYSIS", for messages.
func AllowedPairs() string {
	var out []string
	for _, t := range []string{TaskIC, TaskIS, TaskTC, TaskTSF, TaskNLP, TaskTS, TaskOD} {
		for _, a := range allowed[t] {
			out = append(out, fmt.Sprintf("%s-%s", t, a))
		}
	}
	return strings.Join(out, ", ")
}

// RequiredFiles are the files a registration needs, in upload order: the
// model, its data and labels, and for IC model-poisoning two clean models
// (the spec's rule).
func RequiredFiles(task, analysis string) []string {
	files := []string{FileModel, FileData, FileLabel}
	if task == TaskIC && analysis == AnalysisModelPoisoning {
		files = append(files, FileCleanModel1, FileCleanModel2)
	}
	return files
}

// IsModelFile reports whether a file of that name holds a model.
func IsModelFile(name string) bool {
	return name == FileModel || name == FileCleanModel1 || name == FileCleanModel2
}
