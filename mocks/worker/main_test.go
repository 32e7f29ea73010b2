package worker_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
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
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/policy"
	"github.com/agentkeys/harness/protocol/wire"
)

// shared is one MinIO for the package; tests that compare whole buckets start their own.
var shared *minioserver.Server

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	srv, err := minioserver.Start(ctx, minioserver.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker tests:", err)
		return 1
	}
	defer srv.Close()
	shared = srv
	return m.Run()
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
			BrokerKey: s.broker.Public(), Chain: s.reg, Logger: testLogger(t)}
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
	s.vault = assumeRole(t, srv, policy.Vault, srv.VaultBucket, s.alice.Omni)
	s.memory = assumeRole(t, srv, policy.Memory, srv.MemoryBucket, s.alice.Omni)
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
	return credsHeader(c)
}

func credsHeader(c agent.STSCreds) http.Header {
	h := http.Header{}
	h.Set(wire.HeaderAccessKeyID, c.AccessKeyID)
	h.Set(wire.HeaderSecretAccessKey, c.SecretAccessKey)
	h.Set(wire.HeaderSessionToken, c.SessionToken)
	return h
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
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.url(rt),
		bytes.NewReader(raw))
	require.NoError(t, err)
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, got
}

func assumeRole(t testing.TB, srv *minioserver.Server, role policy.Role, bucket string,
	id omni.Omni) agent.STSCreds {
	t.Helper()
	doc, err := policy.Build(role, bucket, id)
	require.NoError(t, err)
	client := sts.New(sts.Options{
		Region:       wire.Region,
		BaseEndpoint: aws.String(srv.Endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(srv.RootUser,
			srv.RootPassword, ""),
	})
	out, err := client.AssumeRole(t.Context(), &sts.AssumeRoleInput{
		RoleArn:         aws.String("arn:aws:iam::000000000000:role/agentkeys-" + string(role)),
		RoleSessionName: aws.String("worker-test"),
		Policy:          aws.String(string(doc)),
		DurationSeconds: aws.Int32(3600),
	})
	require.NoError(t, err, "minio assume role")
	return agent.STSCreds{
		AccessKeyID:     aws.ToString(out.Credentials.AccessKeyId),
		SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
		SessionToken:    aws.ToString(out.Credentials.SessionToken),
		Expiration:      aws.ToTime(out.Credentials.Expiration),
	}
}

// testLogger routes the workers' lines to t.Log, so only a failing test shows them.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{t}, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
