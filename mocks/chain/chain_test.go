package chain_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/mocks/chain"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/refusal"
	"github.com/agentkeys/harness/protocol/wire"
)

var (
	master = omni.Master("0x1111111111111111111111111111111111111111")
	alice  = mustAgent("alice")
	bob    = mustAgent("bob")
)

func mustAgent(label string) omni.Omni {
	o, err := omni.Agent(master, label, 0)
	if err != nil {
		panic("chain_test: " + err.Error())
	}
	return o
}

func hash(c byte) string { return "0x" + strings.Repeat(string(c), 64) }

func TestBoundTo(t *testing.T) {
	d := chain.Device{Parent: master, Agent: alice}
	cases := []struct {
		name            string
		operator, actor omni.Omni
		bound           bool
	}{
		{"pairing binding", master, alice, true},
		{"agent for itself", alice, alice, true},
		{"master for itself", master, master, false},
		{"another actor", master, bob, false},
		{"agent for another", alice, bob, false},
		{"another as operator", bob, alice, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.bound, d.BoundTo(tc.operator, tc.actor))
		})
	}
}

func TestCheckOrder(t *testing.T) {
	m := chain.NewMemory()
	require.NoError(t, m.Register(chain.Device{DeviceKeyHash: hash('a'), Parent: master,
		Agent: alice, Roles: []string{chain.RoleCapMint}}))
	require.NoError(t, m.Register(chain.Device{DeviceKeyHash: hash('b'), Parent: master,
		Agent: bob}))
	require.NoError(t, m.Register(chain.Device{DeviceKeyHash: hash('c'), Parent: master,
		Agent: bob, Roles: []string{chain.RoleCapMint}}))
	require.NoError(t, m.Revoke(hash('c')))
	m.Grant(alice, "granted")
	current, stale := m.K3Epoch(), m.K3Epoch()+1

	cases := []struct {
		name            string
		device          string
		operator, actor omni.Omni
		service         string
		epoch           *uint64
		want            chain.Failure
	}{
		{"all good, self", hash('a'), alice, alice, "anything", &current, 0},
		{"all good, granted", hash('a'), master, alice, "granted", &current, 0},
		{"unknown device", hash('d'), master, alice, "granted", &current, chain.DeviceUnknown},
		{"revoked before binding", hash('c'), master, alice, "x", nil, chain.DeviceRevoked},
		{"binding before role", hash('b'), master, alice, "x", nil, chain.BindingMismatch},
		{"role missing", hash('b'), master, bob, "x", nil, chain.RoleMissing},
		{"not in scope", hash('a'), master, alice, "other", &current, chain.NotInScope},
		{"scope skipped for self", hash('a'), alice, alice, "other", &current, 0},
		{"stale epoch", hash('a'), alice, alice, "x", &stale, chain.EpochMismatch},
		{"epoch unchecked when nil", hash('a'), alice, alice, "x", nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := chain.Check(m, tc.device, tc.operator, tc.actor, tc.service, tc.epoch)
			assert.Equal(t, tc.want, chain.FailureOf(err), "err: %v", err)
		})
	}
}

// TestDoctoredMints: each pending mint is used once, the JWTs in the fixed order
// whatever order they were asked for in, and no other identity's mints change.
func TestDoctoredMints(t *testing.T) {
	m := chain.NewMemory()
	m.Misissue(alice, 1, 2)
	m.Backdate(alice, 3600, 1, 1)

	assert.EqualValues(t, 0, m.TakeCapBackdate(bob), "other identities")
	assert.EqualValues(t, 3600, m.TakeCapBackdate(alice))
	assert.EqualValues(t, 0, m.TakeCapBackdate(alice), "used up")

	type jwt struct {
		flaw chain.OIDCFlaw
		back int64
	}
	take := func(o omni.Omni) jwt {
		f, back := m.TakeOIDC(o)
		return jwt{f, back}
	}
	assert.Equal(t, jwt{chain.OIDCSound, 0}, take(bob), "other identities")
	for i, want := range []jwt{
		{chain.OIDCBackdated, 3600},
		{chain.OIDCWrongAudience, 0},
		{chain.OIDCUntagged, 0},
		{chain.OIDCUntagged, 0},
		{chain.OIDCSound, 0},
	} {
		assert.Equal(t, want, take(alice), "JWT %d", i)
	}

	m.Misissue(bob, 1, 0)
	m.Misissue(bob, 0, 1)
	assert.Equal(t, jwt{chain.OIDCUntagged, 0}, take(bob), "a Misissue replaces the last")
	assert.Equal(t, jwt{chain.OIDCSound, 0}, take(bob))
}

func TestAdminRoutesNeedTheToken(t *testing.T) {
	m := chain.NewMemory()
	srv := httptest.NewServer(chain.AdminHandler(m, "secret-token"))
	t.Cleanup(srv.Close)

	for _, token := range []string{"", "wrong"} {
		bad := &chain.Admin{URL: srv.URL, Token: token}
		err := bad.Register(t.Context(), hash('a'), master, alice)
		var r *refusal.Refusal
		require.ErrorAs(t, err, &r, "token %q", token)
		assert.Equal(t, http.StatusUnauthorized, r.Status)
		_, ok := m.Device(hash('a'))
		assert.False(t, ok, "a refused call registered the device")
	}

	good := &chain.Admin{URL: srv.URL, Token: "secret-token"}
	require.NoError(t, good.Register(t.Context(), hash('a'), master, alice))
	d, ok := m.Device(hash('a'))
	require.True(t, ok)
	assert.True(t, d.HasRole(chain.RoleCapMint))
	require.NoError(t, good.Grant(t.Context(), alice, "svc"))
	assert.True(t, m.InScope(alice, "SVC"))
	require.NoError(t, good.Revoke(t.Context(), hash('a')))
	d, _ = m.Device(hash('a'))
	assert.True(t, d.Revoked)
	epoch, err := good.BumpEpoch(t.Context())
	require.NoError(t, err)
	assert.EqualValues(t, 2, epoch)
	require.NoError(t, good.Backdate(t.Context(), bob, 60, 1, 0))
	assert.EqualValues(t, 60, m.TakeCapBackdate(bob))
	require.NoError(t, good.Misissue(t.Context(), bob, 0, 1))
	flaw, _ := m.TakeOIDC(bob)
	assert.Equal(t, chain.OIDCUntagged, flaw)
}

func TestAdminRefusesBadInput(t *testing.T) {
	m := chain.NewMemory()
	srv := httptest.NewServer(chain.AdminHandler(m, "t"))
	t.Cleanup(srv.Close)
	reg := func(hash, parent, agent string) string {
		return `{"device_key_hash":"` + hash + `","parent_omni":"` + parent +
			`","agent_omni":"` + agent + `"}`
	}
	const invalid = "invalid_input"
	cases := map[string]struct {
		route, body string
		status      int
		reason      string
	}{
		"malformed": {chain.RouteRegister, `{`, 400, invalid},
		"bare omni": {chain.RouteRegister, reg(hash('a'), master.String(), alice.Prefixed()),
			400, invalid},
		"bad hash": {chain.RouteRegister, reg("0x12", master.Prefixed(), alice.Prefixed()),
			400, invalid},
		"unknown field": {chain.RouteGrant,
			`{"actor_omni":"` + alice.Prefixed() + `","services":[],"x":1}`, 400, invalid},
		"backdate zero": {chain.RouteBackdate,
			`{"omni":"` + alice.Prefixed() + `","seconds":0}`, 400, invalid},
		"revoke unknown": {chain.RouteRevoke, `{"device_key_hash":"` + hash('f') + `"}`,
			404, "device_not_found"},
		"misissue negative": {chain.RouteMisissue,
			`{"omni":"` + alice.Prefixed() + `","wrong_audience":-1}`, 400, invalid},
		"misissue bare omni": {chain.RouteMisissue, `{"omni":"` + alice.String() + `"}`,
			400, invalid},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, srv.URL+tc.route,
				strings.NewReader(tc.body))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer t")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			r := refusal.FromResponse(resp)
			assert.Equal(t, tc.status, r.Status)
			assert.Equal(t, tc.reason, r.Reason)
		})
	}
	_, ok := m.Device(hash('a'))
	assert.False(t, ok)
	flaw, _ := m.TakeOIDC(alice)
	assert.Equal(t, chain.OIDCSound, flaw, "a refused misissue armed a JWT")
}

// TestAdminUnknownRoutes checks that a route or method the admin handler does not serve
// is refused in the JSON error shape with a reason, like every other refusal, beside a
// route it does serve.
func TestAdminUnknownRoutes(t *testing.T) {
	m := chain.NewMemory()
	srv := httptest.NewServer(chain.AdminHandler(m, "t"))
	t.Cleanup(srv.Close)

	cases := []struct {
		name, method, route string
		wantStatus          int
		wantReason          string
	}{
		{"served route", http.MethodPost, chain.RouteEpoch, http.StatusOK, ""},
		{"unknown route", http.MethodPost, "/v1/chain/nothing", http.StatusNotFound,
			wire.ReasonNotFound},
		{"below a route", http.MethodPost, chain.RouteEpoch + "/x", http.StatusNotFound,
			wire.ReasonNotFound},
		{"GET on a route", http.MethodGet, chain.RouteRegister,
			http.StatusMethodNotAllowed, wire.ReasonMethodNotAllowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.route, strings.NewReader(`{}`))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer t")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, tc.wantStatus, resp.StatusCode)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			if tc.wantReason == "" {
				return
			}
			r := refusal.FromResponse(resp)
			assert.Equal(t, tc.wantReason, r.Reason)
			assert.NotEmpty(t, r.Message)
		})
	}
}
