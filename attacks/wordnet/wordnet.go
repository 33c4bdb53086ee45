// Package wordnet reads the Princeton WordNet 3.0 database files
// (index.POS, data.POS and POS.exc, as shipped by Debian's wordnet-base in
// /usr/share/wordnet) and answers lemma, part-of-speech and synonym queries.
// It implements WordNet's "morphy" lemmatisation (exception lists plus
// suffix-detachment rules) and the inverse inflection used to put a
// synonym into the same surface form as the word it replaces.
package wordnet

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultDir is where Debian's wordnet-base installs the database.
const DefaultDir = "/usr/share/wordnet"

// POS is a WordNet part of speech.
type POS byte

// The four WordNet parts of speech. Adjective satellites ('s' in data.adj)
// are reported as Adj.
const (
	Noun POS = 'n'
	Verb POS = 'v'
	Adj  POS = 'a'
	Adv  POS = 'r'
)

// AllPOS lists the parts of speech in WordNet's order.
var AllPOS = []POS{Noun, Verb, Adj, Adv}

func (p POS) String() string {
	switch p {
	case Noun:
		return "noun"
	case Verb:
		return "verb"
	case Adj:
		return "adj"
	case Adv:
		return "adv"
	}
	return "pos(" + string(p) + ")"
}

// Synset is one WordNet synonym set.
type Synset struct {
	Offset int64
	POS    POS
	// Words are the lemmas in the synset as written in the database
	// (multi-word lemmas joined by '_', adjective markers removed).
	Words []string
	Gloss string
}

// WordNet is an in-memory WordNet database. It is safe for concurrent use
// after Open returns.
type WordNet struct {
	index map[POS]map[string][]int64
	data  map[POS][]byte
	exc   map[POS]map[string][]string
	// irregular holds lemmas that have exception-list forms; they are
	// never inflected with regular suffixes ("know" → not "knowed").
	irregular map[POS]map[string]bool
}

// ErrNotFound reports missing database files.
var ErrNotFound = errors.New("wordnet: database files not found")

// Open loads the database from dir (DefaultDir when empty).
func Open(dir string) (*WordNet, error) {
	if dir == "" {
		dir = DefaultDir
	}
	w := &WordNet{index: map[POS]map[string][]int64{}, data: map[POS][]byte{}, exc: map[POS]map[string][]string{}, irregular: map[POS]map[string]bool{}}
	for _, p := range AllPOS {
		name := p.String()
		idx, err := os.ReadFile(filepath.Join(dir, "index."+name))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
			}
			return nil, err
		}
		if w.index[p], err = parseIndex(idx); err != nil {
			return nil, fmt.Errorf("wordnet: index.%s: %w", name, err)
		}
		if w.data[p], err = os.ReadFile(filepath.Join(dir, "data."+name)); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
			}
			return nil, err
		}
		exc, err := os.ReadFile(filepath.Join(dir, name+".exc"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		w.exc[p] = parseExc(exc)
		w.irregular[p] = map[string]bool{}
		for _, bases := range w.exc[p] {
			for _, b := range bases {
				w.irregular[p][b] = true
			}
		}
	}
	return w, nil
}

// parseIndex reads "lemma pos synset_cnt p_cnt [ptr...] sense_cnt
// tagsense_cnt offset..." lines; license lines start with a space.
func parseIndex(b []byte) (map[string][]int64, error) {
	m := make(map[string][]int64, 1<<16)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == ' ' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 6 {
			return nil, fmt.Errorf("short line %q", line)
		}
		cnt, err1 := strconv.Atoi(f[2])
		pc, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || len(f) < 4+pc+2+cnt {
			return nil, fmt.Errorf("bad line %q", line)
		}
		offs := make([]int64, 0, cnt)
		for _, s := range f[len(f)-cnt:] {
			o, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("bad offset in %q", line)
			}
			offs = append(offs, o)
		}
		m[f[0]] = offs
	}
	return m, sc.Err()
}

func parseExc(b []byte) map[string][]string {
	m := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			m[f[0]] = append(m[f[0]], f[1:]...)
		}
	}
	return m
}

func key(word string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(word)), " ", "_")
}

// Has reports whether lemma is in the index for pos (no morphology).
func (w *WordNet) Has(lemma string, pos POS) bool {
	_, ok := w.index[pos][key(lemma)]
	return ok
}

// synsetAt parses the data line starting at byte offset off.
func (w *WordNet) synsetAt(pos POS, off int64) (Synset, error) {
	d := w.data[pos]
	if off < 0 || off >= int64(len(d)) {
		return Synset{}, fmt.Errorf("wordnet: offset %d outside data.%s", off, pos)
	}
	line := d[off:]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	s := string(line)
	gloss := ""
	if i := strings.Index(s, " | "); i >= 0 {
		s, gloss = s[:i], strings.TrimSpace(s[i+3:])
	}
	f := strings.Fields(s)
	if len(f) < 4 {
		return Synset{}, fmt.Errorf("wordnet: bad data line at %d", off)
	}
	if o, err := strconv.ParseInt(f[0], 10, 64); err != nil || o != off {
		return Synset{}, fmt.Errorf("wordnet: data.%s offset %d points at %q", pos, off, f[0])
	}
	n, err := strconv.ParseInt(f[3], 16, 32)
	if err != nil || len(f) < 4+2*int(n) {
		return Synset{}, fmt.Errorf("wordnet: bad word count at %d", off)
	}
	syn := Synset{Offset: off, POS: pos, Gloss: gloss}
	for i := 0; i < int(n); i++ {
		word := f[4+2*i]
		if j := strings.IndexByte(word, '('); j > 0 { // adjective markers (a), (p), (ip)
			word = word[:j]
		}
		syn.Words = append(syn.Words, word)
	}
	return syn, nil
}

// Synsets returns the synsets of lemma (exact index entry) for pos, in
// WordNet's sense order (most frequent first).
func (w *WordNet) Synsets(lemma string, pos POS) ([]Synset, error) {
	var out []Synset
	for _, off := range w.index[pos][key(lemma)] {
		s, err := w.synsetAt(pos, off)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
