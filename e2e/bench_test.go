package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/agentkeys/harness/e2e/isolation"
	"github.com/agentkeys/harness/fixtures"
)

// BenchmarkStackReady starts a whole stack on the suite's backend per iteration and
// reports MinIO's own start-to-ready time beside it, measured in the same start.
func BenchmarkStackReady(b *testing.B) {
	var minio, ready time.Duration
	for b.Loop() {
		s, err := fixtures.Start(b.Context(), fixtures.WithBackend(stack.Backend))
		if err != nil {
			b.Fatal(err)
		}
		minio += s.MinIOReady
		ready += s.Ready
		b.StopTimer()
		if err := s.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(ready.Milliseconds())/float64(b.N), "stack-ready-ms")
	b.ReportMetric(float64(minio.Milliseconds())/float64(b.N), "minio-ready-ms")
}

// BenchmarkAgentReady pairs one agent per iteration: sandbox, key, pairing, chain.
func BenchmarkAgentReady(b *testing.B) {
	m := stack.NewMaster(b)
	i := 0
	for b.Loop() {
		i++
		m.NewAgent(b, "bench-"+strconv.Itoa(i))
	}
	b.ReportMetric(float64(stack.MinIOReady.Milliseconds()), "minio-ready-ms")
}

// BenchmarkMemoryRoundtripSandbox is one memory put and get through sandbox-agent, each
// a whole chain: cap-mint, OIDC JWT, STS, worker, MinIO.
func BenchmarkMemoryRoundtripSandbox(b *testing.B) {
	a := stack.NewAgent(b, "bench")
	for b.Loop() {
		a.MustRun(b, "memory", "put", "--namespace", "bench", "--content", "hello")
		a.MustRun(b, "memory", "get", "--namespace", "bench")
	}
	b.ReportMetric(float64(stack.MinIOReady.Milliseconds()), "minio-ready-ms")
}

// BenchmarkIsolationScaling pairs n agents and has each probe its neighbour, four at a
// time, reporting the wall time and the peak resident memory of the harness and, on the
// process backend, of its child processes.
func BenchmarkIsolationScaling(b *testing.B) {
	for _, n := range []int{2, 5, 10, 20} {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) {
			for b.Loop() {
				peak := watchRSS()
				scaling(b, n)
				b.ReportMetric(float64(peak()>>20), "peak-rss-MiB")
			}
		})
	}
}

func scaling(b *testing.B, n int) {
	ctx := b.Context()
	m := stack.NewMaster(b)
	agents := make([]*fixtures.Agent, n)
	victims := make([]isolation.Victim, n)

	var g errgroup.Group
	g.SetLimit(4)
	var mu sync.Mutex
	for i := range n {
		g.Go(func() error {
			a, err := m.PairAgent(ctx, "agent-"+strconv.Itoa(i))
			if a != nil {
				b.Cleanup(func() { _ = a.Sandbox.Close(context.Background()) })
			}
			if err != nil {
				return err
			}
			v, err := isolation.AgentVictim(ctx, a)
			mu.Lock()
			agents[i], victims[i] = a, v
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}

	for i := range n {
		g.Go(func() error {
			o, err := isolation.Run(ctx, stack, agents[i], victims[(i+1)%n])
			if err != nil {
				return err
			}
			if f := o.Failures(); len(f) > 0 {
				return fmt.Errorf("agent %d: %v", i, f)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

// watchRSS samples the resident memory of this process and its children until the
// returned function is called, which gives the peak seen.
func watchRSS() func() uint64 {
	done := make(chan struct{})
	var peak uint64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if rss := treeRSS(os.Getpid()); rss > peak {
				peak = rss
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}

// treeRSS adds up VmRSS of pid and its descendants, read from /proc.
func treeRSS(pid int) uint64 {
	total := procRSS(pid)
	children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return total
	}
	for _, f := range strings.Fields(string(children)) {
		if c, err := strconv.Atoi(f); err == nil {
			total += treeRSS(c)
		}
	}
	return total
}

func procRSS(pid int) uint64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"),
				10, 64)
			return kb << 10
		}
	}
	return 0
}
