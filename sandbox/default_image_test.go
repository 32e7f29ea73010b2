package sandbox_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/docker/docker/api/types/image"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/sandbox"
)

// fakeModule writes a module with stand-ins for the harness programs: the real sandbox-init,
// and an agent and a probe that only say who they are.
func fakeModule(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	init, err := os.ReadFile(filepath.Join(moduleRoot(t), "cmd", "sandbox-init", "main.go"))
	require.NoError(t, err)

	files := map[string]string{
		"go.mod":                    "module example.com/fake\n\ngo 1.26\n",
		"cmd/sandbox-init/main.go":  string(init),
		"cmd/sandbox-agent/main.go": "package main\n\nfunc main() { println(\"agent\") }\n",
		"cmd/isolation-probe/main.go": "package main\n\n" +
			"func main() { println(\"isolation-probe\") }\n",
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	}
	return dir
}

// TestContainerDefaultImage starts containers without WithImage, the way a fixture that
// trusts the defaults would: first the image the harness builds from DefaultPrograms, then
// an image named by HARNESS_SANDBOX_IMAGE that gets those programs copied in.
func TestContainerDefaultImage(t *testing.T) {
	ctx := context.Background()
	requireDocker(t)
	root := fakeModule(t)
	cli, err := sandbox.DockerClient(ctx)
	require.NoError(t, err)

	stderrOf := func(t *testing.T, sb sandbox.Sandbox, program string) string {
		t.Helper()
		res, err := sb.Exec(ctx, []string{program})
		require.NoError(t, err)
		require.Equal(t, 0, res.ExitCode)
		return res.Stderr
	}

	t.Run("built from the module", func(t *testing.T) {
		t.Setenv(sandbox.EnvSandboxImage, "")
		sb, err := sandbox.NewContainer(ctx, sandbox.WithModuleRoot(root),
			sandbox.WithLogger(testLogger(t)))
		if sb != nil {
			t.Cleanup(func() { closeSandbox(t, sb) })
		}
		require.NoError(t, err)

		inspect, err := cli.ContainerInspect(ctx, sb.ID())
		require.NoError(t, err)
		assert.Regexp(t, "^"+sandbox.SandboxRepository+":", inspect.Config.Image)
		t.Cleanup(func() {
			_, err := cli.ImageRemove(context.Background(), inspect.Config.Image,
				image.RemoveOptions{Force: true})
			assert.NoError(t, err)
		})

		assert.Equal(t, "agent\n", stderrOf(t, sb, "sandbox-agent"))
		assert.Equal(t, "isolation-probe\n", stderrOf(t, sb, "isolation-probe"))
	})

	t.Run("brought by HARNESS_SANDBOX_IMAGE", func(t *testing.T) {
		bins, err := sandbox.BuildBinaries(ctx, root, "", "sandbox-init")
		require.NoError(t, err)
		tag, err := sandbox.BuildImage(ctx, sandbox.ImageSpec{
			Repository: testRepository + "-brought",
			Files: map[string]sandbox.ImageFile{
				"/sbin/init": {HostPath: bins["sandbox-init"], Mode: 0o755},
			},
			Entrypoint: []string{"/sbin/init"},
			Logger:     testLogger(t),
		})
		require.NoError(t, err)
		t.Setenv(sandbox.EnvSandboxImage, tag)

		sb, err := sandbox.NewContainer(ctx, sandbox.WithModuleRoot(root),
			sandbox.WithLogger(testLogger(t)))
		if sb != nil {
			t.Cleanup(func() { closeSandbox(t, sb) })
		}
		require.NoError(t, err)

		assert.Equal(t, "agent\n", stderrOf(t, sb, "sandbox-agent"))
		assert.Equal(t, "isolation-probe\n", stderrOf(t, sb, "isolation-probe"))
	})
}
