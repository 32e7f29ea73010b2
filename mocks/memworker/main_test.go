package memworker_test

import (
	"os"
	"testing"

	"github.com/agentkeys/harness/fixtures/minioserver"
	"github.com/agentkeys/harness/mocks/memworker"
	"github.com/agentkeys/harness/mocks/worker/workertest"
	"github.com/agentkeys/harness/protocol/policy"
)

// shared is one MinIO for the package; a test that must see a bucket untouched starts
// its own.
var shared *minioserver.Server

func TestMain(m *testing.M) {
	os.Exit(workertest.RunWithMinIO(m, &shared))
}

// env is a memory worker over a real MinIO with its own broker key and chain; the
// methods the tests add to it live beside the tests.
type env struct{ *workertest.Env }

func newEnv(t testing.TB, srv *minioserver.Server) *env {
	t.Helper()
	return &env{workertest.NewEnv(t, srv, policy.Memory, memworker.New)}
}
