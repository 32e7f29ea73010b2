package stack_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/fixtures/minioserver"
	"github.com/agentkeys/harness/mocks/credworker"
	"github.com/agentkeys/harness/mocks/stack"
	"github.com/agentkeys/harness/protocol/wire"
)

// These benchmarks run in one go so that what the mocks cost can be read beside the
// floors it is judged against, measured on the same machine at the same moment: MinIO's
// own start-up, and a bare put and get with root credentials. BENCHMARKS.md at the
// repository root holds the medians, the targets and the command that reproduces them.

// benchObject is the size of every stored object: the size of a typical credential.
const benchObject = 1024

// benchMinIO is how every benchmark runs MinIO: quiet, since a benchmark prints all it
// logs, and with its data in memory, since on a disk each write would time the disk's
// sync rather than MinIO and the mocks.
func benchMinIO(opts ...minioserver.Option) []minioserver.Option {
	return append([]minioserver.Option{minioserver.WithDataInMemory(),
		minioserver.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
}

func randomObject(b *testing.B) []byte {
	p := make([]byte, benchObject)
	_, err := rand.Read(p)
	require.NoError(b, err)
	return p
}

// BenchmarkFloorMinIOStart is exec to both buckets made: what every MinIO costs a run
// before any mock starts. Close is left out of the time; healthy-ns/op splits out the
// wait for the cluster health probe, the part that is MinIO's alone.
func BenchmarkFloorMinIOStart(b *testing.B) {
	// Resolving, or on a fresh machine building, the binary is no part of a start.
	bin, err := minioserver.Binary(b.Context(), nil)
	require.NoError(b, err)

	var healthy time.Duration
	for b.Loop() {
		m, err := minioserver.Start(b.Context(), benchMinIO(minioserver.WithBinary(bin))...)
		require.NoError(b, err)
		b.StopTimer()
		healthy += m.HealthTime
		require.NoError(b, m.Close())
		b.StartTimer()
	}
	b.ReportMetric(float64(healthy.Nanoseconds())/float64(b.N), "healthy-ns/op")
}

// BenchmarkFloorBarePutGet1KiB is the least a stored and fetched object can cost: one
// PutObject and one GetObject read to the end, as root with minio-go, with no worker,
// envelope or session policy in between.
func BenchmarkFloorBarePutGet1KiB(b *testing.B) {
	m := minioserver.StartTB(b, benchMinIO()...)
	root, err := m.Client()
	require.NoError(b, err)
	obj := randomObject(b)
	ctx := b.Context()
	const key = "bench/floor.bin"

	for b.Loop() {
		_, err := root.PutObject(ctx, m.VaultBucket, key, bytes.NewReader(obj),
			int64(len(obj)), minio.PutObjectOptions{})
		require.NoError(b, err)
		r, err := root.GetObject(ctx, m.VaultBucket, key, minio.GetObjectOptions{})
		require.NoError(b, err)
		got, err := io.ReadAll(r)
		r.Close()
		require.NoError(b, err)
		require.Equal(b, obj, got)
	}
}

// BenchmarkSDKPutGet1KiB is the bare put and get again, with the S3 client the workers
// use (aws-sdk-go-v2, path-style, checksums only when required) and no worker: first
// with root credentials, then with an agent's STS credentials and session policy. It
// splits a worker roundtrip's distance from the floor into the client's share, MinIO's
// share for a session, and the rest, which is the worker's.
func BenchmarkSDKPutGet1KiB(b *testing.B) {
	m, s := startStack(b, benchMinIO()...)
	ctx := b.Context()
	c := newMaster(b, ctx, m, s)
	sts, err := c.Credentials(ctx, agent.RoleVault)
	require.NoError(b, err)
	root := agent.STSCreds{AccessKeyID: m.RootUser, SecretAccessKey: m.RootPassword}
	obj := randomObject(b)
	// The key the session policy allows, so that both cases write the same object.
	key := credworker.Key(c.Omni, "sdk-bench")

	for _, tc := range []struct {
		name  string
		creds agent.STSCreds
	}{{"root", root}, {"sts-creds", sts}} {
		b.Run(tc.name, func(b *testing.B) {
			s3c := &agent.S3{Endpoint: m.Endpoint}
			for b.Loop() {
				require.NoError(b, s3c.Put(ctx, tc.creds, m.VaultBucket, key, obj))
				got, err := s3c.Get(ctx, tc.creds, m.VaultBucket, key)
				require.NoError(b, err)
				require.Equal(b, obj, got)
			}
		})
	}
}

// BenchmarkStackStart is stack.Start over a MinIO already running: what the four mocks
// add to a run's start-up. Close is left out of the time.
func BenchmarkStackStart(b *testing.B) {
	m := minioserver.StartTB(b, benchMinIO()...)
	cfg := stack.Config{
		MinIOEndpoint: m.Endpoint, RootUser: m.RootUser, RootPassword: m.RootPassword,
		VaultBucket: m.VaultBucket, MemoryBucket: m.MemoryBucket,
	}

	for b.Loop() {
		s, err := stack.Start(b.Context(), cfg)
		require.NoError(b, err)
		b.StopTimer()
		require.NoError(b, s.Close())
		b.StartTimer()
	}
}

// BenchmarkCapMint is one cap-mint with a proof of possession, over HTTP.
func BenchmarkCapMint(b *testing.B) {
	m, s := startStack(b, benchMinIO()...)
	c := newMaster(b, b.Context(), m, s)

	for b.Loop() {
		_, err := c.MintCap(b.Context(), wire.RouteCapCredStore, c.Omni, c.Omni, "openrouter")
		require.NoError(b, err)
	}
}

// BenchmarkSTSExchange is an OIDC JWT minted at the broker and exchanged at the STS stub
// through aws-sdk-go-v2's STS client, the stub's MinIO AssumeRole included.
func BenchmarkSTSExchange(b *testing.B) {
	m, s := startStack(b, benchMinIO()...)
	c := newMaster(b, b.Context(), m, s)

	for b.Loop() {
		_, err := c.Credentials(b.Context(), agent.RoleVault)
		require.NoError(b, err)
	}
}

// dataClass is what differs between the credentials and the memory roundtrip, so that
// one body measures both.
type dataClass struct {
	name       string
	role       agent.Role
	service    string
	storeRoute string
	fetchRoute string
	workerURL  func(*stack.Stack) string
	// store and fetch are the worker client's methods for the class, as method
	// expressions, so the receiver comes first.
	store func(*agent.Worker, context.Context, agent.STSCreds, []byte, []byte) (
		wire.StoreAnswer, error)
	fetch func(*agent.Worker, context.Context, agent.STSCreds, []byte) ([]byte, error)
}

var (
	credentialsClass = dataClass{
		name: "cred", role: agent.RoleVault, service: "openrouter",
		storeRoute: wire.RouteCapCredStore, fetchRoute: wire.RouteCapCredFetch,
		workerURL: func(s *stack.Stack) string { return s.CredURL },
		store:     (*agent.Worker).CredStore, fetch: (*agent.Worker).CredFetch,
	}
	memoryClass = dataClass{
		name: "memory", role: agent.RoleMemory, service: agent.MemoryService("notes"),
		storeRoute: wire.RouteCapMemoryPut, fetchRoute: wire.RouteCapMemoryGet,
		workerURL: func(s *stack.Stack) string { return s.MemoryURL },
		store:     (*agent.Worker).MemoryPut, fetch: (*agent.Worker).MemoryGet,
	}
)

// BenchmarkCredRoundtripCredsInHand is a 1 KiB credential stored and fetched through the
// cred worker with both caps and the STS credentials already in hand.
func BenchmarkCredRoundtripCredsInHand(b *testing.B) { benchCredsInHand(b, credentialsClass) }

// BenchmarkMemoryRoundtripCredsInHand is the same through the memory worker.
func BenchmarkMemoryRoundtripCredsInHand(b *testing.B) { benchCredsInHand(b, memoryClass) }

// inHand is what an agent gets before it calls a worker: a store cap and a fetch cap
// for the class's service, and STS credentials for its role.
type inHand struct {
	store, fetch []byte
	creds        agent.STSCreds
}

func (dc dataClass) gather(b *testing.B, ctx context.Context, c *agent.Client) inHand {
	var h inHand
	var err error
	h.store, err = c.MintCap(ctx, dc.storeRoute, c.Omni, c.Omni, dc.service)
	require.NoError(b, err)
	h.fetch, err = c.MintCap(ctx, dc.fetchRoute, c.Omni, c.Omni, dc.service)
	require.NoError(b, err)
	h.creds, err = c.Credentials(ctx, dc.role)
	require.NoError(b, err)
	return h
}

// roundtrip stores obj through w with what is in hand and requires it back unchanged.
func (dc dataClass) roundtrip(b *testing.B, ctx context.Context, w *agent.Worker, h inHand,
	obj []byte) {
	_, err := dc.store(w, ctx, h.creds, h.store, obj)
	require.NoError(b, err)
	got, err := dc.fetch(w, ctx, h.creds, h.fetch)
	require.NoError(b, err)
	require.Equal(b, obj, got)
}

func benchCredsInHand(b *testing.B, dc dataClass) {
	m, s := startStack(b, benchMinIO()...)
	ctx := b.Context()
	c := newMaster(b, ctx, m, s)
	h := dc.gather(b, ctx, c)
	w := &agent.Worker{URL: dc.workerURL(s)}
	obj := randomObject(b)

	for b.Loop() {
		dc.roundtrip(b, ctx, w, h, obj)
	}
}

// BenchmarkFullRoundtrip is everything an agent does to store a 1 KiB object and read it
// back: a store cap and a fetch cap minted, one OIDC JWT exchanged for STS credentials
// that serve both calls, the store and the fetch.
func BenchmarkFullRoundtrip(b *testing.B) {
	for _, dc := range []dataClass{credentialsClass, memoryClass} {
		b.Run(dc.name, func(b *testing.B) {
			m, s := startStack(b, benchMinIO()...)
			ctx := b.Context()
			c := newMaster(b, ctx, m, s)
			w := &agent.Worker{URL: dc.workerURL(s)}
			obj := randomObject(b)

			for b.Loop() {
				dc.roundtrip(b, ctx, w, dc.gather(b, ctx, c), obj)
			}
		})
	}
}
