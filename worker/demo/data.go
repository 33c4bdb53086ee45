// Package demo trains and registers Warden's demo models: a small CNN on
// scikit-learn's 8×8 handwritten digits (embedded) and a bag-of-words topic
// classifier on WordNet noun glosses (read from the local WordNet). `warden
// dev` registers them for the demo org; `warden demo train` does it on
// demand. Training needs the libtorch engine (build tag "torch"); without it
// EnsureDemoModels logs a warning and does nothing.
package demo

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/wardenlab/warden/modelspec"
)

//go:embed data/digits.csv.gz
var digitsCSV []byte

// Dataset is a labelled set of samples, row-major float32.
type Dataset struct {
	X      []float32
	Y      []int64
	Shape  []int64 // one sample
	Labels []string
	Texts  []string // text samples (NLP only), aligned with Y
}

// N is the number of samples.
func (d *Dataset) N() int { return len(d.Y) }

// SampleSize is the number of floats per sample.
func (d *Dataset) SampleSize() int {
	n := 1
	for _, s := range d.Shape {
		n *= int(s)
	}
	return n
}

// Sample returns sample i.
func (d *Dataset) Sample(i int) []float32 {
	s := d.SampleSize()
	return d.X[i*s : (i+1)*s]
}

// DigitsTest is the number of held-out digits.
const DigitsTest = 200

// Digits returns the embedded digits data split deterministically: every
// 9th row (rows 0, 9, 18, …: 200 rows) is held out for testing, the other
// 1,597 train. Pixels are scaled from 0–16 to [0,1], shape [1,8,8].
func Digits() (train, test *Dataset, err error) {
	zr, err := gzip.NewReader(bytes.NewReader(digitsCSV))
	if err != nil {
		return nil, nil, err
	}
	labels := make([]string, 10)
	for i := range labels {
		labels[i] = strconv.Itoa(i)
	}
	train = &Dataset{Shape: []int64{1, 8, 8}, Labels: labels}
	test = &Dataset{Shape: []int64{1, 8, 8}, Labels: labels}
	sc := bufio.NewScanner(zr)
	row := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) != 65 {
			return nil, nil, fmt.Errorf("digits row %d: %d fields, want 65", row, len(f))
		}
		d := train
		if row%9 == 0 {
			d = test
		}
		for _, v := range f[:64] {
			p, err := strconv.ParseFloat(v, 32)
			if err != nil || p < 0 || p > 16 {
				return nil, nil, fmt.Errorf("digits row %d: bad pixel %q", row, v)
			}
			d.X = append(d.X, float32(p/16))
		}
		y, err := strconv.Atoi(f[64])
		if err != nil || y < 0 || y > 9 {
			return nil, nil, fmt.Errorf("digits row %d: bad label %q", row, f[64])
		}
		d.Y = append(d.Y, int64(y))
		row++
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	if test.N() != DigitsTest || row != 1797 {
		return nil, nil, fmt.Errorf("digits: %d rows, %d held out; want 1797 and %d", row, test.N(), DigitsTest)
	}
	return train, test, nil
}

// Topic is one class of the text model: a WordNet lexicographer file.
type Topic struct {
	Label   string
	LexFile int // field 2 of data.noun
}

// Topics are the text model's classes (noun.animal, noun.food,
// noun.artifact, noun.person).
var Topics = []Topic{{"animal", 5}, {"food", 13}, {"artifact", 6}, {"person", 18}}

// Text data parameters.
const (
	perTopic  = 2500 // synsets per topic, evenly subsampled
	vocabSize = 2000
	textEvery = 10 // every 10th synset of a topic is held out
)

// glossText is a gloss's definition: the text after "|" up to the first
// quoted example.
func glossText(line string) (string, bool) {
	_, g, ok := strings.Cut(line, " | ")
	if !ok {
		return "", false
	}
	if i := strings.IndexByte(g, '"'); i >= 0 {
		g = g[:i]
	}
	g = strings.TrimSpace(strings.TrimRight(strings.TrimSpace(g), ";"))
	return g, g != ""
}

// WordNetGlosses reads the definitions of the noun synsets of Topics from
// dir/data.noun. Each topic keeps perTopic synsets spread evenly over the
// file; every textEvery-th of those is held out. Samples are interleaved
// by topic so the order does not depend on the file's grouping.
func WordNetGlosses(dir string) (train, test *Dataset, err error) {
	b, err := os.ReadFile(filepath.Join(dir, "data.noun"))
	if err != nil {
		return nil, nil, fmt.Errorf("WordNet glosses: %w (install Debian's wordnet-base or set WARDEN_WORDNET_DIR)", err)
	}
	byLex := map[int]int{}
	for i, t := range Topics {
		byLex[t.LexFile] = i
	}
	all := make([][]string, len(Topics))
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == ' ' {
			continue // license header
		}
		f := strings.SplitN(line, " ", 3)
		if len(f) < 3 {
			continue
		}
		lex, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		k, ok := byLex[lex]
		if !ok {
			continue
		}
		if g, ok := glossText(line); ok {
			all[k] = append(all[k], g)
		}
	}
	labels := make([]string, len(Topics))
	for i, t := range Topics {
		labels[i] = t.Label
	}
	train, test = &Dataset{Labels: labels}, &Dataset{Labels: labels}
	picked := make([][]string, len(Topics))
	for k, gs := range all {
		if len(gs) < 100 {
			return nil, nil, fmt.Errorf("WordNet glosses: only %d synsets of topic %s in %s", len(gs), Topics[k].Label, dir)
		}
		n := min(perTopic, len(gs))
		for i := 0; i < n; i++ {
			picked[k] = append(picked[k], gs[int(float64(i)*float64(len(gs))/float64(n))])
		}
	}
	for i := 0; ; i++ {
		more := false
		for k := range picked {
			if i >= len(picked[k]) {
				continue
			}
			more = true
			d := train
			if i%textEvery == 0 {
				d = test
			}
			d.Texts = append(d.Texts, picked[k][i])
			d.Y = append(d.Y, int64(k))
		}
		if !more {
			break
		}
	}
	return train, test, nil
}

// Vocabulary is the n most frequent tokens (modelspec.Tokens) of texts,
// ties broken alphabetically; tokens of one letter are left out.
func Vocabulary(texts []string, n int) []string {
	count := map[string]int{}
	for _, t := range texts {
		for _, w := range modelspec.Tokens(t) {
			if len([]rune(w)) > 1 {
				count[w]++
			}
		}
	}
	words := make([]string, 0, len(count))
	for w := range count {
		words = append(words, w)
	}
	sort.Slice(words, func(i, j int) bool {
		if count[words[i]] != count[words[j]] {
			return count[words[i]] > count[words[j]]
		}
		return words[i] < words[j]
	})
	return words[:min(n, len(words))]
}

// encodeTexts fills d.X with bag-of-words counts over cfg's vocabulary.
func encodeTexts(d *Dataset, cfg modelspec.Config) {
	d.Shape = []int64{int64(len(cfg.Vocabulary))}
	d.X = make([]float32, 0, len(d.Texts)*len(cfg.Vocabulary))
	for _, t := range d.Texts {
		d.X = append(d.X, cfg.EncodeText(t)...)
	}
}

// Scores are held-out metrics.
type Scores struct {
	Accuracy float64 `json:"accuracy"`
	F1       float64 `json:"f1_score"` // macro average over classes
}

// Score compares predictions with labels.
func Score(pred []int, y []int64, classes int) Scores {
	tp, fp, fn := make([]int, classes), make([]int, classes), make([]int, classes)
	right := 0
	for i, p := range pred {
		t := int(y[i])
		if p == t {
			right++
			tp[t]++
		} else {
			fp[p]++
			fn[t]++
		}
	}
	var f1 float64
	for c := 0; c < classes; c++ {
		if d := 2*tp[c] + fp[c] + fn[c]; d > 0 {
			f1 += 2 * float64(tp[c]) / float64(d)
		}
	}
	round := func(v float64) float64 { return math.Round(v*1e4) / 1e4 }
	return Scores{Accuracy: round(float64(right) / float64(len(pred))), F1: round(f1 / float64(classes))}
}
