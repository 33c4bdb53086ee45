package ais

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
)

// zipT builds a zip of name, content pairs.
func zipT(t *testing.T, kv ...string) []byte {
	t.Helper()
	var files []exampleFile
	for i := 0; i+1 < len(kv); i += 2 {
		files = append(files, exampleFile{kv[i], []byte(kv[i+1])})
	}
	b, err := zipOf(files)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeT(task string, data, label []byte, lim DecodeLimits) (*Dataset, error) {
	return decodeCtx(context.Background(), task, data, label, lim)
}

func decodeCtx(ctx context.Context, task string, data, label []byte, lim DecodeLimits) (*Dataset, error) {
	return Decode(ctx, task, bytes.NewReader(data), bytes.NewReader(label), int64(len(data)), int64(len(label)), lim)
}

func exampleT(t *testing.T, task, file string) []byte {
	t.Helper()
	b, err := Example(task, file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pngT encodes an image.
func pngT(t *testing.T, img image.Image) string {
	t.Helper()
	b, err := pngOf(img)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func grayT(t *testing.T, w, h int, v uint8) string {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i := range g.Pix {
		g.Pix[i] = v
	}
	return pngT(t, g)
}

// hugePNG is a PNG whose header declares w×h pixels (no pixel data).
func hugePNG(t *testing.T, w, h uint32) string {
	b := []byte(grayT(t, 1, 1, 0))
	// IHDR data starts at 16: width, height; its CRC covers type and data.
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return string(b)
}

// npyT builds a .npy of a header dictionary's fields and raw data.
func npyT(descr, shape string, fortran bool, data []byte) string {
	f := "False"
	if fortran {
		f = "True"
	}
	h := fmt.Sprintf("{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr, f, shape)
	for (10+len(h)+1)%64 != 0 {
		h += " "
	}
	h += "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(h)))
	b.WriteString(h)
	b.Write(data)
	return b.String()
}

func f32le(vs ...float32) []byte {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// TestDecodeImages: IC from the digits example decodes to the digits'
// pixels (0–16 → [0, 1]) and labels; a .npy of the same digits in each
// element type decodes alike.
func TestDecodeImages(t *testing.T) {
	ds0, err := digits()
	if err != nil {
		t.Fatal(err)
	}
	label := exampleT(t, TaskIC, FileLabel)
	ds, err := decodeT(TaskIC, exampleT(t, TaskIC, FileData), label, DecodeLimits{})
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range ds0 {
		if ds.Labels[i] != d.label || ds.Names[i] != fmt.Sprintf("digit_%03d.png", i) {
			t.Fatalf("sample %d: label %d name %q, want %d", i, ds.Labels[i], ds.Names[i], d.label)
		}
		for k, v := range ds.X.Sample(i) {
			if want := float32(grayOf(d.pix[k]).Y) / 255; v != want {
				t.Fatalf("sample %d pixel %d: %v, want %v", i, k, v, want)
			}
		}
	}

	// The same digits as arrays: uint8 [N,H,W], float32 [N,1,H,W],
	// float64 big-endian [N,F].
	n := len(ds0)
	u8 := make([]byte, 0, n*64)
	var f32, f64 []byte
	for _, d := range ds0 {
		for _, p := range d.pix {
			u8 = append(u8, grayOf(p).Y)
			f32 = append(f32, f32le(float32(grayOf(p).Y)/255)...)
			f64 = binary.BigEndian.AppendUint64(f64, math.Float64bits(float64(grayOf(p).Y)/255))
		}
	}
	csv := "label\n"
	for _, d := range ds0 {
		csv += fmt.Sprint(d.label, "\n")
	}
	for _, tc := range []struct {
		name, npy string
		shape     []int
	}{
		{"uint8 NHW", npyT("|u1", fmt.Sprintf("(%d, 8, 8)", n), false, u8), []int{n, 1, 8, 8}},
		{"float32 NCHW", npyT("<f4", fmt.Sprintf("(%d, 1, 8, 8)", n), false, f32), []int{n, 1, 8, 8}},
		{"float64 NF", npyT(">f8", fmt.Sprintf("(%d, 64)", n), false, f64), []int{n, 64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeT(TaskIC, zipT(t, "x.npy", tc.npy), zipT(t, "y.csv", csv), DecodeLimits{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.X.Shape, tc.shape) || got.Names[0] != "row 1" {
				t.Fatalf("shape %v names %v", got.X.Shape, got.Names[:1])
			}
			for i := range got.X.Data {
				if math.Abs(float64(got.X.Data[i]-ds.X.Data[i])) > 1e-6 {
					t.Fatalf("value %d: %v, want %v", i, got.X.Data[i], ds.X.Data[i])
				}
			}
			for i := range ds.Labels {
				if got.Labels[i] != ds.Labels[i] {
					t.Fatalf("label %d: %d, want %d", i, got.Labels[i], ds.Labels[i])
				}
			}
		})
	}
}

// TestDecodeImageVariants: colour images give three planes; without a
// file column labels pair with the images sorted by path; names index
// sorted classes.
func TestDecodeImageVariants(t *testing.T) {
	rgb := image.NewRGBA(image.Rect(0, 0, 3, 2))
	rgb.Set(1, 0, color.RGBA{255, 0, 51, 255})
	data := zipT(t, "b/z.png", pngT(t, rgb), "a/y.png", grayT(t, 3, 2, 255))
	ds, err := decodeT(TaskIC, data, zipT(t, "l.csv", "label\ncat\nbird\n"), DecodeLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ds.X.Shape, []int{2, 3, 2, 3}) {
		t.Fatalf("shape %v", ds.X.Shape)
	}
	// a/y.png (white) is first, then b/z.png.
	if ds.Names[0] != "y.png" || ds.X.Data[0] != 1 || ds.Labels[0] != 1 || ds.Labels[1] != 0 ||
		strings.Join(ds.Classes, ",") != "bird,cat" {
		t.Errorf("names %v first %v labels %v classes %v", ds.Names, ds.X.Data[0], ds.Labels, ds.Classes)
	}
	var jb bytes.Buffer
	g := image.NewGray(image.Rect(0, 0, 3, 2))
	for i := range g.Pix {
		g.Pix[i] = 200
	}
	if err := jpeg.Encode(&jb, g, nil); err != nil {
		t.Fatal(err)
	}
	jd, err := decodeT(TaskIC, zipT(t, "g.jpg", jb.String()), zipT(t, "l.csv", "label\n0\n"), DecodeLimits{})
	if err != nil || !slices.Equal(jd.X.Shape, []int{1, 1, 2, 3}) || math.Abs(float64(jd.X.Data[0])-200.0/255) > 2.0/255 {
		t.Fatalf("gray JPEG: %v %v", err, jd)
	}
	z := ds.X.Sample(1)
	if z[1] != 1 || z[6+1] != 0 || math.Abs(float64(z[12+1])-0.2) > 1e-6 {
		t.Errorf("pixel (1,0) of z.png: r %v g %v b %v", z[1], z[7], z[13])
	}
}

// TestDecodeTables: TC from wine, TS and TSF from the examples, NLP from
// a text file and a CSV.
func TestDecodeTables(t *testing.T) {
	wine, err := os.ReadFile("testdata/wine_data.csv")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(wine)), "\n")[1:]
	var data, label strings.Builder
	data.WriteString("f1,f2,f3,f4,f5,f6,f7,f8,f9,f10,f11,f12,f13\n")
	label.WriteString("id,label\n")
	for i, l := range lines {
		k := strings.LastIndex(l, ",")
		data.WriteString(l[:k] + "\n")
		fmt.Fprintf(&label, "%d,%s\n", i, l[k+1:])
	}
	ds, err := decodeT(TaskTC, zipT(t, "t.csv", data.String()), zipT(t, "l.csv", label.String()), DecodeLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ds.X.Shape, []int{178, 13}) || ds.X.Data[0] != 14.23 || ds.X.Data[12] != 1065 ||
		strings.Join(ds.Classes, ",") != "0,1,2" || ds.Labels[177] != 2 || ds.Features[12] != "f13" || ds.Names[177] != "row 178" {
		t.Errorf("wine: shape %v x0 %v classes %v last label %d", ds.X.Shape, ds.X.Data[:13], ds.Classes, ds.Labels[177])
	}

	ts, err := decodeT(TaskTSF, exampleT(t, TaskTSF, FileData), exampleT(t, TaskTSF, FileLabel), DecodeLimits{})
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := readRows("co2_80weeks.csv", ",")
	if ts.Names[0] != rows[0][0] || ts.X.Sample(1)[0] != mustF(rows[1][1]) || ts.Targets.Sample(0)[0] != mustF(rows[exampleWindow][1]) ||
		ts.Features[exampleWindow-1] != "t_minus_0" {
		t.Errorf("tsf: name %q x %v target %v", ts.Names[0], ts.X.Sample(1)[:2], ts.Targets.Sample(0))
	}

	for _, tc := range []struct{ name, data string }{
		{"txt", "first text\n\n  \nsecond, with a comma\r\nthird\n"},
		{"csv", "id,text\n1,first text\n2,\"second, with a comma\"\n3,third\n"},
	} {
		file := "texts.txt"
		if tc.name == "csv" {
			file = "texts.csv"
		}
		ds, err := decodeT(TaskNLP, zipT(t, file, tc.data), zipT(t, "l.csv", "label\nspam\nham\nspam\n"), DecodeLimits{})
		if err != nil {
			t.Fatal(tc.name, err)
		}
		if strings.Join(ds.Texts, "|") != "first text|second, with a comma|third" || ds.N() != 3 ||
			fmt.Sprint(ds.Labels) != "[1 0 1]" {
			t.Errorf("%s: texts %q labels %v", tc.name, ds.Texts, ds.Labels)
		}
	}
}

func mustF(s string) float32 { v, _ := number(s); return v }

// TestDecodeMasksAndBoxes: IS masks (gray and palette) and OD boxes
// (indices and names).
func TestDecodeMasksAndBoxes(t *testing.T) {
	ds, err := decodeT(TaskIS, exampleT(t, TaskIS, FileData), exampleT(t, TaskIS, FileLabel), DecodeLimits{})
	if err != nil {
		t.Fatal(err)
	}
	dg, _ := digits()
	hw := 24 * 24
	for i := 0; i < 20; i++ {
		var ink, labelled int
		for k := 0; k < hw; k++ {
			if ds.X.Data[i*hw+k] >= 128.0/255 {
				ink++
			}
			if m := ds.Masks[i*hw+k]; m != 0 {
				labelled++
				if int(m) != dg[i].label+1 {
					t.Fatalf("scene %d: mask class %d, want %d", i, m, dg[i].label+1)
				}
			}
		}
		if ink == 0 || ink != labelled {
			t.Fatalf("scene %d: %d inked pixels, %d labelled", i, ink, labelled)
		}
	}

	pal := image.NewPaletted(image.Rect(0, 0, 4, 3), color.Palette{color.Black, color.RGBA{255, 0, 0, 255}, color.RGBA{0, 255, 0, 255}})
	pal.SetColorIndex(3, 2, 2)
	got, err := decodeT(TaskIS, zipT(t, "im/a.jpg.png", grayT(t, 4, 3, 9), "im/b.png", grayT(t, 4, 3, 9)),
		zipT(t, "a.jpg.png", pngT(t, pal), "m/b.png", grayT(t, 4, 3, 1)), DecodeLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if got.MaskClasses != 3 || got.Masks[11] != 2 || got.Masks[0] != 0 || got.Masks[12] != 1 {
		t.Errorf("palette masks: classes %d masks %v", got.MaskClasses, got.Masks)
	}

	od, err := decodeT(TaskOD, exampleT(t, TaskOD, FileData), exampleT(t, TaskOD, FileLabel), DecodeLimits{})
	if err != nil {
		t.Fatal(err)
	}
	b := od.Boxes[0][0]
	if b.Label != dg[0].label || b.XMin >= b.XMax || b.XMax > 40 {
		t.Errorf("first box %+v, digit %d", b, dg[0].label)
	}
	named, err := decodeT(TaskOD, zipT(t, "p.png", grayT(t, 10, 10, 0), "q.png", grayT(t, 10, 10, 0)),
		zipT(t, "b.csv", "image,x_min,y_min,x_max,y_max,label\np.png,1,2,3,4,dog\np.png,0,0,10,10,cat\n"), DecodeLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(named.Boxes[0]) != 2 || len(named.Boxes[1]) != 0 || named.Boxes[0][0] != (Box{1, 2, 3, 4, 1}) || strings.Join(named.Classes, ",") != "cat,dog" {
		t.Errorf("boxes %+v classes %v", named.Boxes, named.Classes)
	}
}

// TestDecodeRefuses: hostile or broken uploads fail with a message naming
// the problem, as ErrUserData.
func TestDecodeRefuses(t *testing.T) {
	img := grayT(t, 8, 8, 0)
	digitsLabel := "file,label\na.png,1\nb.png,2\n"
	two := zipT(t, "a.png", img, "b.png", img)
	num := func(n int) string {
		s := "label\n"
		for i := 0; i < n; i++ {
			s += "1\n"
		}
		return s
	}
	for _, tc := range []struct {
		name, task  string
		data, label []byte
		lim         DecodeLimits
		want        string
	}{
		{"not a zip", TaskTC, []byte("PK but no"), zipT(t, "l.csv", num(1)), DecodeLimits{}, "not a zip archive"},
		{"zip slip", TaskTC, zipT(t, "../t.csv", "a\n1\n"), zipT(t, "l.csv", num(1)), DecodeLimits{}, "leaves the archive"},
		{"sizes differ", TaskIC, zipT(t, "a.png", img, "b.png", img, "c.png", grayT(t, 9, 8, 0)), zipT(t, "l.csv", num(3)), DecodeLimits{},
			`most are 8×8 but "c.png" is 9×8`},
		{"missing label", TaskIC, zipT(t, "a.png", img, "b.png", img, "c.png", img), zipT(t, "l.csv", digitsLabel), DecodeLimits{},
			`no label for 1 image(s): "c.png"`},
		{"label of no image", TaskIC, zipT(t, "a.png", img), zipT(t, "l.csv", digitsLabel), DecodeLimits{}, `does not hold: "b.png"`},
		{"labelled twice", TaskIC, two, zipT(t, "l.csv", "image,label\na.png,1\nx/a.png,2\n"), DecodeLimits{}, `"a.png" is labelled twice`},
		{"count mismatch", TaskIC, two, zipT(t, "l.csv", num(3)), DecodeLimits{}, "holds 3 labels but the data zip 2 samples"},
		{"no label column", TaskIC, two, zipT(t, "l.csv", "class\n1\n2\n"), DecodeLimits{}, `must name a "label" column`},
		{"not an image", TaskIC, zipT(t, "a.png", "\x89PNG\r\n\x1a\nrubbish"), zipT(t, "l.csv", num(1)), DecodeLimits{}, `"a.png": not a readable`},
		{"huge png", TaskIC, zipT(t, "a.png", hugePNG(t, 100000, 100000)), zipT(t, "l.csv", num(1)), DecodeLimits{}, "100000×100000 pixels"},
		{"too many values", TaskIC, two, zipT(t, "l.csv", digitsLabel), DecodeLimits{MaxValues: 100}, "over the limit of 100"},
		{"too many samples", TaskIC, two, zipT(t, "l.csv", digitsLabel), DecodeLimits{MaxSamples: 1}, "over the limit of 1"},
		{"class index too large", TaskIC, two, zipT(t, "l.csv", "label\n1\n99999999\n"), DecodeLimits{}, "label 99999999 is over the limit"},
		{"non-numeric", TaskTC, zipT(t, "t.csv", "a,b\n1,2\n3,x\n"), zipT(t, "l.csv", num(2)), DecodeLimits{}, `line 3 column 2 (b): "x" is not a finite number`},
		{"NaN", TaskTC, zipT(t, "t.csv", "a\nNaN\n"), zipT(t, "l.csv", num(1)), DecodeLimits{}, `"NaN" is not a finite number`},
		{"float32 overflow", TaskTC, zipT(t, "t.csv", "a\n1e300\n"), zipT(t, "l.csv", num(1)), DecodeLimits{}, "not a finite number"},
		{"ragged", TaskTC, zipT(t, "t.csv", "a,b\n1,2\n3\n"), zipT(t, "l.csv", num(2)), DecodeLimits{}, "not a valid CSV"},
		{"rows vs labels", TaskTC, zipT(t, "t.csv", "a\n1\n2\n"), zipT(t, "l.csv", num(1)), DecodeLimits{}, "holds 1 labels but the data zip 2"},
		{"two tables", TaskTC, zipT(t, "t.csv", "a\n1\n", "u.csv", "a\n1\n"), zipT(t, "l.csv", num(1)), DecodeLimits{}, "exactly one .csv"},
		{"tsf targets", TaskTSF, zipT(t, "w.csv", "id,a\nx,1\ny,2\n"), zipT(t, "y.csv", "h\n1\n"), DecodeLimits{}, "1 target rows"},
		{"tsf no window", TaskTSF, zipT(t, "w.csv", "id\nx\n"), zipT(t, "y.csv", "h\n1\n"), DecodeLimits{}, "needs at least 2 columns"},
		{"text not utf8", TaskNLP, zipT(t, "t.txt", "ok\n\xff\xfe\n"), zipT(t, "l.csv", num(2)), DecodeLimits{}, `"t.txt" line 2: not UTF-8`},
		{"text no lines", TaskNLP, zipT(t, "t.txt", "\n \n"), zipT(t, "l.csv", num(1)), DecodeLimits{}, "no text lines"},
		{"text column", TaskNLP, zipT(t, "t.csv", "body\nhi\n"), zipT(t, "l.csv", num(1)), DecodeLimits{}, `"text" column`},
		{"npy magic", TaskIC, zipT(t, "x.npy", "NUMPY not really"), zipT(t, "l.csv", num(1)), DecodeLimits{}, "not a NumPy .npy array"},
		{"npy huge shape", TaskIC, zipT(t, "x.npy", npyT("<f4", "(1000000000, 1000, 1000)", false, nil)), zipT(t, "l.csv", num(1)), DecodeLimits{}, "not a count from 1"},
		{"npy big product", TaskIC, zipT(t, "x.npy", npyT("<f4", "(100000, 1000, 1000)", false, nil)), zipT(t, "l.csv", num(1)), DecodeLimits{}, "more than 67108864 values"},
		{"npy side", TaskIC, zipT(t, "x.npy", npyT("<f4", "(1, 1, 2000, 2)", false, nil)), zipT(t, "l.csv", num(1)), DecodeLimits{}, "each side must be at most 1024"},
		{"npy dtype", TaskIC, zipT(t, "x.npy", npyT("<i8", "(1, 2)", false, make([]byte, 16))), zipT(t, "l.csv", num(1)), DecodeLimits{}, `element type "<i8"`},
		{"npy fortran", TaskIC, zipT(t, "x.npy", npyT("<f4", "(1, 2)", true, f32le(1, 2))), zipT(t, "l.csv", num(1)), DecodeLimits{}, "Fortran"},
		{"npy truncated", TaskIC, zipT(t, "x.npy", npyT("<f4", "(1, 2)", false, f32le(1))), zipT(t, "l.csv", num(1)), DecodeLimits{}, "type <f4 needs 136"},
		{"npy trailing", TaskIC, zipT(t, "x.npy", npyT("<f4", "(1, 2)", false, f32le(1, 2, 3))), zipT(t, "l.csv", num(1)), DecodeLimits{}, "type <f4 needs 136"},
		{"npy nan", TaskIC, zipT(t, "x.npy", npyT("<f4", "(1, 2)", false, f32le(1, float32(math.NaN())))), zipT(t, "l.csv", num(1)), DecodeLimits{}, "value 1 is not a finite"},
		{"npy 1-d", TaskIC, zipT(t, "x.npy", npyT("<f4", "(2,)", false, f32le(1, 2))), zipT(t, "l.csv", num(2)), DecodeLimits{}, "is not [N, H, W]"},
		{"mask missing", TaskIS, two, zipT(t, "a.png", img), DecodeLimits{}, `no mask (a PNG named like the image) for 1 image(s): "b.png"`},
		{"mask of no image", TaskIS, two, zipT(t, "a.png", img, "b.png", img, "c.png", img), DecodeLimits{}, `1 mask(s) of no image: "c.png"`},
		{"mask size", TaskIS, two, zipT(t, "a.png", img, "b.png", grayT(t, 4, 4, 0)), DecodeLimits{}, `"b.png": 4×4, but its image`},
		{"mask colour", TaskIS, zipT(t, "a.png", img), zipT(t, "a.png", pngT(t, func() image.Image {
			m := image.NewRGBA(image.Rect(0, 0, 8, 8))
			m.Set(2, 3, color.RGBA{1, 2, 3, 255})
			return m
		}())), DecodeLimits{}, "pixel (2, 3) is a colour"},
		{"box outside", TaskOD, two, zipT(t, "b.csv", "image,x_min,y_min,x_max,y_max,label\na.png,0,0,9,4,1\n"), DecodeLimits{}, "line 2: box (0, 0)–(9, 4) is not inside the 8×8 image"},
		{"box of no image", TaskOD, two, zipT(t, "b.csv", "image,x_min,y_min,x_max,y_max,label\nc.png,0,0,1,1,1\n"), DecodeLimits{}, `no image "c.png"`},
		{"box header", TaskOD, two, zipT(t, "b.csv", "file,x0,y0,x1,y1,label\na.png,0,0,1,1,1\n"), DecodeLimits{}, "header must be image,x_min"},
		{"unknown task", "XX", two, two, DecodeLimits{}, `unknown task type "XX"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeT(tc.task, tc.data, tc.label, tc.lim)
			if err == nil {
				t.Fatal("decoded")
			}
			if !errors.Is(err, ErrUserData) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q (user data: %v), want one containing %q", err, errors.Is(err, ErrUserData), tc.want)
			}
		})
	}
}

// TestDecodeCancelled: a cancelled context stops decoding with its error,
// not a user-data error.
func TestDecodeCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := decodeCtx(ctx, TaskIC, exampleT(t, TaskIC, FileData), exampleT(t, TaskIC, FileLabel), DecodeLimits{})
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUserData) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}
