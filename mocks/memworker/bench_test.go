package memworker_test

import (
	"bytes"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/agentkeys/harness/protocol/cap"
)

// BenchmarkMemoryRoundtrip is one put and one get of 1 KiB of memory through the worker
// over HTTP, into the real MinIO and back, with the STS credentials and both caps already
// in hand: what step 12 costs once the agent is set up. p50-ns is the median iteration.
func BenchmarkMemoryRoundtrip(b *testing.B) {
	e := newEnv(b, shared)
	ae := e.NewAgent(b, "bench")
	content := make([]byte, 1024)
	if _, err := rand.Read(content); err != nil {
		b.Fatal(err)
	}
	put, get := e.self(ae, notes, cap.OpStore), e.self(ae, notes, cap.OpFetch)
	ctx := b.Context()

	var took []time.Duration
	b.SetBytes(int64(len(content)))
	for b.Loop() {
		began := time.Now()
		if _, err := e.Client.MemoryPut(ctx, ae.Creds, put, content); err != nil {
			b.Fatal(err)
		}
		got, err := e.Client.MemoryGet(ctx, ae.Creds, get)
		if err != nil {
			b.Fatal(err)
		}
		if !bytes.Equal(got, content) {
			b.Fatal("memory read back differs from what was put")
		}
		took = append(took, time.Since(began))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
}
