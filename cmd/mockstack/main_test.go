package main_test

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/fixtures/mailcatcher"
	"github.com/agentkeys/harness/fixtures/minioserver"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// TestServesFourMocksAndStopsOnSIGTERM runs the real binary: one ready line with the four
// mocks' URLs and the vendor's, all answering /healthz, and a clean exit on SIGTERM.
func TestServesFourMocksAndStopsOnSIGTERM(t *testing.T) {
	m := minioserver.StartTB(t)
	bin := filepath.Join(t.TempDir(), "mockstack")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	cmd := exec.Command(bin,
		"-broker-addr", freeAddr(t), "-sts-addr", freeAddr(t),
		"-cred-addr", freeAddr(t), "-memory-addr", freeAddr(t), "-vendor-addr", freeAddr(t),
		"-minio", m.Endpoint)
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
		`cred-worker=(\S+) memory-worker=(\S+) vendor=(\S+)\n$`)
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

// TestMailFlagsTurnOnEmail gives the binary a real mailpit: the vendor's sign-up mails a
// link over SMTP whose base is the vendor's public URL.
func TestMailFlagsTurnOnEmail(t *testing.T) {
	m := minioserver.StartTB(t)
	mc := mailcatcher.StartTB(t)
	bin := filepath.Join(t.TempDir(), "mockstack")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	cmd := exec.Command(bin,
		"-broker-addr", freeAddr(t), "-sts-addr", freeAddr(t),
		"-cred-addr", freeAddr(t), "-memory-addr", freeAddr(t), "-vendor-addr", freeAddr(t),
		"-minio", m.Endpoint, "-vendor-public-url", "http://vendor:8084")
	cmd.Env = append(os.Environ(),
		"MOCKSTACK_MINIO_ROOT_USER="+m.RootUser,
		"MOCKSTACK_MINIO_ROOT_PASSWORD="+m.RootPassword,
		"MOCKSTACK_ADMIN_TOKEN=test-admin-token",
		"MOCKSTACK_SMTP_ADDR="+mc.SMTPAddr,
		"MOCKSTACK_MAIL_API_URL="+mc.APIURL)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	vendorURL := regexp.MustCompile(` vendor=(\S+)\n$`).FindStringSubmatch(line)
	require.NotNil(t, vendorURL, "ready line: %q", line)

	resp, err := http.Post(vendorURL[1]+"/signup", "application/json",
		strings.NewReader(`{"email":"alice-0123abcd@agents.test"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)

	inbox, err := mc.Client().MessagesTo(t.Context(), "alice-0123abcd@agents.test")
	require.NoError(t, err)
	require.Len(t, inbox, 1)
	msg, err := mc.Client().Message(t.Context(), inbox[0].ID)
	require.NoError(t, err)
	assert.Contains(t, msg.Text, "http://vendor:8084/verify/")
}
