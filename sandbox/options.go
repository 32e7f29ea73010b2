package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
)

// Option configures a sandbox when it is created by NewProcess or NewContainer. An option
// that only one backend understands makes the other backend's constructor fail, so a
// misplaced option is noticed instead of silently ignored.
type Option interface {
	applySandbox(c *config) error
}

// ExecOption configures one Exec call.
type ExecOption interface {
	applyExec(c *execConfig) error
}

// SweepOption configures Sweep.
type SweepOption interface {
	applySweep(c *sweepConfig)
}

type backend string

const (
	backendProcess   backend = "process"
	backendContainer backend = "container"
)

// config holds what the options of both backends set; each backend reads its own part.
type config struct {
	backend    backend
	name       string
	env        map[string]string
	logger     *slog.Logger
	binaries   map[string]string
	binDir     string
	root       string
	image      string
	network    string
	aliases    []string
	uid, gid   int
	entrypoint []string
	moduleRoot string
}

type execConfig struct {
	env   map[string]string
	stdin io.Reader
}

type sweepConfig struct {
	all    bool
	logger *slog.Logger
}

// optionFunc adapts a function to Option.
type optionFunc func(c *config) error

func (f optionFunc) applySandbox(c *config) error { return f(c) }

// only wraps an option that makes sense for one backend.
func only(b backend, name string, f func(c *config) error) Option {
	return optionFunc(func(c *config) error {
		if c.backend != b {
			return fmt.Errorf("%s: only for the %s backend", name, b)
		}
		return f(c)
	})
}

// EnvOption sets environment variables. The same value works at creation, where it applies to
// every exec, and per exec, where it wins over what was set at creation.
type EnvOption struct {
	env map[string]string
	err error
}

// WithEnv sets environment variables given as "KEY=value".
func WithEnv(kv ...string) EnvOption {
	env := make(map[string]string, len(kv))
	for _, s := range kv {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return EnvOption{err: fmt.Errorf("with env: %q is not KEY=value", s)}
		}
		env[k] = v
	}
	return EnvOption{env: env}
}

// WithEnvMap sets environment variables from a map.
func WithEnvMap(env map[string]string) EnvOption {
	for k := range env {
		if k == "" || strings.Contains(k, "=") {
			return EnvOption{err: fmt.Errorf("with env: bad variable name %q", k)}
		}
	}
	return EnvOption{env: maps.Clone(env)}
}

func (o EnvOption) applySandbox(c *config) error {
	if o.err != nil {
		return o.err
	}
	c.env = mergeEnv(c.env, o.env)
	return nil
}

func (o EnvOption) applyExec(c *execConfig) error {
	if o.err != nil {
		return o.err
	}
	c.env = mergeEnv(c.env, o.env)
	return nil
}

func mergeEnv(dst, src map[string]string) map[string]string {
	if dst == nil {
		dst = make(map[string]string, len(src))
	}
	maps.Copy(dst, src)
	return dst
}

type execOptionFunc func(c *execConfig) error

func (f execOptionFunc) applyExec(c *execConfig) error { return f(c) }

// WithStdin feeds r to the program's standard input. Without it the program reads an empty
// input.
func WithStdin(r io.Reader) ExecOption {
	return execOptionFunc(func(c *execConfig) error {
		if r == nil {
			return errors.New("with stdin: nil reader")
		}
		c.stdin = r
		return nil
	})
}

// WithStdinBytes feeds b to the program's standard input. It is the way to hand a secret to a
// program without it appearing on the command line, which the transcript records.
func WithStdinBytes(b []byte) ExecOption {
	return execOptionFunc(func(c *execConfig) error {
		c.stdin = bytes.NewReader(b)
		return nil
	})
}

// LoggerOption sets the logger for lifecycle events; it works for both constructors and for
// Sweep. The default is slog.Default().
type LoggerOption struct{ logger *slog.Logger }

// WithLogger routes lifecycle events (sandbox created, container started, image built) to l.
func WithLogger(l *slog.Logger) LoggerOption { return LoggerOption{logger: l} }

func (o LoggerOption) applySandbox(c *config) error {
	if o.logger == nil {
		return errors.New("with logger: nil logger")
	}
	c.logger = o.logger
	return nil
}

func (o LoggerOption) applySweep(c *sweepConfig) {
	if o.logger != nil {
		c.logger = o.logger
	}
}

// WithName gives the sandbox a readable name, usually the agent's label. It appears in the
// process sandbox's directory name, the container name and the log lines.
func WithName(name string) Option {
	return optionFunc(func(c *config) error {
		if !validName(name) {
			return fmt.Errorf("with name: %q is not made of [a-z0-9-], 1 to 32 long", name)
		}
		c.name = name
		return nil
	})
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

// WithBinaries names the programs the sandbox can run: program name to host path of a static
// linux binary. The process backend runs them in place; the container backend copies them
// into a writable bin directory of the container at start, which is how a sandbox image that
// the harness did not build gets the harness's programs.
func WithBinaries(binaries map[string]string) Option {
	return optionFunc(func(c *config) error {
		for name, path := range binaries {
			if !validProgram(name) {
				return fmt.Errorf("with binaries: bad program name %q", name)
			}
			if path == "" {
				return fmt.Errorf("with binaries: %s: empty path", name)
			}
		}
		if c.binaries == nil {
			c.binaries = make(map[string]string, len(binaries))
		}
		maps.Copy(c.binaries, binaries)
		return nil
	})
}

// WithBinDir names a host directory whose executable files are the sandbox's programs.
func WithBinDir(dir string) Option {
	return optionFunc(func(c *config) error {
		if dir == "" {
			return errors.New("with bin dir: empty path")
		}
		c.binDir = dir
		return nil
	})
}

// validProgram keeps program names to plain file names, so that a name can never reach
// outside the bin directory it is resolved in.
func validProgram(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\\\x00")
}

// WithRoot sets the directory under which the process backend makes its sandbox directories.
// The default is os.TempDir(); tests usually pass t.TempDir().
func WithRoot(dir string) Option {
	return only(backendProcess, "with root", func(c *config) error {
		c.root = dir
		return nil
	})
}

// WithImage sets the image the container backend starts. The image must keep running with its
// own entrypoint (or the one given by WithEntrypoint) as a non-root user can; the harness
// copies the programs given by WithBinaries into it.
func WithImage(ref string) Option {
	return only(backendContainer, "with image", func(c *config) error {
		if ref == "" {
			return errors.New("with image: empty reference")
		}
		c.image = ref
		return nil
	})
}

// WithNetwork joins the container to the named Docker network, reachable there under the
// given aliases. Without it the container is on Docker's default bridge.
func WithNetwork(name string, aliases ...string) Option {
	return only(backendContainer, "with network", func(c *config) error {
		if name == "" {
			return errors.New("with network: empty name")
		}
		c.network = name
		c.aliases = append(c.aliases, aliases...)
		return nil
	})
}

// WithUser sets the numeric user and group the container runs as. Numbers, not names: a
// scratch image has no /etc/passwd to look names up in.
func WithUser(uid, gid int) Option {
	return only(backendContainer, "with user", func(c *config) error {
		if uid <= 0 || gid <= 0 {
			return fmt.Errorf("with user: %d:%d: the sandbox never runs as root", uid, gid)
		}
		c.uid, c.gid = uid, gid
		return nil
	})
}

// WithEntrypoint replaces the image's entrypoint, for an image whose own entrypoint does not
// idle (a CLI image, say, started with a sleep program it carries).
func WithEntrypoint(cmd ...string) Option {
	return only(backendContainer, "with entrypoint", func(c *config) error {
		if len(cmd) == 0 {
			return errors.New("with entrypoint: empty command")
		}
		c.entrypoint = cmd
		return nil
	})
}

// WithModuleRoot sets the harness module root used to compile the programs when the container
// backend has to build its default image. The default is found by walking up from the
// working directory to the go.mod of the harness module.
func WithModuleRoot(dir string) Option {
	return only(backendContainer, "with module root", func(c *config) error {
		c.moduleRoot = dir
		return nil
	})
}

type sweepOptionFunc func(c *sweepConfig)

func (f sweepOptionFunc) applySweep(c *sweepConfig) { f(c) }

// WithAllRuns makes Sweep remove every harness resource, whether its run is alive or not, and
// the harness images too. It is meant for `make clean`, never for a test.
func WithAllRuns() SweepOption {
	return sweepOptionFunc(func(c *sweepConfig) { c.all = true })
}
