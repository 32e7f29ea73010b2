package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/fixtures"
	"github.com/agentkeys/harness/protocol/evm"
	"github.com/agentkeys/harness/protocol/wire"
	"github.com/agentkeys/harness/sandbox"
)

// secret returns a fresh value that no other test could have written.
func secret(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func TestMemoryRoundtrip(t *testing.T) {
	t.Parallel()
	alice := stack.NewAgent(t, "alice")
	note := secret("remember the milk")

	alice.MustRun(t, "memory", "put", "--namespace", "notes", "--content", note)
	out := alice.MustRun(t, "memory", "get", "--namespace", "notes")

	assert.Equal(t, note, out.Stdout)
}

func TestCredRoundtrip(t *testing.T) {
	t.Parallel()
	alice := stack.NewAgent(t, "alice")
	key := secret("sk-or-v1")

	// The credential goes in on stdin, so it is never on a command line.
	res, err := alice.Run(t.Context(), []string{"cred", "store", "--service", "openrouter",
		"--stdin"}, sandbox.WithStdinBytes([]byte(key)))
	require.NoError(t, err)
	require.Equal(t, 0, res.ExitCode, "cred store: %s", res.Stderr)
	assert.Contains(t, res.Stdout,
		`"s3_key":"bots/`+alice.Omni.String()+`/credentials/openrouter.enc"`)

	out := alice.MustRun(t, "cred", "fetch", "--service", "openrouter")
	assert.Equal(t, key, out.Stdout)

	list := alice.MustRun(t, "cred", "list")
	assert.Equal(t, "openrouter\n", list.Stdout)

	raw, err := stack.RootObject(t.Context(), stack.Host.VaultBucket,
		"bots/"+alice.Omni.String()+"/credentials/openrouter.enc")
	require.NoError(t, err, "the credential is under the agent's own prefix")
	assert.Len(t, raw, len(key)+29)
}

// TestDelegatedMemoryRoundtrip: the master mints the cap (operator = master, actor =
// agent) and plants it in the agent's sandbox; the agent's own STS credentials do the
// write, so the object lands under the agent's prefix and nowhere else.
func TestDelegatedMemoryRoundtrip(t *testing.T) {
	t.Parallel()
	master := stack.NewMaster(t)
	alice := master.NewAgent(t, "alice", fixtures.WithScope(agent.MemoryService("plans")))
	note := secret("delegated")
	ctx := t.Context()

	putCap, err := master.MintFor(ctx, wire.RouteCapMemoryPut, alice,
		agent.MemoryService("plans"))
	require.NoError(t, err)
	getCap, err := master.MintFor(ctx, wire.RouteCapMemoryGet, alice,
		agent.MemoryService("plans"))
	require.NoError(t, err)
	payload, err := agent.PayloadOf(putCap)
	require.NoError(t, err)
	require.Equal(t, master.Omni.Prefixed(), payload.Operator)
	require.Equal(t, alice.Omni.Prefixed(), payload.Actor)

	plant(t, alice.Sandbox, "put.cap", putCap)
	plant(t, alice.Sandbox, "get.cap", getCap)
	home := alice.Sandbox.Home()

	alice.MustRun(t, "memory", "put", "--namespace", "plans", "--content", note,
		"--cap-file", home+"/put.cap")
	out := alice.MustRun(t, "memory", "get", "--namespace", "plans",
		"--cap-file", home+"/get.cap")
	assert.Equal(t, note, out.Stdout)

	keys, err := stack.RootList(ctx, stack.Host.MemoryBucket, "bots/"+alice.Omni.String()+"/")
	require.NoError(t, err)
	assert.Equal(t, []string{"bots/" + alice.Omni.String() + "/memory/memory:plans.enc"}, keys)
	masterKeys, err := stack.RootList(ctx, stack.Host.MemoryBucket,
		"bots/"+master.Omni.String()+"/")
	require.NoError(t, err)
	assert.Empty(t, masterKeys, "nothing is written under the master's prefix")
}

// plant copies data into the sandbox's HOME as name.
func plant(t *testing.T, sb sandbox.Sandbox, name string, data []byte) {
	t.Helper()
	f := t.TempDir() + "/" + name
	require.NoError(t, writeFile(f, data))
	require.NoError(t, sb.CopyFileTo(t.Context(), f, sb.Home()+"/"+name, 0o600))
}

func TestObjectsAtRestAreCiphertext(t *testing.T) {
	t.Parallel()
	alice := stack.NewAgent(t, "alice")
	note := secret("plaintext that must never reach s3")
	key := secret("sk-ant")
	ctx := t.Context()

	alice.MustRun(t, "memory", "put", "--namespace", "diary", "--content", note)
	alice.MustRun(t, "cred", "store", "--service", "anthropic", "--content", key)

	cases := []struct {
		name, bucket, key, plaintext string
	}{
		{"memory", stack.Host.MemoryBucket,
			"bots/" + alice.Omni.String() + "/memory/memory:diary.enc", note},
		{"credentials", stack.Host.VaultBucket,
			"bots/" + alice.Omni.String() + "/credentials/anthropic.enc", key},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := stack.RootObject(ctx, tc.bucket, tc.key)
			require.NoError(t, err)
			require.NotEmpty(t, raw)
			assert.Equal(t, byte(0x02), raw[0], "envelope v2")
			assert.Len(t, raw, len(tc.plaintext)+29, "0x02, 12-byte nonce, 16-byte tag")
			assert.False(t, bytes.Contains(raw, []byte(tc.plaintext)), "plaintext at rest")
			assert.False(t, bytes.Contains(raw, []byte(tc.plaintext[:16])),
				"a fragment of the plaintext at rest")
		})
	}
}

// TestDeviceKeyStaysInSandbox shows from inside the sandbox that the agent's key file
// exists with mode 0600, and that the harness's view of the agent carries no private key.
//
// The mode comes from the agent's own whoami, so the test first checks that word against
// modes the harness set itself, through the Sandbox, on throwaway keys of its own: the
// agent must report each as it is and refuse one the group or others can read. That it
// loads the real key at all shows the key is owner-only. That the file exists is the
// kernel's word: a second keygen cannot create it. Last, the backend's own stat of the
// path, which reads no contents, confirms the mode on either backend: the host's lstat of
// the sandbox directory, or the engine's stat of the path in the container.
func TestDeviceKeyStaysInSandbox(t *testing.T) {
	t.Parallel()
	alice := stack.NewAgent(t, "alice")
	ctx := t.Context()
	keyFile := alice.Sandbox.Home() + "/" + agent.DefaultKeyFile

	t.Run("the agent reports an owner-only key", func(t *testing.T) {
		who, res := whoami(t, alice)
		require.Equal(t, 0, res.ExitCode, res.Stderr)
		assert.Equal(t, "0600", who["key_file_mode"], "mode seen by the agent's own stat")
		assert.Equal(t, keyFile, who["key_file"])
		assert.Equal(t, alice.Address, who["address"])
		assert.Equal(t, alice.Omni.Prefixed(), who["omni"])
	})

	t.Run("the report follows modes the harness set", func(t *testing.T) {
		throwaway, err := evm.GenerateKey()
		require.NoError(t, err)
		host := t.TempDir() + "/throwaway.key"
		require.NoError(t, writeFile(host, []byte(throwaway.Hex()+"\n")))
		cases := []struct {
			name   string
			mode   os.FileMode
			report string // empty: refused
		}{
			{"owner read-write", 0o600, "0600"},
			{"owner read-only", 0o400, "0400"},
			{"group-readable", 0o640, ""},
			{"world-readable", 0o644, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				planted := fmt.Sprintf("%s/throwaway-%04o.key", alice.Sandbox.Home(), tc.mode)
				require.NoError(t, alice.Sandbox.CopyFileTo(ctx, host, planted, tc.mode))

				who, res := whoami(t, alice, sandbox.WithEnv(agent.EnvKeyFile+"="+planted))

				if tc.report == "" {
					assert.Equal(t, agentFailed, res.ExitCode, "a key others can read")
					assert.Contains(t, res.Stderr, "want it readable by its owner only")
					return
				}
				require.Equal(t, 0, res.ExitCode, res.Stderr)
				assert.Equal(t, tc.report, who["key_file_mode"])
				assert.Equal(t, throwaway.Address(), who["address"])
			})
		}
	})

	t.Run("a second keygen finds the file", func(t *testing.T) {
		res, err := alice.Run(ctx, []string{"keygen"})
		require.NoError(t, err)
		assert.Equal(t, agentFailed, res.ExitCode)
		assert.Contains(t, res.Stderr, "file exists")

		// The control: keygen at a path where no key is.
		fresh := alice.Sandbox.Home() + "/fresh.key"
		res, err = alice.Run(ctx, []string{"keygen"},
			sandbox.WithEnv(agent.EnvKeyFile+"="+fresh))
		require.NoError(t, err)
		assert.Equal(t, 0, res.ExitCode, res.Stderr)
		assert.Contains(t, res.Stdout, `"key_file":"`+fresh+`"`)

		who, res := whoami(t, alice)
		require.Equal(t, 0, res.ExitCode, res.Stderr)
		assert.Equal(t, alice.Address, who["address"], "the agent's key is unchanged")
	})

	t.Run("the backend sees an owner-only file", func(t *testing.T) {
		// The host's lstat on the process backend, the engine's stat of the path on
		// docker: neither the agent's word nor the key's contents.
		mode, err := alice.Sandbox.FileMode(ctx, keyFile)
		require.NoError(t, err)
		assert.True(t, mode.IsRegular(), "a regular file, not a link: %s", mode)
		assert.Equal(t, os.FileMode(0o600), mode.Perm())
	})

	// Every 32-byte hex value the harness holds about the agent is a public one: the
	// device key hash. A private key field would show up here.
	v := reflect.ValueOf(*alice)
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() != reflect.String {
			continue
		}
		if s := f.String(); hex64.MatchString(s) {
			assert.Equal(t, alice.DeviceKeyHash, s, "field %s", v.Type().Field(i).Name)
		}
	}
}

// agentFailed is sandbox-agent's exit status for a failure that is not the system's
// refusal, such as a key file it will not load.
const agentFailed = 3

// whoami runs the agent's whoami in its sandbox and decodes what it printed, if it
// succeeded.
func whoami(t *testing.T, a *fixtures.Agent, opts ...sandbox.ExecOption) (map[string]string,
	sandbox.ExecResult) {
	t.Helper()
	res, err := a.Run(t.Context(), []string{"whoami"}, opts...)
	require.NoError(t, err)
	who := map[string]string{}
	if res.ExitCode == 0 {
		require.NoError(t, json.Unmarshal([]byte(res.Stdout), &who), res.Stdout)
	}
	return who, res
}

var hex64 = regexp.MustCompile(`^(0x)?[0-9a-f]{64}$`)
