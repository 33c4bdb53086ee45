package ais

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits bound what an uploaded zip may expand to.
type Limits struct {
	MaxEntries      int     // entries, directories included
	MaxUncompressed int64   // total declared uncompressed bytes
	MaxRatio        float64 // uncompressed/compressed of one entry over 1 MiB
}

// DefaultLimits are Warden's: 10,000 entries, 2 GiB expanded, 100:1.
var DefaultLimits = Limits{MaxEntries: 10000, MaxUncompressed: 2 << 30, MaxRatio: 100}

// ratioFloor is the expanded size under which an entry's ratio is not
// checked (small text compresses well and is harmless).
const ratioFloor = 1 << 20

// Summary is what a valid file holds.
type Summary struct {
	Format       string `json:"format"` // torchscript, images, npy, csv, text
	Entries      int    `json:"entries"`
	Uncompressed int64  `json:"uncompressed_bytes"`
	Samples      int    `json:"samples,omitempty"` // data and label files: how many samples
}

// Check validates the zip in r (size bytes) as the file named file of a
// task-type registration. It returns the summary and every problem found;
// no problems means valid. Archive-level problems (not a zip, unsafe
// paths, links, bombs, too many entries) stop the check before any entry
// is read.
func Check(r io.ReaderAt, size int64, task, file string, lim Limits) (Summary, []string) {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return Summary{}, []string{"not a zip archive: " + err.Error()}
	}
	sum, files, problems := scan(zr, lim)
	if len(problems) > 0 {
		return sum, problems
	}
	c := &checker{task: task, sum: &sum}
	switch {
	case IsModelFile(file):
		c.model(files)
	case file == FileData:
		c.data(files)
	case file == FileLabel:
		c.label(files)
	default:
		c.fail("unknown file %q", file)
	}
	return sum, c.problems
}

// scan checks every entry's name, type and size without reading content,
// and returns the regular files that are not OS clutter.
func scan(zr *zip.Reader, lim Limits) (Summary, []*zip.File, []string) {
	var problems []string
	sum := Summary{Entries: len(zr.File)}
	if len(zr.File) > lim.MaxEntries {
		return sum, nil, []string{fmt.Sprintf("too many entries: %d (at most %d)", len(zr.File), lim.MaxEntries)}
	}
	seen := map[string]bool{}
	var files []*zip.File
	for _, f := range zr.File {
		if msg := unsafeName(f.Name); msg != "" {
			problems = append(problems, fmt.Sprintf("%q: %s", f.Name, msg))
			continue
		}
		mode := f.Mode()
		if !mode.IsRegular() && !mode.IsDir() {
			problems = append(problems, fmt.Sprintf("%q: not a regular file or directory (%s)", f.Name, mode.Type()))
			continue
		}
		if seen[f.Name] {
			problems = append(problems, fmt.Sprintf("%q: duplicate entry", f.Name))
		}
		seen[f.Name] = true
		sum.Uncompressed += int64(min(f.UncompressedSize64, 1<<62))
		if f.UncompressedSize64 > ratioFloor &&
			(f.CompressedSize64 == 0 || float64(f.UncompressedSize64)/float64(f.CompressedSize64) > lim.MaxRatio) {
			problems = append(problems, fmt.Sprintf("%q: compression ratio over %.0f:1 (zip bomb)", f.Name, lim.MaxRatio))
		}
		if mode.IsRegular() && !clutter(f.Name) {
			files = append(files, f)
		}
	}
	if sum.Uncompressed > lim.MaxUncompressed {
		problems = append(problems, fmt.Sprintf("expands to %d bytes (at most %d)", sum.Uncompressed, lim.MaxUncompressed))
	}
	return sum, files, problems
}

var drive = regexp.MustCompile(`^[A-Za-z]:`)

// unsafeName explains why an entry name could escape an extraction
// directory (zip-slip), "" when it cannot.
func unsafeName(name string) string {
	switch {
	case name == "":
		return "empty name"
	case strings.ContainsAny(name, "\\\x00"):
		return "backslash or NUL in the path"
	case strings.HasPrefix(name, "/") || drive.MatchString(name):
		return "absolute path"
	}
	for _, part := range strings.Split(strings.TrimSuffix(name, "/"), "/") {
		if part == ".." {
			return "path leaves the archive (..)"
		}
	}
	return ""
}

// clutter are files archivers add (macOS resource forks, Finder state).
func clutter(name string) bool {
	return strings.HasPrefix(name, "__MACOSX/") || path.Base(name) == ".DS_Store"
}

// checker collects the problems of one file's content.
type checker struct {
	task     string
	sum      *Summary
	problems []string
}

func (c *checker) fail(format string, a ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, a...))
}

func ext(name string) string { return strings.ToLower(path.Ext(name)) }

// byExt groups files by extension.
func byExt(files []*zip.File) map[string][]*zip.File {
	m := map[string][]*zip.File{}
	for _, f := range files {
		m[ext(f.Name)] = append(m[ext(f.Name)], f)
	}
	return m
}

// only reports the files whose extension is not in exts, and is false when
// there were any.
func (c *checker) only(files []*zip.File, what string, exts ...string) bool {
	ok := true
	for _, f := range files {
		found := false
		for _, e := range exts {
			found = found || ext(f.Name) == e
		}
		if !found {
			c.fail("%q: unexpected file in %s (allowed: %s)", f.Name, what, strings.Join(exts, " "))
			ok = false
		}
	}
	return ok
}

// single returns the one file with extension e, reporting none or several.
func (c *checker) single(files []*zip.File, what, e string) *zip.File {
	m := byExt(files)
	if len(m[e]) != 1 {
		c.fail("%s must contain exactly one %s file, found %d", what, e, len(m[e]))
		return nil
	}
	return m[e][0]
}

// sole returns the archive's one file, which must have extension e,
// reporting any other file and none or several of e.
func (c *checker) sole(files []*zip.File, what, e string) *zip.File {
	if !c.only(files, what, e) {
		return nil
	}
	return c.single(files, what, e)
}

// model: exactly one TorchScript archive (.pt, itself a zip written by
// torch.jit.save). Loading it is the runner's job.
func (c *checker) model(files []*zip.File) {
	c.sum.Format = "torchscript"
	f := c.sole(files, "a model zip", ".pt")
	if f == nil {
		return
	}
	if head, err := readHead(f, 4); err != nil || !bytes.Equal(head, []byte("PK\x03\x04")) {
		c.fail("%q: not a TorchScript archive (save it with torch.jit.save)", f.Name)
	}
}

// data checks the data zip of the task type.
func (c *checker) data(files []*zip.File) {
	const what = "the data zip"
	switch c.task {
	case TaskIC:
		if len(byExt(files)[".npy"]) > 0 {
			c.sum.Format = "npy"
			if c.only(files, what+" (an array)", ".npy") {
				if f := c.single(files, what, ".npy"); f != nil {
					c.sum.Samples = c.npyRows(f)
				}
			}
			return
		}
		c.images(files, what, ".png", ".jpg", ".jpeg")
	case TaskIS, TaskOD:
		c.images(files, what, ".png", ".jpg", ".jpeg")
	case TaskTC, TaskTS:
		c.table(files, what, func(int, string) string { return "" }, numeric)
	case TaskTSF:
		c.table(files, what, func(int, string) string { return "" }, func(col int, v string) string {
			if col == 0 {
				return "" // a timestamp or index column
			}
			return numeric(col, v)
		})
	case TaskNLP:
		c.text(files, what)
	default:
		c.fail("unknown task type %q", c.task)
	}
}

// label checks the label zip of the task type.
func (c *checker) label(files []*zip.File) {
	const what = "the label zip"
	switch c.task {
	case TaskIS:
		c.images(files, what+" (masks)", ".png")
	case TaskOD:
		c.boxes(files, what)
	case TaskTSF:
		c.table(files, what, func(int, string) string { return "" }, numeric)
	case TaskIC, TaskTC, TaskTS, TaskNLP:
		c.table(files, what, headerHas("label"), nonEmpty)
	default:
		c.fail("unknown task type %q", c.task)
	}
}

func numeric(col int, v string) string {
	if _, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
		return fmt.Sprintf("column %d: %q is not a number", col+1, v)
	}
	return ""
}

func nonEmpty(col int, v string) string {
	if strings.TrimSpace(v) == "" {
		return fmt.Sprintf("column %d is empty", col+1)
	}
	return ""
}

// headerHas is a header check demanding the named column.
func headerHas(name string) func(int, string) string {
	return func(_ int, header string) string {
		if !strings.Contains(","+strings.ToLower(header)+",", ","+name+",") {
			return fmt.Sprintf("the header must name a %q column", name)
		}
		return ""
	}
}

// maxProblems bounds the per-row problems listed for one file.
const maxProblems = 20

// images: image files only, at least one, each with its format's magic.
func (c *checker) images(files []*zip.File, what string, exts ...string) {
	c.sum.Format = "images"
	if !c.only(files, what, exts...) {
		return
	}
	if len(files) == 0 {
		c.fail("%s contains no image", what)
		return
	}
	bad := 0
	for _, f := range files {
		head, err := readHead(f, 8)
		isPNG := bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n"))
		isJPEG := bytes.HasPrefix(head, []byte("\xff\xd8\xff"))
		if err != nil || (ext(f.Name) == ".png" && !isPNG) || (ext(f.Name) != ".png" && !isJPEG) {
			if bad++; bad <= maxProblems {
				c.fail("%q: not a %s image", f.Name, strings.TrimPrefix(ext(f.Name), "."))
			}
		}
	}
	c.sum.Samples = len(files)
}

// table: exactly one CSV with a header and at least one row, every row as
// wide as the header, header and cells checked by the given functions.
func (c *checker) table(files []*zip.File, what string, header func(int, string) string, cell func(int, string) string) {
	c.sum.Format = "csv"
	f := c.sole(files, what, ".csv")
	if f == nil {
		return
	}
	rows := c.readCSV(f, func(line int, rec []string) []string {
		if line == 1 {
			if msg := header(0, strings.Join(rec, ",")); msg != "" {
				return []string{msg}
			}
			return nil
		}
		var out []string
		for i, v := range rec {
			if msg := cell(i, v); msg != "" {
				out = append(out, msg)
			}
		}
		return out
	})
	c.sum.Samples = rows
}

// readCSV reads a CSV file, calling check on each record (line 1 is the
// header) and listing its problems; it returns the data rows.
func (c *checker) readCSV(f *zip.File, check func(line int, rec []string) []string) int {
	rc, err := f.Open()
	if err != nil {
		c.fail("%q: %v", f.Name, err)
		return 0
	}
	defer rc.Close()
	r := csv.NewReader(bufio.NewReader(rc))
	r.ReuseRecord = true
	bad, line := 0, 0
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line++
		if err != nil {
			c.fail("%q: not a valid CSV: %v", f.Name, err)
			return 0
		}
		for _, msg := range check(line, rec) {
			if bad++; bad <= maxProblems {
				c.fail("%q line %d: %s", f.Name, line, msg)
			}
		}
	}
	if bad > maxProblems {
		c.fail("%q: %d more problems", f.Name, bad-maxProblems)
	}
	if line < 2 {
		c.fail("%q: needs a header row and at least one data row", f.Name)
		return 0
	}
	return line - 1
}

// text: one .txt file of UTF-8 text, one sample per non-empty line, or one
// CSV with a "text" column.
func (c *checker) text(files []*zip.File, what string) {
	if len(byExt(files)[".csv"]) > 0 {
		c.table(files, what, headerHas("text"), nonEmpty)
		return
	}
	c.sum.Format = "text"
	f := c.sole(files, what, ".txt")
	if f == nil {
		return
	}
	rc, err := f.Open()
	if err != nil {
		c.fail("%q: %v", f.Name, err)
		return
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n, line := 0, 0
	for sc.Scan() {
		line++
		if !utf8.Valid(sc.Bytes()) {
			c.fail("%q line %d: not UTF-8 text", f.Name, line)
			return
		}
		if strings.TrimSpace(sc.Text()) != "" {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		c.fail("%q: %v (a line over 1 MiB?)", f.Name, err)
		return
	}
	if n == 0 {
		c.fail("%q: no text lines", f.Name)
	}
	c.sum.Samples = n
}

// boxColumns are the columns of an OD label CSV, one row per box.
var boxColumns = []string{"image", "x_min", "y_min", "x_max", "y_max", "label"}

// boxes: one CSV with boxColumns; samples are the distinct images.
func (c *checker) boxes(files []*zip.File, what string) {
	c.sum.Format = "csv"
	f := c.sole(files, what, ".csv")
	if f == nil {
		return
	}
	images := map[string]bool{}
	c.readCSV(f, func(line int, rec []string) []string {
		if line == 1 {
			if strings.ToLower(strings.Join(rec, ",")) != strings.Join(boxColumns, ",") {
				return []string{"the header must be " + strings.Join(boxColumns, ",")}
			}
			return nil
		}
		if len(rec) != len(boxColumns) {
			return nil // csv already refused a ragged row
		}
		var v [4]float64
		for i := range v {
			x, err := strconv.ParseFloat(strings.TrimSpace(rec[i+1]), 64)
			if err != nil {
				return []string{fmt.Sprintf("%s %q is not a number", boxColumns[i+1], rec[i+1])}
			}
			v[i] = x
		}
		if v[0] >= v[2] || v[1] >= v[3] {
			return []string{"x_min < x_max and y_min < y_max are required"}
		}
		images[rec[0]] = true
		return nil
	})
	c.sum.Samples = len(images)
}

// npyShape reads the shape tuple of a .npy header.
var npyShape = regexp.MustCompile(`'shape':\s*\(\s*(\d+)\s*[,)]`)

// npyRows returns the first dimension of a .npy array (the samples).
func (c *checker) npyRows(f *zip.File) int {
	head, err := readHead(f, 1024)
	if err != nil || !bytes.HasPrefix(head, []byte("\x93NUMPY")) {
		c.fail("%q: not a NumPy .npy array", f.Name)
		return 0
	}
	m := npyShape.FindSubmatch(head)
	if m == nil {
		c.fail("%q: the array has no first dimension", f.Name)
		return 0
	}
	n, err := strconv.Atoi(string(m[1]))
	if err != nil || n == 0 {
		c.fail("%q: the array holds no samples", f.Name)
	}
	return n
}

// readHead reads up to n bytes from the start of an entry.
func readHead(f *zip.File, n int) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, int64(n)))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return b, err
	}
	return b, nil
}

// SampleMismatch explains why data and label summaries disagree, "" when
// they do not (or when either has no count).
func SampleMismatch(data, label Summary) string {
	if data.Samples == 0 || label.Samples == 0 || data.Samples == label.Samples {
		return ""
	}
	return fmt.Sprintf("the data holds %d samples but the label file %d", data.Samples, label.Samples)
}
