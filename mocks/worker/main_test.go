package worker_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/fixtures/minioserver"
	"github.com/agentkeys/harness/mocks/chain"
	"github.com/agentkeys/harness/mocks/credworker"
	"github.com/agentkeys/harness/mocks/memworker"
	"github.com/agentkeys/harness/mocks/worker"
	"github.com/agentkeys/harness/mocks/worker/workertest"
	"github.com/agentkeys/harness/protocol/cap"
	"github.com/agentkeys/harness/protocol/envelope"
	"github.com/agentkeys/harness/protocol/policy"
	"github.com/agentkeys/harness/protocol/wire"
)

// shared is one MinIO for the package; tests that compare whole buckets start their own.
var shared *minioserver.Server

func TestMain(m *testing.M) {
	os.Exit(workertest.RunWithMinIO(m, &shared))
}

// route is one POST route of either worker, with what its caps carry.
type route struct {
	path    string
	op      string
	class   string
	store   bool
	service string
}

var routes = []route{
	{wire.RouteCredStore, cap.OpStore, cap.ClassCredentials, true, "openrouter"},
	{wire.RouteCredFetch, cap.OpFetch, cap.ClassCredentials, false, "openrouter"},
	{wire.RouteCredList, cap.OpFetch, cap.ClassCredentials, false, "openrouter"},
	{wire.RouteMemoryPut, cap.OpStore, cap.ClassMemory, true, "memory:notes"},
	{wire.RouteMemoryGet, cap.OpFetch, cap.ClassMemory, false, "memory:notes"},
}

// stack is both workers over one MinIO, one broker key and one chain, and one agent
// with its vault and memory credentials whose objects exist, so every route's valid
// request succeeds.
type stack struct {
	srv      *minioserver.Server
	reg      *chain.Memory
	broker   *workertest.Broker
	cred     http.Handler
	mem      http.Handler
	credURL  string
	memURL   string
	alice    *workertest.Identity
	vault    agent.STSCreds
	memory   agent.STSCreds
	workerOf map[string]string
}

func newStack(t testing.TB, srv *minioserver.Server, adjust ...func(*worker.Config)) *stack {
	t.Helper()
	s := &stack{srv: srv, reg: chain.NewMemory(), broker: workertest.NewBroker()}
	config := func(bucket string) worker.Config {
		cfg := worker.Config{Endpoint: srv.Endpoint, Bucket: bucket, KEK: envelope.NewKEK(),
			BrokerKey: s.broker.Public(), Chain: s.reg, Logger: workertest.Logger(t)}
		for _, f := range adjust {
			f(&cfg)
		}
		return cfg
	}
	cw, err := credworker.New(config(srv.VaultBucket))
	require.NoError(t, err)
	mw, err := memworker.New(config(srv.MemoryBucket))
	require.NoError(t, err)
	s.cred, s.mem = cw.Handler(), mw.Handler()
	credTS, memTS := httptest.NewServer(s.cred), httptest.NewServer(s.mem)
	t.Cleanup(credTS.Close)
	t.Cleanup(memTS.Close)
	s.credURL, s.memURL = credTS.URL, memTS.URL

	m := workertest.NewMaster(s.reg)
	s.alice = workertest.NewAgent(s.reg, m, "alice")
	s.vault = workertest.AssumeRole(t, srv, policy.Vault, s.alice.Omni)
	s.memory = workertest.AssumeRole(t, srv, policy.Memory, s.alice.Omni)
	return s
}

// seed stores alice's objects so that the fetch routes have something to read.
func (s *stack) seed(t testing.TB) {
	t.Helper()
	for _, rt := range routes {
		if !rt.store {
			continue
		}
		resp, body := s.post(t, rt, s.headers(rt), s.validBody(rt))
		require.Equal(t, http.StatusOK, resp.StatusCode, "seed %s: %s", rt.path, body)
	}
}

func (rt route) cred() bool { return strings.HasPrefix(rt.path, "/v1/cred/") }

func (s *stack) url(rt route) string {
	if rt.cred() {
		return s.credURL + rt.path
	}
	return s.memURL + rt.path
}

func (s *stack) handler(rt route) http.Handler {
	if rt.cred() {
		return s.cred
	}
	return s.mem
}

// headers are alice's credentials for rt's bucket.
func (s *stack) headers(rt route) http.Header {
	c := s.memory
	if rt.cred() {
		c = s.vault
	}
	return workertest.CredsHeader(c)
}

// payload is alice's valid self cap payload for rt.
func (s *stack) payload(rt route) cap.Payload {
	return workertest.Self(s.reg, s.alice, rt.service, rt.op, rt.class)
}

// body wraps a token into rt's request body.
func body(rt route, tok json.RawMessage) []byte {
	var v any = wire.FetchRequest{Cap: tok}
	if rt.store {
		v = wire.StoreRequest{Cap: tok,
			PlaintextB64: base64.StdEncoding.EncodeToString([]byte("sk-" + rt.path))}
	}
	raw, err := json.Marshal(v)
	if err != nil {
		panic("worker_test: " + err.Error())
	}
	return raw
}

func (s *stack) validBody(rt route) []byte { return body(rt, s.broker.Mint(s.payload(rt))) }

// post sends raw to rt over HTTP with header as given.
func (s *stack) post(t testing.TB, rt route, header http.Header, raw []byte) (*http.Response,
	[]byte) {
	t.Helper()
	return workertest.Post(t, s.url(rt), header, raw)
}
