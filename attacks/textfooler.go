package attacks

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode"

	"github.com/wardenlab/warden/attacks/wordnet"
)

// TextFoolerParams configures the TextFooler-style word substitution attack
// (Jin, Jin, Zhou, Szolovits 2020) with WordNet synonyms in place of
// counter-fitted embeddings.
type TextFoolerParams struct {
	// NumWordsToChange caps the number of substituted words.
	NumWordsToChange int `json:"num_words_to_change"`
	// MaxCandidates caps the synonyms tried per word.
	MaxCandidates int `json:"max_candidates"`
	// TargetLabel, when >= 0, makes the attack targeted: it stops when the
	// prediction becomes this class. -1 is untargeted.
	TargetLabel int `json:"target_label"`
}

// DefaultTextFoolerParams mirrors the catalog defaults.
func DefaultTextFoolerParams() TextFoolerParams {
	return TextFoolerParams{NumWordsToChange: 5, MaxCandidates: 20, TargetLabel: -1}
}

// WordChange is one substitution.
type WordChange struct {
	Original    string `json:"original"`
	Adversarial string `json:"adversarial"`
	// Position is the index of the word among the text's words.
	Position int `json:"position"`
}

// TextResult is the outcome of a text attack on one input.
type TextResult struct {
	OriginalText          string       `json:"original_input"`
	OriginalLabel         int          `json:"original_label"`
	OriginalPrediction    string       `json:"original_prediction"`
	OriginalConfidence    float32      `json:"original_confidence"`
	AdversarialText       string       `json:"adversarial_example"`
	AdversarialLabel      int          `json:"adversarial_label"`
	AdversarialPrediction string       `json:"adversarial_prediction"`
	AdversarialConfidence float32      `json:"adversarial_confidence"`
	Success               bool         `json:"attack_success"`
	WordsChanged          []WordChange `json:"words_changed"`
	// LevenshteinDistance is the word-level edit distance between the
	// original and adversarial word sequences (insertions, deletions and
	// substitutions of whole words). Substitution-only attacks give the
	// number of words changed, as in spec 002's example (2 words → 2).
	LevenshteinDistance int `json:"levenshtein_distance"`
	// Queries counts texts sent to the model for this input.
	Queries int64 `json:"queries"`
}

var wordRE = regexp.MustCompile(`[A-Za-z]+(?:'[A-Za-z]+)?`)

// tokens splits text into word spans; separators between them are kept so
// the text can be rebuilt exactly.
type tokens struct {
	text  string
	spans [][2]int
	words []string
}

func tokenize(text string) tokens {
	t := tokens{text: text}
	for _, sp := range wordRE.FindAllStringIndex(text, -1) {
		t.spans = append(t.spans, [2]int{sp[0], sp[1]})
		t.words = append(t.words, text[sp[0]:sp[1]])
	}
	return t
}

// render rebuilds the text with words replaced; an empty replacement
// deletes the word together with one adjacent space.
func (t tokens) render(words []string) string {
	var b strings.Builder
	prev := 0
	for i, sp := range t.spans {
		sep := t.text[prev:sp[0]]
		if words[i] == "" && strings.HasSuffix(sep, " ") {
			sep = sep[:len(sep)-1]
		}
		b.WriteString(sep)
		b.WriteString(words[i])
		prev = sp[1]
	}
	b.WriteString(t.text[prev:])
	return b.String()
}

// matchCase gives repl the capitalisation pattern of orig.
func matchCase(orig, repl string) string {
	switch {
	case orig == strings.ToUpper(orig) && len(orig) > 1:
		return strings.ToUpper(repl)
	case unicode.IsUpper(rune(orig[0])):
		return strings.ToUpper(repl[:1]) + repl[1:]
	}
	return repl
}

// WordLevenshtein is the edit distance between two word sequences
// (case-insensitive).
func WordLevenshtein(a, b []string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if strings.EqualFold(a[i-1], b[j-1]) {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// IsStopWord reports whether w is in the stop-word list; stop words are
// never replaced.
func IsStopWord(w string) bool { return stopWords[strings.ToLower(w)] }

// TextFooler attacks each text in turn:
//
//  1. Word importance by deletion: for every word w_i the text without w_i
//     is classified; I_i = p_y(x) − p_y(x∖w_i), plus p_ŷ(x∖w_i) − p_ŷ(x) when
//     the deletion alone changes the prediction to ŷ.
//  2. Words are visited in decreasing importance, skipping stop words and
//     words unknown to WordNet.
//  3. Candidates are WordNet synonyms of the word under each of its parts
//     of speech, re-inflected to the word's form (so every candidate shares
//     a WordNet POS with the original), single words only, no stop words,
//     at most MaxCandidates.
//  4. All candidates are classified in one batch. If some flip the label
//     (or reach the target) the one with the lowest true-class (highest
//     target) probability is taken and the attack stops; otherwise the
//     candidate lowering the true-class probability most is kept if it
//     lowers it at all. At most NumWordsToChange words are substituted.
//
// labels[i] is the true label of texts[i]; nil or -1 uses the model's
// prediction. The paper's sentence-encoder similarity filter is not
// applied (no encoder is available in pure Go); the synonym relation and
// the POS constraint stand in for it.
func TextFooler(ctx context.Context, clf TextClassifier, wn *wordnet.WordNet, texts []string, labels []int, p TextFoolerParams, progress Progress) ([]TextResult, error) {
	if p.NumWordsToChange < 1 || p.MaxCandidates < 1 {
		return nil, fmt.Errorf("attacks: num_words_to_change and max_candidates must be >= 1")
	}
	if wn == nil {
		return nil, fmt.Errorf("attacks: TextFooler needs a WordNet database")
	}
	k := clf.NumClasses()
	if k < 2 || len(clf.Labels()) != k {
		return nil, fmt.Errorf("attacks: text model must have >= 2 classes and one label name per class")
	}
	if p.TargetLabel >= k {
		return nil, fmt.Errorf("attacks: target_label %d out of range [0,%d)", p.TargetLabel, k)
	}
	if labels != nil && len(labels) != len(texts) {
		return nil, fmt.Errorf("attacks: %d labels for %d texts", len(labels), len(texts))
	}
	out := make([]TextResult, len(texts))
	for i, text := range texts {
		progress.report(i*100/len(texts), "ranking_words")
		y := -1
		if labels != nil {
			y = labels[i]
		}
		if y >= k {
			return nil, fmt.Errorf("attacks: label %d out of range [0,%d)", y, k)
		}
		r, err := textFoolerOne(ctx, clf, wn, text, y, p, func(pct int, stage string) {
			progress.report((i*100+pct)/len(texts), stage)
		})
		if err != nil {
			return nil, err
		}
		out[i] = *r
	}
	progress.report(100, "completed")
	return out, nil
}

func textFoolerOne(ctx context.Context, clf TextClassifier, wn *wordnet.WordNet, text string, y int, p TextFoolerParams, progress Progress) (*TextResult, error) {
	names := clf.Labels()
	var queries int64
	predict := func(texts []string) ([][]float32, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pr, err := clf.PredictText(ctx, texts)
		if err != nil {
			return nil, err
		}
		if len(pr) != len(texts) {
			return nil, fmt.Errorf("attacks: model returned %d predictions for %d texts", len(pr), len(texts))
		}
		for _, row := range pr {
			if len(row) != len(names) {
				return nil, fmt.Errorf("attacks: model returned %d scores, want %d", len(row), len(names))
			}
		}
		queries += int64(len(texts))
		return pr, nil
	}
	tok := tokenize(text)
	pr, err := predict([]string{text})
	if err != nil {
		return nil, err
	}
	p0 := pr[0]
	orig := argmax(p0)
	if y < 0 {
		y = orig
	}
	targeted := p.TargetLabel >= 0
	done := func(pred int) bool {
		if targeted {
			return pred == p.TargetLabel
		}
		return pred != y
	}
	res := &TextResult{
		OriginalText: text, OriginalLabel: orig, OriginalPrediction: names[orig], OriginalConfidence: p0[orig],
		AdversarialText: text, AdversarialLabel: orig, AdversarialPrediction: names[orig], AdversarialConfidence: p0[orig],
		WordsChanged: []WordChange{},
	}
	if done(orig) || len(tok.words) == 0 {
		res.Success = done(orig)
		res.Queries = queries
		return res, nil
	}
	// score: lower is better for the attacker.
	score := func(pr []float32) float32 {
		if targeted {
			return -pr[p.TargetLabel]
		}
		return pr[y]
	}

	// 1. Importance by deletion.
	progress(0, "ranking_words")
	del := make([]string, len(tok.words))
	for i := range tok.words {
		w := append([]string(nil), tok.words...)
		w[i] = ""
		del[i] = tok.render(w)
	}
	dp, err := predict(del)
	if err != nil {
		return nil, err
	}
	type ranked struct {
		i   int
		imp float32
	}
	var order []ranked
	for i, w := range tok.words {
		imp := score(p0) - score(dp[i])
		if l := argmax(dp[i]); l != orig {
			imp += dp[i][l] - p0[l]
		}
		if IsStopWord(w) || len(wn.POSOf(w)) == 0 {
			continue
		}
		order = append(order, ranked{i, imp})
	}
	sort.SliceStable(order, func(a, b int) bool { return order[a].imp > order[b].imp })

	// 2-4. Greedy substitution.
	cur := append([]string(nil), tok.words...)
	curScore := score(p0)
	changed := 0
	for n, rk := range order {
		if changed >= p.NumWordsToChange {
			break
		}
		progress(10+80*n/len(order), "generating_candidates")
		word := tok.words[rk.i]
		cands := candidates(wn, word, p.MaxCandidates)
		if len(cands) == 0 {
			continue
		}
		trial := make([]string, len(cands))
		for c, cand := range cands {
			w := append([]string(nil), cur...)
			w[rk.i] = matchCase(word, cand)
			trial[c] = tok.render(w)
		}
		cp, err := predict(trial)
		if err != nil {
			return nil, err
		}
		best, bestFlip := -1, -1
		for c := range cands {
			if done(argmax(cp[c])) && (bestFlip < 0 || score(cp[c]) < score(cp[bestFlip])) {
				bestFlip = c
			}
			if best < 0 || score(cp[c]) < score(cp[best]) {
				best = c
			}
		}
		pick := bestFlip
		if pick < 0 {
			if score(cp[best]) >= curScore {
				continue // no candidate helps; keep the word
			}
			pick = best
		}
		cur[rk.i] = matchCase(word, cands[pick])
		curScore = score(cp[pick])
		changed++
		l := argmax(cp[pick])
		res.AdversarialLabel, res.AdversarialPrediction, res.AdversarialConfidence = l, names[l], cp[pick][l]
		if bestFlip >= 0 {
			res.Success = true
			break
		}
	}
	if changed > 0 {
		res.AdversarialText = tok.render(cur)
	}
	for i := range cur {
		if cur[i] != tok.words[i] {
			res.WordsChanged = append(res.WordsChanged, WordChange{Original: tok.words[i], Adversarial: cur[i], Position: i})
		}
	}
	res.LevenshteinDistance = WordLevenshtein(tok.words, cur)
	res.Queries = queries
	progress(100, "completed")
	return res, nil
}

// candidates returns up to max single-word, non-stop-word WordNet synonyms
// of word across its parts of speech, inflected like word.
func candidates(wn *wordnet.WordNet, word string, max int) []string {
	var out []string
	seen := map[string]bool{strings.ToLower(word): true}
	for _, pos := range wn.POSOf(word) {
		syns, err := wn.Synonyms(word, pos)
		if err != nil {
			continue
		}
		for _, s := range syns {
			if seen[s] || !wordRE.MatchString(s) || wordRE.FindString(s) != s || IsStopWord(s) {
				continue
			}
			seen[s] = true
			out = append(out, s)
			if len(out) == max {
				return out
			}
		}
	}
	return out
}

// stopWords follows the usual English function-word lists (NLTK's list plus
// a few contractions and negations TextFooler also protects).
var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a about above across after afterwards again against ain all almost alone along
already also although always am among amongst an and another any anyhow anyone anything anyway anywhere are aren
aren't around as at back be became because become becomes becoming been before beforehand behind being below beside
besides between beyond both but by can cannot could couldn couldn't d did didn didn't do does doesn doesn't doing don
don't done down due during each either else elsewhere empty enough even ever everyone everything everywhere except
few first for former formerly from further had hadn hadn't has hasn hasn't have haven haven't having he hence her here
hereafter hereby herein hereupon hers herself him himself his how however hundred i if in indeed into is isn isn't it
it's its itself just latter latterly least ll m ma many may me meanwhile might mightn mightn't mine more moreover most
mostly much must mustn mustn't my myself namely needn needn't neither never nevertheless next no nobody none noone nor
not nothing now nowhere o of off on once one only onto or other others otherwise our ours ourselves out over own per
perhaps please put quite rather re really s same shan shan't she she's should should've shouldn shouldn't so some
somehow someone something sometime sometimes somewhere still such t than that that'll the their theirs them themselves
then thence there thereafter thereby therefore therein thereupon these they this those though through throughout thru
thus to together too toward towards under unless until up upon us used ve very via was wasn wasn't we were weren
weren't what whatever when whence whenever where whereafter whereas whereby wherein whereupon wherever whether which
while whither who whoever whole whom whose why will with within without won won't would wouldn wouldn't y yet you
you'd you'll you're you've your yours yourself yourselves`) {
		m[w] = true
	}
	return m
}()
