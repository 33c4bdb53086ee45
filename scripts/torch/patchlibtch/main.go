// Command patchlibtch disables the C++ wrappers of a gotch libtch copy that
// do not compile against the installed libtorch headers.
//
// It reads a compiler log (g++ -fsyntax-only output of libtch/torch_api.cpp),
// maps every diagnostic that points into a libtch source file to the
// top-level function that encloses the line, and replaces that function's
// body with one that sets gotch's torch error ("not supported by libtorch
// X.Y") and returns a zero value. The Go side of gotch checks that error after
// every call, so a disabled op surfaces as an ordinary Go error.
//
// Usage (run by scripts/torch/setup; not meant to be run by hand):
//
//	patchlibtch -dir .build/gotch/libtch -log syntax.log -torch 1.13 -list disabled.txt
//
// It exits 0 when it disabled at least one function or the log had no errors,
// 2 when the log has errors it cannot attribute to a function (the caller
// then stops), and 1 on I/O problems.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

var (
	// "…/libtch/torch_api_generated.cpp.h:123:45: error: …" and the
	// "required from here" / "In instantiation" notes with a line number.
	locRe = regexp.MustCompile(`([^\s:]*(torch_api\.cpp|torch_api_generated\.cpp\.h)):(\d+):(\d+:)?`)
	// "…/torch_api_generated.cpp.h: In function 'void atg_foo(tensor*, …)':"
	inFuncRe = regexp.MustCompile(`(torch_api\.cpp|torch_api_generated\.cpp\.h): In function ['‘][^'’]*?\b(at[a-z]*_\w+)\(`)
	// "In file included from …/torch_api.cpp:10:" and its "from …" lines
	// name include sites, not faulty code.
	includeRe = regexp.MustCompile(`^\s*(In file included )?from \S+:\d+[:,]$`)
	errRe     = regexp.MustCompile(`: (fatal )?error: `)
	// A top-level C function definition start, e.g. "void atg_abs(tensor *out__, tensor self) {"
	funcStartRe = regexp.MustCompile(`^([A-Za-z_][\w\s]*?[\s\*]+)(at[a-z]*_\w+)\(`)
)

type fn struct {
	name       string
	ret        string
	start, end int // 0-based line indexes: signature start, closing brace
	bodyStart  int // line index holding the opening brace
}

func main() {
	dir := flag.String("dir", "", "libtch directory of the gotch copy")
	logPath := flag.String("log", "", "compiler log")
	torch := flag.String("torch", "", "libtorch version, e.g. 1.13")
	list := flag.String("list", "", "append the names of disabled functions to this file")
	flag.Parse()
	if *dir == "" || *logPath == "" || *torch == "" {
		flag.Usage()
		os.Exit(1)
	}

	logData, err := os.ReadFile(*logPath)
	if err != nil {
		fatal(err)
	}
	lines := map[string]map[int]bool{} // file base name -> 1-based lines
	names := map[string]map[string]bool{}
	nErr := 0
	for _, l := range strings.Split(string(logData), "\n") {
		if errRe.MatchString(l) {
			nErr++
		}
		if includeRe.MatchString(l) {
			continue
		}
		if m := inFuncRe.FindStringSubmatch(l); m != nil {
			add(names, m[1], m[2])
			continue
		}
		for _, m := range locRe.FindAllStringSubmatch(l, -1) {
			n, _ := strconv.Atoi(m[3])
			if lines[m[2]] == nil {
				lines[m[2]] = map[int]bool{}
			}
			lines[m[2]][n] = true
		}
	}
	if nErr == 0 {
		fmt.Println("patchlibtch: no compiler errors")
		return
	}

	var disabled []string
	unattributed := 0
	for _, base := range []string{"torch_api_generated.cpp.h", "torch_api.cpp"} {
		path := filepath.Join(*dir, base)
		src, err := os.ReadFile(path)
		if err != nil {
			fatal(err)
		}
		text := strings.Split(string(src), "\n")
		fns := scan(text)
		hit := map[int]bool{} // index into fns
		for ln := range lines[base] {
			i := enclosing(fns, ln-1)
			if i < 0 {
				unattributed++
				fmt.Fprintf(os.Stderr, "patchlibtch: %s:%d is outside any function\n", base, ln)
				continue
			}
			hit[i] = true
		}
		for i, f := range fns {
			if names[base][f.name] {
				hit[i] = true
			}
		}
		if len(hit) == 0 {
			continue
		}
		idx := make([]int, 0, len(hit))
		for i := range hit {
			idx = append(idx, i)
		}
		// Rewrite bottom-up so earlier line numbers stay valid.
		sort.Sort(sort.Reverse(sort.IntSlice(idx)))
		for _, i := range idx {
			f := fns[i]
			text = replaceBody(text, f, *torch)
			disabled = append(disabled, f.name)
		}
		if err := os.WriteFile(path, []byte(strings.Join(text, "\n")), 0o644); err != nil {
			fatal(err)
		}
	}
	sort.Strings(disabled)
	if *list != "" && len(disabled) > 0 {
		fh, err := os.OpenFile(*list, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			fatal(err)
		}
		w := bufio.NewWriter(fh)
		for _, n := range disabled {
			fmt.Fprintln(w, n)
		}
		w.Flush()
		fh.Close()
	}
	fmt.Printf("patchlibtch: %d compiler errors, disabled %d functions\n", nErr, len(disabled))
	if len(disabled) == 0 {
		fmt.Fprintf(os.Stderr, "patchlibtch: %d errors could not be attributed to a wrapper (%d outside functions)\n", nErr, unattributed)
		os.Exit(2)
	}
}

func add(m map[string]map[string]bool, k, v string) {
	if m[k] == nil {
		m[k] = map[string]bool{}
	}
	m[k][v] = true
}

// scan finds top-level function definitions: a line at column 0 that starts a
// C declaration of an at*_ function and reaches "{" before ";", up to the
// first "}" at column 0.
func scan(text []string) []fn {
	var fns []fn
	for i := 0; i < len(text); i++ {
		m := funcStartRe.FindStringSubmatch(text[i])
		if m == nil {
			continue
		}
		// find the opening brace (signatures can wrap) before any ';'
		b := -1
		for j := i; j < len(text) && j < i+20; j++ {
			if strings.Contains(text[j], ";") && !strings.Contains(text[j], "{") {
				break
			}
			if strings.Contains(text[j], "{") {
				b = j
				break
			}
		}
		if b < 0 {
			continue
		}
		e := -1
		for j := b; j < len(text); j++ {
			if strings.HasPrefix(text[j], "}") {
				e = j
				break
			}
		}
		if e < 0 {
			break
		}
		fns = append(fns, fn{name: m[2], ret: strings.TrimSpace(m[1]), start: i, bodyStart: b, end: e})
		i = e
	}
	return fns
}

func enclosing(fns []fn, line int) int {
	i := sort.Search(len(fns), func(i int) bool { return fns[i].end >= line })
	if i < len(fns) && fns[i].start <= line {
		return i
	}
	return -1
}

func replaceBody(text []string, f fn, torch string) []string {
	sig := text[f.bodyStart]
	k := strings.Index(sig, "{")
	head := append([]string{}, text[f.start:f.bodyStart]...)
	head = append(head, sig[:k+1])
	body := []string{
		"  // disabled by scripts/torch/setup: does not compile against libtorch " + torch,
		fmt.Sprintf("  PROTECT(throw std::runtime_error(\"%s: not supported by libtorch %s\");)", f.name, torch),
	}
	switch r := strings.ReplaceAll(f.ret, " ", ""); {
	case r == "void":
	case strings.HasSuffix(r, "*") || r == "tensor" || r == "scalar" || r == "module" || r == "ivalue" || r == "optimizer":
		body = append(body, "  return nullptr;")
	default:
		body = append(body, "  return 0;")
	}
	out := append([]string{}, text[:f.start]...)
	out = append(out, head...)
	out = append(out, body...)
	out = append(out, "}")
	out = append(out, text[f.end+1:]...)
	return out
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "patchlibtch:", err)
	os.Exit(1)
}
