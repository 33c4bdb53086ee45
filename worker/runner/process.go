package runner

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options are how the worker starts runners.
type Options struct {
	Executable string // this binary; "" for os.Executable()
	Sandbox    bool   // namespaces, Landlock and seccomp; false only with WARDEN_SANDBOX=off
	Inspect    bool   // operator allow-list before anything runs (false only in tests)
	Device     string
	Threads    int
	WordNetDir string
	Limits     Limits
	Scratch    string // parent of each runner's scratch directory
	StartTime  time.Duration
}

// DefaultLimits suit the models Warden serves on a CPU worker.
func DefaultLimits() Limits {
	return Limits{AddressSpace: 8 << 30, FileSize: 64 << 20, OpenFiles: 256, Processes: 512}
}

// Process is one running runner serving one model. Requests are handled
// one at a time.
type Process struct {
	cmd     *exec.Cmd
	req     io.WriteCloser
	enc     *json.Encoder
	dec     *json.Decoder
	stderr  *tailBuffer
	scratch string
	Layers  []string

	mu     sync.Mutex
	exited chan struct{}
	state  *os.ProcessState
}

// Start starts a runner for model (Path "" for a runner that only answers
// checks) and waits until it reports the layers it runs under.
func Start(ctx context.Context, o Options, model ModelFile) (*Process, error) {
	exe := o.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(o.Scratch, 0o700); err != nil {
		return nil, err
	}
	scratch, err := os.MkdirTemp(o.Scratch, "runner-")
	if err != nil {
		return nil, err
	}
	cfg := Config{Model: model, Device: o.Device, Threads: o.Threads, WordNetDir: o.WordNetDir, Inspect: o.Inspect,
		Confine: o.Sandbox, Limits: o.Limits, Paths: paths(exe, model, o.WordNetDir, scratch, o.Device)}
	b, _ := json.Marshal(cfg)
	cmd := exec.Command(exe, "runner")
	// A clean environment: nothing of the worker's (database and Redis
	// URLs, keys) reaches the runner.
	cmd.Env = []string{configEnv + "=" + string(b), "PATH=/usr/bin:/bin", "HOME=" + scratch, "TMPDIR=" + scratch, "LANG=C.UTF-8",
		fmt.Sprintf("OMP_NUM_THREADS=%d", max(o.Threads, 1))}
	cmd.Dir = scratch
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	respR, respW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, err
	}
	p := &Process{cmd: cmd, req: reqW, enc: json.NewEncoder(reqW), dec: json.NewDecoder(bufio.NewReaderSize(respR, 1<<20)),
		stderr: &tailBuffer{max: 16 << 10}, scratch: scratch, exited: make(chan struct{})}
	cmd.ExtraFiles = []*os.File{reqR, respW} // fds 3 and 4; nothing else is inherited
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	namespaces := o.Sandbox
	if namespaces {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWNET |
			syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
	}
	err = cmd.Start()
	if err != nil && namespaces {
		// The kernel refuses unprivileged namespaces here: say so in the
		// layers and go on with what remains (the worker decides whether
		// that is enough).
		namespaces = false
		cmd.SysProcAttr.Cloneflags, cmd.SysProcAttr.UidMappings, cmd.SysProcAttr.GidMappings = 0, nil, nil
		err = cmd.Start()
	}
	reqR.Close()
	respW.Close()
	if err != nil {
		reqW.Close()
		respR.Close()
		os.RemoveAll(scratch)
		return nil, fmt.Errorf("start runner: %w", err)
	}
	go func() {
		cmd.Wait()
		p.state = cmd.ProcessState
		respR.Close()
		close(p.exited)
	}()
	ready := make(chan error, 1)
	go func() {
		var m Message
		if err := p.dec.Decode(&m); err != nil || m.Ready == nil {
			ready <- fmt.Errorf("runner did not start: %v", p.exitReason(err))
			return
		}
		p.Layers = m.Ready.Layers
		ready <- nil
	}()
	wait := o.StartTime
	if wait <= 0 {
		wait = time.Minute
	}
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(wait):
		err = fmt.Errorf("runner did not start within %s", wait)
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	if namespaces {
		p.Layers = append([]string{"namespaces (user, mount, network, pid, ipc, uts)"}, p.Layers...)
	}
	return p, nil
}

// paths lists what a runner may open.
func paths(exe string, model ModelFile, wordnet, scratch, device string) Paths {
	p := Paths{Executable: exe, LibDirs: libDirs(), Scratch: scratch,
		// /etc/protocols and /etc/services: the SQLite driver linked into
		// the binary reads them when it initialises (public files).
		ReadFiles: []string{"/etc/ld.so.cache", "/etc/protocols", "/etc/services", "/proc/cpuinfo", "/proc/meminfo",
			"/sys/kernel/mm/transparent_hugepage/hpage_pmd_size"},
		ReadDirs: []string{"/sys/devices/system/cpu", "/sys/fs/cgroup"},
		Devices:  []string{"/dev/null", "/dev/urandom"}}
	if model.Path != "" {
		p.ReadFiles = append(p.ReadFiles, model.Path)
	}
	p.ReadFiles = append(p.ReadFiles, model.Files...)
	if wordnet != "" {
		p.ReadDirs = append(p.ReadDirs, wordnet)
	}
	if strings.HasPrefix(device, "cuda") {
		matches, _ := filepath.Glob("/dev/nvidia*")
		p.Devices = append(p.Devices, matches...)
		p.ReadDirs = append(p.ReadDirs, "/proc/driver/nvidia", "/sys/bus/pci/devices", "/sys/devices")
	}
	return p
}

// libDirs are the directories of the shared libraries this process has
// mapped (the runner is the same binary, so it needs the same ones), plus
// the system library directories the loader searches.
func libDirs() []string {
	set := map[string]bool{"/lib": true, "/lib64": true, "/usr/lib": true, "/usr/lib64": true}
	if b, err := os.ReadFile("/proc/self/maps"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if i := strings.IndexByte(line, '/'); i >= 0 {
				path := line[i:]
				if strings.Contains(filepath.Base(path), ".so") {
					set[filepath.Dir(path)] = true
				}
			}
		}
	}
	out := make([]string, 0, len(set))
	for d := range set {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// Do sends one request and waits for its end, passing progress and
// artifacts to sink. If ctx ends first, the runner is killed.
func (p *Process) Do(ctx context.Context, req Request, sink Sink) (*Done, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.exited:
		return nil, p.exitError(nil)
	default:
	}
	if err := p.enc.Encode(req); err != nil {
		return nil, p.exitError(err)
	}
	type result struct {
		d   *Done
		err error
	}
	res := make(chan result, 1)
	go func() {
		for {
			var m Message
			if err := p.dec.Decode(&m); err != nil {
				res <- result{err: err}
				return
			}
			switch {
			case m.Progress != nil && sink.Progress != nil:
				sink.Progress(m.Progress.Pct, m.Progress.Stage)
			case m.Artifact != nil:
				if sink.Artifact == nil {
					continue
				}
				if _, err := sink.Artifact(ctx, m.Artifact.Name, m.Artifact.ContentType, m.Artifact.Data); err != nil {
					res <- result{err: err}
					return
				}
			case m.Done != nil:
				res <- result{d: m.Done}
				return
			}
		}
	}()
	select {
	case r := <-res:
		if r.err != nil {
			p.kill()
			return nil, p.exitError(r.err)
		}
		return r.d, nil
	case <-ctx.Done():
		p.kill()
		return nil, ctx.Err()
	}
}

// Run does one request and turns a failed end into an error (a *Error,
// permanent where retrying cannot help).
func (p *Process) Run(ctx context.Context, req Request, sink Sink) (*Done, error) {
	d, err := p.Do(ctx, req, sink)
	if err != nil {
		return nil, err
	}
	if d.Error != "" {
		return nil, &Error{Msg: d.Error, Permanent: d.Permanent}
	}
	return d, nil
}

func (p *Process) kill() {
	if p.cmd.Process != nil {
		p.cmd.Process.Kill()
	}
	<-p.exited
}

// exitError explains why a runner stopped answering.
func (p *Process) exitError(err error) error {
	p.kill()
	return &Error{Msg: p.exitReason(err), Permanent: true}
}

// exitReason describes how the runner ended (killed by a limit, crashed,
// exited), with the end of what it printed.
func (p *Process) exitReason(err error) string {
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
	st := p.state
	tail := strings.TrimSpace(p.stderr.String())
	var why string
	switch {
	case st == nil:
		why = fmt.Sprintf("the runner stopped answering (%v)", err)
	case st.Sys().(syscall.WaitStatus).Signaled():
		sig := st.Sys().(syscall.WaitStatus).Signal()
		switch sig {
		case syscall.SIGXCPU:
			why = "resource limit: the runner used up its CPU time"
		case syscall.SIGKILL:
			why = "resource limit: the runner was killed (CPU time, memory or a deadline)"
		case syscall.SIGXFSZ:
			why = "resource limit: the runner wrote a file larger than allowed"
		case syscall.SIGSYS:
			why = "the runner made a forbidden system call"
		default:
			why = fmt.Sprintf("the runner crashed while running the model (signal %s)", sig)
		}
	case isAllocationFailure(tail):
		why = "resource limit: the model needed more memory than the runner may use"
	case crashLine(tail) != "":
		// A fault in native code (libtorch) reaches the Go runtime's
		// signal handler, which prints it and exits with status 2.
		return "the runner crashed while running the model (" + crashLine(tail) + ")"
	default:
		why = fmt.Sprintf("the runner exited with status %d", st.ExitCode())
	}
	if line := lastLine(tail); line != "" {
		why += ": " + line
	}
	return why
}

// crashLine finds the Go runtime's report of a fatal signal or error
// ("signal SIGSEGV: segmentation violation …") in a runner's output.
func crashLine(out string) string {
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "signal SIG") || strings.HasPrefix(line, "fatal error:") || strings.HasPrefix(line, "SIG") {
			if len(line) > 200 {
				line = line[:200]
			}
			return line
		}
	}
	return ""
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// Close stops the runner and removes its scratch directory.
func (p *Process) Close() error {
	p.req.Close()
	select {
	case <-p.exited:
	case <-time.After(2 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
	return os.RemoveAll(p.scratch)
}

// Exited reports whether the runner has stopped.
func (p *Process) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.Write(p)
	if over := t.b.Len() - t.max; over > 0 {
		t.b.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String()
}

// RSS is the runner's resident memory in bytes (0 once it has exited or
// where /proc cannot tell).
func (p *Process) RSS() int64 {
	if p.Exited() || p.cmd.Process == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	var size, resident int64
	if _, err := fmt.Sscan(string(b), &size, &resident); err != nil {
		return 0
	}
	return resident * int64(os.Getpagesize())
}
