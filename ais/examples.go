package ais

import (
	"archive/zip"
	"bufio"
	"bytes"
	"embed"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"sort"
	"strconv"
	"strings"
	"time"
)

// exampleData are the sources of the example zips, with their licences
// (testdata/examples/LICENSES.md).
//
//go:embed testdata/examples/digits100.csv testdata/examples/iris.csv testdata/examples/elnino.csv
//go:embed testdata/examples/co2_80weeks.csv testdata/examples/glosses50.tsv
var exampleData embed.FS

// ExampleFormat is the file name of a task type's format description.
const ExampleFormat = "FORMAT.md"

// ErrNoExample is Example's answer for an unknown task type or file.
var ErrNoExample = errors.New("no such example")

// exampleTime stamps every entry so that the zips are byte-for-byte
// reproducible.
var exampleTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Example returns a small valid example of a task type's (canonical, see
// ParseTask) file: the zip of "data" or "label", built deterministically
// in memory from public data sets, or "FORMAT.md", what the data, label
// and model zips must hold. Model zips have no example (a TorchScript
// file is the user's). Unknown task or file: ErrNoExample.
func Example(task, file string) ([]byte, error) {
	if _, ok := formats[task]; !ok {
		return nil, fmt.Errorf("%w: task type %q", ErrNoExample, task)
	}
	switch file {
	case ExampleFormat:
		return []byte(formatText(task)), nil
	case FileData, FileLabel:
	default:
		return nil, fmt.Errorf("%w: file %q (data, label or %s)", ErrNoExample, file, ExampleFormat)
	}
	var files []exampleFile
	var err error
	switch task {
	case TaskIC:
		files, err = exampleIC(file)
	case TaskIS:
		files, err = exampleIS(file)
	case TaskOD:
		files, err = exampleOD(file)
	case TaskTC:
		files, err = exampleTC(file)
	case TaskTS:
		files, err = exampleTS(file)
	case TaskTSF:
		files, err = exampleTSF(file)
	case TaskNLP:
		files, err = exampleNLP(file)
	}
	if err != nil {
		return nil, err
	}
	return zipOf(files)
}

// exampleFile is one entry of an example zip.
type exampleFile struct {
	name string
	body []byte
}

func zipOf(files []exampleFile) ([]byte, error) {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, f := range files {
		fw, err := w.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: exampleTime})
		if err != nil {
			return nil, err
		}
		if _, err := fw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// readRows reads an embedded CSV (or TSV) without its first line.
func readRows(name string, sep string) ([][]string, error) {
	b, err := exampleData.ReadFile("testdata/examples/" + name)
	if err != nil {
		return nil, err
	}
	var rows [][]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	first := true
	for sc.Scan() {
		if first && sep != "\t" {
			first = false
			continue
		}
		rows = append(rows, strings.Split(sc.Text(), sep))
	}
	return rows, sc.Err()
}

// digit is one 8×8 handwritten digit: 64 values 0–16 and its label.
type digit struct {
	pix   [64]uint8
	label int
}

func digits() ([]digit, error) {
	b, err := exampleData.ReadFile("testdata/examples/digits100.csv")
	if err != nil {
		return nil, err
	}
	var out []digit
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		cells := strings.Split(line, ",")
		if len(cells) != 65 {
			return nil, fmt.Errorf("digits100.csv: a row of %d cells", len(cells))
		}
		var d digit
		for i, c := range cells {
			v, err := strconv.Atoi(c)
			if err != nil {
				return nil, fmt.Errorf("digits100.csv: %w", err)
			}
			if i == 64 {
				d.label = v
			} else {
				d.pix[i] = uint8(v)
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// draw paints d, scaled by s, onto g at (x0, y0) and returns the tight
// box of its inked pixels.
func (d digit) draw(g *image.Gray, x0, y0, s int) Box {
	box := Box{XMin: 1e9, YMin: 1e9, Label: d.label}
	for y := 0; y < 8; y++ {
		for x := 0; x < 8; x++ {
			v := d.pix[y*8+x]
			if v == 0 {
				continue
			}
			for dy := 0; dy < s; dy++ {
				for dx := 0; dx < s; dx++ {
					g.SetGray(x0+x*s+dx, y0+y*s+dy, grayOf(v))
				}
			}
			box.XMin, box.YMin = min(box.XMin, float32(x0+x*s)), min(box.YMin, float32(y0+y*s))
			box.XMax, box.YMax = max(box.XMax, float32(x0+(x+1)*s)), max(box.YMax, float32(y0+(y+1)*s))
		}
	}
	return box
}

// grayOf maps a digit's 0–16 ink to a gray level.
func grayOf(v uint8) color.Gray { return color.Gray{Y: uint8(int(v) * 255 / 16)} }

func pngOf(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// exampleIC: 100 digits as 8×8 grayscale PNGs; labels by file name.
func exampleIC(file string) ([]exampleFile, error) {
	ds, err := digits()
	if err != nil {
		return nil, err
	}
	var files []exampleFile
	var csv strings.Builder
	csv.WriteString("file,label\n")
	for i, d := range ds {
		name := fmt.Sprintf("digit_%03d.png", i)
		fmt.Fprintf(&csv, "%s,%d\n", name, d.label)
		if file == FileData {
			g := image.NewGray(image.Rect(0, 0, 8, 8))
			d.draw(g, 0, 0, 1)
			b, err := pngOf(g)
			if err != nil {
				return nil, err
			}
			files = append(files, exampleFile{"images/" + name, b})
		}
	}
	if file == FileLabel {
		return []exampleFile{{"labels.csv", []byte(csv.String())}}, nil
	}
	return files, nil
}

// exampleIS: 20 scenes of 24×24, a digit drawn twice as large at a
// varying place; masks: 0 background, digit+1 where the digit is inked.
func exampleIS(file string) ([]exampleFile, error) {
	ds, err := digits()
	if err != nil {
		return nil, err
	}
	var files []exampleFile
	for i, d := range ds[:20] {
		img := image.NewGray(image.Rect(0, 0, 24, 24))
		d.draw(img, (i*3)%9, (i*5)%9, 2)
		name := fmt.Sprintf("scene_%03d.png", i)
		if file == FileLabel {
			mask := image.NewGray(img.Rect)
			for k, v := range img.Pix {
				if v >= 128 {
					mask.Pix[k] = uint8(d.label + 1)
				}
			}
			img = mask
		}
		b, err := pngOf(img)
		if err != nil {
			return nil, err
		}
		dir := "images/"
		if file == FileLabel {
			dir = "masks/"
		}
		files = append(files, exampleFile{dir + name, b})
	}
	return files, nil
}

// exampleOD: 20 scenes of 40×40 with two digits each (scaled ×2); boxes
// are the digits' inked extents, labels the digits.
func exampleOD(file string) ([]exampleFile, error) {
	ds, err := digits()
	if err != nil {
		return nil, err
	}
	var files []exampleFile
	var csv strings.Builder
	csv.WriteString(strings.Join(boxColumns, ",") + "\n")
	for i := 0; i < 20; i++ {
		img := image.NewGray(image.Rect(0, 0, 40, 40))
		name := fmt.Sprintf("scene_%03d.png", i)
		for k, at := range [][2]int{{(i * 3) % 5, (i * 7) % 23}, {20 + (i*5)%5, (i * 11) % 23}} {
			b := ds[2*i+k].draw(img, at[0], at[1], 2)
			fmt.Fprintf(&csv, "%s,%g,%g,%g,%g,%d\n", name, b.XMin, b.YMin, b.XMax, b.YMax, b.Label)
		}
		b, err := pngOf(img)
		if err != nil {
			return nil, err
		}
		files = append(files, exampleFile{"images/" + name, b})
	}
	if file == FileLabel {
		return []exampleFile{{"boxes.csv", []byte(csv.String())}}, nil
	}
	return files, nil
}

// exampleTC: iris, four features and the species.
func exampleTC(file string) ([]exampleFile, error) {
	b, err := exampleData.ReadFile("testdata/examples/iris.csv")
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	species := strings.Split(lines[0], ",")[2:]
	data := "sepal_length,sepal_width,petal_length,petal_width\n"
	label := "label\n"
	for _, l := range lines[1:] {
		c := strings.Split(l, ",")
		k, err := strconv.Atoi(c[4])
		if err != nil || k < 0 || k >= len(species) {
			return nil, fmt.Errorf("iris.csv: bad class %q", c[4])
		}
		data += strings.Join(c[:4], ",") + "\n"
		label += species[k] + "\n"
	}
	return pick(file, "table.csv", data, "labels.csv", label), nil
}

func pick(file, dataName, data, labelName, label string) []exampleFile {
	if file == FileData {
		return []exampleFile{{dataName, []byte(data)}}
	}
	return []exampleFile{{labelName, []byte(label)}}
}

// exampleTS: the 61 years of monthly sea-surface temperatures (a
// 12-month window each), labelled warm when the year's mean is above the
// median year's, else cool.
func exampleTS(file string) ([]exampleFile, error) {
	rows, err := readRows("elnino.csv", ",")
	if err != nil {
		return nil, err
	}
	means := make([]float64, len(rows))
	data := "jan,feb,mar,apr,may,jun,jul,aug,sep,oct,nov,dec\n"
	for i, r := range rows {
		for _, c := range r[1:] {
			v, err := strconv.ParseFloat(c, 64)
			if err != nil {
				return nil, fmt.Errorf("elnino.csv: %w", err)
			}
			means[i] += v / 12
		}
		data += strings.Join(r[1:], ",") + "\n"
	}
	sorted := append([]float64(nil), means...)
	sort.Float64s(sorted)
	median := sorted[len(sorted)/2]
	label := "label\n"
	for _, m := range means {
		if m > median {
			label += "warm\n"
		} else {
			label += "cool\n"
		}
	}
	return pick(file, "windows.csv", data, "labels.csv", label), nil
}

// Forecasting example shape: windows of 12 weekly values, 4 ahead.
const (
	exampleWindow  = 12
	exampleHorizon = 4
	exampleWindows = 60
)

// exampleTSF: 60 windows of 12 weekly CO2 readings (ppm), each with its
// first week's date, and the 4 readings after each window.
func exampleTSF(file string) ([]exampleFile, error) {
	rows, err := readRows("co2_80weeks.csv", ",")
	if err != nil {
		return nil, err
	}
	if len(rows) < exampleWindows+exampleWindow+exampleHorizon-1 {
		return nil, fmt.Errorf("co2_80weeks.csv: %d rows", len(rows))
	}
	var data, label strings.Builder
	data.WriteString("start_date")
	for k := exampleWindow - 1; k >= 0; k-- {
		fmt.Fprintf(&data, ",t_minus_%d", k)
	}
	data.WriteString("\n")
	for k := 1; k <= exampleHorizon; k++ {
		if k > 1 {
			label.WriteString(",")
		}
		fmt.Fprintf(&label, "t_plus_%d", k)
	}
	label.WriteString("\n")
	for i := 0; i < exampleWindows; i++ {
		data.WriteString(rows[i][0])
		for _, r := range rows[i : i+exampleWindow] {
			data.WriteString("," + r[1])
		}
		data.WriteString("\n")
		for k, r := range rows[i+exampleWindow : i+exampleWindow+exampleHorizon] {
			if k > 0 {
				label.WriteString(",")
			}
			label.WriteString(r[1])
		}
		label.WriteString("\n")
	}
	return pick(file, "windows.csv", data.String(), "targets.csv", label.String()), nil
}

// exampleNLP: 50 WordNet noun glosses, one a line, labelled by their
// lexicographer file (noun.animal or noun.food).
func exampleNLP(file string) ([]exampleFile, error) {
	rows, err := readRows("glosses50.tsv", "\t")
	if err != nil {
		return nil, err
	}
	var data, label strings.Builder
	label.WriteString("label\n")
	for _, r := range rows {
		if len(r) != 2 {
			return nil, fmt.Errorf("glosses50.tsv: a row of %d cells", len(r))
		}
		data.WriteString(r[1] + "\n")
		label.WriteString(r[0] + "\n")
	}
	return pick(file, "texts.txt", data.String(), "labels.csv", label.String()), nil
}
