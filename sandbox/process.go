package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a sandbox made of a host directory: the agent's programs run as child processes
// of the test, as the test's user, with a private HOME and an environment built from nothing.
// It isolates agents from each other only as far as file modes do, which is enough for the
// tests' assertions, all of which go through the services rather than the file system.
//
// Layout under the root directory:
//
//	agentkeys-<name>-<random>/  0700
//	  home/                     0700, HOME and the working directory of every exec
//	  bin/                      symlinks to the programs, the only entry of PATH
//	  tmp/                      0700, TMPDIR, so agents never share the host's /tmp
type Process struct {
	dir      string
	home     string
	bin      string
	tmp      string
	programs map[string]string
	env      map[string]string
	logger   *slog.Logger
	log      transcript

	closeOnce sync.Once
	closeErr  error
}

var _ Sandbox = (*Process)(nil)

// NewProcess makes a process sandbox. Its programs come from WithBinaries or WithBinDir; at
// least one of them is required.
func NewProcess(ctx context.Context, opts ...Option) (*Process, error) {
	c := config{backend: backendProcess, name: "agent", root: os.TempDir()}
	for _, o := range opts {
		if err := o.applySandbox(&c); err != nil {
			return nil, fmt.Errorf("new process sandbox: %w", err)
		}
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}

	programs, err := collectPrograms(c.binaries, c.binDir)
	if err != nil {
		return nil, fmt.Errorf("new process sandbox: %w", err)
	}
	if len(programs) == 0 {
		return nil, errors.New("new process sandbox: no programs: use WithBinaries or WithBinDir")
	}

	dir, err := os.MkdirTemp(c.root, "agentkeys-"+c.name+"-")
	if err != nil {
		return nil, fmt.Errorf("new process sandbox: %w", err)
	}
	p := &Process{
		dir:      dir,
		home:     filepath.Join(dir, "home"),
		bin:      filepath.Join(dir, "bin"),
		tmp:      filepath.Join(dir, "tmp"),
		programs: make(map[string]string, len(programs)),
		env:      c.env,
		logger:   c.logger.With("sandbox", c.name, "backend", backendProcess),
	}
	if err := p.layout(programs); err != nil {
		return nil, errors.Join(fmt.Errorf("new process sandbox: %w", err), p.Close(ctx))
	}

	p.logger.Info("sandbox created", "dir", dir)
	return p, nil
}

// layout makes the directories and links the programs into bin.
func (p *Process) layout(programs map[string]string) error {
	// MkdirTemp already made dir 0700; Chmod after Mkdir makes the modes independent of umask.
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{p.home, 0o700}, {p.bin, 0o755}, {p.tmp, 0o700}} {
		if err := os.Mkdir(d.path, d.mode); err != nil {
			return err
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return err
		}
	}

	for name, target := range programs {
		abs, err := filepath.Abs(target)
		if err != nil {
			return fmt.Errorf("program %s: %w", name, err)
		}
		link := filepath.Join(p.bin, name)
		if err := os.Symlink(abs, link); err != nil {
			return fmt.Errorf("program %s: %w", name, err)
		}
		p.programs[name] = link
	}
	return nil
}

// collectPrograms merges the explicit map with the executables found in dir; the map wins.
func collectPrograms(binaries map[string]string, dir string) (map[string]string, error) {
	programs := make(map[string]string)
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("bin dir: %w", err)
		}
		for _, e := range entries {
			info, err := os.Stat(filepath.Join(dir, e.Name())) // a linked program counts
			if err != nil {
				return nil, fmt.Errorf("bin dir: %w", err)
			}
			if info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0 {
				programs[e.Name()] = filepath.Join(dir, e.Name())
			}
		}
	}
	for name, path := range binaries {
		info, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("program %s: %w", name, err)
		}
		if !info.Mode().IsRegular() {
			return nil, fmt.Errorf("program %s: %s is not a regular file", name, path)
		}
		programs[name] = path
	}
	return programs, nil
}

// Home returns the private HOME directory, a host path.
func (p *Process) Home() string { return p.home }

// Dir returns the sandbox's directory on the host.
func (p *Process) Dir() string { return p.dir }

// Exec runs a program as a child process. The child starts its own process group so that a
// cancelled context kills whatever it started too.
func (p *Process) Exec(ctx context.Context, cmd []string, opts ...ExecOption) (ExecResult, error) {
	ec, err := applyExecOptions(opts)
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec: %w", err)
	}
	res, err := p.exec(ctx, cmd, ec)
	p.log.record(cmd, ec.env, res, err)
	return res, err
}

func (p *Process) exec(ctx context.Context, cmd []string, ec execConfig) (ExecResult, error) {
	if len(cmd) == 0 {
		return ExecResult{}, errors.New("exec: empty command")
	}
	path, err := p.resolve(cmd[0])
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec %s: %w", cmd[0], err)
	}

	var stdout, stderr bytes.Buffer
	c := exec.CommandContext(ctx, path, cmd[1:]...)
	c.Args[0] = cmd[0]
	c.Dir = p.home
	c.Env = envList(map[string]string{"HOME": p.home, "PATH": p.bin, "TMPDIR": p.tmp},
		p.env, ec.env)
	c.Stdin = ec.stdin
	c.Stdout = &stdout
	c.Stderr = &stderr
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	// A grandchild that keeps the output pipes open must not hang Exec forever.
	c.WaitDelay = 5 * time.Second

	start := time.Now()
	runErr := c.Run()
	res := ExecResult{
		Stdout:   stdout.String(),
		Stderr:   stderr.String(),
		Duration: time.Since(start),
	}

	if ctx.Err() != nil {
		return res, fmt.Errorf("exec %s: %w", cmd[0], ctx.Err())
	}
	var exitErr *exec.ExitError
	switch {
	case runErr == nil:
	case errors.As(runErr, &exitErr):
		res.ExitCode = exitCode(exitErr.ProcessState)
	default:
		return res, fmt.Errorf("exec %s: %w", cmd[0], runErr)
	}
	return res, nil
}

// exitCode reports a death by signal as 128 plus the signal, as a shell and a container runtime
// do, so that both backends agree on the number.
func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// resolve finds a program by name in the sandbox's bin directory, never in the test
// process's PATH. A name with a slash is a path and is used as it is.
func (p *Process) resolve(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	if path, ok := p.programs[name]; ok {
		return path, nil
	}
	return "", fmt.Errorf("program %q is not in the sandbox", name)
}

// CopyFileTo copies a host file into the sandbox. sandboxPath must stay inside the sandbox
// directory; a relative one is taken relative to HOME.
func (p *Process) CopyFileTo(_ context.Context, hostPath, sandboxPath string,
	mode os.FileMode,
) error {
	dst := p.sandboxPath(sandboxPath)
	rel, err := filepath.Rel(p.dir, dst)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("copy %s: outside the sandbox", sandboxPath)
	}

	if err := copyFile(hostPath, dst, mode); err != nil {
		return fmt.Errorf("copy %s: %w", sandboxPath, err)
	}
	return nil
}

// FileMode lstats the file on the host, where the sandbox directory is.
func (p *Process) FileMode(_ context.Context, sandboxPath string) (os.FileMode, error) {
	fi, err := os.Lstat(p.sandboxPath(sandboxPath))
	if err != nil {
		return 0, fmt.Errorf("file mode %s: %w", sandboxPath, err)
	}
	return fi.Mode(), nil
}

func (p *Process) sandboxPath(path string) string {
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		path = rest
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(p.home, path)
	}
	return filepath.Clean(path)
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()

	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		return errors.Join(err, out.Close())
	}
	if err := out.Close(); err != nil {
		return err
	}
	// OpenFile's mode passes through the umask and does not change an existing file.
	return os.Chmod(dst, mode)
}

// Logs returns the exec transcript.
func (p *Process) Logs(context.Context) (string, error) { return p.log.String(), nil }

// Close removes the sandbox directory.
func (p *Process) Close(context.Context) error {
	p.closeOnce.Do(func() {
		p.closeErr = removeTree(p.dir)
		if p.closeErr != nil {
			p.closeErr = fmt.Errorf("close process sandbox: %w", p.closeErr)
			return
		}
		p.logger.Info("sandbox removed")
	})
	return p.closeErr
}

// removeTree removes dir even when a program left a directory without write permission in it,
// which would make a plain RemoveAll fail.
func removeTree(dir string) error {
	if os.RemoveAll(dir) == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(path, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
