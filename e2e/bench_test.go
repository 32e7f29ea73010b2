package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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

// BenchmarkIsolationScaling pairs n agents, four at a time, and has each probe its
// neighbour round a ring. It reports the wall time and two peaks of resident memory: this
// process with its children (on the process backend, MinIO, the mail catcher and the
// sandboxes among them) and, on the docker backend where the engine's cgroup can be read,
// the docker containers.
// Each iteration runs on a stack of its own, started and closed outside the timer, so
// that MinIO's memory holds only that iteration's objects and sessions, not every earlier
// run's.
func BenchmarkIsolationScaling(b *testing.B) {
	for _, n := range []int{2, 5, 10, 20} {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) {
			for b.Loop() {
				procs, containers := scalingRun(b, n)
				b.ReportMetric(float64(procs>>20), "peak-rss-MiB")
				// The cgroup holds every container on the machine, so it says something
				// only when the ring's own run in containers.
				if stack.Backend == fixtures.Docker && containers > 0 {
					b.ReportMetric(float64(containers>>20), "peak-container-rss-MiB")
				}
			}
		})
	}
}

// scalingRun starts a stack with the timer stopped, times one ring of n agents on it,
// and closes it, the timer stopped again, even when the ring fails. It returns the
// peaks of resident memory seen during the ring.
func scalingRun(b *testing.B, n int) (procs, containers uint64) {
	b.StopTimer()
	s, err := fixtures.Start(b.Context(), fixtures.WithBackend(stack.Backend))
	if s != nil {
		defer func() {
			b.StopTimer()
			if err := s.Close(context.Background()); err != nil {
				b.Error(err)
			}
			b.StartTimer()
		}()
	}
	if err != nil {
		b.Fatal(err)
	}

	peak := watchRSS()
	defer func() { procs, containers = peak() }()
	b.StartTimer()
	scaling(b, s, n)
	b.StopTimer()
	return 0, 0 // the peaks, set as the watcher stops
}

// scaling runs one ring of n agents on s and closes their sandboxes before it returns.
func scaling(b *testing.B, s *fixtures.Stack, n int) {
	ctx := b.Context()
	m := s.NewMaster(b)
	agents := make([]*fixtures.Agent, n)
	victims := make([]isolation.Victim, n)
	defer func() {
		for _, a := range agents {
			if a != nil {
				_ = a.Sandbox.Close(context.Background())
			}
		}
	}()

	var g errgroup.Group
	g.SetLimit(4)
	var mu sync.Mutex
	for i := range n {
		g.Go(func() error {
			a, err := m.PairAgent(ctx, "agent-"+strconv.Itoa(i))
			mu.Lock()
			agents[i] = a
			mu.Unlock()
			if err != nil {
				return err
			}
			v, err := isolation.AgentVictim(ctx, a)
			mu.Lock()
			victims[i] = v
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}

	// A probe writes its controls under its own prefix, so an agent must not probe while
	// its own objects are being compared as a victim's. The ring is run in phases in
	// which no agent is both prober and victim: even agents, then odd ones, and the last
	// agent of an odd ring on its own.
	for _, phase := range ringPhases(n) {
		for _, i := range phase {
			g.Go(func() error {
				o, err := isolation.Run(ctx, s, agents[i], victims[(i+1)%n])
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
}

// ringPhases splits agents 0..n-1, each probing the next one round the ring, into groups
// in which no agent's victim is probing too.
func ringPhases(n int) [][]int {
	phases := make([][]int, 2, 3)
	for i := range n {
		if n%2 == 1 && i == n-1 && n > 1 {
			phases = append(phases, []int{i})
			continue
		}
		phases[i%2] = append(phases[i%2], i)
	}
	return phases
}

// watchRSS samples, until the returned function is called, the resident memory of this
// process and its descendants, and of every docker container where the engine's memory
// cgroup can be read, and gives the peak of each seen.
func watchRSS() func() (procs, containers uint64) {
	done := make(chan struct{})
	var procs, containers uint64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			procs = max(procs, treeRSS(os.Getpid()))
			containers = max(containers, dockerRSS())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() (uint64, uint64) {
		close(done)
		wg.Wait()
		return procs, containers
	}
}

// treeRSS adds up VmRSS of pid and its descendants, read from /proc. A Go program forks
// from whichever of its threads runs the call, so the children of every thread count.
func treeRSS(pid int) uint64 {
	total := procStatus(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:") << 10
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		children, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, c := range strings.Fields(string(children)) {
			if c, err := strconv.Atoi(c); err == nil {
				total += treeRSS(c)
			}
		}
	}
	return total
}

// dockerRSS is the resident memory of all docker containers on the machine, from the
// engine's cgroup (v1, cgroupfs driver); 0 where that is not how the engine runs.
func dockerRSS() uint64 {
	return procStatus("/sys/fs/cgroup/memory/docker/memory.stat", "total_rss ")
}

// procStatus reads the number after key in a file of "key value" lines, 0 when absent.
func procStatus(file, key string) uint64 {
	raw, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"),
				10, 64)
			return n
		}
	}
	return 0
}
