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

// agentEnv is one agent of a fresh master, with its memory credentials.
type agentEnv struct {
	m, a  *workertest.Identity
	creds agent.STSCreds
}

func (e *env) newAgent(t testing.TB, label string) agentEnv {
	t.Helper()
	m := workertest.NewMaster(e.reg)
	a := workertest.NewAgent(e.reg, m, label)
	return agentEnv{m: m, a: a, creds: e.memoryCreds(t, a.Omni)}
}

func (e *env) self(ae agentEnv, service, op string) json.RawMessage {
	return e.broker.Mint(workertest.Self(e.reg, ae.a, service, op, cap.ClassMemory))
}

// control proves the agent's own put and get work before a case expects a refusal.
func (e *env) control(t *testing.T, ae agentEnv, service string) {
	t.Helper()
	content := []byte("control " + service)
	_, err := e.client.MemoryPut(t.Context(), ae.creds, e.self(ae, service, cap.OpStore),
		content)
	require.NoError(t, err, "control put")
	got, err := e.client.MemoryGet(t.Context(), ae.creds, e.self(ae, service, cap.OpFetch))
	require.NoError(t, err, "control get")
	require.Equal(t, content, got, "control get")
}

func assertRefused(t *testing.T, err error, status int, reason, code string) {
	t.Helper()
	r := refusalOf(t, err)
	assert.Equal(t, status, r.Status, "status (%v)", r)
	assert.Equal(t, reason, r.Reason, "reason (%v)", r)
	assert.Equal(t, code, r.Code, "s3 code (%v)", r)
}

func TestMemoryRoundtrip(t *testing.T) {
	e := newEnv(t, shared)
	ae := e.newAgent(t, "alice")

	content := make([]byte, 4096)
	_, err := rand.Read(content)
	require.NoError(t, err)
	ans, err := e.client.MemoryPut(t.Context(), ae.creds, e.self(ae, notes, cap.OpStore),
		content)
	require.NoError(t, err)
	key := "bots/" + ae.a.Omni.String() + "/memory/memory:notes.enc"
	assert.True(t, ans.OK)
	assert.Equal(t, key, ans.S3Key)
	assert.Equal(t, len(content)+envelope.Overhead, ans.EnvelopeSize)
	assert.Regexp(t, "^0x[0-9a-f]{64}$", ans.AuditEnvelopeHash)

	got, err := e.client.MemoryGet(t.Context(), ae.creds, e.self(ae, notes, cap.OpFetch))
	require.NoError(t, err)
	assert.Equal(t, content, got, "memory back byte for byte")

	raw := e.raw(t, e.srv.MemoryBucket, key)
	require.Len(t, raw, len(content)+29)
	assert.Equal(t, byte(0x02), raw[0])
	assert.False(t, bytes.Contains(raw, content))

	// Keys are deterministic: a second put overwrites, and an empty memory is allowed.
	_, err = e.client.MemoryPut(t.Context(), ae.creds, e.self(ae, notes, cap.OpStore), nil)
	require.NoError(t, err)
	got, err = e.client.MemoryGet(t.Context(), ae.creds, e.self(ae, notes, cap.OpFetch))
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.Len(t, e.raw(t, e.srv.MemoryBucket, key), envelope.Overhead)
}

func TestMemoryCapChecks(t *testing.T) {
	otherDevice, err := evm.GenerateKey()
	require.NoError(t, err)
	get := func(e *env, ae agentEnv) cap.Payload {
		return workertest.Self(e.reg, ae.a, notes, cap.OpFetch, cap.ClassMemory)
	}
	cases := []struct {
		name   string
		route  string
		token  func(e *env, ae agentEnv) json.RawMessage
		reason string
	}{
		{"valid cap with pop", wire.RouteMemoryGet, func(e *env, ae agentEnv) json.RawMessage {
			return e.broker.Sign(workertest.WithPop(get(e, ae), ae.a.Device))
		}, ""},
		{"actor edited after signing", wire.RouteMemoryGet,
			func(e *env, ae agentEnv) json.RawMessage {
				tok, err := cap.Decode(e.broker.Mint(get(e, ae)))
				require.NoError(t, err)
				tok.Payload.Actor = ae.m.Omni.Prefixed()
				return workertest.Encode(tok)
			}, wire.ReasonBrokerSigInvalid},
		{"pop by another device", wire.RouteMemoryGet,
			func(e *env, ae agentEnv) json.RawMessage {
				return e.broker.Sign(workertest.WithPop(get(e, ae), otherDevice))
			}, wire.ReasonCapPopInvalid},
		{"get cap at put", wire.RouteMemoryPut, func(e *env, ae agentEnv) json.RawMessage {
			return e.broker.Mint(get(e, ae))
		}, wire.ReasonCapOpMismatch},
		{"put cap at get", wire.RouteMemoryGet, func(e *env, ae agentEnv) json.RawMessage {
			return e.self(ae, notes, cap.OpStore)
		}, wire.ReasonCapOpMismatch},
		{"credentials cap at put", wire.RouteMemoryPut,
			func(e *env, ae agentEnv) json.RawMessage {
				return e.broker.Mint(workertest.Self(e.reg, ae.a, notes, cap.OpStore,
					cap.ClassCredentials))
			}, wire.ReasonCapDataClassMismatch},
		{"credentials cap at get", wire.RouteMemoryGet,
			func(e *env, ae agentEnv) json.RawMessage {
				return e.broker.Mint(workertest.Self(e.reg, ae.a, notes, cap.OpFetch,
					cap.ClassCredentials))
			}, wire.ReasonCapDataClassMismatch},
		{"expired", wire.RouteMemoryGet, func(e *env, ae agentEnv) json.RawMessage {
			p := get(e, ae)
			p.ExpiresAt = time.Now().Unix() - 1
			return e.broker.Mint(p)
		}, wire.ReasonCapFreshnessFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, shared)
			ae := e.newAgent(t, "alice")
			e.control(t, ae, notes)

			var err error
			if tc.route == wire.RouteMemoryPut {
				_, err = e.client.MemoryPut(t.Context(), ae.creds, tc.token(e, ae),
					[]byte("refused"))
			} else {
				_, err = e.client.MemoryGet(t.Context(), ae.creds, tc.token(e, ae))
			}
			if tc.reason == "" {
				require.NoError(t, err)
				return
			}
			assertRefused(t, err, http.StatusForbidden, tc.reason, "")
		})
	}
}

// TestMemoryChainChecks: whatever the chain objects to, the memory worker says only
// chain_check_failed.
func TestMemoryChainChecks(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, e *env, ae agentEnv) (agent.STSCreds, json.RawMessage)
	}{
		{"unknown device", func(t *testing.T, e *env, ae agentEnv) (agent.STSCreds,
			json.RawMessage) {
			ghost := workertest.NewUnregistered(ae.m, "ghost")
			return e.memoryCreds(t, ghost.Omni), e.broker.Mint(workertest.Self(e.reg,
				ghost, notes, cap.OpFetch, cap.ClassMemory))
		}},
		{"revoked device", func(t *testing.T, e *env, ae agentEnv) (agent.STSCreds,
			json.RawMessage) {
			tok := e.self(ae, notes, cap.OpFetch)
			require.NoError(t, e.reg.Revoke(ae.a.DeviceKeyHash()))
			return ae.creds, tok
		}},
		{"device bound to another agent", func(t *testing.T, e *env, ae agentEnv) (
			agent.STSCreds, json.RawMessage) {
			bob := workertest.NewAgent(e.reg, ae.m, "bob")
			p := workertest.Payload(e.reg, ae.a, bob.Omni, bob.Omni, notes, cap.OpFetch,
				cap.ClassMemory, time.Now())
			return e.memoryCreds(t, bob.Omni), e.broker.Mint(p)
		}},
		{"device without the cap-mint role", func(t *testing.T, e *env, ae agentEnv) (
			agent.STSCreds, json.RawMessage) {
			workertest.Register(e.reg, ae.a)
			return ae.creds, e.self(ae, notes, cap.OpFetch)
		}},
		{"delegated namespace outside the scope", func(t *testing.T, e *env, ae agentEnv) (
			agent.STSCreds, json.RawMessage) {
			p := workertest.Payload(e.reg, ae.a, ae.m.Omni, ae.a.Omni, notes, cap.OpFetch,
				cap.ClassMemory, time.Now())
			return ae.creds, e.broker.Mint(p)
		}},
		{"k3 epoch moved on", func(t *testing.T, e *env, ae agentEnv) (agent.STSCreds,
			json.RawMessage) {
			tok := e.self(ae, notes, cap.OpFetch)
			e.reg.BumpEpoch()
			return ae.creds, tok
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, shared)
			ae := e.newAgent(t, "alice")
			e.control(t, ae, notes)

			creds, tok := tc.setup(t, e, ae)
			_, err := e.client.MemoryGet(t.Context(), creds, tok)
			assertRefused(t, err, http.StatusForbidden, wire.ReasonChainCheckFailed, "")
		})
	}
}

// TestMemoryDelegated: a master-minted cap (operator = master, actor = agent) with a
// scope grant writes to the agent's prefix with the agent's credentials, and the agent
// reads it back with its own self cap.
func TestMemoryDelegated(t *testing.T) {
	e := newEnv(t, shared)
	ae := e.newAgent(t, "alice")
	delegated := func() json.RawMessage {
		return e.broker.Mint(workertest.Payload(e.reg, ae.a, ae.m.Omni, ae.a.Omni, notes,
			cap.OpStore, cap.ClassMemory, time.Now()))
	}

	_, err := e.client.MemoryPut(t.Context(), ae.creds, delegated(), []byte("x"))
	assertRefused(t, err, http.StatusForbidden, wire.ReasonChainCheckFailed, "")

	e.reg.Grant(ae.a.Omni, notes)
	ans, err := e.client.MemoryPut(t.Context(), ae.creds, delegated(), []byte("from master"))
	require.NoError(t, err)
	assert.Equal(t, memworker.Key(ae.a.Omni, notes), ans.S3Key)

	got, err := e.client.MemoryGet(t.Context(), ae.creds, e.self(ae, notes, cap.OpFetch))
	require.NoError(t, err)
	assert.Equal(t, []byte("from master"), got)
}

func TestMemoryGetMissing(t *testing.T) {
	e := newEnv(t, shared)
	ae := e.newAgent(t, "alice")
	e.control(t, ae, notes)

	_, err := e.client.MemoryGet(t.Context(), ae.creds, e.self(ae, "memory:empty",
		cap.OpFetch))
	assertRefused(t, err, http.StatusNotFound, wire.ReasonS3NoSuchKey, "NoSuchKey")
}

func TestMemoryPlaintextB64Decode(t *testing.T) {
	e := newEnv(t, shared)
	ae := e.newAgent(t, "alice")
	e.control(t, ae, notes)

	body, err := json.Marshal(wire.StoreRequest{Cap: e.self(ae, "memory:other",
		cap.OpStore), PlaintextB64: "%%%"})
	require.NoError(t, err)
	resp, raw := post(t, e.url, wire.RouteMemoryPut, ae.creds, body)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, string(raw), `"reason":"plaintext_b64_decode"`)
	assert.Nil(t, e.raw(t, e.srv.MemoryBucket, memworker.Key(ae.a.Omni, "memory:other")))
}

// TestMemoryStolenCap: agent A with caps minted for B and A's own credentials. IAM
// refuses both calls, the worker says 502 with AccessDenied, B's memory is unchanged.
func TestMemoryStolenCap(t *testing.T) {
	e := newEnv(t, shared)
	alice := e.newAgent(t, "alice")
	bob := e.newAgent(t, "bob")
	e.control(t, alice, notes)

	_, err := e.client.MemoryPut(t.Context(), bob.creds, e.self(bob, notes, cap.OpStore),
		[]byte("bob's diary"))
	require.NoError(t, err)
	key := memworker.Key(bob.a.Omni, notes)
	before := e.raw(t, e.srv.MemoryBucket, key)
	require.NotNil(t, before)

	_, err = e.client.MemoryPut(t.Context(), alice.creds, e.self(bob, notes, cap.OpStore),
		[]byte("overwritten"))
	assertRefused(t, err, http.StatusBadGateway, wire.ReasonS3Put, "AccessDenied")
	_, err = e.client.MemoryGet(t.Context(), alice.creds, e.self(bob, notes, cap.OpFetch))
	assertRefused(t, err, http.StatusBadGateway, wire.ReasonS3Get, "AccessDenied")
	// A namespace bob never wrote: still AccessDenied, not a 404 that would tell alice
	// whether it exists.
	_, err = e.client.MemoryGet(t.Context(), alice.creds, e.self(bob, "memory:none",
		cap.OpFetch))
	assertRefused(t, err, http.StatusBadGateway, wire.ReasonS3Get, "AccessDenied")

	assert.Equal(t, before, e.raw(t, e.srv.MemoryBucket, key), "bob's object changed")
	got, err := e.client.MemoryGet(t.Context(), bob.creds, e.self(bob, notes, cap.OpFetch))
	require.NoError(t, err)
	assert.Equal(t, []byte("bob's diary"), got)
}
