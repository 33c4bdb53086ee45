package ais

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// DecodeLimits bound what Decode allocates. A zero field takes its
// DefaultDecodeLimits value.
type DecodeLimits struct {
	MaxSamples   int   // samples (images, rows, lines); also the rows of any CSV, OD's box rows included
	MaxValues    int64 // float32 values of X and Targets together; mask pixels, box coordinates and labels (5 a box) and NLP text bytes count too
	MaxImageSide int   // pixels, width and height of an image or mask (and H, W of an .npy)
	MaxClasses   int   // distinct labels, mask classes
	MaxFileBytes int64 // bytes read from one CSV, text or .npy entry
}

// DefaultDecodeLimits are Warden's: 100,000 samples, 64 Mi values (256 MiB
// of float32), 1024-pixel sides, 10,000 classes, 1 GiB per file.
var DefaultDecodeLimits = DecodeLimits{MaxSamples: 100000, MaxValues: 64 << 20, MaxImageSide: 1024,
	MaxClasses: 10000, MaxFileBytes: 1 << 30}

func (l DecodeLimits) withDefaults() DecodeLimits {
	d := DefaultDecodeLimits
	if l.MaxSamples > 0 {
		d.MaxSamples = l.MaxSamples
	}
	if l.MaxValues > 0 {
		d.MaxValues = l.MaxValues
	}
	if l.MaxImageSide > 0 {
		d.MaxImageSide = l.MaxImageSide
	}
	if l.MaxClasses > 0 {
		d.MaxClasses = l.MaxClasses
	}
	if l.MaxFileBytes > 0 {
		d.MaxFileBytes = l.MaxFileBytes
	}
	return d
}

// ErrUserData is what every error Decode returns for a problem of the
// uploaded files matches with errors.Is: the job should fail for good
// (retrying cannot help) and show the message to the user.
var ErrUserData = errors.New("the uploaded data cannot be used")

// DataError is a problem of the uploaded data, in words for the user
// (file names and line numbers included). It matches ErrUserData.
type DataError struct {
	File string // "data" or "label": the registration file at fault
	Msg  string
}

func (e *DataError) Error() string { return "the " + e.File + " zip: " + e.Msg }

// Is makes errors.Is(err, ErrUserData) true.
func (e *DataError) Is(target error) bool { return target == ErrUserData }

// zipFile is one registration zip being decoded.
type zipFile struct {
	name  string // FileData or FileLabel
	files []*zip.File
	lim   DecodeLimits
}

func (z *zipFile) errf(format string, a ...any) error {
	return &DataError{File: z.name, Msg: fmt.Sprintf(format, a...)}
}

// openZip reads a zip's directory and keeps its regular files, refusing
// what Check refuses at the archive level.
func openZip(name string, r io.ReaderAt, size int64, lim DecodeLimits) (*zipFile, error) {
	z := &zipFile{name: name, lim: lim}
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, z.errf("not a zip archive: %v", err)
	}
	_, files, problems := scan(zr, DefaultLimits)
	if len(problems) > 0 {
		if len(problems) > 3 {
			problems = append(problems[:3], fmt.Sprintf("and %d more", len(problems)-3))
		}
		return nil, z.errf("%s", strings.Join(problems, "; "))
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	z.files = files
	return z, nil
}

// withExt returns the files with one of the extensions.
func (z *zipFile) withExt(exts ...string) []*zip.File {
	var out []*zip.File
	for _, f := range z.files {
		for _, e := range exts {
			if ext(f.Name) == e {
				out = append(out, f)
				break
			}
		}
	}
	return out
}

// one returns the archive's only file with extension e.
func (z *zipFile) one(what string, e string) (*zip.File, error) {
	fs := z.withExt(e)
	if len(fs) != 1 || len(z.files) != 1 {
		return nil, z.errf("must hold exactly one %s file (%s), found %d files", e, what, len(z.files))
	}
	return fs[0], nil
}

// open opens an entry for reading at most MaxFileBytes.
func (z *zipFile) open(f *zip.File) (io.ReadCloser, error) {
	if f.UncompressedSize64 > uint64(z.lim.MaxFileBytes) {
		return nil, z.errf("%q: %d bytes, over the limit of %d", f.Name, f.UncompressedSize64, z.lim.MaxFileBytes)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, z.errf("%q: %v", f.Name, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(rc, z.lim.MaxFileBytes), rc}, nil
}

// Decode decodes a registration's data and label zips (data and label,
// of dataSize and labelSize bytes) for task, a canonical task type, into
// a Dataset. Both zips should have passed Check; Decode still treats them
// as hostile: it refuses what exceeds lim (zero fields take
// DefaultDecodeLimits) before allocating for it, and checks ctx between
// files. Errors the files cause match ErrUserData (a *DataError naming
// the zip, the entry and the line); others are ctx's or I/O errors.
//
// What each task type's zips hold is in the FORMAT text of Example(task,
// "FORMAT.md"); in short: IC images (PNG/JPEG) or one .npy, IS images
// and same-named mask PNGs, OD images and a box CSV, TC/TS a numeric CSV,
// TSF a CSV of windows (first column an id) and a CSV of targets, NLP a
// .txt or a CSV with a text column; labels a CSV with a label column.
func Decode(ctx context.Context, task string, data, label io.ReaderAt, dataSize, labelSize int64, lim DecodeLimits) (*Dataset, error) {
	lim = lim.withDefaults()
	dz, err := openZip(FileData, data, dataSize, lim)
	if err != nil {
		return nil, err
	}
	lz, err := openZip(FileLabel, label, labelSize, lim)
	if err != nil {
		return nil, err
	}
	d := &decoder{ctx: ctx, lim: lim, data: dz, label: lz, ds: &Dataset{Task: task}}
	switch task {
	case TaskIC:
		err = d.ic()
	case TaskIS:
		err = d.is()
	case TaskOD:
		err = d.od()
	case TaskTC, TaskTS:
		err = d.tabular()
	case TaskTSF:
		err = d.tsf()
	case TaskNLP:
		err = d.nlp()
	default:
		return nil, &DataError{File: FileData, Msg: fmt.Sprintf("unknown task type %q", task)}
	}
	if err != nil {
		return nil, err
	}
	return d.ds, nil
}

// decoder holds one Decode's state.
type decoder struct {
	ctx         context.Context
	lim         DecodeLimits
	data, label *zipFile
	ds          *Dataset
	values      int64 // values allocated so far, against lim.MaxValues
}

// reserve accounts for n more values, refusing beyond the limit.
func (d *decoder) reserve(z *zipFile, what string, n int64) error {
	if n < 0 || d.values+n > d.lim.MaxValues {
		return z.errf("%s would hold %d values, over the limit of %d", what, d.values+n, d.lim.MaxValues)
	}
	d.values += n
	return nil
}

// samples refuses more than MaxSamples samples.
func (d *decoder) samples(z *zipFile, what string, n int) error {
	if n > d.lim.MaxSamples {
		return z.errf("%s: %d samples, over the limit of %d", what, n, d.lim.MaxSamples)
	}
	return nil
}

// agree refuses data and label counts that differ.
func (d *decoder) agree(nData, nLabel int, what string) error {
	if nData != nLabel {
		return d.label.errf("holds %d %s but the data zip %d samples", nLabel, what, nData)
	}
	return nil
}

// rowNames are "row 1" … "row n".
func rowNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("row %d", i+1)
	}
	return out
}

// stem is a file's base name without its extension.
func stem(name string) string {
	b := path.Base(name)
	return strings.TrimSuffix(b, path.Ext(b))
}
