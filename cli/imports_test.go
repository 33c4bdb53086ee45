package cli_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wardenlab/warden/internal/testenv"
)

// TestClientImportsNoServer keeps the client side free of the server:
// the non-test files of cli and client import the standard library and
// each other only (no api, worker, storage, config, nor any dependency).
func TestClientImportsNoServer(t *testing.T) {
	allowed := map[string]bool{"github.com/wardenlab/warden/client": true}
	for _, dir := range []string{"cli", "client"} {
		files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: %v (%d files)", dir, err, len(files))
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") && !allowed[p] {
					t.Errorf("%s imports %s", f, p)
				}
			}
		}
	}
}
