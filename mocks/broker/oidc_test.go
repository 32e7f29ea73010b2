package broker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/mocks/chain"
	"github.com/agentkeys/harness/protocol/wire"
)

// jwksKey reads the broker's JWKS and rebuilds its one public key, so that a JWT that
// verifies under it proves the JWKS is what an STS verifier needs.
func jwksKey(t *testing.T, s *stack) (*ecdsa.PublicKey, wire.JWK) {
	t.Helper()
	set, err := s.client.JWKS(context.Background())
	require.NoError(t, err)
	require.Len(t, set.Keys, 1)
	k := set.Keys[0]
	assert.Equal(t, "EC", k.Kty)
	assert.Equal(t, "P-256", k.Crv)
	assert.Equal(t, "sig", k.Use)
	assert.Equal(t, "ES256", k.Alg)
	assert.Equal(t, s.srv.OIDCKeyID(), k.Kid)

	x, err := base64.RawURLEncoding.DecodeString(k.X)
	require.NoError(t, err)
	y, err := base64.RawURLEncoding.DecodeString(k.Y)
	require.NoError(t, err)
	require.Len(t, x, 32)
	require.Len(t, y, 32)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(),
		append(append([]byte{4}, x...), y...))
	require.NoError(t, err)
	assert.True(t, pub.Equal(s.srv.OIDCPublicKey()))
	return pub, k
}

func TestMintOIDCClaims(t *testing.T) {
	s := newStack(t)
	m := s.newMaster(t)
	a := s.pairAgent(t, m, "alice")
	pub, jwk := jwksKey(t, s)
	wallet := m.wallet.Address()

	tests := []struct {
		name    string
		session string
		sub     string
		actor   string
	}{
		{"master", m.session, "agentkeys:agent:" + wallet, m.omni.String()},
		{"agent", a.session, "agentkeys:agent:" + a.omni.String(), a.omni.String()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ans, err := s.client.MintOIDC(context.Background(), tc.session)
			require.NoError(t, err)
			assert.Equal(t, wallet, ans.Wallet)
			assert.Equal(t, start.Unix()+300, ans.Expiration)

			claims := jwt.MapClaims{}
			token, err := jwt.ParseWithClaims(ans.JWT, claims, func(*jwt.Token) (any, error) {
				return pub, nil
			}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(s.clock.Now),
				jwt.WithAudience("sts.amazonaws.com"))
			require.NoError(t, err)
			assert.Equal(t, jwk.Kid, token.Header["kid"])

			assert.Equal(t, jwt.MapClaims{
				"iss":                   s.srv.URL,
				"sub":                   tc.sub,
				"aud":                   "sts.amazonaws.com",
				"iat":                   float64(start.Unix()),
				"exp":                   float64(start.Unix() + 300),
				"agentkeys_user_wallet": wallet,
				"agentkeys_actor_omni":  tc.actor,
				"https://aws.amazon.com/tags": map[string]any{
					"principal_tags": map[string]any{
						"agentkeys_user_wallet": []any{wallet},
						"agentkeys_actor_omni":  []any{tc.actor},
					},
					"transitive_tag_keys": []any{"agentkeys_user_wallet",
						"agentkeys_actor_omni"},
				},
			}, claims)

			// On the broker's clock, so that only the signature can fail.
			_, err = jwt.Parse(ans.JWT, func(*jwt.Token) (any, error) {
				return s.srv.SessionPublicKey(), nil
			}, jwt.WithTimeFunc(s.clock.Now))
			assert.ErrorIs(t, err, jwt.ErrTokenSignatureInvalid,
				"the OIDC key is not the session key")
		})
	}
}

// TestMintOIDCDoctored: the JWTs a test asked to have dated back or misissued come out
// in the chain's order, each signed with the OIDC key and wrong in its one way only; the
// next is sound again, and another identity's are never touched.
func TestMintOIDCDoctored(t *testing.T) {
	s := newStack(t)
	m := s.newMaster(t)
	a := s.pairAgent(t, m, "alice")
	other := s.pairAgent(t, m, "bob")
	pub, _ := jwksKey(t, s)
	s.chain.Misissue(a.omni, 1, 1)
	s.chain.Backdate(a.omni, 3600, 0, 1)

	mint := func(t *testing.T, session string) jwt.MapClaims {
		t.Helper()
		ans, err := s.client.MintOIDC(context.Background(), session)
		require.NoError(t, err)
		claims := jwt.MapClaims{}
		// Signature only: each doctored JWT fails a claim check by design.
		_, err = jwt.ParseWithClaims(ans.JWT, claims, func(*jwt.Token) (any, error) {
			return pub, nil
		}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithoutClaimsValidation())
		require.NoError(t, err, "signed with the OIDC key")
		return claims
	}
	// One sequence, not subtests: each JWT is the next one the broker mints.
	steps := []struct {
		name   string
		exp    int64
		aud    string
		tagged bool
	}{
		{"backdated", start.Unix() - 3600 + 300, "sts.amazonaws.com", true},
		{"wrong audience", start.Unix() + 300, "agentkeys:broker", true},
		{"untagged", start.Unix() + 300, "sts.amazonaws.com", false},
		{"sound again", start.Unix() + 300, "sts.amazonaws.com", true},
	}
	for _, step := range steps {
		// The other identity's JWT first: were it to take alice's, hers would come out
		// of order.
		c := mint(t, other.session)
		assert.Equal(t, "sts.amazonaws.com", c["aud"], "%s: other identity", step.name)
		assert.Equal(t, other.omni.String(), c["agentkeys_actor_omni"], "%s: other identity",
			step.name)

		c = mint(t, a.session)
		assert.Equal(t, step.aud, c["aud"], step.name)
		assert.EqualValues(t, step.exp, c["exp"], step.name)
		assert.Equal(t, "agentkeys:agent:"+a.omni.String(), c["sub"], step.name)
		if step.tagged {
			assert.Equal(t, a.omni.String(), c["agentkeys_actor_omni"], step.name)
			assert.Contains(t, c, "https://aws.amazon.com/tags", step.name)
		} else {
			assert.NotContains(t, c, "agentkeys_actor_omni", step.name)
			assert.NotContains(t, c, "https://aws.amazon.com/tags", step.name)
		}
	}
}

// TestMintOIDCAgentDevice checks that an agent gets a JWT only while its device is
// active and bound to (parent, agent), each refusal beside the agent whose device is.
func TestMintOIDCAgentDevice(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	m := s.newMaster(t)
	good := s.pairAgent(t, m, "good")

	tests := []struct {
		name       string
		setup      func(t *testing.T, a agentID)
		wantReason string
	}{
		{"device revoked", func(t *testing.T, a agentID) {
			require.NoError(t, s.chain.Revoke(a.device.DeviceKeyHash()))
		}, wire.ReasonDeviceRevoked},
		{"device rebound to the agent alone", func(t *testing.T, a agentID) {
			require.NoError(t, s.chain.Register(chain.Device{
				DeviceKeyHash: a.device.DeviceKeyHash(), Parent: a.omni, Agent: a.omni,
				Roles: []string{chain.RoleCapMint},
			}))
		}, wire.ReasonDeviceBindingMismatch},
		{"device rebound to another agent", func(t *testing.T, a agentID) {
			require.NoError(t, s.chain.Register(chain.Device{
				DeviceKeyHash: a.device.DeviceKeyHash(), Parent: m.omni, Agent: good.omni,
				Roles: []string{chain.RoleCapMint},
			}))
		}, wire.ReasonDeviceBindingMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := s.pairAgent(t, m, "agent")
			_, err := s.client.MintOIDC(ctx, a.session)
			require.NoError(t, err, "before the change")

			tc.setup(t, a)
			_, err = s.client.MintOIDC(ctx, a.session)
			r := refusalOf(t, err)
			assert.Equal(t, http.StatusForbidden, r.Status)
			assert.Equal(t, tc.wantReason, r.Reason)

			_, err = s.client.MintOIDC(ctx, good.session)
			assert.NoError(t, err, "control")
		})
	}

	t.Run("device never registered", func(t *testing.T) {
		device := newKey(t)
		req, err := s.client.PairingRequest(ctx, device)
		require.NoError(t, err)
		_, err = s.client.PairingClaim(ctx, m.session, req.PairingCode, "unbound", nil)
		require.NoError(t, err)
		poll, err := s.client.PairingPoll(ctx, device, req.RequestID)
		require.NoError(t, err)

		_, err = s.client.MintOIDC(ctx, poll.SessionJWT)
		r := refusalOf(t, err)
		assert.Equal(t, http.StatusForbidden, r.Status)
		assert.Equal(t, wire.ReasonDeviceNotActive, r.Reason)
	})

	t.Run("no session", func(t *testing.T) {
		_, err := s.client.MintOIDC(ctx, "")
		r := refusalOf(t, err)
		assert.Equal(t, http.StatusUnauthorized, r.Status)
		assert.Equal(t, wire.ReasonUnauthorized, r.Reason)
	})
}

func TestDiscoveryAndHealth(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()

	d, err := s.client.Discovery(ctx)
	require.NoError(t, err)
	assert.Equal(t, s.srv.URL, d.Issuer)
	assert.Equal(t, s.srv.URL+"/.well-known/jwks.json", d.JWKSURI)
	assert.Equal(t, []string{"ES256"}, d.IDTokenSigningAlgValuesSupported)
	assert.Contains(t, d.ResponseTypesSupported, "id_token")
	assert.Contains(t, d.SubjectTypesSupported, "public")

	h, err := s.client.Healthz(ctx)
	require.NoError(t, err)
	assert.True(t, h.OK)

	jwksKey(t, s)
}

func TestRoutesAndAdmin(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	m := s.newMaster(t)
	device := newKey(t)

	t.Run("admin routes need the token", func(t *testing.T) {
		bad := &chain.Admin{URL: s.srv.URL, Token: "wrong"}
		r := refusalOf(t, bad.Register(ctx, device.DeviceKeyHash(), m.omni, m.omni))
		assert.Equal(t, http.StatusUnauthorized, r.Status)

		good := &chain.Admin{URL: s.srv.URL, Token: adminToken}
		require.NoError(t, good.Register(ctx, device.DeviceKeyHash(), m.omni, m.omni))
		_, ok := s.chain.Device(device.DeviceKeyHash())
		assert.True(t, ok)
	})

	t.Run("empty admin token refuses every admin call", func(t *testing.T) {
		s2 := newStackWithToken(t, "")
		admin := &chain.Admin{URL: s2.srv.URL, Token: ""}
		_, err := admin.BumpEpoch(ctx)
		r := refusalOf(t, err)
		assert.Equal(t, http.StatusUnauthorized, r.Status)
	})

	tests := []struct {
		name, method, route string
		wantStatus          int
		wantReason          string
	}{
		{"unknown route", http.MethodGet, "/v1/nothing", http.StatusNotFound,
			wire.ReasonNotFound},
		{"GET on a cap route", http.MethodGet, wire.RouteCapMemoryPut,
			http.StatusMethodNotAllowed, wire.ReasonMethodNotAllowed},
		{"POST on discovery", http.MethodPost, wire.RouteDiscovery,
			http.StatusMethodNotAllowed, wire.ReasonMethodNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := s.do(t, tc.method, tc.route, "", nil)
			assert.Equal(t, tc.wantStatus, status)
			assert.Equal(t, tc.wantReason, reasonOf(t, raw))
		})
	}
}
