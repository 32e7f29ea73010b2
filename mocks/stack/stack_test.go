package stack_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/fixtures/minioserver"
	"github.com/agentkeys/harness/mocks/stack"
	"github.com/agentkeys/harness/protocol/evm"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/refusal"
	"github.com/agentkeys/harness/protocol/wire"
)

// startStack starts a MinIO with opts and the four mocks over it, for one test or
// benchmark.
func startStack(tb testing.TB, opts ...minioserver.Option) (*minioserver.Server,
	*stack.Stack) {
	tb.Helper()
	m := minioserver.StartTB(tb, opts...)
	s, err := stack.Start(tb.Context(), stack.Config{
		MinIOEndpoint: m.Endpoint, RootUser: m.RootUser, RootPassword: m.RootPassword,
		VaultBucket: m.VaultBucket, MemoryBucket: m.MemoryBucket,
	})
	if s != nil {
		tb.Cleanup(func() {
			if err := s.Close(); err != nil {
				tb.Errorf("close stack: %v", err)
			}
		})
	}
	require.NoError(tb, err)
	return m, s
}

// newMaster signs a fresh wallet in and registers its own device on the chain, so it
// can mint master-self caps.
func newMaster(tb testing.TB, ctx context.Context, m *minioserver.Server,
	s *stack.Stack) *agent.Client {
	tb.Helper()
	key, err := evm.GenerateKey()
	require.NoError(tb, err)
	b := &agent.Broker{URL: s.BrokerURL}
	session, err := b.WalletSignIn(ctx, key)
	require.NoError(tb, err)
	o := omni.Master(key.Address())
	require.NoError(tb, s.Admin().Register(ctx, key.DeviceKeyHash(), o, o))

	return &agent.Client{
		Endpoints: agent.Endpoints{
			Broker: s.BrokerURL, STS: s.STSURL, CredWorker: s.CredURL,
			MemoryWorker: s.MemoryURL, S3: m.Endpoint,
			VaultRoleARN: wire.DefaultVaultRoleARN, MemoryRoleARN: wire.DefaultMemoryRoleARN,
			VaultBucket: m.VaultBucket, MemoryBucket: m.MemoryBucket,
		},
		Key: key, Session: session, Omni: o,
	}
}

// TestWholeChainFromTheHost walks wallet sign-in, session, cap-mint, OIDC JWT, the STS
// stub (through aws-sdk-go-v2's own STS client) and both workers, then reads the raw
// objects with root credentials to show that only ciphertext reached MinIO.
func TestWholeChainFromTheHost(t *testing.T) {
	ctx := t.Context()
	m, s := startStack(t)
	c := newMaster(t, ctx, m, s)
	root, err := m.Client()
	require.NoError(t, err)

	cases := []struct {
		name   string
		bucket string
		key    string
		store  func([]byte) (string, error)
		fetch  func() ([]byte, error)
	}{
		{
			name: "credentials", bucket: m.VaultBucket,
			key: "bots/" + c.Omni.String() + "/credentials/openrouter.enc",
			store: func(p []byte) (string, error) {
				ans, err := c.CredStore(ctx, "openrouter", p)
				return ans.S3Key, err
			},
			fetch: func() ([]byte, error) { return c.CredFetch(ctx, "openrouter") },
		},
		{
			name: "memory", bucket: m.MemoryBucket,
			key: "bots/" + c.Omni.String() + "/memory/memory:notes.enc",
			store: func(p []byte) (string, error) {
				ans, err := c.MemoryPut(ctx, "notes", p, nil)
				return ans.S3Key, err
			},
			fetch: func() ([]byte, error) { return c.MemoryGet(ctx, "notes", nil) },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plaintext := []byte("secret for " + tc.name + ": sk-\x00\xff<&>")

			key, err := tc.store(plaintext)
			require.NoError(t, err)
			assert.Equal(t, tc.key, key)

			got, err := tc.fetch()
			require.NoError(t, err)
			assert.Equal(t, plaintext, got, "plaintext back byte for byte")

			obj, err := root.GetObject(ctx, tc.bucket, tc.key, minio.GetObjectOptions{})
			require.NoError(t, err)
			raw, err := io.ReadAll(obj)
			require.NoError(t, err)
			require.NotEmpty(t, raw)
			assert.Equal(t, byte(0x02), raw[0], "envelope version")
			assert.Len(t, raw, len(plaintext)+29)
			assert.False(t, bytes.Contains(raw, plaintext), "raw object holds the plaintext")
		})
	}

	services, err := c.CredList(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"openrouter"}, services)
}

// TestServiceWithControlCharacter follows a service name carrying a control character
// through the whole chain. MinIO refuses a key with a NUL, so unchecked it came back
// from a worker as a 502; the broker refuses it at mint as the caller's mistake, and
// nothing reaches MinIO. A plain service on the same path is the control.
func TestServiceWithControlCharacter(t *testing.T) {
	ctx := t.Context()
	m, s := startStack(t)
	c := newMaster(t, ctx, m, s)

	_, err := c.CredStore(ctx, "openrouter", []byte("control"))
	require.NoError(t, err, "control: cred store")
	_, err = c.MemoryPut(ctx, "notes", []byte("control"), nil)
	require.NoError(t, err, "control: memory put")
	before := rootKeys(t, m)

	tests := []struct {
		name    string
		service string
	}{
		{"NUL", "open\x00router"},
		{"newline", "open\nrouter"},
		{"trailing newline", "openrouter\n"},
		{"DEL", "open\x7frouter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := map[string]error{
				"cred store": errOf(c.CredStore(ctx, tc.service, []byte("x"))),
				"cred fetch": errOf(c.CredFetch(ctx, tc.service)),
				"memory put": errOf(c.MemoryPut(ctx, tc.service, []byte("x"), nil)),
				"memory get": errOf(c.MemoryGet(ctx, tc.service, nil)),
			}
			for name, err := range calls {
				var r *refusal.Refusal
				require.ErrorAs(t, err, &r, name)
				assert.Equal(t, http.StatusBadRequest, r.Status, "%s: %v", name, r)
				assert.Equal(t, wire.ReasonInvalidInput, r.Reason, "%s: %v", name, r)
			}
		})
	}
	assert.Equal(t, before, rootKeys(t, m), "a refused call wrote to MinIO")
}

func errOf[T any](_ T, err error) error { return err }

// rootKeys lists both buckets with root credentials.
func rootKeys(t *testing.T, m *minioserver.Server) []string {
	t.Helper()
	keys, err := m.ListBoth(t.Context())
	require.NoError(t, err)
	return keys
}
