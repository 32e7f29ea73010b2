package broker_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/wire"
)

func TestWalletSignInMessage(t *testing.T) {
	s := newStack(t)
	key := newKey(t)

	ans, err := s.client.WalletStart(context.Background(), key.Address(), 8453)
	require.NoError(t, err)
	host := strings.TrimPrefix(s.srv.URL, "http://")

	lines := strings.Split(ans.SIWEMessage, "\n")
	require.Len(t, lines, 10, ans.SIWEMessage)
	assert.Equal(t, host+" wants you to sign in with your Ethereum account:", lines[0])
	assert.Equal(t, key.Address(), strings.ToLower(lines[1]))
	assert.NotEqual(t, key.Address(), lines[1], "the address is in EIP-55 mixed case")
	assert.Empty(t, lines[2])
	assert.NotEmpty(t, lines[3])
	assert.Empty(t, lines[4])
	assert.Equal(t, "URI: "+s.srv.URL, lines[5])
	assert.Equal(t, "Version: 1", lines[6])
	assert.Equal(t, "Chain ID: 8453", lines[7])
	assert.Regexp(t, regexp.MustCompile(`^Nonce: [A-Za-z0-9]{8,}$`), lines[8])
	assert.Equal(t, "Issued At: "+start.UTC().Format("2006-01-02T15:04:05Z"), lines[9])
}

func TestWalletVerify(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	key, other := newKey(t), newKey(t)

	t.Run("a request id works once", func(t *testing.T) {
		ans, err := s.client.WalletStart(ctx, key.Address(), 1)
		require.NoError(t, err)
		sig := key.SignPersonal([]byte(ans.SIWEMessage))

		session, err := s.client.WalletVerify(ctx, ans.RequestID, sig)
		require.NoError(t, err)
		assert.NotEmpty(t, session)

		_, err = s.client.WalletVerify(ctx, ans.RequestID, sig)
		r := refusalOf(t, err)
		assert.Equal(t, http.StatusUnauthorized, r.Status)
		assert.Equal(t, wire.ReasonRequestNotFound, r.Reason)
	})

	t.Run("signature by another wallet", func(t *testing.T) {
		ans, err := s.client.WalletStart(ctx, key.Address(), 1)
		require.NoError(t, err)
		_, err = s.client.WalletVerify(ctx, ans.RequestID,
			other.SignPersonal([]byte(ans.SIWEMessage)))
		r := refusalOf(t, err)
		assert.Equal(t, http.StatusUnauthorized, r.Status)
		assert.Equal(t, wire.ReasonSignatureInvalid, r.Reason)
	})

	t.Run("signature over another text", func(t *testing.T) {
		ans, err := s.client.WalletStart(ctx, key.Address(), 1)
		require.NoError(t, err)
		_, err = s.client.WalletVerify(ctx, ans.RequestID,
			key.SignPersonal([]byte(ans.SIWEMessage+" ")))
		r := refusalOf(t, err)
		assert.Equal(t, http.StatusUnauthorized, r.Status)
		assert.Equal(t, wire.ReasonSignatureInvalid, r.Reason)
	})

	t.Run("invalid input", func(t *testing.T) {
		tests := []struct {
			name, route, body string
		}{
			{"start address not hex", wire.RouteWalletStart,
				`{"address":"0x` + strings.Repeat("z", 40) + `","chain_id":1}`},
			{"start address without 0x", wire.RouteWalletStart,
				`{"address":"` + key.Address()[2:] + `","chain_id":1}`},
			{"start chain id missing", wire.RouteWalletStart,
				`{"address":"` + key.Address() + `"}`},
			{"start chain id zero", wire.RouteWalletStart,
				`{"address":"` + key.Address() + `","chain_id":0}`},
			{"start chain id string", wire.RouteWalletStart,
				`{"address":"` + key.Address() + `","chain_id":"1"}`},
			{"verify signature missing", wire.RouteWalletVerify, `{"request_id":"x"}`},
			{"verify malformed", wire.RouteWalletVerify, `{"request_id":`},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				status, raw := s.post(t, tc.route, "", []byte(tc.body))
				assert.Equal(t, http.StatusBadRequest, status)
				assert.Equal(t, wire.ReasonInvalidInput, reasonOf(t, raw))
			})
		}
	})
}

// TestSessionClaims checks the claims of the master's and the agent's session JWTs,
// exactly.
func TestSessionClaims(t *testing.T) {
	s := newStack(t)
	m := s.newMaster(t)
	a := s.pairAgent(t, m, "alice")

	parse := func(t *testing.T, token string) jwt.MapClaims {
		t.Helper()
		claims := jwt.MapClaims{}
		parsed, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) {
			return s.srv.SessionPublicKey(), nil
		}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(s.clock.Now))
		require.NoError(t, err)
		require.True(t, parsed.Valid)
		return claims
	}
	keys := func(m map[string]any) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		return out
	}
	registered := []string{"iss", "sub", "aud", "exp", "iat", "jti", "agentkeys"}

	t.Run("master", func(t *testing.T) {
		c := parse(t, m.session)
		assert.ElementsMatch(t, registered, keys(c))
		assert.Equal(t, s.srv.URL, c["iss"])
		assert.Equal(t, "agentkeys:user:"+m.omni.String(), c["sub"])
		assert.Equal(t, "agentkeys:broker", c["aud"])
		assert.InDelta(t, float64(start.Unix()), c["iat"], 0)
		assert.InDelta(t, float64(start.Unix()+3600), c["exp"], 0)
		assert.Regexp(t, `^[0-9a-f]{32}$`, c["jti"])

		id, ok := c["agentkeys"].(map[string]any)
		require.True(t, ok)
		assert.Equal(t, map[string]any{
			"omni_account":   m.omni.String(),
			"wallet_address": m.wallet.Address(),
			"identity_type":  "wallet",
		}, id)
	})

	t.Run("agent", func(t *testing.T) {
		c := parse(t, a.session)
		assert.ElementsMatch(t, registered, keys(c))
		assert.Equal(t, "agentkeys:user:"+a.omni.String(), c["sub"])
		assert.Equal(t, "agentkeys:broker", c["aud"])

		want, err := omni.Agent(m.omni, "alice", 0)
		require.NoError(t, err)
		require.Equal(t, want, a.omni)
		id, ok := c["agentkeys"].(map[string]any)
		require.True(t, ok)
		assert.Equal(t, map[string]any{
			"omni_account":    a.omni.String(),
			"wallet_address":  m.wallet.Address(),
			"identity_type":   "agent",
			"parent_omni":     m.omni.String(),
			"derivation_path": "alice/0",
			"device_pubkey":   a.device.Address(),
			"email":           "alice-" + a.omni.String()[:8] + "@agents.test",
		}, id)
	})
}
