package analysis

import (
	"hash/fnv"
	"strings"
	"unicode"
)

// HashedFeatures is the width of the NLP surrogate's input.
const HashedFeatures = 4096

// hashedBagOfWords is the NLP surrogate's featurizer: the text lowercased,
// split on every rune that is not a letter, and each word counted in
// bucket FNV-1a-32(word) mod HashedFeatures. The exported surrogate takes
// this [N, HashedFeatures] float tensor, not the texts.
func hashedBagOfWords(text string, out []float32) {
	h := fnv.New32a()
	for _, w := range words(text) {
		h.Reset()
		h.Write([]byte(w))
		out[h.Sum32()%HashedFeatures]++
	}
}

// words are the lowercased runs of letters of text.
func words(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) })
}
