package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
)

// Sweep removes the containers, networks and volumes that a harness run left behind when it
// was killed before its cleanup ran: those labelled with a pid, on this host, that no longer
// names a live process. Resources of live runs, including this one, are left alone, as are
// those of other hosts sharing the daemon. The images such a run left untagged go too.
// With WithAllRuns it removes every harness resource and the harness images as well.
func Sweep(ctx context.Context, opts ...SweepOption) error {
	cfg := sweepConfig{logger: slog.Default()}
	for _, o := range opts {
		o.applySweep(&cfg)
	}

	cli, err := dockerClient(ctx)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	host, _ := os.Hostname()
	stale := func(labels map[string]string) bool {
		if cfg.all {
			return true
		}
		pid, err := strconv.Atoi(labels[LabelPID])
		return err == nil && labels[LabelHost] == host && !processAlive(pid)
	}
	harness := filters.NewArgs(filters.Arg("label", LabelHarness+"=1"))
	var errs []error
	gone := func(err error) bool { return err == nil || cerrdefs.IsNotFound(err) }

	// Containers first: a network or volume in use cannot be removed.
	containers, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: harness})
	if err != nil {
		return fmt.Errorf("sweep: list containers: %w", err)
	}
	var nContainers int
	for _, c := range containers {
		if !stale(c.Labels) {
			continue
		}
		err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{
			Force: true, RemoveVolumes: true,
		})
		if !gone(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", shortID(c.ID), err))
			continue
		}
		nContainers++
	}

	networks, err := cli.NetworkList(ctx, network.ListOptions{Filters: harness})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("sweep: list networks: %w", err))...)
	}
	var nNetworks int
	for _, n := range networks {
		if !stale(n.Labels) {
			continue
		}
		if err := cli.NetworkRemove(ctx, n.ID); !gone(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
			continue
		}
		nNetworks++
	}

	volumes, err := cli.VolumeList(ctx, volume.ListOptions{Filters: harness})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("sweep: list volumes: %w", err))...)
	}
	var nVolumes int
	for _, v := range volumes.Volumes {
		if !stale(v.Labels) {
			continue
		}
		if err := cli.VolumeRemove(ctx, v.Name, true); !gone(err) {
			errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
			continue
		}
		nVolumes++
	}

	// Every harness image, with WithAllRuns. Otherwise only the untagged ones of dead
	// runs: two packages that build the same image at once both build it, the tag goes
	// to one, and the other is left with none.
	var nImages int
	imageFilter := harness.Clone()
	if !cfg.all {
		imageFilter.Add("dangling", "true")
	}
	images, err := cli.ImageList(ctx, image.ListOptions{Filters: imageFilter})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("sweep: list images: %w", err))...)
	}
	for _, img := range images {
		if !stale(img.Labels) {
			continue
		}
		_, err := cli.ImageRemove(ctx, img.ID, image.RemoveOptions{
			Force: cfg.all, PruneChildren: true,
		})
		if cerrdefs.IsConflict(err) {
			continue // a live run's container still uses it; a later sweep takes it
		}
		if !gone(err) {
			errs = append(errs, fmt.Errorf("remove image %s: %w", shortID(img.ID), err))
			continue
		}
		nImages++
	}

	// A routine sweep that found nothing says nothing; a clean-up asked for says what
	// it did even then.
	level := slog.LevelInfo
	if nContainers+nNetworks+nVolumes+nImages == 0 && !cfg.all {
		level = slog.LevelDebug
	}
	cfg.logger.Log(ctx, level, "swept", "containers", nContainers, "networks", nNetworks,
		"volumes", nVolumes, "images", nImages, "all", cfg.all)
	if len(errs) > 0 {
		return fmt.Errorf("sweep: %w", errors.Join(errs...))
	}
	return nil
}
