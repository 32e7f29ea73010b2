package sandbox_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go/network"

	"github.com/agentkeys/harness/sandbox"
)

// TestContainerConfinement checks what the container backend promises beyond the Sandbox
// interface: who the agent is and where it can write.
func TestContainerConfinement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sb := newContainer(t, sandbox.WithName("confined"))

	id := fmt.Sprintf("uid=%d gid=%d home=%s\n", sandbox.AgentUID, sandbox.AgentGID,
		sandbox.ContainerHome)
	cases := []struct {
		name     string
		cmd      []string
		exitCode int
		stdout   string
		stderr   string
	}{
		{
			name:   "runs as the agent user, not root",
			cmd:    []string{"probe", "id"},
			stdout: id,
		},
		{
			name:     "root file system is read-only",
			cmd:      []string{"probe", "write", "/planted", "x"},
			exitCode: 1,
			stderr:   "read-only file system",
		},
		{
			name:     "image programs cannot be replaced",
			cmd:      []string{"probe", "write", sandbox.ImageBinDir + "/probe", "x"},
			exitCode: 1,
			stderr:   "read-only file system",
		},
		{
			name: "/tmp is writable",
			cmd:  []string{"probe", "write", "/tmp/scratch", "x"},
		},
		{
			name:   "HOME is owned by the agent, owner-only",
			cmd:    []string{"probe", "stat", sandbox.ContainerHome},
			stdout: fmt.Sprintf("0700 %d:%d\n", sandbox.AgentUID, sandbox.AgentGID),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := sb.Exec(ctx, tc.cmd)
			require.NoError(t, err)
			assert.Equal(t, tc.exitCode, res.ExitCode, "stderr: %s", res.Stderr)
			if tc.stdout != "" {
				assert.Equal(t, tc.stdout, res.Stdout)
			}
			assert.Contains(t, res.Stderr, tc.stderr)
		})
	}

	t.Run("CopyFileTo outside the writable mounts is refused", func(t *testing.T) {
		err := sb.CopyFileTo(ctx, writeHostFile(t, "x"), "/etc/planted", 0o644)
		assert.ErrorContains(t, err, "read-only")
	})

	t.Run("copied files belong to the agent", func(t *testing.T) {
		require.NoError(t, sb.CopyFileTo(ctx, writeHostFile(t, "k"), "owned", 0o600))
		res, err := sb.Exec(ctx, []string{"probe", "stat", sandbox.ContainerHome + "/owned"})
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("0600 %d:%d\n", sandbox.AgentUID, sandbox.AgentGID),
			res.Stdout)
	})

	t.Run("host config is locked down and labelled", func(t *testing.T) {
		cli, err := sandbox.DockerClient(ctx)
		require.NoError(t, err)
		inspect, err := cli.ContainerInspect(ctx, sb.ID())
		require.NoError(t, err)

		assert.True(t, inspect.HostConfig.ReadonlyRootfs)
		assert.Equal(t, []string{"ALL"}, []string(inspect.HostConfig.CapDrop))
		assert.Contains(t, inspect.HostConfig.SecurityOpt, "no-new-privileges:true")
		assert.Equal(t, fmt.Sprintf("%d:%d", sandbox.AgentUID, sandbox.AgentGID),
			inspect.Config.User)

		labels := inspect.Config.Labels
		assert.Equal(t, "1", labels[sandbox.LabelHarness])
		assert.Equal(t, sandbox.RunID(), labels[sandbox.LabelRun])
		assert.Equal(t, strconv.Itoa(os.Getpid()), labels[sandbox.LabelPID])
	})
}

// TestContainerClose checks that Close leaves nothing behind: no container, no volume.
func TestContainerClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sb := newContainer(t, sandbox.WithName("closing"))
	cli, err := sandbox.DockerClient(ctx)
	require.NoError(t, err)

	inspect, err := cli.ContainerInspect(ctx, sb.ID())
	require.NoError(t, err)
	var volumes []string
	for _, m := range inspect.Mounts {
		volumes = append(volumes, m.Name)
	}
	require.Len(t, volumes, 1, "HOME is the only volume when nothing is copied in")

	require.NoError(t, sb.Close(ctx))
	require.NoError(t, sb.Close(ctx), "a second Close is harmless")

	_, err = cli.ContainerInspect(ctx, sb.ID())
	assert.True(t, cerrdefs.IsNotFound(err), "container still there: %v", err)
	for _, v := range volumes {
		_, err := cli.VolumeInspect(ctx, v)
		assert.True(t, cerrdefs.IsNotFound(err), "volume %s still there: %v", v, err)
	}
}

// TestContainerBroughtImage runs an image the harness did not lay out, as
// HARNESS_SANDBOX_IMAGE would name: it carries only an init program, and the harness copies
// its programs in at start.
func TestContainerBroughtImage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	requireDocker(t)
	bins := testBinaries(t)

	tag, err := sandbox.BuildImage(ctx, sandbox.ImageSpec{
		Repository: testRepository + "-brought",
		Files: map[string]sandbox.ImageFile{
			"/sbin/init": {HostPath: bins["sandbox-init"], Mode: 0o755},
		},
		Entrypoint: []string{"/sbin/init"},
		Logger:     testLogger(t),
	})
	require.NoError(t, err)

	sb := newContainer(t, sandbox.WithImage(tag), sandbox.WithName("brought"),
		sandbox.WithBinaries(map[string]string{"probe": bins["probe"]}))

	res, err := sb.Exec(ctx, []string{"probe", "streams"})
	require.NoError(t, err)
	assert.Equal(t, "out 1\nout 2\n", res.Stdout)
	assert.Equal(t, "err 1\nerr 2\n", res.Stderr)

	res, err = sb.Exec(ctx, []string{"probe", "stat", sandbox.CopiedBinDir + "/probe"})
	require.NoError(t, err)
	assert.Equal(t, "0755 0:0\n", res.Stdout, "copied programs belong to root")

	res, err = sb.Exec(ctx, []string{"probe", "write", sandbox.CopiedBinDir + "/planted", "x"})
	require.NoError(t, err)
	assert.Equal(t, 1, res.ExitCode, "the agent must not write to the bin directory")
	assert.Contains(t, res.Stderr, "permission denied")

	res, err = sb.Exec(ctx, []string{"probe", "id"})
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("uid=%d gid=%d home=%s\n", sandbox.AgentUID, sandbox.AgentGID,
		sandbox.ContainerHome), res.Stdout)
}

// TestContainerNetwork joins two sandboxes to one network and resolves one from the other by
// its alias, as the mocks will be resolved from a sandbox.
func TestContainerNetwork(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	requireDocker(t)

	nw, err := network.New(ctx, network.WithLabels(sandbox.Labels()))
	if nw != nil {
		t.Cleanup(func() { assert.NoError(t, nw.Remove(context.Background())) })
	}
	require.NoError(t, err)

	newContainer(t, sandbox.WithName("server"), sandbox.WithNetwork(nw.Name, "alias-server"))
	client := newContainer(t, sandbox.WithName("client"), sandbox.WithNetwork(nw.Name))

	res, err := client.Exec(ctx, []string{"probe", "lookup", "alias-server"})
	require.NoError(t, err)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	assert.NotEmpty(t, strings.TrimSpace(res.Stdout))

	cli, err := sandbox.DockerClient(ctx)
	require.NoError(t, err)
	vols, err := cli.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", sandbox.LabelRun+"="+sandbox.RunID()))})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(vols.Volumes), 2, "each sandbox's HOME volume is labelled")
}
