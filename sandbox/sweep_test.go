package sandbox_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/sandbox"
)

// TestSweep plays a run that was killed before its cleanup: its container, network and volume
// carry the pid of a process that is gone. Sweep must remove them and leave alone what this
// live run made.
func TestSweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	img := testImage(t)
	cli, err := sandbox.DockerClient(ctx)
	require.NoError(t, err)

	// A pid that certainly named a process a moment ago and names none now.
	dead := exec.Command(testBinaries(t)["probe"], "exit", "0")
	require.NoError(t, dead.Run())
	deadLabels := sandbox.Labels()
	deadLabels[sandbox.LabelRun] = "killed-run"
	deadLabels[sandbox.LabelPID] = strconv.Itoa(dead.Process.Pid)

	create := func(t *testing.T, labels map[string]string) string {
		ctr, err := cli.ContainerCreate(ctx, &container.Config{Image: img, Labels: labels},
			&container.HostConfig{}, nil, nil, "")
		if ctr.ID != "" {
			t.Cleanup(func() {
				err := cli.ContainerRemove(context.Background(), ctr.ID,
					container.RemoveOptions{Force: true})
				if !cerrdefs.IsNotFound(err) {
					assert.NoError(t, err)
				}
			})
		}
		require.NoError(t, err)
		return ctr.ID
	}
	deadCtr := create(t, deadLabels)
	liveCtr := create(t, sandbox.Labels())

	nw, err := cli.NetworkCreate(ctx, "agentkeys-sweep-"+sandbox.RunID(),
		network.CreateOptions{Labels: deadLabels})
	require.NoError(t, err)
	vol, err := cli.VolumeCreate(ctx, volume.CreateOptions{Labels: deadLabels})
	require.NoError(t, err)

	require.NoError(t, sandbox.Sweep(ctx, sandbox.WithLogger(testLogger(t))))

	_, err = cli.ContainerInspect(ctx, deadCtr)
	assert.True(t, cerrdefs.IsNotFound(err), "dead run's container: %v", err)
	_, err = cli.NetworkInspect(ctx, nw.ID, network.InspectOptions{})
	assert.True(t, cerrdefs.IsNotFound(err), "dead run's network: %v", err)
	_, err = cli.VolumeInspect(ctx, vol.Name)
	assert.True(t, cerrdefs.IsNotFound(err), "dead run's volume: %v", err)

	inspect, err := cli.ContainerInspect(ctx, liveCtr)
	require.NoError(t, err, "this run's container must survive the sweep")
	assert.Equal(t, strconv.Itoa(os.Getpid()), inspect.Config.Labels[sandbox.LabelPID])
}
