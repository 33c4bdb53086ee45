package ais

import (
	"archive/zip"
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wardenlab/warden/attacks"
)

// eachRow streams a CSV entry: header gets line 1, row every later
// record with its line number. It checks ctx every 1024 rows.
func (d *decoder) eachRow(z *zipFile, f *zip.File, header func([]string) error, row func(line int, rec []string) error) error {
	rc, err := z.open(f)
	if err != nil {
		return err
	}
	defer rc.Close()
	r := csv.NewReader(bufio.NewReader(rc))
	r.ReuseRecord = true
	line := 0
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return z.errf("%q: not a valid CSV: %v", f.Name, err)
		}
		line++
		if line%1024 == 0 {
			if err := d.ctx.Err(); err != nil {
				return err
			}
		}
		if line == 1 {
			for i := range rec {
				rec[i] = strings.TrimSpace(strings.TrimPrefix(rec[i], "\ufeff"))
			}
			if err := header(rec); err != nil {
				return err
			}
			continue
		}
		if line-1 > d.lim.MaxSamples {
			return z.errf("%q: more than %d rows, the limit", f.Name, d.lim.MaxSamples)
		}
		if err := row(line, rec); err != nil {
			return err
		}
	}
	if line < 2 {
		return z.errf("%q: needs a header row and at least one data row", f.Name)
	}
	return nil
}

// column is the index of the first header cell named one of names
// (case-insensitive), or -1.
func column(header []string, names ...string) int {
	for i, h := range header {
		for _, n := range names {
			if strings.EqualFold(h, n) {
				return i
			}
		}
	}
	return -1
}

// number parses a finite value that float32 holds.
func number(s string) (float32, bool) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > math.MaxFloat32 {
		return 0, false
	}
	return float32(v), true
}

// numericTable reads a CSV of numbers from column skip on: the header's
// names of those columns, the values as [N, F], and the skipped column's
// cells (nil when skip is 0).
func (d *decoder) numericTable(z *zipFile, f *zip.File, skip int) ([]string, attacks.Batch, []string, error) {
	var names, first []string
	var vals []float32
	n := 0
	err := d.eachRow(z, f, func(h []string) error {
		if len(h) <= skip {
			return z.errf("%q line 1: needs at least %d columns", f.Name, skip+1)
		}
		names = append([]string(nil), h[skip:]...)
		return nil
	}, func(line int, rec []string) error {
		if len(rec) != len(names)+skip {
			return z.errf("%q line %d: %d columns, the header has %d", f.Name, line, len(rec), len(names)+skip)
		}
		if err := d.reserve(z, fmt.Sprintf("%q", f.Name), int64(len(names))); err != nil {
			return err
		}
		if skip > 0 {
			first = append(first, strings.TrimSpace(rec[0]))
		}
		for i, s := range rec[skip:] {
			v, ok := number(s)
			if !ok {
				return z.errf("%q line %d column %d (%s): %q is not a finite number", f.Name, line, i+skip+1, names[i], s)
			}
			vals = append(vals, v)
		}
		n++
		return nil
	})
	if err != nil {
		return nil, attacks.Batch{}, nil, err
	}
	return names, attacks.Batch{Data: vals, Shape: []int{n, len(names)}}, first, nil
}

// labelRows reads a label CSV: each row's label and, when the header
// names one (file, image or filename), its file's base name ("" else).
func (d *decoder) labelRows(z *zipFile) (labels, files []string, hasFile bool, err error) {
	f, err := z.one("the labels", ".csv")
	if err != nil {
		return nil, nil, false, err
	}
	li, fi := -1, -1
	err = d.eachRow(z, f, func(h []string) error {
		li, fi = column(h, "label"), column(h, "file", "image", "filename")
		if li < 0 {
			return z.errf("%q line 1: the header must name a \"label\" column", f.Name)
		}
		return nil
	}, func(line int, rec []string) error {
		if li >= len(rec) || (fi >= 0 && fi >= len(rec)) {
			return z.errf("%q line %d: too few columns", f.Name, line)
		}
		l := strings.TrimSpace(rec[li])
		if l == "" {
			return z.errf("%q line %d: empty label", f.Name, line)
		}
		labels = append(labels, l)
		if fi >= 0 {
			name := strings.TrimSpace(rec[fi])
			if name == "" {
				return z.errf("%q line %d: empty %s", f.Name, line, "file name")
			}
			files = append(files, baseName(name))
		}
		return nil
	})
	return labels, files, fi >= 0, err
}

// baseName is the last element of a slash- or backslash-separated name.
func baseName(s string) string {
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		return s[i+1:]
	}
	return s
}

// classes indexes labels: when every label is an integer ≥ 0 it is its
// own index and the classes are "0".."max"; otherwise the classes are
// the distinct labels sorted and the indices point into them.
func (d *decoder) classes(z *zipFile, labels []string) ([]int, []string, error) {
	idx := make([]int, len(labels))
	integers := true
	maxL := -1
	for i, l := range labels {
		v, err := strconv.Atoi(l)
		if err != nil || v < 0 {
			integers = false
			break
		}
		if v >= d.lim.MaxClasses {
			return nil, nil, z.errf("label %d is over the limit of %d classes", v, d.lim.MaxClasses)
		}
		idx[i] = v
		maxL = max(maxL, v)
	}
	if integers {
		cls := make([]string, maxL+1)
		for i := range cls {
			cls[i] = strconv.Itoa(i)
		}
		return idx, cls, nil
	}
	seen := map[string]int{}
	for _, l := range labels {
		seen[l] = 0
	}
	if len(seen) > d.lim.MaxClasses {
		return nil, nil, z.errf("%d distinct labels, over the limit of %d classes", len(seen), d.lim.MaxClasses)
	}
	cls := make([]string, 0, len(seen))
	for l := range seen {
		cls = append(cls, l)
	}
	sort.Strings(cls)
	for i, c := range cls {
		seen[c] = i
	}
	for i, l := range labels {
		idx[i] = seen[l]
	}
	return idx, cls, nil
}

// setLabels indexes labels into the dataset.
func (d *decoder) setLabels(labels []string) error {
	idx, cls, err := d.classes(d.label, labels)
	if err != nil {
		return err
	}
	d.ds.Labels, d.ds.Classes = idx, cls
	return nil
}

// rowLabels reads the label CSV of a dataset of n rows in order.
func (d *decoder) rowLabels(n int) error {
	labels, _, _, err := d.labelRows(d.label)
	if err != nil {
		return err
	}
	if err := d.agree(n, len(labels), "labels"); err != nil {
		return err
	}
	return d.setLabels(labels)
}

// tabular: TC and TS, one numeric CSV and labels in row order.
func (d *decoder) tabular() error {
	f, err := d.data.one("the table", ".csv")
	if err != nil {
		return err
	}
	names, x, _, err := d.numericTable(d.data, f, 0)
	if err != nil {
		return err
	}
	d.ds.X, d.ds.Features, d.ds.Names = x, names, rowNames(x.N())
	if err := d.ctx.Err(); err != nil {
		return err
	}
	return d.rowLabels(x.N())
}

// tsf: a CSV of windows (first column an id) and a CSV of targets.
func (d *decoder) tsf() error {
	f, err := d.data.one("the windows", ".csv")
	if err != nil {
		return err
	}
	names, x, ids, err := d.numericTable(d.data, f, 1)
	if err != nil {
		return err
	}
	if err := d.ctx.Err(); err != nil {
		return err
	}
	lf, err := d.label.one("the targets", ".csv")
	if err != nil {
		return err
	}
	_, y, _, err := d.numericTable(d.label, lf, 0)
	if err != nil {
		return err
	}
	if err := d.agree(x.N(), y.N(), "target rows"); err != nil {
		return err
	}
	d.ds.X, d.ds.Features, d.ds.Names, d.ds.Targets = x, names, ids, y
	return nil
}

// nlp: a .txt of one sample per non-empty line, or a CSV with a text
// column; labels in order.
func (d *decoder) nlp() error {
	var texts []string
	bytes := int64(0)
	add := func(f *zip.File, line int, s string) error {
		if !utf8.ValidString(s) {
			return d.data.errf("%q line %d: not UTF-8 text", f.Name, line)
		}
		if len(texts) >= d.lim.MaxSamples {
			return d.data.errf("%q: more than %d samples, the limit", f.Name, d.lim.MaxSamples)
		}
		if bytes += int64(len(s)); bytes > d.lim.MaxValues {
			return d.data.errf("%q: more than %d bytes of text, the limit", f.Name, d.lim.MaxValues)
		}
		texts = append(texts, s)
		return nil
	}
	if fs := d.data.withExt(".csv"); len(fs) > 0 {
		f, err := d.data.one("the texts", ".csv")
		if err != nil {
			return err
		}
		ti := -1
		err = d.eachRow(d.data, f, func(h []string) error {
			if ti = column(h, "text"); ti < 0 {
				return d.data.errf("%q line 1: the header must name a \"text\" column", f.Name)
			}
			return nil
		}, func(line int, rec []string) error {
			if ti >= len(rec) || strings.TrimSpace(rec[ti]) == "" {
				return d.data.errf("%q line %d: no text", f.Name, line)
			}
			return add(f, line, rec[ti])
		})
		if err != nil {
			return err
		}
	} else {
		f, err := d.data.one("the texts", ".txt")
		if err != nil {
			return err
		}
		rc, err := d.data.open(f)
		if err != nil {
			return err
		}
		defer rc.Close()
		sc := bufio.NewScanner(rc)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		line := 0
		for sc.Scan() {
			if line++; line%1024 == 0 {
				if err := d.ctx.Err(); err != nil {
					return err
				}
			}
			s := strings.TrimSuffix(sc.Text(), "\r")
			if strings.TrimSpace(s) == "" {
				continue
			}
			if err := add(f, line, s); err != nil {
				return err
			}
		}
		if err := sc.Err(); err != nil {
			return d.data.errf("%q line %d: %v (a line over 1 MiB?)", f.Name, line+1, err)
		}
		if len(texts) == 0 {
			return d.data.errf("%q: no text lines", f.Name)
		}
	}
	d.ds.Texts, d.ds.Names = texts, rowNames(len(texts))
	return d.rowLabels(len(texts))
}
