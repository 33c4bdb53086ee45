package ais

import (
	"archive/zip"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // JPEG data images
	_ "image/png"  // PNG data images and masks
	"sort"
	"strings"

	"github.com/wardenlab/warden/attacks"
)

// imageSet is a data zip's images: their entries in name order, their base
// names, and the shape they share.
type imageSet struct {
	files   []*zip.File
	names   []string
	c, h, w int
}

// isGray reports whether a colour model only holds grays.
func isGray(m color.Model) bool {
	switch m {
	case color.GrayModel, color.Gray16Model:
		return true
	}
	p, ok := m.(color.Palette)
	if !ok {
		return false
	}
	for _, c := range p {
		r, g, b, _ := c.RGBA()
		if r != g || g != b {
			return false
		}
	}
	return true
}

// config reads an image entry's header, refusing sides over the limit.
func (d *decoder) config(z *zipFile, f *zip.File) (image.Config, error) {
	rc, err := z.open(f)
	if err != nil {
		return image.Config{}, err
	}
	defer rc.Close()
	cfg, _, err := image.DecodeConfig(rc)
	if err != nil {
		return cfg, z.errf("%q: not a readable PNG or JPEG image: %v", f.Name, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > d.lim.MaxImageSide || cfg.Height > d.lim.MaxImageSide {
		return cfg, z.errf("%q: %d×%d pixels; each side must be 1 to %d", f.Name, cfg.Width, cfg.Height, d.lim.MaxImageSide)
	}
	return cfg, nil
}

// decodeImage decodes an entry whose header config already read.
func (d *decoder) decodeImage(z *zipFile, f *zip.File, w, h int) (image.Image, error) {
	rc, err := z.open(f)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	img, _, err := image.Decode(rc)
	if err != nil {
		return nil, z.errf("%q: not a readable PNG or JPEG image: %v", f.Name, err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		return nil, z.errf("%q: decodes to %d×%d, its header says %d×%d", f.Name, b.Dx(), b.Dy(), w, h)
	}
	return img, nil
}

// images reads the data zip's images into X as [N, C, H, W] in [0, 1]:
// C is 1 when every image is grayscale, else 3. Every image must have
// the same size.
func (d *decoder) images() (*imageSet, error) {
	z := d.data
	set := &imageSet{}
	for _, f := range z.files {
		if e := ext(f.Name); e != ".png" && e != ".jpg" && e != ".jpeg" {
			return nil, z.errf("%q: not an image (.png, .jpg, .jpeg)", f.Name)
		}
		set.files = append(set.files, f)
	}
	if len(set.files) == 0 {
		return nil, z.errf("holds no image")
	}
	if err := d.samples(z, "images", len(set.files)); err != nil {
		return nil, err
	}
	byName := map[string]string{}
	sizes := map[[2]int][]string{}
	gray := true
	for _, f := range set.files {
		if err := d.ctx.Err(); err != nil {
			return nil, err
		}
		b := baseName(f.Name)
		if other, dup := byName[b]; dup {
			return nil, z.errf("%q and %q have the same name; image names must be unique", other, f.Name)
		}
		byName[b] = f.Name
		set.names = append(set.names, b)
		cfg, err := d.config(z, f)
		if err != nil {
			return nil, err
		}
		sz := [2]int{cfg.Width, cfg.Height}
		sizes[sz] = append(sizes[sz], f.Name)
		gray = gray && isGray(cfg.ColorModel)
	}
	if len(sizes) > 1 {
		return nil, z.errf("%s", sizeProblem(sizes))
	}
	for sz := range sizes {
		set.w, set.h = sz[0], sz[1]
	}
	set.c = 3
	if gray {
		set.c = 1
	}
	n := len(set.files)
	per := set.c * set.h * set.w
	if err := d.reserve(z, fmt.Sprintf("%d images of %d×%d×%d", n, set.c, set.h, set.w), int64(n)*int64(per)); err != nil {
		return nil, err
	}
	x := make([]float32, n*per)
	for i, f := range set.files {
		if err := d.ctx.Err(); err != nil {
			return nil, err
		}
		img, err := d.decodeImage(z, f, set.w, set.h)
		if err != nil {
			return nil, err
		}
		pixels(x[i*per:(i+1)*per], img, set.c)
	}
	d.ds.X = attacks.Batch{Data: x, Shape: []int{n, set.c, set.h, set.w}}
	d.ds.Names = set.names
	return set, nil
}

// sizeProblem names the images whose size differs from the most common.
func sizeProblem(sizes map[[2]int][]string) string {
	var common [2]int
	for sz, names := range sizes {
		if len(names) > len(sizes[common]) || (len(names) == len(sizes[common]) && (sz[0] < common[0] || sz[0] == common[0] && sz[1] < common[1])) {
			common = sz
		}
	}
	var odd []string
	for sz, names := range sizes {
		if sz == common {
			continue
		}
		for _, n := range names {
			odd = append(odd, fmt.Sprintf("%q is %d×%d", n, sz[0], sz[1]))
		}
	}
	sort.Strings(odd)
	more := ""
	if len(odd) > 10 {
		more = fmt.Sprintf(" and %d more", len(odd)-10)
		odd = odd[:10]
	}
	return fmt.Sprintf("images must all have one size; most are %d×%d but %s%s", common[0], common[1], strings.Join(odd, ", "), more)
}

// pixels writes img as c planes of values in [0, 1] (alpha ignored).
func pixels(dst []float32, img image.Image, c int) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if g, ok := img.(*image.Gray); ok && c == 1 {
		for y := 0; y < h; y++ {
			row := g.Pix[y*g.Stride : y*g.Stride+w]
			for x, v := range row {
				dst[y*w+x] = float32(v) / 255
			}
		}
		return
	}
	hw := h * w
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			i := y*w + x
			dst[i] = float32(r) / 0xffff
			if c == 3 {
				dst[hw+i] = float32(g) / 0xffff
				dst[2*hw+i] = float32(bl) / 0xffff
			}
		}
	}
}

// ic: images or one .npy, and a label CSV.
func (d *decoder) ic() error {
	if len(d.data.withExt(".npy")) > 0 {
		f, err := d.data.one("the array", ".npy")
		if err != nil {
			return err
		}
		x, err := d.npy(d.data, f)
		if err != nil {
			return err
		}
		d.ds.X, d.ds.Names = x, rowNames(x.N())
		return d.rowLabels(x.N())
	}
	set, err := d.images()
	if err != nil {
		return err
	}
	labels, files, hasFile, err := d.labelRows(d.label)
	if err != nil {
		return err
	}
	if !hasFile {
		if err := d.agree(len(set.names), len(labels), "labels"); err != nil {
			return err
		}
		return d.setLabels(labels)
	}
	byFile := map[string]string{}
	for i, f := range files {
		if _, dup := byFile[f]; dup {
			return d.label.errf("image %q is labelled twice (line %d)", f, i+2)
		}
		byFile[f] = labels[i]
	}
	ordered := make([]string, len(set.names))
	var missing []string
	for i, n := range set.names {
		l, ok := byFile[n]
		if !ok {
			missing = append(missing, n)
		}
		ordered[i] = l
		delete(byFile, n)
	}
	if len(missing) > 0 {
		return d.label.errf("no label for %d image(s): %s", len(missing), listSome(missing))
	}
	if len(byFile) > 0 {
		var extra []string
		for f := range byFile {
			extra = append(extra, f)
		}
		sort.Strings(extra)
		return d.label.errf("labels name %d image(s) the data zip does not hold: %s", len(extra), listSome(extra))
	}
	return d.setLabels(ordered)
}

// listSome quotes up to ten names.
func listSome(names []string) string {
	var q []string
	for i, n := range names {
		if i == 10 {
			q = append(q, fmt.Sprintf("and %d more", len(names)-10))
			break
		}
		q = append(q, fmt.Sprintf("%q", n))
	}
	return strings.Join(q, ", ")
}

// is: images and one mask PNG per image with the same name stem.
func (d *decoder) is() error {
	set, err := d.images()
	if err != nil {
		return err
	}
	z := d.label
	masks := map[string]*zip.File{}
	for _, f := range z.files {
		if ext(f.Name) != ".png" {
			return z.errf("%q: masks must be PNG images", f.Name)
		}
		s := stem(f.Name)
		if other, dup := masks[s]; dup {
			return z.errf("%q and %q are masks of the same image", other.Name, f.Name)
		}
		masks[s] = f
	}
	hw := set.h * set.w
	n := len(set.files)
	if err := d.reserve(z, fmt.Sprintf("%d masks of %d×%d", n, set.h, set.w), int64(n)*int64(hw)); err != nil {
		return err
	}
	var missing []string
	for _, f := range set.files {
		if masks[stem(f.Name)] == nil {
			missing = append(missing, baseName(f.Name))
		}
	}
	if len(missing) > 0 {
		return z.errf("no mask (a PNG named like the image) for %d image(s): %s", len(missing), listSome(missing))
	}
	if len(masks) != n {
		images := map[string]bool{}
		for _, f := range set.files {
			images[stem(f.Name)] = true
		}
		var extra []string
		for s, f := range masks {
			if !images[s] {
				extra = append(extra, f.Name)
			}
		}
		sort.Strings(extra)
		return z.errf("%d mask(s) of no image: %s", len(extra), listSome(extra))
	}
	out := make([]int32, n*hw)
	top := int32(0)
	for i, f := range set.files {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		mf := masks[stem(f.Name)]
		cfg, err := d.config(z, mf)
		if err != nil {
			return err
		}
		if cfg.Width != set.w || cfg.Height != set.h {
			return z.errf("%q: %d×%d, but its image %q is %d×%d", mf.Name, cfg.Width, cfg.Height, f.Name, set.w, set.h)
		}
		img, err := d.decodeImage(z, mf, set.w, set.h)
		if err != nil {
			return err
		}
		m, err := maskClasses(out[i*hw:(i+1)*hw], img)
		if err != nil {
			return z.errf("%q: %v", mf.Name, err)
		}
		top = max(top, m)
	}
	if int(top) >= d.lim.MaxClasses {
		return z.errf("class %d in a mask is over the limit of %d classes", top, d.lim.MaxClasses)
	}
	d.ds.Masks, d.ds.MaskClasses = out, int(top)+1
	return nil
}

// maskClasses writes a mask's per-pixel classes (a palette index, or a
// gray level) and returns the largest.
func maskClasses(dst []int32, img image.Image) (int32, error) {
	b := img.Bounds()
	w := b.Dx()
	top := int32(0)
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < w; x++ {
			var v int32
			switch m := img.(type) {
			case *image.Paletted:
				v = int32(m.ColorIndexAt(b.Min.X+x, b.Min.Y+y))
			case *image.Gray:
				v = int32(m.GrayAt(b.Min.X+x, b.Min.Y+y).Y)
			case *image.Gray16:
				v = int32(m.Gray16At(b.Min.X+x, b.Min.Y+y).Y)
			default:
				r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
				if r != g || g != bl {
					return 0, fmt.Errorf("pixel (%d, %d) is a colour; a mask is a palette or grayscale PNG whose values are class indices", x, y)
				}
				v = int32(r >> 8)
			}
			dst[y*w+x] = v
			top = max(top, v)
		}
	}
	return top, nil
}

// od: images and a CSV of boxes (image,x_min,y_min,x_max,y_max,label).
// An image without a row has no object.
func (d *decoder) od() error {
	set, err := d.images()
	if err != nil {
		return err
	}
	z := d.label
	f, err := z.one("the boxes", ".csv")
	if err != nil {
		return err
	}
	index := map[string]int{}
	for i, n := range set.names {
		index[n] = i
	}
	type row struct {
		img int
		box Box
	}
	var rows []row
	var labels []string
	err = d.eachRow(z, f, func(h []string) error {
		if !strings.EqualFold(strings.Join(h, ","), strings.Join(boxColumns, ",")) {
			return z.errf("%q line 1: the header must be %s", f.Name, strings.Join(boxColumns, ","))
		}
		return nil
	}, func(line int, rec []string) error {
		if len(rec) != len(boxColumns) {
			return z.errf("%q line %d: %d columns, not %d", f.Name, line, len(rec), len(boxColumns))
		}
		if err := d.reserve(z, fmt.Sprintf("%q", f.Name), 5); err != nil {
			return err
		}
		name := baseName(strings.TrimSpace(rec[0]))
		i, ok := index[name]
		if !ok {
			return z.errf("%q line %d: no image %q in the data zip", f.Name, line, name)
		}
		var v [4]float32
		for k := range v {
			x, ok := number(rec[k+1])
			if !ok {
				return z.errf("%q line %d: %s %q is not a finite number", f.Name, line, boxColumns[k+1], rec[k+1])
			}
			v[k] = x
		}
		if v[0] < 0 || v[1] < 0 || v[0] >= v[2] || v[1] >= v[3] || v[2] > float32(set.w) || v[3] > float32(set.h) {
			return z.errf("%q line %d: box (%g, %g)–(%g, %g) is not inside the %d×%d image with x_min < x_max and y_min < y_max",
				f.Name, line, v[0], v[1], v[2], v[3], set.w, set.h)
		}
		l := strings.TrimSpace(rec[5])
		if l == "" {
			return z.errf("%q line %d: empty label", f.Name, line)
		}
		labels = append(labels, l)
		rows = append(rows, row{i, Box{XMin: v[0], YMin: v[1], XMax: v[2], YMax: v[3]}})
		return nil
	})
	if err != nil {
		return err
	}
	idx, cls, err := d.classes(z, labels)
	if err != nil {
		return err
	}
	boxes := make([][]Box, len(set.names))
	for k, r := range rows {
		r.box.Label = idx[k]
		boxes[r.img] = append(boxes[r.img], r.box)
	}
	d.ds.Boxes, d.ds.Classes = boxes, cls
	return nil
}
