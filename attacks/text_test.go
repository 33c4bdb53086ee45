package attacks

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenlab/warden/attacks/wordnet"
)

var (
	wnOnce sync.Once
	wnDB   *wordnet.WordNet
	wnErr  error
)

func openWordNet(t *testing.T) *wordnet.WordNet {
	t.Helper()
	wnOnce.Do(func() { wnDB, wnErr = wordnet.Open("") })
	if errors.Is(wnErr, wordnet.ErrNotFound) {
		t.Skipf("WordNet files absent from %s — install them with `apt-get install -y wordnet-base` to run the TextFooler tests (%v)", wordnet.DefaultDir, wnErr)
	}
	if wnErr != nil {
		t.Fatal(wnErr)
	}
	return wnDB
}

// naiveBayes is a real multinomial naive Bayes bag-of-words classifier with
// Laplace smoothing, trained in the test. Words outside its vocabulary are
// ignored, as in any count-based text model.
type naiveBayes struct {
	labels []string
	prior  []float64
	logp   []map[string]float64
	vocab  map[string]bool
	calls  int
}

func (nb *naiveBayes) NumClasses() int  { return len(nb.labels) }
func (nb *naiveBayes) Labels() []string { return nb.labels }

func words(s string) []string {
	var out []string
	for _, w := range wordRE.FindAllString(s, -1) {
		out = append(out, strings.ToLower(w))
	}
	return out
}

func trainNB(labels []string, docs []string, y []int) *naiveBayes {
	k := len(labels)
	nb := &naiveBayes{labels: labels, prior: make([]float64, k), logp: make([]map[string]float64, k), vocab: map[string]bool{}}
	counts := make([]map[string]float64, k)
	totals := make([]float64, k)
	for c := range counts {
		counts[c] = map[string]float64{}
	}
	for i, d := range docs {
		nb.prior[y[i]]++
		for _, w := range words(d) {
			counts[y[i]][w]++
			totals[y[i]]++
			nb.vocab[w] = true
		}
	}
	for c := 0; c < k; c++ {
		nb.prior[c] = math.Log(nb.prior[c] / float64(len(docs)))
		nb.logp[c] = map[string]float64{}
		for w := range nb.vocab {
			nb.logp[c][w] = math.Log((counts[c][w] + 1) / (totals[c] + float64(len(nb.vocab))))
		}
	}
	return nb
}

func (nb *naiveBayes) PredictText(ctx context.Context, texts []string) ([][]float32, error) {
	nb.calls++
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		s := append([]float64(nil), nb.prior...)
		for _, w := range words(t) {
			if nb.vocab[w] {
				for c := range s {
					s[c] += nb.logp[c][w]
				}
			}
		}
		mx := math.Inf(-1)
		for _, v := range s {
			mx = math.Max(mx, v)
		}
		var z float64
		for c := range s {
			s[c] = math.Exp(s[c] - mx)
			z += s[c]
		}
		out[i] = make([]float32, len(s))
		for c := range s {
			out[i][c] = float32(s[c] / z)
		}
	}
	return out, nil
}

var (
	posWords = strings.Fields("amazing great excellent wonderful good brilliant superb fantastic loved enjoyed beautiful delightful fun happy perfect best impressive charming")
	negWords = strings.Fields("terrible awful bad boring horrible poor dreadful hated disappointing dull worst weak annoying stupid ugly sad mediocre painful")
	subjects = strings.Fields("movie film plot acting story soundtrack ending cast script book meal service")
	fillers  = strings.Fields("really quite honestly simply truly overall")
)

// sentimentCorpus generates labelled reviews from templates.
func sentimentCorpus(n int, seed uint64) ([]string, []int) {
	r := rand.New(rand.NewPCG(seed, 3))
	tmpl := []string{
		"the %s was %s and %s",
		"i thought the %s was %s , %s %s",
		"what a %s %s , %s",
		"%s %s %s from start to finish",
	}
	pick := func(v []string) string { return v[r.IntN(len(v))] }
	var docs []string
	var ys []int
	for i := 0; i < n; i++ {
		y := i % 2
		lex := posWords
		if y == 1 {
			lex = negWords
		}
		var s string
		switch t := tmpl[r.IntN(len(tmpl))]; t {
		case tmpl[0]:
			s = sprintf(t, pick(subjects), pick(lex), pick(lex))
		case tmpl[1]:
			s = sprintf(t, pick(subjects), pick(lex), pick(fillers), pick(lex))
		case tmpl[2]:
			s = sprintf(t, pick(lex), pick(subjects), pick(fillers))
		default:
			s = sprintf(t, pick(fillers), pick(lex), pick(subjects))
		}
		docs, ys = append(docs, s), append(ys, y)
	}
	return docs, ys
}

func sprintf(t string, args ...string) string {
	for _, a := range args {
		t = strings.Replace(t, "%s", a, 1)
	}
	return t
}

var testSentences = []struct {
	text  string
	label int
}{
	{"This movie was absolutely amazing and I loved every second.", 0},
	{"The acting was brilliant and the story was beautiful.", 0},
	{"A wonderful film with a superb cast.", 0},
	{"The soundtrack is excellent and the ending is perfect.", 0},
	{"I enjoyed the book, a delightful and charming read.", 0},
	{"The service was great and the meal was fantastic.", 0},
	{"An impressive script and a happy ending.", 0},
	{"The plot was good and the acting was great.", 0},
	{"This film was terrible and I hated the ending.", 1},
	{"The acting was awful and the story was boring.", 1},
	{"A dreadful movie with a weak script.", 1},
	{"The meal was bad and the service was poor.", 1},
	{"The soundtrack is annoying and the plot is stupid.", 1},
	{"A dull, disappointing book with a sad ending.", 1},
	{"The cast was mediocre and the film was painful.", 1},
	{"An ugly movie with the worst ending.", 1},
}

func sentimentModel(t *testing.T) *naiveBayes {
	docs, ys := sentimentCorpus(600, 11)
	nb := trainNB([]string{"Positive", "Negative"}, docs, ys)
	var texts []string
	for _, s := range testSentences {
		texts = append(texts, s.text)
	}
	pr, _ := nb.PredictText(context.Background(), texts)
	for i, s := range testSentences {
		if argmax(pr[i]) != s.label {
			t.Fatalf("naive Bayes misclassifies %q; the attack test needs a working model", s.text)
		}
	}
	return nb
}

func TestTextFooler(t *testing.T) {
	wn := openWordNet(t)
	nb := sentimentModel(t)
	var texts []string
	var labels []int
	for _, s := range testSentences {
		texts, labels = append(texts, s.text), append(labels, s.label)
	}
	p := DefaultTextFoolerParams()
	p.NumWordsToChange, p.MaxCandidates = 3, 20
	res, err := TextFooler(context.Background(), nb, wn, texts, labels, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	flipped := 0
	var queries int64
	for i, r := range res {
		queries += r.Queries
		t.Logf("%v %s(%.2f) → %s(%.2f) q=%d: %q → %q", r.Success, r.OriginalPrediction, r.OriginalConfidence, r.AdversarialPrediction, r.AdversarialConfidence, r.Queries, r.OriginalText, r.AdversarialText)
		if r.Success {
			flipped++
			// The reported flip is real: re-classify the adversarial text.
			pr, _ := nb.PredictText(context.Background(), []string{r.AdversarialText})
			if argmax(pr[0]) == labels[i] {
				t.Errorf("claimed flip of %q is not a flip", r.AdversarialText)
			}
		}
		if len(r.WordsChanged) > p.NumWordsToChange {
			t.Errorf("%d words changed, budget %d", len(r.WordsChanged), p.NumWordsToChange)
		}
		if r.LevenshteinDistance != len(r.WordsChanged) {
			t.Errorf("levenshtein %d for %d substitutions", r.LevenshteinDistance, len(r.WordsChanged))
		}
		ow, aw := tokenize(r.OriginalText).words, tokenize(r.AdversarialText).words
		if len(ow) != len(aw) {
			t.Fatalf("word count changed: %q → %q", r.OriginalText, r.AdversarialText)
		}
		for _, c := range r.WordsChanged {
			if IsStopWord(c.Original) {
				t.Errorf("stop word %q was replaced", c.Original)
			}
			if !wn.SharesPOS(c.Original, c.Adversarial) {
				t.Errorf("%q → %q share no WordNet part of speech", c.Original, c.Adversarial)
			}
			if ow[c.Position] != c.Original || aw[c.Position] != c.Adversarial {
				t.Errorf("change %+v does not match the texts", c)
			}
		}
	}
	rate := float64(flipped) / float64(len(res))
	t.Logf("TextFooler flipped %d/%d sentences (%.0f%%), %d queries in total", flipped, len(res), 100*rate, queries)
	if rate < 0.5 {
		t.Fatalf("TextFooler flipped only %.2f of sentences", rate)
	}
}

func TestTextFoolerBudgetAndTarget(t *testing.T) {
	wn := openWordNet(t)
	nb := sentimentModel(t)
	// Budget 1: at most one substitution.
	p := DefaultTextFoolerParams()
	p.NumWordsToChange, p.MaxCandidates = 1, 3
	res, err := TextFooler(context.Background(), nb, wn, []string{testSentences[1].text}, nil, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res[0].WordsChanged) > 1 {
		t.Fatalf("budget 1 changed %d words", len(res[0].WordsChanged))
	}
	// Queries: 1 clean + one per word deletion + at most 3 per tried word.
	nw := len(tokenize(testSentences[1].text).words)
	if res[0].Queries > int64(1+nw+3*nw) {
		t.Fatalf("%d queries exceed the candidate cap", res[0].Queries)
	}
	// Targeted at the current class is immediate success with no change.
	p.TargetLabel = 0
	res, err = TextFooler(context.Background(), nb, wn, []string{testSentences[0].text}, []int{0}, p, nil)
	if err != nil || !res[0].Success || len(res[0].WordsChanged) != 0 {
		t.Fatalf("target already reached: %+v %v", res, err)
	}
	p.TargetLabel = 1
	p.NumWordsToChange = 5
	res, err = TextFooler(context.Background(), nb, wn, []string{testSentences[0].text}, []int{0}, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Success != (res[0].AdversarialLabel == 1) {
		t.Fatalf("targeted success flag %v for label %d", res[0].Success, res[0].AdversarialLabel)
	}
	// Stop words only: nothing may change.
	res, err = TextFooler(context.Background(), nb, wn, []string{"it was not the one and only"}, []int{0}, DefaultTextFoolerParams(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res[0].WordsChanged) != 0 {
		t.Fatalf("stop words were replaced: %+v", res[0].WordsChanged)
	}
}

func TestTextFoolerCancellation(t *testing.T) {
	wn := openWordNet(t)
	nb := sentimentModel(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	_, err := TextFooler(ctx, nb, wn, []string{testSentences[0].text}, nil, DefaultTextFoolerParams(), nil)
	if !errors.Is(err, context.Canceled) || time.Since(start) > time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
}

func TestWordLevenshtein(t *testing.T) {
	a := strings.Fields("This movie was absolutely amazing and I loved every second")
	b := strings.Fields("This movie was absolutely astonishing and I adored every second")
	if d := WordLevenshtein(a, b); d != 2 {
		t.Fatalf("spec example: word-level distance %d, want 2", d)
	}
	if d := WordLevenshtein(strings.Fields("a b c"), strings.Fields("a c")); d != 1 {
		t.Fatalf("deletion distance %d", d)
	}
	if d := WordLevenshtein(nil, strings.Fields("x y")); d != 2 {
		t.Fatalf("insertion distance %d", d)
	}
}
