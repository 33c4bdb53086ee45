package reftorch

import (
	"os"
	"sort"
	"strconv"
)

// EnvInt is the positive integer in the environment variable name (a
// benchmark's setting, such as TORCH_THREADS), else def.
func EnvInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// Median is the median of a benchmark's times.
func Median(ts []float64) float64 {
	s := append([]float64(nil), ts...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
