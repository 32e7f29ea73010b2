package sandbox_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/sandbox"
)

// testRepository keeps the tests' images apart from the harness's own.
const testRepository = "agentkeys-harness/sandbox-test"

// logWriter hands each log line to t.Log, so a passing test stays quiet and a failing one
// shows what the sandbox did.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func moduleRoot(t testing.TB) string {
	t.Helper()
	root, err := sandbox.FindModuleRoot(".")
	require.NoError(t, err)
	return root
}

var (
	binariesOnce sync.Once
	binaries     map[string]string
	binariesErr  error
)

// testBinaries builds sandbox-init and the probe test program once per test binary.
func testBinaries(t testing.TB) map[string]string {
	t.Helper()
	binariesOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		start := time.Now()
		binaries, binariesErr = sandbox.BuildBinaries(ctx, moduleRoot(t), "",
			"sandbox-init", "./sandbox/testdata/probe")
		t.Logf("binaries built in %s", time.Since(start).Round(time.Millisecond))
	})
	require.NoError(t, binariesErr, "build test binaries")
	return binaries
}

// requireDocker skips a test when no Docker daemon answers, and says why.
func requireDocker(t testing.TB) {
	t.Helper()
	if err := sandbox.AvailableErr(context.Background()); err != nil {
		t.Skipf("docker is not available, container tests skipped: %v", err)
	}
}

var (
	imageOnce sync.Once
	imageTag  string
	imageErr  error
)

// testImage builds a sandbox image whose programs are sandbox-init and probe.
func testImage(t testing.TB) string {
	t.Helper()
	requireDocker(t)
	bins := testBinaries(t)
	imageOnce.Do(func() {
		spec, err := sandbox.SandboxImageSpec(bins)
		if err != nil {
			imageErr = err
			return
		}
		spec.Repository = testRepository
		spec.Logger = testLogger(t)
		imageTag, imageErr = sandbox.BuildImage(context.Background(), spec)
	})
	require.NoError(t, imageErr, "build test image")
	return imageTag
}

func newProcess(t testing.TB, opts ...sandbox.Option) sandbox.Sandbox {
	t.Helper()
	opts = append([]sandbox.Option{
		sandbox.WithRoot(t.TempDir()),
		sandbox.WithBinaries(testBinaries(t)),
		sandbox.WithLogger(testLogger(t)),
	}, opts...)
	sb, err := sandbox.NewProcess(context.Background(), opts...)
	if sb != nil {
		t.Cleanup(func() { closeSandbox(t, sb) })
	}
	require.NoError(t, err)
	return sb
}

func newContainer(t testing.TB, opts ...sandbox.Option) *sandbox.Container {
	t.Helper()
	opts = append([]sandbox.Option{
		sandbox.WithImage(testImage(t)),
		sandbox.WithLogger(testLogger(t)),
	}, opts...)
	start := time.Now()
	sb, err := sandbox.NewContainer(context.Background(), opts...)
	if sb != nil {
		t.Cleanup(func() { closeSandbox(t, sb) })
	}
	require.NoError(t, err)
	t.Logf("container started in %s", time.Since(start).Round(time.Millisecond))
	return sb
}

// closeSandbox closes sb and, when the test failed, attaches the sandbox's logs.
func closeSandbox(t testing.TB, sb sandbox.Sandbox) {
	t.Helper()
	ctx := context.Background()
	if t.Failed() {
		logs, err := sb.Logs(ctx)
		t.Logf("sandbox logs (err %v):\n%s", err, logs)
	}
	if err := sb.Close(ctx); err != nil {
		t.Errorf("close sandbox: %v", err)
	}
}

// writeHostFile makes a host file to copy into a sandbox.
func writeHostFile(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}
