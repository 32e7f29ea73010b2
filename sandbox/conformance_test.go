package sandbox_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/sandbox"
)

// TestConformance holds both backends to the same promises, through the Sandbox interface
// alone. Each backend gets one sandbox; the assessments use distinct files so they do not
// depend on each other's order.
func TestConformance(t *testing.T) {
	// A variable of the test process that no sandbox may see.
	t.Setenv("AGENTKEYS_CANARY", "leaked-from-the-test-process")

	backends := []struct {
		name string
		new  func(t testing.TB, opts ...sandbox.Option) sandbox.Sandbox
	}{
		{"process", newProcess},
		{"container", func(t testing.TB, opts ...sandbox.Option) sandbox.Sandbox {
			return newContainer(t, opts...)
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			sb := b.new(t, sandbox.WithName("conformance"),
				sandbox.WithEnv("AGENTKEYS_A=created", "AGENTKEYS_B=created"))
			assessConformance(t, sb)
		})
	}
}

func assessConformance(t *testing.T, sb sandbox.Sandbox) {
	ctx := context.Background()
	run := func(t *testing.T, cmd []string, opts ...sandbox.ExecOption) sandbox.ExecResult {
		t.Helper()
		res, err := sb.Exec(ctx, cmd, opts...)
		require.NoError(t, err, "exec %v", cmd)
		return res
	}

	t.Run("stdout and stderr are kept apart", func(t *testing.T) {
		res := run(t, []string{"probe", "streams"})
		assert.Equal(t, "out 1\nout 2\n", res.Stdout)
		assert.Equal(t, "err 1\nerr 2\n", res.Stderr)
		assert.Equal(t, 0, res.ExitCode)
	})

	t.Run("a non-zero exit is a result, not an error", func(t *testing.T) {
		res := run(t, []string{"probe", "exit", "3"})
		assert.Equal(t, 3, res.ExitCode)
		assert.Equal(t, "exiting with 3\n", res.Stderr)
		assert.Empty(t, res.Stdout)
	})

	t.Run("a program that is not there is an error", func(t *testing.T) {
		_, err := sb.Exec(ctx, []string{"no-such-program"})
		assert.Error(t, err)
	})

	t.Run("stdin reaches the program", func(t *testing.T) {
		res := run(t, []string{"probe", "stdin"}, sandbox.WithStdinBytes([]byte("from stdin")))
		assert.Equal(t, "from stdin", res.Stdout)

		res = run(t, []string{"probe", "stdin"},
			sandbox.WithStdin(strings.NewReader("from a reader")))
		assert.Equal(t, "from a reader", res.Stdout)

		res = run(t, []string{"probe", "stdin"})
		assert.Empty(t, res.Stdout, "no stdin option reads an empty input")
	})

	t.Run("environment is built, not inherited", func(t *testing.T) {
		res := run(t, []string{"probe", "env"}, sandbox.WithEnvMap(map[string]string{
			"AGENTKEYS_B": "exec", "AGENTKEYS_C": "exec",
		}))
		env := strings.Split(strings.TrimSpace(res.Stdout), "\n")
		assert.Contains(t, env, "HOME="+sb.Home())
		assert.Contains(t, env, "AGENTKEYS_A=created")
		assert.Contains(t, env, "AGENTKEYS_B=exec", "exec env wins over creation env")
		assert.Contains(t, env, "AGENTKEYS_C=exec")
		assert.NotContains(t, res.Stdout, "AGENTKEYS_CANARY")
	})

	t.Run("HOME is private and writable", func(t *testing.T) {
		res := run(t, []string{"probe", "stat", sb.Home()})
		assert.True(t, strings.HasPrefix(res.Stdout, "0700 "), "HOME mode: %s", res.Stdout)

		res = run(t, []string{"probe", "write", "key", "secret"}) // relative to the workdir
		require.Equal(t, 0, res.ExitCode, res.Stderr)
		res = run(t, []string{"probe", "stat", sb.Home() + "/key"})
		assert.True(t, strings.HasPrefix(res.Stdout, "0600 "), "key mode: %s", res.Stdout)
	})

	t.Run("CopyFileTo puts an owner-only file in HOME", func(t *testing.T) {
		host := writeHostFile(t, "copied content")
		require.NoError(t, sb.CopyFileTo(ctx, host, "~/.agentkeys/copied.key", 0o600))

		res := run(t, []string{"probe", "cat", sb.Home() + "/.agentkeys/copied.key"})
		assert.Equal(t, "copied content", res.Stdout)
		res = run(t, []string{"probe", "stat", sb.Home() + "/.agentkeys/copied.key"})
		assert.True(t, strings.HasPrefix(res.Stdout, "0600 "), "file mode: %s", res.Stdout)
		res = run(t, []string{"probe", "stat", sb.Home() + "/.agentkeys"})
		assert.True(t, strings.HasPrefix(res.Stdout, "0700 "), "dir mode: %s", res.Stdout)

		// The backend's own view of the modes agrees with the program's inside.
		mode, err := sb.FileMode(ctx, "~/.agentkeys/copied.key")
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), mode)
		mode, err = sb.FileMode(ctx, sb.Home()+"/.agentkeys")
		require.NoError(t, err)
		assert.Equal(t, os.ModeDir|0o700, mode)
		_, err = sb.FileMode(ctx, "~/.agentkeys/absent.key")
		assert.Error(t, err, "a file that is not there")

		// A second copy replaces the file.
		host = writeHostFile(t, "second")
		require.NoError(t, sb.CopyFileTo(ctx, host, ".agentkeys/copied.key", 0o600))
		res = run(t, []string{"probe", "cat", sb.Home() + "/.agentkeys/copied.key"})
		assert.Equal(t, "second", res.Stdout)
	})

	t.Run("logs show commands and stderr but never stdout", func(t *testing.T) {
		host := writeHostFile(t, "stdout-secret")
		require.NoError(t, sb.CopyFileTo(ctx, host, "logs.secret", 0o600))
		res := run(t, []string{"probe", "cat", sb.Home() + "/logs.secret"})
		require.Equal(t, "stdout-secret", res.Stdout)
		run(t, []string{"probe", "exit", "4"}, sandbox.WithEnv("AGENTKEYS_TOKEN=env-secret"))

		logs, err := sb.Logs(ctx)
		require.NoError(t, err)
		assert.Contains(t, logs, "$ probe exit 4")
		assert.Contains(t, logs, "exit 4")
		assert.Contains(t, logs, "exiting with 4")
		assert.Contains(t, logs, "AGENTKEYS_TOKEN", "env names are listed")
		assert.NotContains(t, logs, "stdout-secret")
		assert.NotContains(t, logs, "env-secret")
	})

	t.Run("exec latency", func(t *testing.T) {
		const n = 5
		start := time.Now()
		for range n {
			run(t, []string{"probe", "id"})
		}
		t.Logf("mean exec latency over %d execs: %s", n,
			(time.Since(start) / n).Round(100*time.Microsecond))
	})
}
