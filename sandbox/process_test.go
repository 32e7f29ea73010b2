package sandbox_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/sandbox"
)

// TestProcessLayout checks the host side of a process sandbox: what the directory looks like,
// what a program is told about it, and that Close takes it all away.
func TestProcessLayout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root := t.TempDir()
	p, err := sandbox.NewProcess(ctx, sandbox.WithRoot(root), sandbox.WithName("layout"),
		sandbox.WithBinaries(testBinaries(t)), sandbox.WithLogger(testLogger(t)))
	require.NoError(t, err)
	t.Cleanup(func() { closeSandbox(t, p) })

	home, err := os.Stat(p.Home())
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), home.Mode().Perm(), "HOME is owner-only")
	dir, err := os.Stat(p.Dir())
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), dir.Mode().Perm(), "the sandbox is owner-only")
	assert.True(t, strings.HasPrefix(p.Dir(), filepath.Join(root, "agentkeys-layout-")))

	res, err := p.Exec(ctx, []string{"probe", "env"})
	require.NoError(t, err)
	env := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	assert.ElementsMatch(t, []string{
		"HOME=" + p.Home(),
		"PATH=" + filepath.Join(p.Dir(), "bin"),
		"TMPDIR=" + filepath.Join(p.Dir(), "tmp"),
	}, env, "nothing but what the sandbox sets")

	require.NoError(t, p.Close(ctx))
	_, err = os.Stat(p.Dir())
	assert.True(t, os.IsNotExist(err), "sandbox directory left behind: %v", err)
}

// TestProcessRefusals checks what a process sandbox will not do.
func TestProcessRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newProcess(t)
	host := writeHostFile(t, "x")

	cases := []struct {
		name string
		err  error
	}{
		{"copy outside the sandbox", p.CopyFileTo(ctx, host, "/etc/planted", 0o600)},
		{"copy climbing out of HOME", p.CopyFileTo(ctx, host, "../../planted", 0o600)},
		{"copy onto the sandbox directory", p.CopyFileTo(ctx, host, "..", 0o600)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.ErrorContains(t, tc.err, "outside the sandbox")
		})
	}

	t.Run("a cancelled exec is an error", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		// stdin never ends, so the program waits until it is killed.
		r, w, err := os.Pipe()
		require.NoError(t, err)
		t.Cleanup(func() { r.Close(); w.Close() })
		_, err = p.Exec(ctx, []string{"probe", "stdin"}, sandbox.WithStdin(r))
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

// TestOptionsRefused checks that a bad or misplaced option stops the constructor.
func TestOptionsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bins := sandbox.WithBinaries(map[string]string{"probe": "/nonexistent"})
	cases := []struct {
		name string
		opts []sandbox.Option
		want string
	}{
		{"env without =", []sandbox.Option{sandbox.WithEnv("NOEQUALS")}, "KEY=value"},
		{"env with empty key", []sandbox.Option{sandbox.WithEnvMap(map[string]string{"": "v"})},
			"bad variable name"},
		{"name with upper case", []sandbox.Option{sandbox.WithName("Alice")}, "with name"},
		{"program name with a slash", []sandbox.Option{
			sandbox.WithBinaries(map[string]string{"../x": "/bin/true"})}, "bad program name"},
		{"container option", []sandbox.Option{sandbox.WithImage("x")}, "container backend"},
		{"missing program", []sandbox.Option{bins}, "no such file"},
		{"no programs", nil, "no programs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]sandbox.Option{sandbox.WithRoot(t.TempDir())}, tc.opts...)
			_, err := sandbox.NewProcess(ctx, opts...)
			assert.ErrorContains(t, err, tc.want)
		})
	}

	t.Run("process option on a container", func(t *testing.T) {
		_, err := sandbox.NewContainer(ctx, sandbox.WithRoot(t.TempDir()))
		assert.ErrorContains(t, err, "process backend")
	})
	t.Run("root user on a container", func(t *testing.T) {
		_, err := sandbox.NewContainer(ctx, sandbox.WithUser(0, 0))
		assert.ErrorContains(t, err, "never runs as root")
	})
}
