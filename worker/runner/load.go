package runner

import (
	"archive/zip"
	"bufio"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/wardenlab/warden/modelspec"
	"github.com/wardenlab/warden/worker/torch"
)

// maxArchiveEntries bounds the entries of a model archive.
const maxArchiveEntries = 100000

// exportHint says how to produce a file Warden accepts.
const exportHint = "export the model as TorchScript: torch.jit.save(torch.jit.script(model), \"model.pt\") (or torch.jit.trace)"

// CheckArchive looks at a model file's container without deserialising
// anything: a TorchScript archive is a zip with code/ entries (the
// compiled TorchScript source); a file torch.save wrote (a pickle, bare or
// in a zip with data.pkl only) is refused, since unpickling runs code.
func CheckArchive(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open model file: %w", err)
	}
	defer f.Close()
	head := make([]byte, 4)
	n, _ := bufio.NewReader(f).Read(head)
	head = head[:n]
	if n < 4 || string(head) != "PK\x03\x04" {
		if n > 0 && head[0] == 0x80 {
			return Permanent("the model file is a Python pickle (torch.save), which Warden never unpickles; %s", exportHint)
		}
		return Permanent("the model file is not a TorchScript archive; %s", exportHint)
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		return Permanent("the model file is not a readable TorchScript archive (zip): %v", err)
	}
	if len(zr.File) > maxArchiveEntries {
		return Permanent("the model archive has %d entries, more than %d", len(zr.File), maxArchiveEntries)
	}
	code, pickle := false, false
	for _, e := range zr.File {
		name := e.Name
		if i := strings.IndexByte(name, '/'); i >= 0 {
			name = name[i+1:] // entries sit under the archive's own folder
		}
		switch {
		case strings.HasPrefix(name, "code/"):
			code = true
		case name == "data.pkl":
			pickle = true
		}
	}
	switch {
	case code:
		return nil
	case pickle:
		return Permanent("the model file is a pickled PyTorch checkpoint (torch.save), which Warden never unpickles; %s", exportHint)
	}
	return Permanent("the model archive holds no TorchScript code; %s", exportHint)
}

// deniedOperators run file, process or I/O work; a model using one is
// refused with the operator named.
var deniedOperators = map[string]string{
	"aten::from_file": "reads a file",
	"aten::save":      "writes a file",
	"aten::load":      "reads a file",
}

// allowedNamespaces are the operator namespaces a model may use: the core
// tensor operators (aten) and TorchScript's own control flow and data
// structures (prim). Custom and third-party operator libraries run native
// code Warden has not reviewed, so any other namespace is refused.
var allowedNamespaces = map[string]bool{"aten": true, "prim": true}

// Inspect checks the operators of a module's graphs against the policy.
func Inspect(ops []string) error {
	var bad []string
	for _, op := range ops {
		ns, _, _ := strings.Cut(op, "::")
		if why, denied := deniedOperators[op]; denied {
			bad = append(bad, fmt.Sprintf("%s (%s)", op, why))
		} else if !allowedNamespaces[ns] {
			bad = append(bad, fmt.Sprintf("%s (operator namespace %q is not allowed)", op, ns))
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return Permanent("the model uses operators Warden refuses: %s", strings.Join(bad, ", "))
	}
	return nil
}

// Load checks, loads and inspects a TorchScript model file, settles how it
// is fed (resolveInput: what forward takes, an input shape the metadata
// left out) and learns its number of classes from one forward pass. inspect is false only in tests
// that check what the confinement does to a model the inspection missed.
func Load(path string, cfg modelspec.Config, dev torch.Device, inspect bool) (*torchClassifier, []string, error) {
	if !torch.Available() {
		return nil, nil, Permanent("%s", torch.Reason())
	}
	if err := CheckArchive(path); err != nil {
		return nil, nil, err
	}
	mod, err := torch.LoadModule(path, dev)
	if err != nil {
		// The runner's path means nothing to the model's owner.
		return nil, nil, Permanent("cannot load the TorchScript module: %s", strings.ReplaceAll(err.Error(), path, "the model file"))
	}
	ops, err := mod.Operators()
	if err != nil {
		mod.Close()
		return nil, nil, Permanent("cannot inspect the module's graphs: %v", err)
	}
	if inspect {
		if err := Inspect(ops); err != nil {
			mod.Close()
			return nil, ops, err
		}
	}
	if cfg, err = resolveInput(mod, cfg); err != nil {
		mod.Close()
		return nil, ops, err
	}
	clf := &torchClassifier{mod: mod, cfg: cfg, mu: &sync.Mutex{}}
	if clf.out, err = probeOutput(clf); err != nil {
		mod.Close()
		return nil, ops, Permanent("%v", err)
	}
	clf.classes = 1
	for _, d := range clf.out {
		clf.classes *= d
	}
	return clf, ops, nil
}

// probeOutput runs one zero input (or one text) to learn the shape of one
// sample's output: [classes] for a classifier.
func probeOutput(c *torchClassifier) ([]int, error) {
	var (
		y   *torch.Tensor
		err error
	)
	if c.takesText() {
		if y, err = c.mod.ForwardStrings([]string{"warden sample"}); err != nil {
			return nil, fmt.Errorf("sample forward pass with a list of one text failed: %w", err)
		}
	} else {
		shape := c.cfg.BatchShape(1)
		if y, err = c.mod.Forward(&torch.Tensor{Data: make([]float32, c.cfg.SampleSize()), Shape: shape}); err != nil {
			return nil, fmt.Errorf("sample forward pass with input shape %v failed: %w", shape, err)
		}
	}
	if c.cfg.AnyOutput {
		if len(y.Shape) < 2 || y.Shape[0] != 1 || len(y.Data) == 0 {
			return nil, fmt.Errorf("the model must return one tensor of shape [batch, ...]; got %v", y.Shape)
		}
		return intShape(y.Shape[1:]), nil
	}
	if len(y.Shape) != 2 || y.Shape[0] != 1 || y.Shape[1] < 2 {
		return nil, fmt.Errorf("the model must return logits of shape [batch, classes ≥ 2]; got %v", y.Shape)
	}
	return []int{int(y.Shape[1])}, nil
}

// Close frees the module.
func (c *torchClassifier) Close() error { return c.mod.Close() }
