package sandbox

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sandbox is the place one agent lives: a private HOME, the harness's programs, and nothing of
// the test process. Both backends give the same guarantees as far as the tests can observe.
type Sandbox interface {
	// Exec runs a program inside the sandbox and waits for it. The program is named by its
	// program name ("sandbox-agent"), which the backend resolves. A non-zero exit is reported
	// in ExecResult.ExitCode, not as an error; the error is for an exec that could not run.
	Exec(ctx context.Context, cmd []string, opts ...ExecOption) (ExecResult, error)

	// CopyFileTo copies a host file into the sandbox with the given mode, owned by the agent.
	// A relative sandboxPath is taken relative to Home; missing parent directories are made
	// owner-only.
	CopyFileTo(ctx context.Context, hostPath, sandboxPath string, mode os.FileMode) error

	// FileMode returns the mode of a file in the sandbox, as the backend itself sees it,
	// without running anything inside and without reading the file: a symbolic link is
	// reported as one, not followed. A relative sandboxPath is taken relative to Home.
	FileMode(ctx context.Context, sandboxPath string) (os.FileMode, error)

	// Logs returns what a failing test should show: the command line, exit code and stderr
	// of every exec, never stdout, which may carry secrets.
	Logs(ctx context.Context) (string, error)

	// Home is the agent's HOME inside the sandbox.
	Home() string

	// Close stops the sandbox and removes everything it made. Calling it twice is harmless.
	Close(ctx context.Context) error
}

// ExecResult is what a program run by Exec left behind.
type ExecResult struct {
	Stdout   string
	Stderr   string
	ExitCode int
	Duration time.Duration
}

// transcript records the execs of one sandbox for Logs. It keeps the stderr of each exec but
// never its stdout or its stdin, and only the names of the environment variables it was
// given, since those are the channels a test uses for secrets.
type transcript struct {
	mu    sync.Mutex
	lines strings.Builder
}

func (t *transcript) record(cmd []string, env map[string]string, res ExecResult, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()

	fmt.Fprintf(&t.lines, "$ %s", quoteArgs(cmd))
	if len(env) > 0 {
		keys := slices.Sorted(maps.Keys(env))
		fmt.Fprintf(&t.lines, "  (env: %s)", strings.Join(keys, " "))
	}
	t.lines.WriteByte('\n')

	if err != nil {
		fmt.Fprintf(&t.lines, "  error: %v\n", err)
		return
	}
	fmt.Fprintf(&t.lines, "  exit %d in %s\n", res.ExitCode, res.Duration.Round(time.Millisecond))
	if res.Stderr != "" {
		for line := range strings.Lines(res.Stderr) {
			t.lines.WriteString("  stderr: " + line)
		}
		if !strings.HasSuffix(res.Stderr, "\n") {
			t.lines.WriteByte('\n')
		}
	}
}

func (t *transcript) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lines.String()
}

// quoteArgs writes a command line so that arguments with spaces stay readable as one.
func quoteArgs(cmd []string) string {
	parts := make([]string, len(cmd))
	for i, a := range cmd {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$") {
			a = strconv.Quote(a)
		}
		parts[i] = a
	}
	return strings.Join(parts, " ")
}

// applyExecOptions collects the per-exec options.
func applyExecOptions(opts []ExecOption) (execConfig, error) {
	var c execConfig
	for _, o := range opts {
		if err := o.applyExec(&c); err != nil {
			return execConfig{}, err
		}
	}
	return c, nil
}

// envList turns layered maps into KEY=value pairs, later maps winning, sorted so that the
// environment a program sees does not depend on map order.
func envList(layers ...map[string]string) []string {
	merged := map[string]string{}
	for _, l := range layers {
		maps.Copy(merged, l)
	}
	out := make([]string, 0, len(merged))
	for k, v := range merged {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}
