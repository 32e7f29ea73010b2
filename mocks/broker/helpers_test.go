package broker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/mocks/broker"
	"github.com/agentkeys/harness/mocks/chain"
	"github.com/agentkeys/harness/protocol/evm"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/refusal"
	"github.com/agentkeys/harness/protocol/wire"
)

const adminToken = "test-admin-token"

// start is the fixed instant every test clock begins at, so that time windows are
// tested at their exact edges.
var start = time.Unix(1_800_000_000, 0)

// clock is a settable broker clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// stack is one broker server with its chain, a client and its clock.
type stack struct {
	srv    *broker.Server
	chain  *chain.Memory
	client *agent.Broker
	clock  *clock
}

func newStack(t *testing.T) *stack {
	t.Helper()
	return newStackWithToken(t, adminToken)
}

func newStackWithToken(t *testing.T, token string) *stack {
	t.Helper()
	c := &clock{now: start}
	mem := chain.NewMemory()
	srv, err := broker.NewServer(broker.Config{
		Chain: mem, AdminToken: token, Now: c.Now, Logger: testLogger(t),
	})
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	return &stack{srv: srv, chain: mem, client: &agent.Broker{URL: srv.URL}, clock: c}
}

// testLogger routes the broker's lines to t.Log, so that only a failing test shows them.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{
		Level: slog.LevelDebug,
	}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newKey(t testing.TB) *evm.Key {
	t.Helper()
	k, err := evm.GenerateKey()
	require.NoError(t, err)
	return k
}

// master is a wallet-authenticated master with a device of its own bound to (M, M).
type master struct {
	wallet  *evm.Key
	device  *evm.Key
	omni    omni.Omni
	session string
}

func (s *stack) newMaster(t *testing.T) master {
	t.Helper()
	m := master{wallet: newKey(t), device: newKey(t)}
	m.omni = omni.Master(m.wallet.Address())
	var err error
	m.session, err = s.client.WalletSignIn(context.Background(), m.wallet)
	require.NoError(t, err)
	require.NoError(t, s.chain.Register(chain.Device{
		DeviceKeyHash: m.device.DeviceKeyHash(), Parent: m.omni, Agent: m.omni,
		Roles: []string{chain.RoleCapMint},
	}))
	return m
}

// agentID is a paired agent whose device the test registered as (parent, agent).
type agentID struct {
	device  *evm.Key
	omni    omni.Omni
	parent  omni.Omni
	session string
}

// pairAgent runs the whole pairing: request, claim by m, registration on the chain, the
// scope grant, and the poll that hands the agent its session.
func (s *stack) pairAgent(t *testing.T, m master, label string, scope ...string) agentID {
	t.Helper()
	ctx := context.Background()
	a := agentID{device: newKey(t), parent: m.omni}

	req, err := s.client.PairingRequest(ctx, a.device)
	require.NoError(t, err)
	claim, err := s.client.PairingClaim(ctx, m.session, req.PairingCode, label, scope)
	require.NoError(t, err)
	a.omni, err = omni.ParsePrefixed(claim.ChildOmni)
	require.NoError(t, err)

	require.NoError(t, s.chain.Register(chain.Device{
		DeviceKeyHash: a.device.DeviceKeyHash(), Parent: m.omni, Agent: a.omni,
		Roles: []string{chain.RoleCapMint},
	}))
	s.chain.Grant(a.omni, scope...)

	poll, err := s.client.PairingPoll(ctx, a.device, req.RequestID)
	require.NoError(t, err)
	require.Equal(t, wire.PairingClaimed, poll.Status)
	a.session = poll.SessionJWT
	return a
}

// capRequest builds a cap-mint request in the canonical spelling.
func capRequest(operator, actor omni.Omni, service string, device *evm.Key) wire.CapRequest {
	return wire.CapRequest{
		Operator: operator.Prefixed(), Actor: actor.Prefixed(), Service: service,
		DeviceKeyHash: device.DeviceKeyHash(),
	}
}

// post sends raw bytes to route with an optional bearer and returns the status and the
// raw answer.
func (s *stack) post(t *testing.T, route, session string, body []byte) (int, []byte) {
	t.Helper()
	return s.do(t, http.MethodPost, route, session, body)
}

func (s *stack) do(t *testing.T, method, route, session string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+route, bytes.NewReader(body))
	require.NoError(t, err)
	if session != "" {
		req.Header.Set("Authorization", "Bearer "+session)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, raw
}

// reasonOf reads the reason of a JSON error answer.
func reasonOf(t *testing.T, raw []byte) string {
	t.Helper()
	var body refusal.Body
	require.NoError(t, json.Unmarshal(raw, &body), "answer: %s", raw)
	return body.Reason
}

// refusalOf extracts the *refusal.Refusal from a client error, failing the test if the
// error is anything else.
func refusalOf(t *testing.T, err error) *refusal.Refusal {
	t.Helper()
	require.Error(t, err)
	var r *refusal.Refusal
	require.ErrorAs(t, err, &r)
	return r
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	return raw
}
