package main_test

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/fixtures/minioserver"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// TestServesFourMocksAndStopsOnSIGTERM runs the real binary: one ready line with four
// URLs that answer /healthz, and a clean exit on SIGTERM.
func TestServesFourMocksAndStopsOnSIGTERM(t *testing.T) {
	m := minioserver.StartTB(t)
	bin := filepath.Join(t.TempDir(), "mockstack")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	cmd := exec.Command(bin,
		"-broker-addr", freeAddr(t), "-sts-addr", freeAddr(t),
		"-cred-addr", freeAddr(t), "-memory-addr", freeAddr(t), "-minio", m.Endpoint)
	cmd.Env = append(os.Environ(),
		"MOCKSTACK_MINIO_ROOT_USER="+m.RootUser,
		"MOCKSTACK_MINIO_ROOT_PASSWORD="+m.RootPassword,
		"MOCKSTACK_ADMIN_TOKEN=test-admin-token")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	ready := regexp.MustCompile(`^mockstack ready broker=(\S+) sts=(\S+) ` +
		`cred-worker=(\S+) memory-worker=(\S+)\n$`)
	urls := ready.FindStringSubmatch(line)
	require.NotNil(t, urls, "ready line: %q", line)

	for _, u := range urls[1:] {
		resp, err := http.Get(u + "/healthz")
		require.NoError(t, err, u)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, u)
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		assert.NoError(t, err, "exit status after SIGTERM")
	case <-time.After(10 * time.Second):
		t.Fatal("mockstack did not stop within 10s of SIGTERM")
	}
}

func TestRefusesToStartWithoutSecrets(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "mockstack")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	cmd := exec.Command(bin, "-minio", "http://127.0.0.1:1")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err = cmd.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "MOCKSTACK_MINIO_ROOT_USER")
}
