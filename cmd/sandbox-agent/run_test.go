package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runIn runs the CLI in process with HOME set to dir and no AGENTKEYS_* variables.
func runIn(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("HOME", dir)
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AGENTKEYS_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestKeygenMakesAnOwnerOnlyKeyOnce(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := runIn(t, dir, "keygen")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, out, `"device_key_hash":"0x`)

	key := filepath.Join(dir, ".agentkeys", "agent-device.key")
	fi, err := os.Stat(key)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	di, err := os.Stat(filepath.Dir(key))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), di.Mode().Perm())
	raw, err := os.ReadFile(key)
	require.NoError(t, err)
	assert.NotContains(t, out, strings.TrimSpace(string(raw)), "the key is never printed")

	code, _, stderr = runIn(t, dir, "keygen")
	assert.Equal(t, exitFailed, code, "a second keygen must not replace the key")
	again, err := os.ReadFile(key)
	require.NoError(t, err)
	assert.Equal(t, raw, again)
	assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line on stderr: %q", stderr)
}

func TestRefusesAKeyOthersCanRead(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runIn(t, dir, "keygen")
	require.Equal(t, exitOK, code, stderr)
	key := filepath.Join(dir, ".agentkeys", "agent-device.key")

	require.NoError(t, os.Chmod(key, 0o644))
	code, _, stderr = runIn(t, dir, "whoami")
	assert.Equal(t, exitFailed, code)
	assert.Contains(t, stderr, "readable by its owner only")

	require.NoError(t, os.Chmod(key, 0o600))
	link := filepath.Join(dir, "link.key")
	require.NoError(t, os.Symlink(key, link))
	t.Setenv("AGENTKEYS_DEVICE_KEY_FILE", link)
	var out, errOut bytes.Buffer
	code = run([]string{"whoami"}, strings.NewReader(""), &out, &errOut)
	assert.Equal(t, exitFailed, code)
	assert.Contains(t, errOut.String(), "symlink")
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	cases := map[string][]string{
		"no command":        {},
		"unknown command":   {"fly"},
		"no subcommand":     {"memory"},
		"unknown sub":       {"cred", "burn"},
		"missing namespace": {"memory", "put", "--content", "x"},
		"missing content":   {"memory", "put", "--namespace", "n"},
		"both contents":     {"cred", "store", "--service", "s", "--content", "x", "--stdin"},
		"unknown flag":      {"cred", "fetch", "--service", "s", "--loud"},
		"stray argument":    {"whoami", "extra"},
		"bad route":         {"cap", "mint", "--route", "admin", "--service", "s"},
		"no service":        {"cred", "provision"},
		"mail argument":     {"mail", "list", "extra"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			code, out, stderr := runIn(t, dir, args...)
			assert.Equal(t, exitUsage, code, stderr)
			assert.Empty(t, out)
			assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
		})
	}
}

func TestNotPairedSaysWhatToDo(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runIn(t, dir, "keygen")
	require.Equal(t, exitOK, code, stderr)
	t.Setenv("AGENTKEYS_BROKER_URL", "http://127.0.0.1:1")
	t.Setenv("AGENTKEYS_STS_URL", "http://127.0.0.1:1")
	t.Setenv("AGENTKEYS_CRED_WORKER_URL", "http://127.0.0.1:1")
	t.Setenv("AGENTKEYS_MEMORY_WORKER_URL", "http://127.0.0.1:1")
	var out, errOut bytes.Buffer
	code = run([]string{"cred", "list"}, strings.NewReader(""), &out, &errOut)
	assert.Equal(t, exitFailed, code)
	assert.Contains(t, errOut.String(), "pair request and pair poll")
}
