package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/agent"
)

// paired leaves dir with a key and a session as pairing would, and the endpoints set to
// a port nothing answers on.
func paired(t *testing.T, dir string, s agent.Session) {
	t.Helper()
	code, _, stderr := runIn(t, dir, "keygen")
	require.Equal(t, exitOK, code, stderr)
	require.NoError(t, agent.SaveJSON(filepath.Join(dir, agent.DefaultSessionFile), s))
	for _, env := range []string{agent.EnvBroker, agent.EnvSTS, agent.EnvCredWorker,
		agent.EnvMemoryWorker} {
		t.Setenv(env, "http://127.0.0.1:1")
	}
}

func TestProvisionNeedsTheVendor(t *testing.T) {
	dir := t.TempDir()
	paired(t, dir, agent.Session{JWT: "j", Omni: strings.Repeat("ab", 32),
		DerivationPath: "alice/0", Email: "alice-abababab@agents.test"})

	code, out, stderr := runInPaired(t, "cred", "provision", "--service", "modelapi")

	assert.Equal(t, exitFailed, code)
	assert.Empty(t, out)
	assert.Contains(t, stderr, agent.EnvVendor+" is not set")
	assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
}

func TestWhoamiShowsTheEmail(t *testing.T) {
	tests := []struct {
		name    string
		session agent.Session
		want    string
	}{
		{"stored at pairing", agent.Session{Omni: strings.Repeat("cd", 32),
			DerivationPath: "bob/0", Email: "bob-given@agents.test"}, "bob-given@agents.test"},
		{"derived for an older session file", agent.Session{Omni: strings.Repeat("cd", 32),
			DerivationPath: "bob/0"}, "bob-cdcdcdcd@agents.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			paired(t, t.TempDir(), tt.session)

			code, out, stderr := runInPaired(t, "whoami")

			require.Equal(t, exitOK, code, stderr)
			var who map[string]string
			require.NoError(t, json.Unmarshal([]byte(out), &who))
			assert.Equal(t, tt.want, who["email"])
		})
	}
}

// runInPaired runs the CLI in process with the environment paired set up.
func runInPaired(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	code := run(args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}
