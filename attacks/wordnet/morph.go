package wordnet

import (
	"sort"
	"strings"
)

// Rule is a morphy suffix-detachment rule: a word ending in Suffix has the
// base form word[:len-len(Suffix)]+Ending.
type Rule struct{ Suffix, Ending string }

// The detachment rules of WordNet's morph.c.
var rules = map[POS][]Rule{
	Noun: {{"s", ""}, {"ses", "s"}, {"xes", "x"}, {"zes", "z"}, {"ches", "ch"}, {"shes", "sh"}, {"men", "man"}, {"ies", "y"}},
	Verb: {{"s", ""}, {"ies", "y"}, {"es", "e"}, {"es", ""}, {"ed", "e"}, {"ed", ""}, {"ing", "e"}, {"ing", ""}},
	Adj:  {{"er", ""}, {"est", ""}, {"er", "e"}, {"est", "e"}},
}

// Analysis is one way a surface word derives from a lemma.
type Analysis struct {
	Lemma string
	POS   POS
	// Rule is the suffix rule applied; empty Suffix and Ending means the
	// word is the lemma itself. Irregular marks an exception-list form.
	Rule      Rule
	Irregular bool
}

// Analyze returns the lemmas of word for pos that exist in WordNet
// (morphy): the word itself, exception-list bases, and suffix-rule bases.
func (w *WordNet) Analyze(word string, pos POS) []Analysis {
	k := key(word)
	var out []Analysis
	seen := map[string]bool{}
	add := func(a Analysis) {
		if !seen[a.Lemma] && w.Has(a.Lemma, pos) {
			seen[a.Lemma] = true
			out = append(out, a)
		}
	}
	add(Analysis{Lemma: k, POS: pos})
	for _, b := range w.exc[pos][k] {
		add(Analysis{Lemma: b, POS: pos, Irregular: true})
	}
	for _, r := range rules[pos] {
		if strings.HasSuffix(k, r.Suffix) && len(k) > len(r.Suffix) {
			add(Analysis{Lemma: k[:len(k)-len(r.Suffix)] + r.Ending, POS: pos, Rule: r})
		}
	}
	return out
}

// POSOf returns the parts of speech under which word (or one of its
// morphy lemmas) is in WordNet.
func (w *WordNet) POSOf(word string) []POS {
	var out []POS
	for _, p := range AllPOS {
		if len(w.Analyze(word, p)) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// SharesPOS reports whether a and b have a WordNet part of speech in common.
func (w *WordNet) SharesPOS(a, b string) bool {
	for _, p := range w.POSOf(a) {
		for _, q := range w.POSOf(b) {
			if p == q {
				return true
			}
		}
	}
	return false
}

// Inflect puts lemma into the surface form described by a (the analysis of
// the word being replaced): "adore" with the analysis of "loved" (suffix
// "ed") gives "adored", "enjoy" gives "enjoyed". Every rule of a's part of
// speech with the same suffix is tried, and a form is accepted only if
// morphy maps it back to lemma with that suffix. ok is false for irregular
// originals, multi-word lemmas in an inflected slot, or when no form works.
func (w *WordNet) Inflect(lemma string, a Analysis) (string, bool) {
	if a.Irregular {
		return "", false
	}
	if a.Rule.Suffix == "" && a.Rule.Ending == "" {
		return lemma, true
	}
	if strings.ContainsAny(lemma, "_ -") || w.irregular[a.POS][key(lemma)] {
		return "", false
	}
	for _, r := range rules[a.POS] {
		if r.Suffix != a.Rule.Suffix || !strings.HasSuffix(lemma, r.Ending) {
			continue
		}
		stem := lemma[:len(lemma)-len(r.Ending)]
		if r.Ending == "" && doubles(stem, r.Suffix) {
			stem += stem[len(stem)-1:] // bed → bedded, big → bigger
		}
		form := stem + r.Suffix
		if stem != lemma[:len(lemma)-len(r.Ending)] {
			return form, true // consonant doubling; morphy cannot undo it
		}
		for _, b := range w.Analyze(form, a.POS) {
			if b.Lemma == key(lemma) && b.Rule.Suffix == a.Rule.Suffix {
				return form, true
			}
		}
	}
	return "", false
}

// doubles reports whether a one-syllable stem ending consonant-vowel-
// consonant doubles its final consonant before a vowel suffix.
func doubles(stem, suffix string) bool {
	if suffix == "s" || len(stem) < 3 {
		return false
	}
	isV := func(c byte) bool { return strings.IndexByte("aeiou", c) >= 0 }
	n := len(stem)
	last, mid, first := stem[n-1], stem[n-2], stem[n-3]
	if isV(last) || !isV(mid) || isV(first) || strings.IndexByte("wxy", last) >= 0 {
		return false
	}
	groups := 0
	for i := 0; i < n; i++ {
		if isV(stem[i]) && (i == 0 || !isV(stem[i-1])) {
			groups++
		}
	}
	return groups == 1
}

// Synonyms returns single- and multi-word synonyms of word for pos, put into
// word's surface form where it is inflected, most frequent senses first,
// without duplicates and without word itself. Multi-word lemmas keep their
// underscores.
func (w *WordNet) Synonyms(word string, pos POS) ([]string, error) {
	k := key(word)
	var out []string
	seen := map[string]bool{k: true}
	for _, a := range w.Analyze(word, pos) {
		syns, err := w.Synsets(a.Lemma, pos)
		if err != nil {
			return nil, err
		}
		for _, s := range syns {
			for _, lemma := range s.Words {
				l := strings.ToLower(lemma)
				if l == a.Lemma {
					continue
				}
				form, ok := w.Inflect(l, a)
				if !ok || seen[form] {
					continue
				}
				seen[form] = true
				out = append(out, form)
			}
		}
	}
	return out, nil
}

// Lemmas returns the distinct lemmas of word across all parts of speech,
// sorted.
func (w *WordNet) Lemmas(word string) []string {
	set := map[string]bool{}
	for _, p := range AllPOS {
		for _, a := range w.Analyze(word, p) {
			set[a.Lemma] = true
		}
	}
	out := make([]string, 0, len(set))
	for l := range set {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}
