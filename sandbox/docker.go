package sandbox

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/docker/docker/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// ryukEnv is read once, by testcontainers' first call. Ryuk is the testcontainers reaper; its
// image would have to be pulled from a registry, which the harness never does, so the
// harness cleans up by label instead (see Sweep).
const ryukEnv = "TESTCONTAINERS_RYUK_DISABLED"

func init() {
	configureTestcontainers()
}

var configureOnce sync.Once

// configureTestcontainers must run before anything in testcontainers reads its configuration.
// The package init does it; every entry point calls it again in case an importer's init
// reached testcontainers first. An explicit value in the environment wins, for machines where
// Ryuk can run.
func configureTestcontainers() {
	configureOnce.Do(func() {
		if _, set := os.LookupEnv(ryukEnv); !set {
			_ = os.Setenv(ryukEnv, "true")
		}
		// testcontainers prints to stderr under -v; its lines go to slog at debug level, so
		// a passing run stays quiet.
		tclog.SetDefault(tcLogger{logger: slog.Default()})
	})
}

// tcLogger passes testcontainers' printf-style lines to slog.
type tcLogger struct{ logger *slog.Logger }

// Printf drops the pictograms testcontainers starts its lines with, to keep log lines plain.
func (l tcLogger) Printf(format string, v ...any) {
	msg := strings.TrimLeftFunc(fmt.Sprintf(format, v...), func(r rune) bool {
		return r > unicode.MaxASCII || unicode.IsSpace(r)
	})
	l.logger.Debug(strings.TrimSpace(msg), "from", "testcontainers")
}

var (
	dockerOnce sync.Once
	dockerCli  *client.Client
	dockerErr  error
)

// dockerClient returns the process's Docker client. testcontainers resolves the daemon the
// same way for its own calls (DOCKER_HOST, docker context, ~/.testcontainers.properties), so
// both talk to one daemon. The client negotiates the API version down to the engine's.
func dockerClient(ctx context.Context) (*client.Client, error) {
	configureTestcontainers()
	dockerOnce.Do(func() {
		// testcontainers panics when it finds no Docker host at all; on such a machine
		// Available must say false, not crash the test binary.
		defer func() {
			if r := recover(); r != nil {
				dockerErr = fmt.Errorf("docker client: no docker host: %v", r)
			}
		}()
		tc, err := testcontainers.NewDockerClientWithOpts(ctx)
		if err != nil {
			dockerErr = fmt.Errorf("docker client: %w", err)
			return
		}
		dockerCli = tc.Client
	})
	return dockerCli, dockerErr
}

// Available reports whether a Docker daemon answers, within a few seconds. It is what
// HARNESS_BACKEND=auto decides on.
func Available(ctx context.Context) bool {
	return availableErr(ctx) == nil
}

// availableErr says why Docker is not available, for a test's skip message.
func availableErr(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()

	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	if _, err := cli.Ping(ctx); err != nil {
		return fmt.Errorf("docker ping: %w", err)
	}
	return nil
}
