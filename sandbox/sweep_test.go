package sandbox_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
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
	deadImg := untaggedImage(t, cli, deadLabels)
	liveImg := untaggedImage(t, cli, sandbox.Labels())

	require.NoError(t, sandbox.Sweep(ctx, sandbox.WithLogger(testLogger(t))))

	_, err = cli.ContainerInspect(ctx, deadCtr)
	assert.True(t, cerrdefs.IsNotFound(err), "dead run's container: %v", err)
	_, err = cli.NetworkInspect(ctx, nw.ID, network.InspectOptions{})
	assert.True(t, cerrdefs.IsNotFound(err), "dead run's network: %v", err)
	_, err = cli.VolumeInspect(ctx, vol.Name)
	assert.True(t, cerrdefs.IsNotFound(err), "dead run's volume: %v", err)
	_, err = cli.ImageInspect(ctx, deadImg)
	assert.True(t, cerrdefs.IsNotFound(err), "dead run's untagged image: %v", err)
	_, err = cli.ImageInspect(ctx, liveImg)
	assert.NoError(t, err, "this run's untagged image must survive the sweep")

	inspect, err := cli.ContainerInspect(ctx, liveCtr)
	require.NoError(t, err, "this run's container must survive the sweep")
	assert.Equal(t, strconv.Itoa(os.Getpid()), inspect.Config.Labels[sandbox.LabelPID])
}

// untaggedImage imports an empty image with labels and no tag, as a build that lost its
// tag to another build of the same image leaves one, and removes it at the end.
func untaggedImage(t *testing.T, cli *client.Client, labels map[string]string) string {
	t.Helper()
	var tarball bytes.Buffer
	require.NoError(t, tar.NewWriter(&tarball).Close())
	var changes []string
	for k, v := range labels {
		changes = append(changes, fmt.Sprintf("LABEL %s=%s", k, strconv.Quote(v)))
	}
	resp, err := cli.ImageImport(context.Background(),
		image.ImportSource{Source: &tarball, SourceName: "-"}, "",
		image.ImportOptions{Changes: changes})
	require.NoError(t, err)
	defer resp.Close()
	var out struct {
		Status string `json:"status"`
	}
	require.NoError(t, json.NewDecoder(resp).Decode(&out))
	require.NotEmpty(t, out.Status, "the import names no image")
	t.Cleanup(func() {
		_, err := cli.ImageRemove(context.Background(), out.Status, image.RemoveOptions{})
		if !cerrdefs.IsNotFound(err) {
			assert.NoError(t, err)
		}
	})
	return out.Status
}
