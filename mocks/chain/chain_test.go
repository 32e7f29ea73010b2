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

func TestBackdateIsOneShotPerKind(t *testing.T) {
	m := chain.NewMemory()
	m.Backdate(alice, 3600, 1, 2)

	assert.EqualValues(t, 0, m.TakeBackdate(bob, chain.BackdateCap), "other identities")
	assert.EqualValues(t, 3600, m.TakeBackdate(alice, chain.BackdateCap))
	assert.EqualValues(t, 0, m.TakeBackdate(alice, chain.BackdateCap), "used up")
	assert.EqualValues(t, 3600, m.TakeBackdate(alice, chain.BackdateOIDC))
	assert.EqualValues(t, 3600, m.TakeBackdate(alice, chain.BackdateOIDC))
	assert.EqualValues(t, 0, m.TakeBackdate(alice, chain.BackdateOIDC))
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
	assert.EqualValues(t, 60, m.TakeBackdate(bob, chain.BackdateCap))
}

func TestAdminRefusesBadInput(t *testing.T) {
	m := chain.NewMemory()
	srv := httptest.NewServer(chain.AdminHandler(m, "t"))
	t.Cleanup(srv.Close)
	reg := func(hash, parent, agent string) string {
		return `{"device_key_hash":"` + hash + `","parent_omni":"` + parent +
			`","agent_omni":"` + agent + `"}`
	}
	cases := map[string]struct{ route, body string }{
		"malformed": {chain.RouteRegister, `{`},
		"bare omni": {chain.RouteRegister, reg(hash('a'), master.String(), alice.Prefixed())},
		"bad hash":  {chain.RouteRegister, reg("0x12", master.Prefixed(), alice.Prefixed())},
		"unknown field": {chain.RouteGrant,
			`{"actor_omni":"` + alice.Prefixed() + `","services":[],"x":1}`},
		"backdate zero": {chain.RouteBackdate,
			`{"omni":"` + alice.Prefixed() + `","seconds":0}`},
		"revoke unknown": {chain.RouteRevoke, `{"device_key_hash":"` + hash('f') + `"}`},
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
			assert.GreaterOrEqual(t, r.Status, 400)
			assert.Less(t, r.Status, 500)
			assert.NotEmpty(t, r.Reason)
		})
	}
	_, ok := m.Device(hash('a'))
	assert.False(t, ok)
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
