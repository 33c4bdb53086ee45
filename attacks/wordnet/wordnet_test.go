package wordnet

import (
	"errors"
	"slices"
	"sync"
	"testing"
)

var (
	once  sync.Once
	wn    *WordNet
	wnErr error
)

func open(t *testing.T) *WordNet {
	t.Helper()
	once.Do(func() { wn, wnErr = Open("") })
	if errors.Is(wnErr, ErrNotFound) {
		t.Skipf("WordNet database not installed in %s (apt-get install -y wordnet-base): %v", DefaultDir, wnErr)
	}
	if wnErr != nil {
		t.Fatal(wnErr)
	}
	return wn
}

func TestSynonymsAndMorphology(t *testing.T) {
	w := open(t)
	syn, err := w.Synonyms("amazing", Adj)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("amazing/adj: %v", syn)
	if !slices.Contains(syn, "astonishing") {
		t.Errorf("astonishing not among synonyms of amazing: %v", syn)
	}
	syn, _ = w.Synonyms("loved", Verb)
	t.Logf("loved/verb: %v", syn)
	if !slices.Contains(syn, "enjoyed") {
		t.Errorf("enjoyed not among inflected synonyms of loved: %v", syn)
	}
	if slices.Contains(syn, "knowed") {
		t.Error("irregular verb know inflected as knowed")
	}
	for _, s := range syn {
		if len(w.Analyze(s, Verb)) == 0 {
			t.Errorf("synonym %q of loved is not a WordNet verb form", s)
		}
	}
	syn, _ = w.Synonyms("cars", Noun)
	t.Logf("cars/noun: %v", syn)
	if !slices.Contains(syn, "automobiles") {
		t.Errorf("automobiles not among synonyms of cars: %v", syn)
	}
	if f, ok := w.Inflect("walk", Analysis{Lemma: "stroll", POS: Verb, Rule: Rule{"ed", ""}}); !ok || f != "walked" {
		t.Errorf("Inflect(walk, -ed) = %q %v, want walked", f, ok)
	}
	if a := w.Analyze("went", Verb); len(a) == 0 || a[0].Lemma != "go" && !slices.ContainsFunc(a, func(x Analysis) bool { return x.Lemma == "go" }) {
		t.Errorf("went does not lemmatise to go via verb.exc: %+v", a)
	}
	if p := w.POSOf("quickly"); !slices.Equal(p, []POS{Adv}) {
		t.Errorf("POSOf(quickly) = %v, want [adv]", p)
	}
	if w.SharesPOS("quickly", "dog") {
		t.Error("quickly and dog share no POS")
	}
	if p := w.POSOf("the"); len(p) != 0 {
		t.Errorf("POSOf(the) = %v, want none", p)
	}
	ss, err := w.Synsets("dog", Noun)
	if err != nil || len(ss) == 0 || ss[0].Gloss == "" || !slices.Contains(ss[0].Words, "domestic_dog") {
		t.Errorf("dog synsets: %+v, %v", ss, err)
	}
}

func TestOpenMissing(t *testing.T) {
	if _, err := Open(t.TempDir()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open(empty dir) = %v, want ErrNotFound", err)
	}
}
