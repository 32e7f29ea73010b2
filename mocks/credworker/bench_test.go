package credworker_test

import (
	"bytes"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/agentkeys/harness/mocks/worker/workertest"
	"github.com/agentkeys/harness/protocol/cap"
)

// BenchmarkCredRoundtrip is one store and one fetch of a 1 KiB credential through the
// worker over HTTP, into the real MinIO and back, with the STS credentials and both caps
// already in hand: what step 11 costs once the agent is set up. p50-ns is the median of
// the iterations, less swayed than the mean by a slow fsync.
func BenchmarkCredRoundtrip(b *testing.B) {
	e := newEnv(b, shared)
	ae := e.NewAgent(b, "bench")
	secret := make([]byte, 1024)
	if _, err := rand.Read(secret); err != nil {
		b.Fatal(err)
	}
	store := e.Broker.Mint(workertest.Self(e.Chain, ae.Agent, "openrouter", cap.OpStore,
		cap.ClassCredentials))
	fetch := e.Broker.Mint(workertest.Self(e.Chain, ae.Agent, "openrouter", cap.OpFetch,
		cap.ClassCredentials))
	ctx := b.Context()

	var took []time.Duration
	b.SetBytes(int64(len(secret)))
	for b.Loop() {
		began := time.Now()
		if _, err := e.Client.CredStore(ctx, ae.Creds, store, secret); err != nil {
			b.Fatal(err)
		}
		got, err := e.Client.CredFetch(ctx, ae.Creds, fetch)
		if err != nil {
			b.Fatal(err)
		}
		if !bytes.Equal(got, secret) {
			b.Fatal("fetched credential differs from the stored one")
		}
		took = append(took, time.Since(began))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
}
