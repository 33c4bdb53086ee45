package runner

import (
	"strings"
)

// Layers every confined runner should have.
var allLayers = []string{"namespaces", "landlock", "seccomp", "rlimits"}

// MissingLayers lists the layers of allLayers that layers lacks.
func MissingLayers(layers []string) []string {
	var missing []string
	for _, want := range allLayers {
		found := false
		for _, l := range layers {
			found = found || strings.HasPrefix(l, want)
		}
		if !found {
			missing = append(missing, want)
		}
	}
	return missing
}
