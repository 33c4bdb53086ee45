package analysis

// SplitSamples is splitSamples, for the benchmark's Python reference.
var SplitSamples = splitSamples
