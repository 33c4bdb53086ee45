package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const genSrc = `// generated

void atg_ok(tensor *out__, tensor self) {
  PROTECT(
    auto outputs__ = torch::abs(*self);
    out__[0] = new torch::Tensor(outputs__);
  )
}

void atg_gone(tensor *out__, tensor self) {
  PROTECT(
    auto outputs__ = torch::gone(*self);
    out__[0] = new torch::Tensor(outputs__);
  )
}

int64_t atg_changed(tensor self,
                    int64_t dim) {
  PROTECT(
    return torch::changed(*self, dim);
  )
  return 0;
}

tensor atg_templ(tensor self) {
  PROTECT(
    return new torch::Tensor(torch::templ(*self));
  )
  return nullptr;
}
`

// Mirrors g++ output: a plain error, an error on a wrapped signature's body,
// an error inside a torch header reached from a wrapper ("In function"), and
// include-site lines that must be ignored.
const gccLog = `In file included from /x/libtch/torch_api.cpp:10:
/x/libtch/torch_api_generated.cpp.h: In function 'void atg_gone(at::Tensor**, tensor)':
/x/libtch/torch_api_generated.cpp.h:12:29: error: 'gone' is not a member of 'torch'
/x/libtch/torch_api_generated.cpp.h:21:12: error: no matching function for call to 'changed(at::Tensor&, int64_t&)'
In file included from /usr/include/ATen/ATen.h:7,
                 from /x/libtch/torch_api.cpp:5:
/x/libtch/torch_api_generated.cpp.h: In function ‘at::Tensor* atg_templ(tensor)’:
/usr/include/ATen/core/x.h:3:1: error: static assertion failed
`

func TestDisablesOnlyBrokenWrappers(t *testing.T) {
	dir := t.TempDir()
	gen := filepath.Join(dir, "torch_api_generated.cpp.h")
	if err := os.WriteFile(gen, []byte(genSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "torch_api.cpp"), []byte("#include \"torch_api_generated.cpp.h\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logf := filepath.Join(dir, "syntax.log")
	if err := os.WriteFile(logf, []byte(gccLog), 0o644); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(dir, "disabled.txt")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-dir", dir, "-log", logf, "-torch", "9.9", "-list", list)
	cmd.Env = append(os.Environ(), "PATCHLIBTCH_AS_MAIN=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got, _ := os.ReadFile(list)
	if want := "atg_changed\natg_gone\natg_templ\n"; string(got) != want {
		t.Fatalf("disabled list %q, want %q", got, want)
	}
	src, _ := os.ReadFile(gen)
	s := string(src)
	for _, want := range []string{
		"torch::abs(*self)", // untouched
		`PROTECT(throw std::runtime_error("atg_gone: not supported by libtorch 9.9");)`,
		"int64_t atg_changed(tensor self,\n                    int64_t dim) {\n  // disabled",
		"  return 0;\n}",
		"  return nullptr;\n}",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("patched source lacks %q:\n%s", want, s)
		}
	}
	for _, gone := range []string{"torch::gone", "torch::changed", "torch::templ"} {
		if strings.Contains(s, gone) {
			t.Errorf("patched source still calls %s", gone)
		}
	}
}

// TestMain lets the test binary act as the command itself.
func TestMain(m *testing.M) {
	if os.Getenv("PATCHLIBTCH_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}
