package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"unsafe"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"golang.org/x/sys/unix"
)

// Limits are the resource limits a runner sets on itself.
type Limits struct {
	AddressSpace int64 `json:"address_space"` // bytes of virtual memory; 0 for none (CUDA reserves huge ranges)
	CPUSeconds   int64 `json:"cpu_seconds"`   // 0 for none
	FileSize     int64 `json:"file_size"`     // largest file it may write
	OpenFiles    int64 `json:"open_files"`
	Processes    int64 `json:"processes"` // threads count here (per user namespace)
}

// Paths are what a confined runner may open.
type Paths struct {
	Executable string   `json:"executable"`           // this binary (read, execute: the second stage)
	LibDirs    []string `json:"lib_dirs"`             // shared libraries (read, execute)
	ReadFiles  []string `json:"read_files,omitempty"` // the model file and a few system files
	ReadDirs   []string `json:"read_dirs,omitempty"`  // WordNet, CPU topology
	Scratch    string   `json:"scratch"`              // its own directory (read, write)
	Devices    []string `json:"devices,omitempty"`    // /dev/null; GPU device files
}

// landlockABI is the kernel's Landlock ABI version, or 0 without Landlock.
func landlockABI() int {
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return 0
	}
	return int(v)
}

const (
	fsRead    = unix.LANDLOCK_ACCESS_FS_READ_FILE
	fsReadDir = unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
	fsExec    = unix.LANDLOCK_ACCESS_FS_EXECUTE
	fsV1      = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_READ_FILE |
		unix.LANDLOCK_ACCESS_FS_READ_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
		unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR | unix.LANDLOCK_ACCESS_FS_MAKE_REG |
		unix.LANDLOCK_ACCESS_FS_MAKE_SOCK | unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_SYM
)

// restrictFilesystem confines the calling thread (and what it executes)
// to paths with Landlock. It returns a description of what is active.
func restrictFilesystem(p Paths) (string, error) {
	abi := landlockABI()
	if abi < 1 {
		return "", errors.New("landlock: not supported by this kernel")
	}
	handled := uint64(fsV1)
	if abi >= 2 {
		handled |= unix.LANDLOCK_ACCESS_FS_REFER
	}
	if abi >= 3 {
		handled |= unix.LANDLOCK_ACCESS_FS_TRUNCATE
	}
	if abi >= 5 {
		handled |= unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	}
	attr := unix.LandlockRulesetAttr{Handled_access_fs: handled}
	size := unsafe.Sizeof(attr.Handled_access_fs)
	what := fmt.Sprintf("landlock (ABI %d: filesystem", abi)
	if abi >= 4 { // no TCP bind or connect at all
		attr.Handled_access_net = unix.LANDLOCK_ACCESS_NET_BIND_TCP | unix.LANDLOCK_ACCESS_NET_CONNECT_TCP
		size += unsafe.Sizeof(attr.Handled_access_net)
		what += ", TCP"
	}
	if abi >= 6 { // no signals to, nor abstract sockets of, processes outside
		attr.Scoped = unix.LANDLOCK_SCOPE_SIGNAL | unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
		size += unsafe.Sizeof(attr.Scoped)
		what += ", signals"
	}
	what += ")"
	fd, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if errno != 0 {
		return "", fmt.Errorf("landlock_create_ruleset: %w", errno)
	}
	defer unix.Close(int(fd))
	add := func(path string, access uint64) error {
		f, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil // an optional path this host lacks
			}
			return fmt.Errorf("landlock rule %s: %w", path, err)
		}
		defer unix.Close(f)
		var st unix.Stat_t
		if err := unix.Fstat(f, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR { // rights that only make sense on directories
			access &^= unix.LANDLOCK_ACCESS_FS_READ_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
				unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR | unix.LANDLOCK_ACCESS_FS_MAKE_REG |
				unix.LANDLOCK_ACCESS_FS_MAKE_SOCK | unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
				unix.LANDLOCK_ACCESS_FS_MAKE_SYM | unix.LANDLOCK_ACCESS_FS_REFER
		}
		rule := unix.LandlockPathBeneathAttr{Allowed_access: access & handled, Parent_fd: int32(f)}
		if _, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, fd, unix.LANDLOCK_RULE_PATH_BENEATH,
			uintptr(unsafe.Pointer(&rule)), 0, 0, 0); errno != 0 {
			return fmt.Errorf("landlock rule %s: %w", path, errno)
		}
		return nil
	}
	if err := add(p.Executable, fsRead|fsExec); err != nil {
		return "", err
	}
	for _, d := range p.LibDirs {
		if err := add(d, fsReadDir|fsExec); err != nil {
			return "", err
		}
	}
	for _, f := range p.ReadFiles {
		if err := add(f, fsRead); err != nil {
			return "", err
		}
	}
	for _, d := range p.ReadDirs {
		if err := add(d, fsReadDir); err != nil {
			return "", err
		}
	}
	for _, d := range p.Devices {
		if err := add(d, fsRead|unix.LANDLOCK_ACCESS_FS_WRITE_FILE|unix.LANDLOCK_ACCESS_FS_IOCTL_DEV); err != nil {
			return "", err
		}
	}
	if p.Scratch != "" {
		if err := add(p.Scratch, handled); err != nil {
			return "", err
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return "", fmt.Errorf("no_new_privs: %w", err)
	}
	if _, _, errno := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); errno != 0 {
		return "", fmt.Errorf("landlock_restrict_self: %w", errno)
	}
	return what, nil
}

// setLimits applies the resource limits to this process.
func setLimits(l Limits) (string, error) {
	set := func(res int, v int64, name string) error {
		if v <= 0 {
			return nil
		}
		if err := unix.Setrlimit(res, &unix.Rlimit{Cur: uint64(v), Max: uint64(v)}); err != nil {
			return fmt.Errorf("setrlimit %s: %w", name, err)
		}
		return nil
	}
	for _, r := range []struct {
		res  int
		v    int64
		name string
	}{
		{unix.RLIMIT_AS, l.AddressSpace, "AS"}, {unix.RLIMIT_CPU, l.CPUSeconds, "CPU"}, {unix.RLIMIT_FSIZE, l.FileSize, "FSIZE"},
		{unix.RLIMIT_NOFILE, l.OpenFiles, "NOFILE"}, {unix.RLIMIT_NPROC, l.Processes, "NPROC"}, {unix.RLIMIT_CORE, 1, "CORE"},
	} {
		if err := set(r.res, r.v, r.name); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("rlimits (address space %d MiB, cpu %ds, file size %d MiB, open files %d, threads %d)",
		l.AddressSpace>>20, l.CPUSeconds, l.FileSize>>20, l.OpenFiles, l.Processes), nil
}

// syscalls a confined runner may make: the Go runtime, libtorch, OpenMP
// and glibc's allocator on pipes it was given, files it may open and
// memory. No socket, connect, execve, ptrace, mount, namespace, module,
// keyring or BPF calls: those fail with EPERM.
var allowedSyscalls = []string{
	"read", "write", "readv", "writev", "pread64", "pwrite64", "lseek", "close", "close_range", "dup", "dup3", "fcntl",
	"openat", "fstat", "newfstatat", "statx", "faccessat", "faccessat2", "readlinkat", "getdents64", "getcwd",
	"mmap", "munmap", "mprotect", "mremap", "madvise", "brk", "mlock", "munlock", "mincore", "msync", "membarrier",
	"futex", "futex_waitv", "set_robust_list", "get_robust_list", "rseq", "sched_yield", "sched_getaffinity",
	"sched_setaffinity", "sched_getparam", "sched_getscheduler", "sched_get_priority_max", "sched_get_priority_min",
	"nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday", "times",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "sigaltstack", "tgkill", "tkill",
	"getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid",
	"getrlimit", "prlimit64", "getrusage", "sysinfo", "uname", "getrandom", "arch_prctl", "set_tid_address",
	"epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait", "eventfd2", "pipe2", "poll", "ppoll",
	"pselect6", "timerfd_create", "timerfd_settime", "restart_syscall", "exit", "exit_group", "ioctl", "fadvise64",
	"ftruncate", "unlinkat", "mkdirat", "renameat", "renameat2", "fsync", "fdatasync", "memfd_create", "prctl",
}

// filterSyscalls installs the seccomp allow-list on every thread.
func filterSyscalls() (string, error) {
	const newNamespaces = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
		unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET
	filter := seccomp.Filter{
		NoNewPrivs: true,
		Flag:       seccomp.FilterFlagTSync,
		Policy: seccomp.Policy{
			DefaultAction: seccomp.ActionErrno,
			Syscalls: []seccomp.SyscallGroup{
				{Action: seccomp.ActionAllow, Names: allowedSyscalls},
				// Threads, but never new namespaces. clone3 takes its
				// flags by pointer, which a filter cannot read: ENOSYS
				// makes glibc fall back to clone.
				{Action: seccomp.ActionAllow, NamesWithCondtions: []seccomp.NameWithConditions{{Name: "clone",
					Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.BitsNotSet, Value: newNamespaces}}}}},
				{Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS), Names: []string{"clone3"}},
			},
		},
	}
	if err := seccomp.LoadFilter(filter); err != nil {
		return "", fmt.Errorf("seccomp: %w", err)
	}
	return fmt.Sprintf("seccomp (allow-list of %d system calls)", len(allowedSyscalls)+1), nil
}

// stageEnv marks the second stage, after the runner re-executed itself.
const stageEnv = "WARDEN_RUNNER_STAGE"

// confineAndExec is the runner's first stage: on one OS thread it sets its
// resource limits and Landlock domain, then executes itself again, so that
// the second stage starts with one thread that carries the domain (Landlock
// confines the calling thread and what it creates; execve keeps it). What
// is active is handed to the second stage in the environment.
func confineAndExec(cfg Config) error {
	runtime.LockOSThread()
	var layers []string
	if what, err := setLimits(cfg.Limits); err != nil {
		return err
	} else {
		layers = append(layers, what)
	}
	if cfg.Confine {
		what, err := restrictFilesystem(cfg.Paths)
		if err != nil {
			return err
		}
		layers = append(layers, what)
	}
	env := append(os.Environ(), stageEnv+"=2", layersEnv+"="+strings.Join(layers, "\x1f"))
	return syscall.Exec(cfg.Paths.Executable, []string{filepath.Base(cfg.Paths.Executable), "runner"}, env)
}

const layersEnv = "WARDEN_RUNNER_LAYERS"
