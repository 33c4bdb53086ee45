package c2pa

import "errors"

// ErrNotFound is returned by FindManifestStore when the data holds no C2PA
// manifest store, including when the container format is not recognised.
var ErrNotFound = errors.New("no C2PA manifest found")

// Range is a byte range [Start, Start+Length) of the asset.
type Range struct {
	Start  int
	Length int
}

// Container formats reported in Result.Format.
const (
	FormatJPEG = "image/jpeg"
	FormatPNG  = "image/png"
	FormatC2PA = "application/c2pa"
)

// FindManifestStore locates the C2PA manifest store in an asset and returns
// its JUMBF bytes together with the byte ranges of the asset that carry it
// (APP11 segments, caBX chunk or the whole buffer for a raw store). It
// returns ErrNotFound (possibly wrapped) when there is no store or the
// format is not supported.
func FindManifestStore(data []byte) ([]byte, []Range, error) {
	store, ranges, _, err := findManifestStore(data)
	return store, ranges, err
}

// findManifestStore is FindManifestStore that also reports the format.
func findManifestStore(data []byte) ([]byte, []Range, string, error) {
	switch {
	case isJPEG(data):
		s, r, err := findJPEG(data)
		return s, r, FormatJPEG, err
	case isPNG(data):
		s, r, err := findPNG(data)
		return s, r, FormatPNG, err
	case isRawStore(data):
		return data, []Range{{Start: 0, Length: len(data)}}, FormatC2PA, nil
	}
	return nil, nil, "", ErrNotFound
}

// isRawStore reports whether data starts with a JUMBF superbox labelled
// "c2pa", as a sidecar ".c2pa" manifest store does.
func isRawStore(data []byte) bool {
	return isC2PAStore(data)
}
