package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/fixtures"
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

// TestDeviceKeyStaysInSandbox shows from inside the sandbox that the key file exists
// with mode 0600, and that the harness's view of the agent carries no private key.
func TestDeviceKeyStaysInSandbox(t *testing.T) {
	t.Parallel()
	alice := stack.NewAgent(t, "alice")

	out := alice.MustRun(t, "whoami")
	var who map[string]string
	require.NoError(t, json.Unmarshal([]byte(out.Stdout), &who))
	assert.Equal(t, "0600", who["key_file_mode"], "mode seen by the agent's own stat")
	assert.Equal(t, alice.Sandbox.Home()+"/.agentkeys/agent-device.key", who["key_file"])
	assert.Equal(t, alice.Address, who["address"])
	assert.Equal(t, alice.Omni.Prefixed(), who["omni"])

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

var hex64 = regexp.MustCompile(`^(0x)?[0-9a-f]{64}$`)
