package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/wardenlab/warden/modelspec"
	"github.com/wardenlab/warden/worker/torch"
)

// Config is what a runner is started with (in its environment: it holds
// nothing secret).
type Config struct {
	Model      ModelFile `json:"model"` // Path "" for a runner that only answers checks
	Device     string    `json:"device"`
	Threads    int       `json:"threads"`
	WordNetDir string    `json:"wordnet_dir"`
	Inspect    bool      `json:"inspect"` // check the graphs' operators before running anything
	Confine    bool      `json:"confine"` // Landlock and seccomp (false only with WARDEN_SANDBOX=off)
	Limits     Limits    `json:"limits"`
	Paths      Paths     `json:"paths"`
}

const configEnv = "WARDEN_RUNNER_CONFIG"

// Ready is the first message of a runner: the layers of confinement it
// runs under.
type Ready struct {
	Layers []string `json:"layers"`
}

// CheckRequest asks a runner to try what a hostile model would.
type CheckRequest struct {
	ReadFiles []string `json:"read_files,omitempty"`
	Connect   []string `json:"connect,omitempty"` // host:port over TCP
	Exec      []string `json:"exec,omitempty"`
}

// CheckResult says, per attempt, "allowed" or the error that stopped it.
type CheckResult struct {
	Layers  []string          `json:"layers"`
	Results map[string]string `json:"results"`
	EnvVars []string          `json:"env_vars"` // names of the runner's environment variables
}

// Main is `warden runner`: the process the worker starts for one model.
// The first stage confines itself and re-executes; the second installs
// the system-call filter and serves requests on file descriptors 3 (in)
// and 4 (out) until the worker closes them or kills it.
func Main() error {
	var cfg Config
	if err := json.Unmarshal([]byte(os.Getenv(configEnv)), &cfg); err != nil {
		return fmt.Errorf("runner: bad %s: %w", configEnv, err)
	}
	if os.Getenv(stageEnv) != "2" {
		return confineAndExec(cfg) // returns only on failure
	}
	var layers []string
	if l := os.Getenv(layersEnv); l != "" {
		layers = strings.Split(l, "\x1f")
	}
	if cfg.Confine {
		what, err := filterSyscalls()
		if err != nil {
			return err
		}
		layers = append(layers, what)
	}
	// A runner's live heap is small (the tensors live in libtorch), so at
	// the default GOGC the garbage of an attack's Go-side buffers triggers
	// a collection every few megabytes: measured, FGSM and PGD-10 on 64
	// digits took 1.5-2x their in-process time. GOGC 800 brings them back
	// (bench/RESULTS.md); collecting only at a large heap limit was slower
	// again (every fresh page is a fault). The address-space limit still
	// bounds the process.
	debug.SetGCPercent(800)
	in, out := os.NewFile(3, "requests"), os.NewFile(4, "messages")
	s := &server{cfg: cfg, enc: json.NewEncoder(out), layers: layers}
	if err := s.send(Message{Ready: &Ready{Layers: layers}}); err != nil {
		return err
	}
	dec := json.NewDecoder(in)
	for {
		var req Request
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("runner: read request: %w", err)
		}
		if err := s.send(Message{Done: s.handle(req)}); err != nil {
			return err
		}
	}
}

type server struct {
	cfg    Config
	layers []string
	mu     sync.Mutex
	enc    *json.Encoder

	model   *torchClassifier
	ops     []string
	loadErr error
	loaded  bool
}

func (s *server) send(m Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enc.Encode(m)
}

func (s *server) handle(req Request) *Done {
	if req.Op == OpCheck {
		return &Done{Check: s.check(req.Check)}
	}
	ctx := context.Background() // the worker stops a runner by killing it
	if req.Op == OpAnalyze {
		return s.analyze(ctx, req.Analysis, s.sink())
	}
	if !s.loaded {
		s.loaded = true
		s.model, s.ops, s.loadErr = s.load()
	}
	if s.loadErr != nil {
		return failure(s.loadErr)
	}
	d, err := Execute(ctx, s.model, req, Env{WordNetDir: s.cfg.WordNetDir, Threads: s.cfg.Threads}, s.sink())
	if err != nil {
		return failure(err)
	}
	if d.Validate != nil {
		d.Validate.Operators = s.ops
	}
	return d
}

// sink sends an operation's progress and artifacts to the worker.
func (s *server) sink() Sink {
	var (
		lastStage string
		lastSent  time.Time
	)
	return Sink{
		// Progress crosses the pipe when the stage changes or every 200 ms
		// (the worker throttles its database writes more still).
		Progress: func(pct int, stage string) {
			if stage == lastStage && time.Since(lastSent) < 200*time.Millisecond {
				return
			}
			lastStage, lastSent = stage, time.Now()
			s.send(Message{Progress: &Progress{Pct: pct, Stage: stage}})
		},
		Artifact: func(_ context.Context, name, ct string, data []byte) (string, error) {
			return name, s.send(Message{Artifact: &Artifact{Name: name, ContentType: ct, Data: data}})
		},
	}
}

func (s *server) load() (*torchClassifier, []string, error) {
	m := s.cfg.Model
	if m.Path == "" {
		return nil, nil, Permanent("this runner serves no model")
	}
	cfg, details := modelspec.ParseConfig(m.Type, m.Metadata)
	if details != nil {
		return nil, nil, Permanent("model metadata is invalid: %v", details)
	}
	if s.cfg.Threads > 0 {
		torch.SetThreads(s.cfg.Threads)
	}
	dev := torch.CPU
	if s.cfg.Device != "" && s.cfg.Device != "cpu" {
		dev, _ = torch.SelectDevice()
	}
	return Load(m.Path, cfg, dev, s.cfg.Inspect)
}

// failure turns an error into the end of an operation. Allocation
// failures under the address-space limit name the limit.
func failure(err error) *Done {
	msg, perm := IsPermanent(err)
	if !perm {
		msg = err.Error()
	}
	if isAllocationFailure(msg) {
		return &Done{Error: "resource limit: the model needed more memory than the runner may use (" + msg + ")", Permanent: true}
	}
	return &Done{Error: msg, Permanent: perm}
}

func isAllocationFailure(msg string) bool {
	return strings.Contains(msg, "can't allocate memory") || strings.Contains(msg, "bad_alloc") ||
		strings.Contains(msg, "out of memory")
}

// check tries each action and reports what stopped it.
func (s *server) check(c *CheckRequest) *CheckResult {
	res := &CheckResult{Layers: s.layers, Results: map[string]string{}}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		res.EnvVars = append(res.EnvVars, name)
	}
	if c == nil {
		return res
	}
	outcome := func(err error) string {
		if err == nil {
			return "allowed"
		}
		return "denied: " + err.Error()
	}
	for _, f := range c.ReadFiles {
		b, err := os.ReadFile(f)
		if err == nil && len(b) == 0 {
			err = nil
		}
		res.Results["read "+f] = outcome(err)
	}
	for _, a := range c.Connect {
		conn, err := net.Dial("tcp", a)
		if err == nil {
			conn.Close()
		}
		res.Results["connect "+a] = outcome(err)
	}
	for _, e := range c.Exec {
		res.Results["exec "+e] = outcome(exec.Command(e).Run())
	}
	return res
}

// Exit ends the runner process: status 0 after a clean end, 1 with the
// error on stderr (which the worker reads).
func Exit(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "runner:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// ServeIfStarted makes a test binary act as a runner when a worker under
// test started it as one (tests run runners from their own binary). Call
// it from an init function of the test package.
func ServeIfStarted() {
	if os.Getenv(configEnv) != "" {
		Exit(Main())
	}
}
