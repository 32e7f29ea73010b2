package e2e

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/e2e/isolation"
	"github.com/agentkeys/harness/fixtures"
	"github.com/agentkeys/harness/mocks/catcher"
	"github.com/agentkeys/harness/protocol/refusal"
	"github.com/agentkeys/harness/protocol/wire"
	"github.com/agentkeys/harness/sandbox"
)

// TestAgentProvisionsOwnCredential: from inside its sandbox an agent signs up at the
// vendor with its own address, confirms the link from its own mailbox, which reached it
// over SMTP through the mail catcher, and keeps the API key in its own vault. The test
// takes the key out through the agent and uses it at the vendor from the host.
// Provisioning again rotates the key, and the mailbox shows the agent its own mail only.
// That another agent can neither read the mail, nor fetch the key, nor take it over by
// signing up with the address is for the isolation probe, whose victims provision too
// (TestIsolationTwoAgents).
func TestAgentProvisionsOwnCredential(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	master := stack.NewMaster(t)
	alice := master.NewAgent(t, "alice")
	bob := master.NewAgent(t, "bob")
	vendor := stack.Vendor()

	out, res := provision(t, alice)
	key := fetchKey(t, alice)
	assert.NotContains(t, res.Stdout+res.Stderr, key, "provision never prints the key")
	assert.Equal(t, isolation.ProvisionedService, out.Service)
	assert.Equal(t, alice.Email, out.Email)
	assert.Equal(t, "bots/"+alice.Omni.String()+"/credentials/"+isolation.ProvisionedService+
		".enc", out.S3Key, "a self-owned credential, under the agent's own prefix")
	assert.Equal(t, len(key)+29, out.EnvelopeSize)
	who, err := vendor.Whoami(ctx, key)
	require.NoError(t, err, "the stored key works at the vendor")
	assert.Equal(t, alice.Email, who)

	t.Run("provisioning-again-rotates", func(t *testing.T) {
		old := key

		provision(t, alice)
		next := fetchKey(t, alice)

		assert.NotEqual(t, old, next, "the stored key is the new one")
		who, err := vendor.Whoami(ctx, next)
		require.NoError(t, err, "control: the new key works")
		assert.Equal(t, alice.Email, who)
		_, err = vendor.Whoami(ctx, old)
		var r *refusal.Refusal
		require.ErrorAs(t, err, &r, "the old key is revoked")
		assert.Equal(t, http.StatusUnauthorized, r.Status)
		assert.Equal(t, wire.ReasonInvalidAPIKey, r.Reason)
	})

	t.Run("mailbox-holds-only-own-mail", func(t *testing.T) {
		provision(t, bob) // so that bob's mailbox has mail of its own to show
		boxA := mailList(t, alice)
		boxB := mailList(t, bob)
		inboxA, err := stack.Mail().MessagesTo(ctx, alice.Email)
		require.NoError(t, err)

		assert.Equal(t, alice.Email, boxA.Address)
		require.NotEmpty(t, boxA.Messages)
		assert.ElementsMatch(t, catcherIDs(inboxA), mailboxIDs(boxA),
			"alice's mailbox route shows all of her mail that reached the catcher")
		for _, m := range boxA.Messages {
			full, err := stack.Mail().Message(ctx, m.ID)
			require.NoError(t, err)
			assert.True(t, full.AddressedTo(alice.Email), "message %s is not alice's", m.ID)
		}
		assert.NotEmpty(t, boxB.Messages, "control: bob's mailbox shows bob's own mail")
		for _, id := range mailboxIDs(boxB) {
			assert.NotContains(t, catcherIDs(inboxA), id, "bob's mailbox shows alice's mail")
		}
	})
}

// provisioned is what `sandbox-agent cred provision` prints: where the key went.
type provisioned struct {
	Service      string `json:"service"`
	Email        string `json:"email"`
	S3Key        string `json:"s3_key"`
	EnvelopeSize int    `json:"envelope_size"`
}

// provision has a provision a vendor key under isolation.ProvisionedService.
func provision(t *testing.T, a *fixtures.Agent) (provisioned, sandbox.ExecResult) {
	t.Helper()
	res := a.MustRun(t, "cred", "provision", "--service", isolation.ProvisionedService)
	var out provisioned
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &out), "provision output")
	return out, res
}

// fetchKey takes the provisioned key out of a's vault through a.
func fetchKey(t *testing.T, a *fixtures.Agent) string {
	t.Helper()
	key := a.MustRun(t, "cred", "fetch", "--service", isolation.ProvisionedService).Stdout
	require.NotEmpty(t, key)
	return key
}

// mailList is a's mailbox as the broker's mailbox route shows it to a's session.
func mailList(t *testing.T, a *fixtures.Agent) wire.MailboxAnswer {
	t.Helper()
	res := a.MustRun(t, "mail", "list")
	var box wire.MailboxAnswer
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &box), "mail list output")
	return box
}

func mailboxIDs(box wire.MailboxAnswer) []string {
	ids := make([]string, 0, len(box.Messages))
	for _, m := range box.Messages {
		ids = append(ids, m.ID)
	}
	return ids
}

func catcherIDs(inbox []catcher.Summary) []string {
	ids := make([]string, 0, len(inbox))
	for _, m := range inbox {
		ids = append(ids, m.ID)
	}
	return ids
}
