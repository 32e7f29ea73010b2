package e2e

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/fixtures"
	"github.com/agentkeys/harness/protocol/refusal"
	"github.com/agentkeys/harness/protocol/wire"
)

// TestMasterCapMint covers what a master may mint: for itself without any scope grant,
// and for its agent only within the agent's scope.
func TestMasterCapMint(t *testing.T) {
	t.Parallel()
	master := stack.NewMaster(t)
	granted := agent.MemoryService("granted")
	alice := master.NewAgent(t, "alice", fixtures.WithScope(granted))

	cases := []struct {
		name    string
		actor   func() (string, string) // actor omni, device key hash
		service string
		reason  string // empty: must succeed
	}{
		{"master-self-no-grant", func() (string, string) {
			return master.Omni.Prefixed(), master.Key.DeviceKeyHash()
		}, agent.MemoryService("never-granted"), ""},
		{"cross-actor-outside-scope", func() (string, string) {
			return alice.Omni.Prefixed(), alice.DeviceKeyHash
		}, agent.MemoryService("not-granted"), wire.ReasonServiceNotInScope},
		{"cross-actor-granted", func() (string, string) {
			return alice.Omni.Prefixed(), alice.DeviceKeyHash
		}, granted, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			actor, device := tc.actor()
			b := &agent.Broker{URL: stack.Host.Broker}
			tok, _, err := b.MintCap(t.Context(), master.Session, wire.RouteCapMemoryPut,
				wire.CapRequest{Operator: master.Omni.Prefixed(), Actor: actor,
					Service: tc.service, DeviceKeyHash: device})
			if tc.reason == "" {
				require.NoError(t, err)
				assert.Equal(t, actor, tok.Payload.Actor)
				assert.Equal(t, tc.service, tok.Payload.Service)
				return
			}
			var r *refusal.Refusal
			require.ErrorAs(t, err, &r)
			assert.Equal(t, 403, r.Status)
			assert.Equal(t, tc.reason, r.Reason)
		})
	}
}
