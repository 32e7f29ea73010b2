package selfcheck

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/e2e/isolation"
	"github.com/agentkeys/harness/fixtures"
	"github.com/agentkeys/harness/internal/fault"
)

// catchers names, for each fault, the attempts that exist to catch it. The self-check
// passes for a fault only when at least one of these failed: failing for some unrelated
// reason would not show the guard works.
var catchers = map[string][]string{
	"policy-grants-all-bots": {"s3/vault/get/target@bob", "s3/vault/put/target@bob",
		"s3/vault/list/target@bob", "s3/memory/list/bots@self", "s3/vault/list/bots@self"},
	"policy-lists-whole-prefix": {"s3/vault/list/own-other-class@self",
		"s3/memory/list/own-other-class@self"},
	"sts-ignores-role":       {"sts/role/unknown@self"},
	"sts-skips-audience":     {"sts/jwt/wrong-audience@self"},
	"worker-skips-signature": {"worker/edited/service@self", "worker/edited/expiry@self"},
	"worker-key-from-body":   {"worker/body/names-target@bob"},
	"worker-uses-root-credentials": {"worker/stolen/cred-store@bob",
		"worker/stolen/memory-put@bob", "worker/stolen/cred-fetch@bob"},
	"broker-skips-operator-check": {"capmint/operator-other@bob",
		"capmint/operator-and-actor-other@bob", "capmint/cred-fetch/operator-other@bob"},
	"broker-skips-device-binding": {"capmint/actor-other@bob"},
	"mailbox-skips-owner-check":   {"mailbox/read/target@bob"},
}

func TestEveryFaultIsCaught(t *testing.T) {
	for _, f := range fault.All() {
		t.Run(f.Name, func(t *testing.T) {
			want, ok := catchers[f.Name]
			require.True(t, ok, "no catcher named for fault %s", f.Name)

			failures := scenario(t, fixtures.WithFaults(f.Set))

			require.NotEmpty(t, failures, "the isolation suite passed on a stack with %s",
				f.Name)
			caught := slices.ContainsFunc(failures, func(s string) bool {
				return slices.Contains(want, s)
			})
			assert.True(t, caught, "%s was not caught by any of %v; the suite failed on %v",
				f.Name, want, failures)
			t.Logf("%s caught by: %s", f.Name, strings.Join(failures, ", "))
		})
	}
}

// TestCorrectStackPasses is the control: the same scenario on a stack without faults
// finds nothing, so the failures above are the faults' doing.
func TestCorrectStackPasses(t *testing.T) {
	assert.Empty(t, scenario(t))
}

// scenario starts a process stack with opts, pairs alice and bob under one master, and
// runs the probe in alice's sandbox against bob. It returns everything that did not
// hold.
func scenario(t *testing.T, opts ...fixtures.Option) []string {
	t.Helper()
	ctx := t.Context()
	s, err := fixtures.Start(ctx, append([]fixtures.Option{
		fixtures.WithBackend(fixtures.Process)}, opts...)...)
	if s != nil {
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("--- stack logs ---\n%s", s.Logs(context.WithoutCancel(ctx)))
			}
			assert.NoError(t, s.Close(context.WithoutCancel(ctx)))
		})
	}
	require.NoError(t, err)

	master := s.NewMaster(t)
	alice := master.NewAgent(t, "alice")
	bob := master.NewAgent(t, "bob")
	vb, err := isolation.AgentVictim(ctx, bob)
	require.NoError(t, err)

	out, err := isolation.Run(ctx, s, alice, vb)
	require.NoError(t, err)
	return out.Failures()
}
