package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/e2e/isolation"
	"github.com/agentkeys/harness/fixtures"
)

// assertProbe reports a probe run as one subtest per attempt, named after the attempt,
// plus the host-side checks.
func assertProbe(t *testing.T, o isolation.Outcome) {
	t.Helper()
	require.NotEmpty(t, o.Lines, "the probe reported nothing; stderr: %s", o.Stderr)
	for _, l := range o.Lines {
		t.Run(l.ID(), func(t *testing.T) {
			assert.True(t, l.Pass, "%s at %s: expected %s, observed status %d reason %q "+
				"code %q %s", l.Name, l.Target, l.Expect, l.Status, l.Reason, l.Code, l.Error)
			assert.True(t, l.Holds(), "the host judges %s at %s otherwise: expected %s, "+
				"observed status %d reason %q code %q", l.Name, l.Target, l.Expect, l.Status,
				l.Reason, l.Code)
		})
	}
	assert.Empty(t, o.Missing, "attempts the probe did not make")
	assert.Empty(t, o.Unknown, "attempts the probe made that RequiredAttempts does not know")
	assert.Equal(t, 0, o.Exit, "isolation-probe exit status; stderr: %s", o.Stderr)
	t.Run("victims-unchanged", func(t *testing.T) {
		assert.NotZero(t, o.Compared, "no victim objects to compare")
		assert.Empty(t, o.Changed, "victim objects changed by the probe")
	})
}

// TestIsolationTwoAgents: two sibling agents under one master, each probing the other.
// Each has provisioned a vendor key; the other's sign-up with its address mails the link
// to it alone, and its key keeps working.
func TestIsolationTwoAgents(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	master := stack.NewMaster(t)
	alice := master.NewAgent(t, "alice")
	bob := master.NewAgent(t, "bob")

	va, err := isolation.AgentVictim(ctx, alice)
	require.NoError(t, err)
	vb, err := isolation.AgentVictim(ctx, bob)
	require.NoError(t, err)
	keys, mail := map[string]string{}, map[string]int{}
	for _, a := range []*fixtures.Agent{alice, bob} {
		keys[a.Label] = fetchKey(t, a)
		inbox, err := stack.Mail().MessagesTo(ctx, a.Email)
		require.NoError(t, err)
		mail[a.Label] = len(inbox)
	}

	for _, c := range []struct {
		prober *fixtures.Agent
		victim isolation.Victim
	}{{alice, vb}, {bob, va}} {
		t.Run(c.prober.Label, func(t *testing.T) {
			o, err := isolation.Run(ctx, stack, c.prober, c.victim)
			require.NoError(t, err)
			assertProbe(t, o)
		})
	}

	// The stored keys are unchanged (victims-unchanged above); here they still work.
	t.Run("victims-keep-their-keys", func(t *testing.T) {
		for _, a := range []*fixtures.Agent{alice, bob} {
			who, err := stack.Vendor().Whoami(ctx, keys[a.Label])
			require.NoError(t, err, "%s's key after a sign-up with its address", a.Label)
			assert.Equal(t, a.Email, who)
			inbox, err := stack.Mail().MessagesTo(ctx, a.Email)
			require.NoError(t, err)
			// One link from the other's sign-up with its address, one from its own
			// probe's control sign-up: both landed here.
			assert.Len(t, inbox, mail[a.Label]+2, "sign-up links for %s", a.Label)
		}
	})
}

// TestIsolationThreeIdentities: two agents under different masters and one of the
// masters; each agent probes the other agent and the master.
func TestIsolationThreeIdentities(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	carol := stack.NewAgent(t, "carol")
	master := stack.NewMaster(t)
	dave := master.NewAgent(t, "dave")

	vc, err := isolation.AgentVictim(ctx, carol)
	require.NoError(t, err)
	vd, err := isolation.AgentVictim(ctx, dave)
	require.NoError(t, err)
	vm, err := isolation.MasterVictim(ctx, "master", master)
	require.NoError(t, err)

	// The victims' caps are planted again in each run; a short lifetime would have a slow
	// run see them refused as expired instead of as someone else's.
	t.Run("victim-caps-live-longest", func(t *testing.T) {
		for _, v := range []isolation.Victim{vc, vd, vm} {
			require.Len(t, v.Caps, 4, v.Label)
			for route, tok := range v.Caps {
				p, err := agent.PayloadOf(tok)
				require.NoError(t, err, "%s %s", v.Label, route)
				assert.Equal(t, int64(isolation.CapTTL/time.Second), p.ExpiresAt-p.IssuedAt,
					"%s %s", v.Label, route)
			}
		}
	})

	for _, c := range []struct {
		prober  *fixtures.Agent
		victims []isolation.Victim
	}{{carol, []isolation.Victim{vd, vm}}, {dave, []isolation.Victim{vc, vm}}} {
		t.Run(c.prober.Label, func(t *testing.T) {
			o, err := isolation.Run(ctx, stack, c.prober, c.victims...)
			require.NoError(t, err)
			assertProbe(t, o)
		})
	}
}
