package broker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/mocks/chain"
	"github.com/agentkeys/harness/protocol/cap"
	"github.com/agentkeys/harness/protocol/evm"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/wire"
)

// world is one master M with two agents, A (scoped to openrouter and memory:notes) and
// B (no scope), and devices in every state the chain checks tell apart.
type world struct {
	*stack
	m, m2   master
	a, b    agentID
	revoked *evm.Key // bound to (M, A), revoked
	noRole  *evm.Key // bound to (M, A), no cap-mint role
	unknown *evm.Key // never registered
}

func newWorld(t *testing.T) *world {
	t.Helper()
	s := newStack(t)
	w := &world{stack: s, m: s.newMaster(t), m2: s.newMaster(t)}
	w.a = s.pairAgent(t, w.m, "alice", "openrouter", "memory:notes")
	w.b = s.pairAgent(t, w.m, "bob")
	w.revoked, w.noRole, w.unknown = newKey(t), newKey(t), newKey(t)

	require.NoError(t, s.chain.Register(chain.Device{
		DeviceKeyHash: w.revoked.DeviceKeyHash(), Parent: w.m.omni, Agent: w.a.omni,
		Roles: []string{chain.RoleCapMint},
	}))
	require.NoError(t, s.chain.Revoke(w.revoked.DeviceKeyHash()))
	require.NoError(t, s.chain.Register(chain.Device{
		DeviceKeyHash: w.noRole.DeviceKeyHash(), Parent: w.m.omni, Agent: w.a.omni,
	}))
	return w
}

// mintCall is one cap-mint request as a client makes it.
type mintCall struct {
	session string
	route   string
	req     wire.CapRequest
	opts    []agent.MintOption
}

func (w *world) mint(c mintCall) (cap.Token, []byte, error) {
	return w.client.MintCap(context.Background(), c.session, c.route, c.req, c.opts...)
}

// setService changes the service after the proof of possession was signed, the way a
// tampering client would.
func setService(service string) agent.MintOption {
	return func(req *wire.CapRequest, _ wire.CapRoute) error {
		req.Service = service
		return nil
	}
}

// TestCapMintRefusals produces every cap-mint reason of steps 2 to 7 with a real request,
// each beside a control that differs in the one thing the refusal is about and succeeds.
func TestCapMintRefusals(t *testing.T) {
	w := newWorld(t)
	m, a, b := w.m, w.a, w.b
	now := start

	self := func(device *evm.Key, opts ...agent.MintOption) mintCall {
		return mintCall{a.session, wire.RouteCapMemoryPut,
			capRequest(a.omni, a.omni, "memory:notes", device), opts}
	}
	forAgent := func(route, service string, opts ...agent.MintOption) mintCall {
		return mintCall{m.session, route, capRequest(m.omni, a.omni, service, a.device), opts}
	}

	tests := []struct {
		name       string
		bad, good  mintCall
		wantStatus int
		wantReason string
	}{
		{
			name:       "no bearer",
			bad:        mintCall{"", wire.RouteCapMemoryPut, self(a.device).req, nil},
			good:       self(a.device),
			wantStatus: http.StatusUnauthorized, wantReason: wire.ReasonUnauthorized,
		},
		{
			name:       "garbage bearer",
			bad:        mintCall{"not.a.jwt", wire.RouteCapMemoryPut, self(a.device).req, nil},
			good:       self(a.device),
			wantStatus: http.StatusUnauthorized, wantReason: wire.ReasonUnauthorized,
		},
		{
			name: "agent names its master as operator",
			bad: mintCall{a.session, wire.RouteCapMemoryPut,
				capRequest(m.omni, a.omni, "memory:notes", a.device), nil},
			good:       self(a.device),
			wantStatus: http.StatusForbidden, wantReason: wire.ReasonOperatorMismatch,
		},
		{
			name: "master names another master as operator",
			bad: mintCall{m.session, wire.RouteCapMemoryPut,
				capRequest(w.m2.omni, w.m2.omni, "memory:notes", w.m2.device), nil},
			good: mintCall{w.m2.session, wire.RouteCapMemoryPut,
				capRequest(w.m2.omni, w.m2.omni, "memory:notes", w.m2.device), nil},
			wantStatus: http.StatusForbidden, wantReason: wire.ReasonOperatorMismatch,
		},
		{
			name: "operator mismatch beats unknown device",
			bad: mintCall{a.session, wire.RouteCapMemoryPut,
				capRequest(m.omni, a.omni, "memory:notes", w.unknown), nil},
			good:       self(a.device),
			wantStatus: http.StatusForbidden, wantReason: wire.ReasonOperatorMismatch,
		},
		{
			name:       "master stores credentials for its agent",
			bad:        forAgent(wire.RouteCapCredStore, "openrouter"),
			good:       forAgent(wire.RouteCapCredFetch, "openrouter"),
			wantStatus: http.StatusForbidden, wantReason: wire.ReasonCredStoreNotMasterSelf,
		},
		{
			name: "cred store rule beats unknown device",
			bad: mintCall{m.session, wire.RouteCapCredStore,
				capRequest(m.omni, a.omni, "openrouter", w.unknown), nil},
			good: mintCall{m.session, wire.RouteCapCredStore,
				capRequest(m.omni, m.omni, "openrouter", m.device), nil},
			wantStatus: http.StatusForbidden, wantReason: wire.ReasonCredStoreNotMasterSelf,
		},
		{
			name:       "unknown device",
			bad:        self(w.unknown),
			good:       self(a.device),
			wantStatus: http.StatusForbidden, wantReason: wire.ReasonDeviceNotActive,
		},
		{
			name:       "revoked device",
			bad:        self(w.revoked),
			good:       self(a.device),
			wantStatus: http.StatusForbidden, wantReason: wire.ReasonDeviceRevoked,
		},
		{
			name: "agent names another agent as actor",
			bad: mintCall{a.session, wire.RouteCapMemoryPut,
				capRequest(a.omni, b.omni, "memory:notes", a.device), nil},
			good:       self(a.device),
			wantStatus: http.StatusForbidden, wantReason: wire.ReasonDeviceBindingMismatch,
		},
		{
			name:       "agent uses another agent's device",
			bad:        self(b.device),
			good:       self(a.device),
			wantStatus: http.StatusForbidden, wantReason: wire.ReasonDeviceBindingMismatch,
		},
		{
			name: "master uses its own device for its agent",
			bad: mintCall{m.session, wire.RouteCapCredFetch,
				capRequest(m.omni, a.omni, "openrouter", m.device), nil},
			good:       forAgent(wire.RouteCapCredFetch, "openrouter"),
			wantStatus: http.StatusForbidden, wantReason: wire.ReasonDeviceBindingMismatch,
		},
		{
			name:       "device without the cap-mint role",
			bad:        self(w.noRole),
			good:       self(a.device),
			wantStatus: http.StatusForbidden, wantReason: wire.ReasonDeviceRoleMissing,
		},
		{
			name:       "pop timestamp 301 s old",
			bad:        self(a.device, agent.WithPop(a.device, now.Add(-301*time.Second))),
			good:       self(a.device, agent.WithPop(a.device, now.Add(-300*time.Second))),
			wantStatus: http.StatusForbidden, wantReason: wire.ReasonCapPopInvalid,
		},
		{
			name:       "pop timestamp 61 s ahead",
			bad:        self(a.device, agent.WithPop(a.device, now.Add(61*time.Second))),
			good:       self(a.device, agent.WithPop(a.device, now.Add(60*time.Second))),
			wantStatus: http.StatusForbidden, wantReason: wire.ReasonCapPopInvalid,
		},
		{
			name:       "pop signed by another device",
			bad:        self(a.device, agent.WithPop(b.device, now)),
			good:       self(a.device, agent.WithPop(a.device, now)),
			wantStatus: http.StatusForbidden, wantReason: wire.ReasonCapPopInvalid,
		},
		{
			name: "pop signed for another service",
			bad: self(a.device, agent.WithPop(a.device, now),
				setService("memory:other")),
			good:       self(a.device, agent.WithPop(a.device, now)),
			wantStatus: http.StatusForbidden, wantReason: wire.ReasonCapPopInvalid,
		},
		{
			name:       "device check beats pop",
			bad:        self(w.unknown, agent.WithPop(b.device, now)),
			good:       self(a.device, agent.WithPop(a.device, now)),
			wantStatus: http.StatusForbidden, wantReason: wire.ReasonDeviceNotActive,
		},
		{
			name:       "master mints for its agent outside its scope",
			bad:        forAgent(wire.RouteCapCredFetch, "github"),
			good:       forAgent(wire.RouteCapCredFetch, "openrouter"),
			wantStatus: http.StatusForbidden, wantReason: wire.ReasonServiceNotInScope,
		},
		{
			name: "pop beats scope",
			bad: forAgent(wire.RouteCapCredFetch, "github",
				agent.WithPop(b.device, now)),
			good: forAgent(wire.RouteCapCredFetch, "openrouter",
				agent.WithPop(a.device, now)),
			wantStatus: http.StatusForbidden, wantReason: wire.ReasonCapPopInvalid,
		},
		{
			name:       "memory for an agent without the namespace in scope",
			bad:        forAgent(wire.RouteCapMemoryPut, "memory:diary"),
			good:       forAgent(wire.RouteCapMemoryPut, "memory:notes"),
			wantStatus: http.StatusForbidden, wantReason: wire.ReasonServiceNotInScope,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := w.mint(tc.good)
			require.NoError(t, err, "control")

			_, _, err = w.mint(tc.bad)
			r := refusalOf(t, err)
			assert.Equal(t, tc.wantStatus, r.Status)
			assert.Equal(t, tc.wantReason, r.Reason, r.Message)
		})
	}
}

// TestCapMintExpiredSession checks that a session past its exp is unauthorized, beside
// the same session a moment earlier.
func TestCapMintExpiredSession(t *testing.T) {
	s := newStack(t)
	m := s.newMaster(t)
	call := func() error {
		_, _, err := s.client.MintCap(context.Background(), m.session, wire.RouteCapMemoryPut,
			capRequest(m.omni, m.omni, "memory:notes", m.device))
		return err
	}

	s.clock.Advance(time.Hour - time.Second)
	require.NoError(t, call())

	s.clock.Advance(2 * time.Second)
	r := refusalOf(t, call())
	assert.Equal(t, http.StatusUnauthorized, r.Status)
	assert.Equal(t, wire.ReasonUnauthorized, r.Reason)
}

// TestCapMintForeignSession checks that a session signed by another broker's key is
// unauthorized.
func TestCapMintForeignSession(t *testing.T) {
	s, other := newStack(t), newStack(t)
	m := s.newMaster(t)
	foreign, err := other.client.WalletSignIn(context.Background(), m.wallet)
	require.NoError(t, err)

	body := mustJSON(t, capRequest(m.omni, m.omni, "memory:notes", m.device))
	status, _ := s.post(t, wire.RouteCapMemoryPut, m.session, body)
	require.Equal(t, http.StatusOK, status)

	status, raw := s.post(t, wire.RouteCapMemoryPut, foreign, body)
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Equal(t, wire.ReasonUnauthorized, reasonOf(t, raw))
}

// TestCapMintInvalidInput sends each kind of bad input with a valid session and checks
// for 400 invalid_input, beside the valid request.
func TestCapMintInvalidInput(t *testing.T) {
	s := newStack(t)
	m := s.newMaster(t)
	valid := capRequest(m.omni, m.omni, "memory:notes", m.device)
	bare := m.omni.String()

	with := func(edit func(r map[string]any)) []byte {
		r := map[string]any{
			"operator_omni": valid.Operator, "actor_omni": valid.Actor,
			"service": valid.Service, "device_key_hash": valid.DeviceKeyHash,
		}
		edit(r)
		return mustJSON(t, r)
	}
	set := func(field string, v any) []byte {
		return with(func(r map[string]any) { r[field] = v })
	}

	status, raw := s.post(t, wire.RouteCapMemoryPut, m.session, mustJSON(t, valid))
	require.Equal(t, http.StatusOK, status, "control: %s", raw)
	status, raw = s.post(t, wire.RouteCapMemoryPut, m.session,
		set("service", strings.Repeat("s", 64)))
	require.Equal(t, http.StatusOK, status, "control, 64-character service: %s", raw)
	status, raw = s.post(t, wire.RouteCapMemoryPut, m.session,
		set("service", strings.Repeat("\u00e9", 64)))
	require.Equal(t, http.StatusOK, status, "control, 64 two-byte characters: %s", raw)

	tests := []struct {
		name string
		body []byte
	}{
		{"operator 0X prefix", set("operator_omni", "0X"+bare)},
		{"operator upper case", set("operator_omni", "0x"+strings.ToUpper(bare))},
		{"operator bare", set("operator_omni", bare)},
		{"operator 63 hex", set("operator_omni", "0x"+bare[:63])},
		{"operator 65 hex", set("operator_omni", "0x"+bare+"0")},
		{"operator not hex", set("operator_omni", "0x"+strings.Repeat("g", 64))},
		{"operator empty", set("operator_omni", "")},
		{"actor upper case", set("actor_omni", "0x"+strings.ToUpper(bare))},
		{"actor bare", set("actor_omni", bare)},
		{"device hash 0X prefix", set("device_key_hash", "0X"+valid.DeviceKeyHash[2:])},
		{"device hash short", set("device_key_hash", valid.DeviceKeyHash[:40])},
		{"device hash upper case", set("device_key_hash", strings.ToUpper(valid.DeviceKeyHash))},
		{"service empty", set("service", "")},
		{"service blank", set("service", "   ")},
		{"service 65 characters", set("service", strings.Repeat("s", 65))},
		{"service slash", set("service", "memory/notes")},
		{"service dot dot", set("service", "..")},
		{"service dot dot inside", set("service", "a..b")},
		{"service star", set("service", "memory:*")},
		{"service question mark", set("service", "memory:?")},
		{"service backslash", set("service", `memory\notes`)},
		{"service 65 two-byte characters", set("service", strings.Repeat("\u00e9", 65))},
		{"service NUL", set("service", "open\x00router")},
		{"service newline", set("service", "open\nrouter")},
		{"service trailing newline", set("service", "openrouter\n")},
		{"service C1 control", set("service", "open\u0085router")},
		{"operator missing", with(func(r map[string]any) { delete(r, "operator_omni") })},
		{"service missing", with(func(r map[string]any) { delete(r, "service") })},
		{"operator wrong type", set("operator_omni", 5)},
		{"operator null", set("operator_omni", nil)},
		{"ttl wrong type", set("ttl_seconds", "300")},
		{"ttl fraction", set("ttl_seconds", 300.5)},
		{"client_ts wrong type", set("client_ts", "now")},
		{"client_sig wrong type", set("client_sig", 7)},
		{"unknown field", set("operator", valid.Operator)},
		{"malformed JSON", []byte(`{"operator_omni": `)},
		{"not an object", []byte(`["operator_omni"]`)},
		{"empty body", nil},
		{"trailing data", append(mustJSON(t, valid), []byte(` {}`)...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := s.post(t, wire.RouteCapMemoryPut, m.session, tc.body)
			assert.Equal(t, http.StatusBadRequest, status, "answer: %s", raw)
			assert.Equal(t, wire.ReasonInvalidInput, reasonOf(t, raw))
		})
	}

	t.Run("bad input beats bad bearer", func(t *testing.T) {
		status, raw := s.post(t, wire.RouteCapMemoryPut, "not.a.jwt",
			set("operator_omni", bare))
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, wire.ReasonInvalidInput, reasonOf(t, raw))

		status, raw = s.post(t, wire.RouteCapMemoryPut, "not.a.jwt", mustJSON(t, valid))
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.Equal(t, wire.ReasonUnauthorized, reasonOf(t, raw))
	})

	t.Run("body over 1 MiB", func(t *testing.T) {
		big := set("service", strings.Repeat("s", 1<<20))
		status, raw := s.post(t, wire.RouteCapMemoryPut, m.session, big)
		assert.Equal(t, http.StatusRequestEntityTooLarge, status)
		assert.Equal(t, wire.ReasonPayloadTooLarge, reasonOf(t, raw))
	})
}

// TestCapMintToken checks the minted token on every route: the signature verifies with
// CapPublicKey, the payload is the canonical serialization in field order, and each
// field holds what the contract says.
func TestCapMintToken(t *testing.T) {
	w := newWorld(t)
	m, a := w.m, w.a
	epoch := w.chain.BumpEpoch()

	tests := []struct {
		name            string
		call            mintCall
		operator, actor omni.Omni
		service         string
		device          *evm.Key
	}{
		{
			name: "agent self memory put",
			call: mintCall{a.session, wire.RouteCapMemoryPut,
				capRequest(a.omni, a.omni, "memory:notes", a.device), nil},
			operator: a.omni, actor: a.omni, service: "memory:notes", device: a.device,
		},
		{
			name: "agent self memory get, service outside scope",
			call: mintCall{a.session, wire.RouteCapMemoryGet,
				capRequest(a.omni, a.omni, "memory:diary", a.device), nil},
			operator: a.omni, actor: a.omni, service: "memory:diary", device: a.device,
		},
		{
			name: "agent self cred store",
			call: mintCall{a.session, wire.RouteCapCredStore,
				capRequest(a.omni, a.omni, "openrouter", a.device), nil},
			operator: a.omni, actor: a.omni, service: "openrouter", device: a.device,
		},
		{
			name: "agent self cred fetch, service lowercased",
			call: mintCall{a.session, wire.RouteCapCredFetch,
				capRequest(a.omni, a.omni, "OpenRouter", a.device), nil},
			operator: a.omni, actor: a.omni, service: "openrouter", device: a.device,
		},
		{
			name: "master self memory put without any grant",
			call: mintCall{m.session, wire.RouteCapMemoryPut,
				capRequest(m.omni, m.omni, "memory:notes", m.device), nil},
			operator: m.omni, actor: m.omni, service: "memory:notes", device: m.device,
		},
		{
			name: "master for its agent, granted service",
			call: mintCall{m.session, wire.RouteCapCredFetch,
				capRequest(m.omni, a.omni, "openrouter", a.device), nil},
			operator: m.omni, actor: a.omni, service: "openrouter", device: a.device,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token, raw, err := w.mint(tc.call)
			require.NoError(t, err)
			route, ok := wire.CapRouteByPath(tc.call.route)
			require.True(t, ok)

			require.NoError(t, cap.Verify(w.srv.CapPublicKey(), token))
			assertCanonicalPayload(t, raw, token.Payload)

			p := token.Payload
			assert.Equal(t, tc.operator.Prefixed(), p.Operator)
			assert.Equal(t, tc.actor.Prefixed(), p.Actor)
			assert.Equal(t, tc.service, p.Service)
			assert.Equal(t, route.Op, p.Op)
			assert.Equal(t, route.DataClass, p.DataClass)
			assert.Equal(t, tc.device.DeviceKeyHash(), p.DeviceKeyHash)
			assert.Equal(t, epoch, p.K3Epoch)
			assert.Equal(t, start.Unix(), p.IssuedAt)
			assert.Equal(t, start.Unix()+wire.CapTTLDefault, p.ExpiresAt)
			assert.Regexp(t, `^[0-9a-f]{32}$`, p.Nonce)
			assert.Empty(t, token.ClientSig)
			assert.Nil(t, token.ClientTS)
		})
	}

	t.Run("agent self mint leaves the device bound to parent and agent", func(t *testing.T) {
		d, ok := w.chain.Device(a.device.DeviceKeyHash())
		require.True(t, ok)
		assert.Equal(t, m.omni, d.Parent)
		assert.Equal(t, a.omni, d.Agent)
		assert.False(t, d.Revoked)
	})

	t.Run("edited payload does not verify", func(t *testing.T) {
		token, _, err := w.mint(tests[0].call)
		require.NoError(t, err)
		token.Payload.Actor = w.b.omni.Prefixed()
		assert.ErrorIs(t, cap.Verify(w.srv.CapPublicKey(), token), cap.ErrBadSignature)
	})
}

// assertCanonicalPayload checks that the payload bytes of the answer are the canonical
// serialization: the field order and spelling a worker re-serializes to verify.
func assertCanonicalPayload(t *testing.T, raw []byte, p cap.Payload) {
	t.Helper()
	var answer struct {
		Payload json.RawMessage `json:"payload"`
	}
	require.NoError(t, json.Unmarshal(raw, &answer))
	var compact bytes.Buffer
	require.NoError(t, json.Compact(&compact, answer.Payload))
	assert.Equal(t, string(p.Canonical()), compact.String())

	dec := json.NewDecoder(bytes.NewReader(answer.Payload))
	var keys []string
	_, err := dec.Token() // {
	require.NoError(t, err)
	for dec.More() {
		k, err := dec.Token()
		require.NoError(t, err)
		keys = append(keys, k.(string))
		var skip json.RawMessage
		require.NoError(t, dec.Decode(&skip))
	}
	assert.Equal(t, []string{"operator_omni", "actor_omni", "service", "op", "data_class",
		"device_key_hash", "k3_epoch", "issued_at", "expires_at", "nonce"}, keys)
}

// TestCapMintPopEcho checks that a checked proof of possession is echoed in the token.
func TestCapMintPopEcho(t *testing.T) {
	w := newWorld(t)
	a := w.a
	req := capRequest(a.omni, a.omni, "memory:notes", a.device)

	token, raw, err := w.mint(mintCall{a.session, wire.RouteCapMemoryPut, req,
		[]agent.MintOption{agent.WithPop(a.device, start)}})
	require.NoError(t, err)

	require.NotNil(t, token.ClientTS)
	assert.Equal(t, start.Unix(), *token.ClientTS)
	assert.Regexp(t, `^0x[0-9a-f]{130}$`, token.ClientSig)
	assert.Regexp(t, `^[0-9a-f]{32}$`, token.ClientNonce)
	assert.Contains(t, string(raw), `"client_sig":"`+token.ClientSig+`"`)
	require.NoError(t, cap.Verify(w.srv.CapPublicKey(), token))

	// The echo is what the worker re-checks: it must recover to the cap's device.
	signer, err := evm.RecoverPersonal(evm.CapPop{
		Operator: a.omni, Actor: a.omni, Service: token.Payload.Service, Op: token.Payload.Op,
		DataClass: token.Payload.DataClass, ClientNonce: token.ClientNonce,
		ClientTS: *token.ClientTS,
	}.Preimage(), token.ClientSig)
	require.NoError(t, err)
	hash, err := evm.DeviceKeyHash(signer)
	require.NoError(t, err)
	assert.Equal(t, token.Payload.DeviceKeyHash, hash)

	t.Run("partial pop is ignored", func(t *testing.T) {
		sig := "0xdead"
		partial := req
		partial.ClientSig = &sig
		token, _, err := w.mint(mintCall{a.session, wire.RouteCapMemoryPut, partial, nil})
		require.NoError(t, err)
		assert.Empty(t, token.ClientSig)
	})
}

// TestCapMintTTL checks the default and the clamping of ttl_seconds.
func TestCapMintTTL(t *testing.T) {
	s := newStack(t)
	m := s.newMaster(t)
	req := capRequest(m.omni, m.omni, "memory:notes", m.device)

	tests := []struct {
		name string
		ttl  *int64
		want int64
	}{
		{"absent", nil, 300},
		{"negative", ptr[int64](-5), 60},
		{"zero", ptr[int64](0), 60},
		{"below minimum", ptr[int64](59), 60},
		{"minimum", ptr[int64](60), 60},
		{"inside", ptr[int64](1000), 1000},
		{"maximum", ptr[int64](1800), 1800},
		{"above maximum", ptr[int64](1801), 1800},
		{"huge", ptr[int64](1 << 62), 1800},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := req
			r.TTLSeconds = tc.ttl
			token, _, err := s.client.MintCap(context.Background(), m.session,
				wire.RouteCapMemoryGet, r)
			require.NoError(t, err)
			assert.Equal(t, tc.want, token.Payload.ExpiresAt-token.Payload.IssuedAt)
		})
	}
}

func ptr[T any](v T) *T { return &v }
