package exif

import (
	"fmt"
	"regexp"
	"strings"
)

// knownGenerators maps case-insensitive patterns found in software or text
// fields to the generator they name. Patterns are chosen to be unambiguous
// product names, not words that appear in ordinary captions.
var knownGenerators = []struct {
	re   *regexp.Regexp
	name string
}{
	{regexp.MustCompile(`(?i)\bdall[\s·\-]?e\b`), "DALL-E"},
	{regexp.MustCompile(`(?i)\bmidjourney\b`), "Midjourney"},
	{regexp.MustCompile(`(?i)\b(adobe\s+)?firefly\b`), "Adobe Firefly"},
	{regexp.MustCompile(`(?i)\bstable[\s\-_]?diffusion\b|\bsdxl\b`), "Stable Diffusion"},
	{regexp.MustCompile(`(?i)\bcomfyui\b`), "ComfyUI"},
	{regexp.MustCompile(`(?i)\bnovelai\b`), "NovelAI"},
	{regexp.MustCompile(`(?i)\binvokeai\b`), "InvokeAI"},
	{regexp.MustCompile(`(?i)\bfooocus\b`), "Fooocus"},
	{regexp.MustCompile(`(?i)\bleonardo\.ai\b`), "Leonardo.Ai"},
	{regexp.MustCompile(`(?i)\bideogram\b`), "Ideogram"},
	{regexp.MustCompile(`(?i)\bmade with google ai\b`), "Google AI"},
}

// textFields are the Raw fields scanned for generator names.
var textFields = []string{
	"Software", "XMP:CreatorTool", "XMP:softwareAgent", "ImageDescription",
	"UserComment", "Artist", "Comment", "XMP:description", "XMP:Credit",
	"PNG:Software", "PNG:Description", "PNG:Comment", "PNG:Source", "PNG:Title",
}

// a1111Params matches the settings line AUTOMATIC1111 writes into the
// "parameters" chunk, e.g. "Steps: 20, Sampler: Euler a, CFG scale: 7".
var a1111Params = regexp.MustCompile(`Steps:\s*\d+.*Sampler:`)

// detectGenerator fills GeneratorTags and Generator from the evidence in Raw.
func detectGenerator(md *Metadata) {
	name := func(n string) {
		if md.Generator == "" {
			md.Generator = n
		}
	}
	if dst := md.DigitalSourceType; dst != "" {
		short := dst[strings.LastIndexAny(dst, "/#:")+1:]
		switch short {
		case "trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia":
			md.GeneratorTags = append(md.GeneratorTags, "XMP DigitalSourceType: "+short)
		}
	}
	if p, ok := md.Raw["PNG:parameters"]; ok {
		tag := `PNG text chunk "parameters"`
		if a1111Params.MatchString(p) {
			tag += " with AUTOMATIC1111 generation settings (Stable Diffusion)"
			name("Stable Diffusion")
		}
		md.GeneratorTags = append(md.GeneratorTags, tag)
	}
	for _, k := range []string{"PNG:prompt", "PNG:workflow"} {
		if v, ok := md.Raw[k]; ok && strings.HasPrefix(strings.TrimSpace(v), "{") {
			md.GeneratorTags = append(md.GeneratorTags, fmt.Sprintf("PNG text chunk %q with ComfyUI graph JSON", strings.TrimPrefix(k, "PNG:")))
			name("ComfyUI")
		}
	}
	for _, f := range textFields {
		v, ok := md.Raw[f]
		if !ok {
			continue
		}
		for _, g := range knownGenerators {
			if m := g.re.FindString(v); m != "" {
				md.GeneratorTags = append(md.GeneratorTags, fmt.Sprintf("%s names %s (%q)", f, g.name, m))
				name(g.name)
			}
		}
	}
}
