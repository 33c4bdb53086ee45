package ais

import (
	"archive/zip"
	"bytes"
	"testing"
)

// FuzzDecodeEntry: whatever one data entry holds (an .npy, a PNG, a CSV
// or text), Decode answers with a dataset or an error, never a panic or
// an allocation past its limits.
func FuzzDecodeEntry(f *testing.F) {
	f.Add("x.npy", []byte(npyT("<f4", "(1, 2)", false, f32le(1, 2))))
	f.Add("x.npy", []byte(npyT("|u1", "(2, 2, 2)", false, make([]byte, 8))))
	f.Add("a.png", []byte(hugePNG(&testing.T{}, 3, 3)))
	f.Add("t.csv", []byte("a,b\n1,2\n"))
	f.Add("t.txt", []byte("hello\nworld\n"))
	label := []byte(zipT(&testing.T{}, "l.csv", "label\n1\n"))
	f.Fuzz(func(t *testing.T, name string, body []byte) {
		if unsafeName(name) != "" {
			return
		}
		var buf bytes.Buffer
		w := zip.NewWriter(&buf)
		fw, err := w.Create(name)
		if err != nil {
			return
		}
		fw.Write(body)
		w.Close()
		lim := DecodeLimits{MaxValues: 1 << 16, MaxImageSide: 64}
		for _, task := range []string{TaskIC, TaskTC, TaskTSF, TaskNLP, TaskIS, TaskOD} {
			ds, err := decodeT(task, buf.Bytes(), label, lim)
			if err == nil && int64(len(ds.X.Data)) > lim.MaxValues {
				t.Fatalf("%s: %d values past the limit", task, len(ds.X.Data))
			}
		}
	})
}
