package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// Labels put on every container, network and volume the harness creates. The run and the pid
// let a later run tell its own resources from those a killed run left behind; the host keeps
// a sweep on one machine from judging pids that belong to another machine sharing the daemon.
const (
	LabelHarness = "agentkeys.harness"
	LabelRun     = "agentkeys.harness.run"
	LabelPID     = "agentkeys.harness.pid"
	LabelHost    = "agentkeys.harness.host"

	// LabelSandbox names the agent a sandbox container belongs to, for `docker ps`.
	LabelSandbox = "agentkeys.harness.sandbox"
)

var (
	runIDOnce sync.Once
	runID     string
)

// RunID names this test process among all harness runs on the machine. It is made once per
// process: the pid keeps it readable in `docker ps`, the random part keeps it unique when a
// pid is reused.
func RunID() string {
	runIDOnce.Do(func() {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		runID = fmt.Sprintf("%d-%s", os.Getpid(), hex.EncodeToString(b))
	})
	return runID
}

// Labels returns the labels that mark a resource as made by this run. The map is new on every
// call, so a caller may add its own labels to it.
func Labels() map[string]string {
	host, _ := os.Hostname()
	return map[string]string{
		LabelHarness: "1",
		LabelRun:     RunID(),
		LabelPID:     strconv.Itoa(os.Getpid()),
		LabelHost:    host,
	}
}

// processAlive reports whether pid names a live process on this machine. EPERM means the
// process exists but belongs to another user, which still counts as alive.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
