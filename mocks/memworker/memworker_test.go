package memworker_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/mocks/memworker"
	"github.com/agentkeys/harness/mocks/worker/workertest"
	"github.com/agentkeys/harness/protocol/cap"
	"github.com/agentkeys/harness/protocol/envelope"
	"github.com/agentkeys/harness/protocol/evm"
	"github.com/agentkeys/harness/protocol/wire"
)

const notes = "memory:notes"

func (e *env) self(ae workertest.Agent, service, op string) json.RawMessage {
	return e.Broker.Mint(workertest.Self(e.Chain, ae.Agent, service, op, cap.ClassMemory))
}

// control proves the agent's own put and get work before a case expects a refusal.
func (e *env) control(t *testing.T, ae workertest.Agent, service string) {
	t.Helper()
	content := []byte("control " + service)
	_, err := e.Client.MemoryPut(t.Context(), ae.Creds, e.self(ae, service, cap.OpStore),
		content)
	require.NoError(t, err, "control put")
	got, err := e.Client.MemoryGet(t.Context(), ae.Creds, e.self(ae, service, cap.OpFetch))
	require.NoError(t, err, "control get")
	require.Equal(t, content, got, "control get")
}

func TestMemoryRoundtrip(t *testing.T) {
	e := newEnv(t, shared)
	ae := e.NewAgent(t, "alice")

	content := make([]byte, 4096)
	_, err := rand.Read(content)
	require.NoError(t, err)
	ans, err := e.Client.MemoryPut(t.Context(), ae.Creds, e.self(ae, notes, cap.OpStore),
		content)
	require.NoError(t, err)
	key := "bots/" + ae.Agent.Omni.String() + "/memory/memory:notes.enc"
	assert.True(t, ans.OK)
	assert.Equal(t, key, ans.S3Key)
	assert.Equal(t, len(content)+envelope.Overhead, ans.EnvelopeSize)
	assert.Regexp(t, "^0x[0-9a-f]{64}$", ans.AuditEnvelopeHash)

	got, err := e.Client.MemoryGet(t.Context(), ae.Creds, e.self(ae, notes, cap.OpFetch))
	require.NoError(t, err)
	assert.Equal(t, content, got, "memory back byte for byte")

	raw := e.Raw(t, key)
	require.Len(t, raw, len(content)+29)
	assert.Equal(t, byte(0x02), raw[0])
	assert.False(t, bytes.Contains(raw, content))

	// Keys are deterministic: a second put overwrites, and an empty memory is allowed.
	_, err = e.Client.MemoryPut(t.Context(), ae.Creds, e.self(ae, notes, cap.OpStore), nil)
	require.NoError(t, err)
	got, err = e.Client.MemoryGet(t.Context(), ae.Creds, e.self(ae, notes, cap.OpFetch))
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.Len(t, e.Raw(t, key), envelope.Overhead)
}

func TestMemoryCapChecks(t *testing.T) {
	otherDevice, err := evm.GenerateKey()
	require.NoError(t, err)
	get := func(e *env, ae workertest.Agent) cap.Payload {
		return workertest.Self(e.Chain, ae.Agent, notes, cap.OpFetch, cap.ClassMemory)
	}
	cases := []struct {
		name   string
		route  string
		token  func(e *env, ae workertest.Agent) json.RawMessage
		reason string
	}{
		{"valid cap with pop", wire.RouteMemoryGet,
			func(e *env, ae workertest.Agent) json.RawMessage {
				return e.Broker.Sign(workertest.WithPop(get(e, ae), ae.Agent.Device))
			}, ""},
		{"actor edited after signing", wire.RouteMemoryGet,
			func(e *env, ae workertest.Agent) json.RawMessage {
				tok, err := cap.Decode(e.Broker.Mint(get(e, ae)))
				require.NoError(t, err)
				tok.Payload.Actor = ae.Master.Omni.Prefixed()
				return workertest.Encode(tok)
			}, wire.ReasonBrokerSigInvalid},
		{"pop by another device", wire.RouteMemoryGet,
			func(e *env, ae workertest.Agent) json.RawMessage {
				return e.Broker.Sign(workertest.WithPop(get(e, ae), otherDevice))
			}, wire.ReasonCapPopInvalid},
		{"get cap at put", wire.RouteMemoryPut, func(e *env, ae workertest.Agent) json.RawMessage {
			return e.Broker.Mint(get(e, ae))
		}, wire.ReasonCapOpMismatch},
		{"put cap at get", wire.RouteMemoryGet, func(e *env, ae workertest.Agent) json.RawMessage {
			return e.self(ae, notes, cap.OpStore)
		}, wire.ReasonCapOpMismatch},
		{"credentials cap at put", wire.RouteMemoryPut,
			func(e *env, ae workertest.Agent) json.RawMessage {
				return e.Broker.Mint(workertest.Self(e.Chain, ae.Agent, notes, cap.OpStore,
					cap.ClassCredentials))
			}, wire.ReasonCapDataClassMismatch},
		{"credentials cap at get", wire.RouteMemoryGet,
			func(e *env, ae workertest.Agent) json.RawMessage {
				return e.Broker.Mint(workertest.Self(e.Chain, ae.Agent, notes, cap.OpFetch,
					cap.ClassCredentials))
			}, wire.ReasonCapDataClassMismatch},
		{"expired", wire.RouteMemoryGet, func(e *env, ae workertest.Agent) json.RawMessage {
			p := get(e, ae)
			p.ExpiresAt = time.Now().Unix() - 1
			return e.Broker.Mint(p)
		}, wire.ReasonCapFreshnessFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, shared)
			ae := e.NewAgent(t, "alice")
			e.control(t, ae, notes)

			var err error
			if tc.route == wire.RouteMemoryPut {
				_, err = e.Client.MemoryPut(t.Context(), ae.Creds, tc.token(e, ae),
					[]byte("refused"))
			} else {
				_, err = e.Client.MemoryGet(t.Context(), ae.Creds, tc.token(e, ae))
			}
			if tc.reason == "" {
				require.NoError(t, err)
				return
			}
			workertest.AssertRefused(t, err, http.StatusForbidden, tc.reason, "")
		})
	}
}

// TestMemoryChainChecks: whatever the chain objects to, the memory worker says only
// chain_check_failed.
func TestMemoryChainChecks(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, e *env, ae workertest.Agent) (agent.STSCreds, json.RawMessage)
	}{
		{"unknown device", func(t *testing.T, e *env, ae workertest.Agent) (agent.STSCreds,
			json.RawMessage) {
			ghost := workertest.NewUnregistered(ae.Master, "ghost")
			return e.Creds(t, ghost.Omni), e.Broker.Mint(workertest.Self(e.Chain,
				ghost, notes, cap.OpFetch, cap.ClassMemory))
		}},
		{"revoked device", func(t *testing.T, e *env, ae workertest.Agent) (agent.STSCreds,
			json.RawMessage) {
			tok := e.self(ae, notes, cap.OpFetch)
			require.NoError(t, e.Chain.Revoke(ae.Agent.DeviceKeyHash()))
			return ae.Creds, tok
		}},
		{"device bound to another agent", func(t *testing.T, e *env, ae workertest.Agent) (
			agent.STSCreds, json.RawMessage) {
			bob := workertest.NewAgent(e.Chain, ae.Master, "bob")
			p := workertest.Payload(e.Chain, ae.Agent, bob.Omni, bob.Omni, notes, cap.OpFetch,
				cap.ClassMemory, time.Now())
			return e.Creds(t, bob.Omni), e.Broker.Mint(p)
		}},
		{"device without the cap-mint role", func(t *testing.T, e *env, ae workertest.Agent) (
			agent.STSCreds, json.RawMessage) {
			workertest.Register(e.Chain, ae.Agent)
			return ae.Creds, e.self(ae, notes, cap.OpFetch)
		}},
		{"delegated namespace outside the scope", func(t *testing.T, e *env, ae workertest.Agent) (
			agent.STSCreds, json.RawMessage) {
			p := workertest.Payload(e.Chain, ae.Agent, ae.Master.Omni, ae.Agent.Omni, notes,
				cap.OpFetch, cap.ClassMemory, time.Now())
			return ae.Creds, e.Broker.Mint(p)
		}},
		{"k3 epoch moved on", func(t *testing.T, e *env, ae workertest.Agent) (agent.STSCreds,
			json.RawMessage) {
			tok := e.self(ae, notes, cap.OpFetch)
			e.Chain.BumpEpoch()
			return ae.Creds, tok
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, shared)
			ae := e.NewAgent(t, "alice")
			e.control(t, ae, notes)

			creds, tok := tc.setup(t, e, ae)
			_, err := e.Client.MemoryGet(t.Context(), creds, tok)
			workertest.AssertRefused(t, err, http.StatusForbidden, wire.ReasonChainCheckFailed, "")
		})
	}
}

// TestMemoryDelegated: a master-minted cap (operator = master, actor = agent) with a
// scope grant writes to the agent's prefix with the agent's credentials, and the agent
// reads it back with its own self cap.
func TestMemoryDelegated(t *testing.T) {
	e := newEnv(t, shared)
	ae := e.NewAgent(t, "alice")
	delegated := func() json.RawMessage {
		return e.Broker.Mint(workertest.Payload(e.Chain, ae.Agent, ae.Master.Omni,
			ae.Agent.Omni, notes, cap.OpStore, cap.ClassMemory, time.Now()))
	}

	_, err := e.Client.MemoryPut(t.Context(), ae.Creds, delegated(), []byte("x"))
	workertest.AssertRefused(t, err, http.StatusForbidden, wire.ReasonChainCheckFailed, "")

	e.Chain.Grant(ae.Agent.Omni, notes)
	ans, err := e.Client.MemoryPut(t.Context(), ae.Creds, delegated(), []byte("from master"))
	require.NoError(t, err)
	assert.Equal(t, memworker.Key(ae.Agent.Omni, notes), ans.S3Key)

	got, err := e.Client.MemoryGet(t.Context(), ae.Creds, e.self(ae, notes, cap.OpFetch))
	require.NoError(t, err)
	assert.Equal(t, []byte("from master"), got)
}

func TestMemoryGetMissing(t *testing.T) {
	e := newEnv(t, shared)
	ae := e.NewAgent(t, "alice")
	e.control(t, ae, notes)

	_, err := e.Client.MemoryGet(t.Context(), ae.Creds, e.self(ae, "memory:empty",
		cap.OpFetch))
	workertest.AssertRefused(t, err, http.StatusNotFound, wire.ReasonS3NoSuchKey, "NoSuchKey")
}

func TestMemoryPlaintextB64Decode(t *testing.T) {
	e := newEnv(t, shared)
	ae := e.NewAgent(t, "alice")
	e.control(t, ae, notes)

	body, err := json.Marshal(wire.StoreRequest{Cap: e.self(ae, "memory:other",
		cap.OpStore), PlaintextB64: "%%%"})
	require.NoError(t, err)
	resp, raw := workertest.Post(t, e.URL+wire.RouteMemoryPut,
		workertest.CredsHeader(ae.Creds), body)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, wire.ReasonPlaintextB64Decode, workertest.ReasonOf(t, raw))
	assert.Nil(t, e.Raw(t, memworker.Key(ae.Agent.Omni, "memory:other")))
}

// TestMemoryStolenCap: agent A with caps minted for B and A's own credentials. IAM
// refuses both calls, the worker says 502 with AccessDenied, B's memory is unchanged.
func TestMemoryStolenCap(t *testing.T) {
	e := newEnv(t, shared)
	alice := e.NewAgent(t, "alice")
	bob := e.NewAgent(t, "bob")
	e.control(t, alice, notes)

	_, err := e.Client.MemoryPut(t.Context(), bob.Creds, e.self(bob, notes, cap.OpStore),
		[]byte("bob's diary"))
	require.NoError(t, err)
	key := memworker.Key(bob.Agent.Omni, notes)
	before := e.Raw(t, key)
	require.NotNil(t, before)

	_, err = e.Client.MemoryPut(t.Context(), alice.Creds, e.self(bob, notes, cap.OpStore),
		[]byte("overwritten"))
	workertest.AssertRefused(t, err, http.StatusBadGateway, wire.ReasonS3Put, "AccessDenied")
	_, err = e.Client.MemoryGet(t.Context(), alice.Creds, e.self(bob, notes, cap.OpFetch))
	workertest.AssertRefused(t, err, http.StatusBadGateway, wire.ReasonS3Get, "AccessDenied")
	// A namespace bob never wrote: still AccessDenied, not a 404 that would tell alice
	// whether it exists.
	_, err = e.Client.MemoryGet(t.Context(), alice.Creds, e.self(bob, "memory:none",
		cap.OpFetch))
	workertest.AssertRefused(t, err, http.StatusBadGateway, wire.ReasonS3Get, "AccessDenied")

	assert.Equal(t, before, e.Raw(t, key), "bob's object changed")
	got, err := e.Client.MemoryGet(t.Context(), bob.Creds, e.self(bob, notes, cap.OpFetch))
	require.NoError(t, err)
	assert.Equal(t, []byte("bob's diary"), got)
}
