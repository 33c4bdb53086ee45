package ais_test

import (
	"archive/zip"
	"bytes"
	"hash/crc32"
	"image"
	"image/png"
	"io/fs"
	"strings"
	"testing"

	"github.com/wardenlab/warden/ais"
)

// entry is one zip entry to write.
type entry struct {
	name string
	data []byte
	mode fs.FileMode // 0: a regular file
}

// zipOf builds a zip archive of the entries, deflated.
func zipOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		f, err := w.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func pngOf(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// torchScript is a stand-in TorchScript archive: a zip, as torch.jit.save writes.
func torchScript(t *testing.T) []byte {
	return zipOf(t, entry{name: "m/data.pkl", data: []byte("x")}, entry{name: "m/code/m.py", data: []byte("def forward")})
}

func check(t *testing.T, z []byte, task, file string, lim ais.Limits) (ais.Summary, []string) {
	t.Helper()
	return ais.Check(bytes.NewReader(z), int64(len(z)), task, file, lim)
}

func wantProblem(t *testing.T, problems []string, substr string) {
	t.Helper()
	for _, p := range problems {
		if strings.Contains(p, substr) {
			return
		}
	}
	t.Fatalf("no problem mentions %q: %q", substr, problems)
}

// TestCheckValidFiles: each task type's documented formats pass with the
// right sample counts.
func TestCheckValidFiles(t *testing.T) {
	img := pngOf(t)
	npy := append([]byte("\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3, 1, 28, 28), }"), make([]byte, 16)...)
	cases := []struct {
		task, file string
		zip        []byte
		samples    int
	}{
		{"IC", "model", zipOf(t, entry{name: "model/model.pt", data: torchScript(t)}), 0},
		{"IC", "data", zipOf(t, entry{name: "images/"}, entry{name: "images/a.png", data: img}, entry{name: "images/b.png", data: img}, entry{name: "__MACOSX/._a.png", data: []byte("junk")}), 2},
		{"IC", "data", zipOf(t, entry{name: "x.npy", data: npy}), 3},
		{"IC", "label", zipOf(t, entry{name: "label.csv", data: []byte("image,label\na.png,3\nb.png,7\n")}), 2},
		{"IS", "label", zipOf(t, entry{name: "masks/a.png", data: img}), 1},
		{"TC", "data", zipOf(t, entry{name: "data.csv", data: []byte("f1,f2\n1,2.5\n3,-4e2\n")}), 2},
		{"TSF", "data", zipOf(t, entry{name: "series.csv", data: []byte("date,co2\n1958-03,315.7\n1958-04,317.4\n")}), 2},
		{"TSF", "label", zipOf(t, entry{name: "next.csv", data: []byte("co2\n317.4\n317.5\n")}), 2},
		{"TS", "label", zipOf(t, entry{name: "l.csv", data: []byte("label\nup\n")}), 1},
		{"NLP", "data", zipOf(t, entry{name: "texts.txt", data: []byte("good film\n\nbad film\n")}), 2},
		{"NLP", "data", zipOf(t, entry{name: "texts.csv", data: []byte("text\n\"a, b\"\n")}), 1},
		{"OD", "label", zipOf(t, entry{name: "boxes.csv", data: []byte("image,x_min,y_min,x_max,y_max,label\na.png,0,0,4,4,cat\na.png,1,1,2,2,dog\nb.png,0,0,1,1,cat\n")}), 2},
	}
	for _, c := range cases {
		sum, problems := check(t, c.zip, c.task, c.file, ais.DefaultLimits)
		if len(problems) > 0 || sum.Samples != c.samples {
			t.Errorf("%s %s: samples %d (want %d), problems %q", c.task, c.file, sum.Samples, c.samples, problems)
		}
	}
}

// TestCheckArchiveAttacks: zip-slip, links, bombs (ratio, a lying header,
// total size) and too many entries are refused before any entry is read.
func TestCheckArchiveAttacks(t *testing.T) {
	csv := []byte("label\n1\n")
	for name, c := range map[string]struct {
		zip  []byte
		lim  ais.Limits
		want string
	}{
		"zip-slip":        {zipOf(t, entry{name: "../../etc/cron.d/x.csv", data: csv}), ais.DefaultLimits, "leaves the archive"},
		"absolute":        {zipOf(t, entry{name: "/tmp/x.csv", data: csv}), ais.DefaultLimits, "absolute path"},
		"windows":         {zipOf(t, entry{name: `..\x.csv`, data: csv}), ais.DefaultLimits, "backslash"},
		"drive":           {zipOf(t, entry{name: "C:/x.csv", data: csv}), ais.DefaultLimits, "absolute path"},
		"symlink":         {zipOf(t, entry{name: "l.csv", data: []byte("/etc/passwd"), mode: fs.ModeSymlink | 0o777}), ais.DefaultLimits, "not a regular file"},
		"ratio bomb":      {zipOf(t, entry{name: "l.csv", data: make([]byte, 20<<20)}), ais.DefaultLimits, "zip bomb"},
		"total size":      {zipOf(t, entry{name: "a.csv", data: csv}, entry{name: "b.csv", data: bytes.Repeat([]byte("label\n"), 200)}), ais.Limits{MaxEntries: 10, MaxUncompressed: 1000, MaxRatio: 100}, "expands to"},
		"too many":        {zipOf(t, entry{name: "a.csv", data: csv}, entry{name: "b/"}, entry{name: "c.txt"}), ais.Limits{MaxEntries: 2, MaxUncompressed: 1 << 20, MaxRatio: 100}, "too many entries"},
		"duplicate":       {zipOf(t, entry{name: "a.csv", data: csv}, entry{name: "a.csv", data: csv}), ais.DefaultLimits, "duplicate"},
		"not a zip":       {[]byte("label\n1\n"), ais.DefaultLimits, "not a zip"},
		"lying header":    {lyingZip(t), ais.DefaultLimits, "expands to"},
		"lying header 2":  {lyingZip(t), ais.DefaultLimits, "zip bomb"},
		"empty name":      {zipOf(t, entry{name: "", data: csv}), ais.DefaultLimits, "empty name"},
		"dotdot dir only": {zipOf(t, entry{name: "a/../../b.csv", data: csv}), ais.DefaultLimits, "leaves the archive"},
	} {
		_, problems := check(t, c.zip, "IC", "label", c.lim)
		if len(problems) == 0 {
			t.Errorf("%s: accepted", name)
			continue
		}
		t.Run(name, func(t *testing.T) { wantProblem(t, problems, c.want) })
	}
}

// lyingZip declares 3 GiB uncompressed for a few compressed bytes.
func lyingZip(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	data := []byte("label\n1\n")
	f, err := w.CreateRaw(&zip.FileHeader{Name: "l.csv", Method: zip.Store, CRC32: crc32.ChecksumIEEE(data),
		CompressedSize64: uint64(len(data)), UncompressedSize64: 3 << 30})
	if err != nil {
		t.Fatal(err)
	}
	f.Write(data)
	w.Close()
	return buf.Bytes()
}

// TestCheckWrongContent: entries of the wrong type or content are listed,
// each of them.
func TestCheckWrongContent(t *testing.T) {
	for name, c := range map[string]struct {
		task, file string
		zip        []byte
		want       []string
	}{
		"model without .pt":     {"IC", "model", zipOf(t, entry{name: "model.onnx", data: []byte("x")}), []string{`"model.onnx": unexpected file`}},
		"model not torchscript": {"TC", "model", zipOf(t, entry{name: "model.pt", data: []byte("pickle")}), []string{"not a TorchScript archive"}},
		"two models":            {"IC", "model", zipOf(t, entry{name: "a.pt", data: torchScript(t)}, entry{name: "b.pt", data: torchScript(t)}), []string{"exactly one .pt"}},
		"fake png":              {"IC", "data", zipOf(t, entry{name: "a.png", data: []byte("GIF89a")}, entry{name: "b.jpg", data: pngOf(t)}), []string{`"a.png": not a png`, `"b.jpg": not a jpg`}},
		"exe in data":           {"IS", "data", zipOf(t, entry{name: "a.png", data: pngOf(t)}, entry{name: "run.sh", data: []byte("#!")}), []string{`"run.sh": unexpected file`}},
		"no images":             {"OD", "data", zipOf(t, entry{name: "d/"}), []string{"contains no image"}},
		"tabular text":          {"TC", "data", zipOf(t, entry{name: "d.csv", data: []byte("a,b\n1,x\n2,3,4\n")}), []string{"not a valid CSV"}},
		"tabular word":          {"TC", "data", zipOf(t, entry{name: "d.csv", data: []byte("a,b\n1,x\ny,3\n")}), []string{`line 2: column 2: "x"`, `line 3: column 1: "y"`}},
		"label no header":       {"IC", "label", zipOf(t, entry{name: "l.csv", data: []byte("3\n7\n")}), []string{`must name a "label" column`}},
		"header only":           {"TC", "label", zipOf(t, entry{name: "l.csv", data: []byte("label\n")}), []string{"at least one data row"}},
		"od bad box":            {"OD", "label", zipOf(t, entry{name: "b.csv", data: []byte("image,x_min,y_min,x_max,y_max,label\na.png,4,0,1,4,cat\n")}), []string{"x_min < x_max"}},
		"od header":             {"OD", "label", zipOf(t, entry{name: "b.csv", data: []byte("img,label\na,b\n")}), []string{"header must be"}},
		"binary text":           {"NLP", "data", zipOf(t, entry{name: "t.txt", data: []byte{0xff, 0xfe, 'a'}}), []string{"not UTF-8"}},
		"npy garbage":           {"IC", "data", zipOf(t, entry{name: "x.npy", data: []byte("nope")}), []string{"not a NumPy"}},
	} {
		_, problems := check(t, c.zip, c.task, c.file, ais.DefaultLimits)
		for _, w := range c.want {
			t.Run(name, func(t *testing.T) { wantProblem(t, problems, w) })
		}
	}
}

func TestSampleMismatch(t *testing.T) {
	if ais.SampleMismatch(ais.Summary{Samples: 3}, ais.Summary{Samples: 3}) != "" {
		t.Fatal("equal counts refused")
	}
	if ais.SampleMismatch(ais.Summary{Samples: 3}, ais.Summary{Samples: 2}) == "" {
		t.Fatal("3 samples against 2 labels accepted")
	}
}

// TestPairs: the spec's pairs, aliases and canonical names.
func TestPairs(t *testing.T) {
	for _, p := range [][2]string{{"IC", "MEA"}, {"ic", "eva"}, {"IC", "poisoning"}, {"IC", "model-poisoning"}, {"IS", "MEA"}, {"TC", "MEA"},
		{"TC", "EVA"}, {"TC", "poisoning"}, {"TSF", "MEA"}, {"Text", "MEA"}, {"NLP", "MEA"}, {"TS", "MEA"}, {"OD", "EVA"}} {
		task, ok1 := ais.ParseTask(p[0])
		an, ok2 := ais.ParseAnalysis(p[1])
		if !ok1 || !ok2 || !ais.Allowed(task, an) {
			t.Errorf("%v refused", p)
		}
	}
	for _, p := range [][2]string{{"OD", "MEA"}, {"TSF", "EVA"}, {"TC", "model-poisoning"}, {"NLP", "EVA"}} {
		task, _ := ais.ParseTask(p[0])
		an, _ := ais.ParseAnalysis(p[1])
		if ais.Allowed(task, an) {
			t.Errorf("%v allowed", p)
		}
	}
	if _, ok := ais.ParseTask("XX"); ok {
		t.Error("unknown task accepted")
	}
	if n := len(ais.RequiredFiles("IC", "model-poisoning")); n != 5 {
		t.Errorf("IC model-poisoning needs %d files", n)
	}
}
