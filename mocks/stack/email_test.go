package stack_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/fixtures/mailcatcher"
	"github.com/agentkeys/harness/fixtures/minioserver"
	"github.com/agentkeys/harness/mocks/stack"
	"github.com/agentkeys/harness/protocol/evm"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/refusal"
	"github.com/agentkeys/harness/protocol/wire"
)

// startEmailStack starts a MinIO, a mailpit and the mocks with email turned on.
func startEmailStack(tb testing.TB) (*minioserver.Server, *mailcatcher.Server, *stack.Stack) {
	tb.Helper()
	m := minioserver.StartTB(tb)
	mc := mailcatcher.StartTB(tb)
	s, err := stack.Start(tb.Context(), stack.Config{
		MinIOEndpoint: m.Endpoint, RootUser: m.RootUser, RootPassword: m.RootPassword,
		VaultBucket: m.VaultBucket, MemoryBucket: m.MemoryBucket,
		SMTPAddr: mc.SMTPAddr, MailAPIURL: mc.APIURL,
	})
	if s != nil {
		tb.Cleanup(func() {
			if err := s.Close(); err != nil {
				tb.Errorf("close stack: %v", err)
			}
		})
	}
	require.NoError(tb, err)
	return m, mc, s
}

// pairedAgent is an agent paired by master and registered on the chain, as the host
// would set it up, with the email address the claim gave it.
type pairedAgent struct {
	*agent.Client
	email string
}

func pairAgent(tb testing.TB, ctx context.Context, s *stack.Stack, master *agent.Client,
	label string) pairedAgent {
	tb.Helper()
	key, err := evm.GenerateKey()
	require.NoError(tb, err)
	b := &agent.Broker{URL: s.BrokerURL}

	req, err := b.PairingRequest(ctx, key)
	require.NoError(tb, err)
	claim, err := b.PairingClaim(ctx, master.Session, req.PairingCode, label, nil)
	require.NoError(tb, err)
	child, err := omni.ParsePrefixed(claim.ChildOmni)
	require.NoError(tb, err)
	require.NoError(tb, s.Admin().Register(ctx, key.DeviceKeyHash(), master.Omni, child))
	poll, err := b.PairingPoll(ctx, key, req.RequestID)
	require.NoError(tb, err)
	require.Equal(tb, wire.PairingClaimed, poll.Status)
	require.Equal(tb, claim.Email, poll.Email, "the agent learns the address its master saw")

	c := *master
	c.Key, c.Session, c.Omni = key, poll.SessionJWT, child
	return pairedAgent{Client: &c, email: poll.Email}
}

// TestAgentProvisionsAVendorKeyThroughTheStack is the provisioning flow at library level:
// the agent signs up with its own address, reads the link through the stack's mailbox,
// confirms, stores the key as a self-owned credential and reads it back; another agent
// can neither read that mail nor take the key over by signing up with the address.
func TestAgentProvisionsAVendorKeyThroughTheStack(t *testing.T) {
	ctx := t.Context()
	m, mc, s := startEmailStack(t)
	master := newMaster(t, ctx, m, s)
	a := pairAgent(t, ctx, s, master, "alice")
	b := pairAgent(t, ctx, s, master, "bob")
	brk := &agent.Broker{URL: s.BrokerURL}
	v := &agent.Vendor{URL: s.VendorURL}

	key, err := v.SignUp(ctx, brk, a.Session, a.email)
	require.NoError(t, err)
	_, err = a.CredStore(ctx, "modelapi", []byte(key))
	require.NoError(t, err)
	stored, err := a.CredFetch(ctx, "modelapi")
	require.NoError(t, err)
	require.Equal(t, key, string(stored))
	who, err := v.Whoami(ctx, string(stored))
	require.NoError(t, err)
	assert.Equal(t, a.email, who, "the stored key works at the vendor")

	t.Run("another agent cannot read the mail", func(t *testing.T) {
		boxA, err := brk.Mailbox(ctx, a.Session)
		require.NoError(t, err)
		require.Len(t, boxA.Messages, 1)
		_, err = brk.MailboxMessage(ctx, a.Session, boxA.Messages[0].ID)
		require.NoError(t, err, "control: alice reads her own message")

		_, err = brk.MailboxMessage(ctx, b.Session, boxA.Messages[0].ID)
		var r *refusal.Refusal
		require.ErrorAs(t, err, &r)
		assert.Equal(t, http.StatusNotFound, r.Status)
		assert.Equal(t, wire.ReasonMessageNotFound, r.Reason)
		boxB, err := brk.Mailbox(ctx, b.Session)
		require.NoError(t, err)
		assert.Empty(t, boxB.Messages)
	})

	t.Run("another agent cannot take the key over", func(t *testing.T) {
		require.NoError(t, v.Signup(ctx, a.email), "bob signs up with alice's address")

		inbox, err := mc.Client().MessagesTo(ctx, a.email)
		require.NoError(t, err)
		assert.Len(t, inbox, 2, "the link went to alice's mailbox")
		boxB, err := brk.Mailbox(ctx, b.Session)
		require.NoError(t, err)
		assert.Empty(t, boxB.Messages, "and not to bob's")
		who, err := v.Whoami(ctx, key)
		require.NoError(t, err, "alice's key keeps working")
		assert.Equal(t, a.email, who)
	})

	t.Run("provisioning again rotates the key", func(t *testing.T) {
		next, err := v.SignUp(ctx, brk, a.Session, a.email)
		require.NoError(t, err)
		_, err = a.CredStore(ctx, "modelapi", []byte(next))
		require.NoError(t, err)

		stored, err := a.CredFetch(ctx, "modelapi")
		require.NoError(t, err)
		assert.Equal(t, next, string(stored))
		_, err = v.Whoami(ctx, next)
		require.NoError(t, err, "control: the new key works")
		_, err = v.Whoami(ctx, key)
		var r *refusal.Refusal
		require.ErrorAs(t, err, &r, "the old key is revoked")
		assert.Equal(t, http.StatusUnauthorized, r.Status)
		assert.Equal(t, wire.ReasonInvalidAPIKey, r.Reason)
	})
}

func TestEmailOffByDefault(t *testing.T) {
	ctx := t.Context()
	m, s := startStack(t)
	master := newMaster(t, ctx, m, s)

	err := (&agent.Vendor{URL: s.VendorURL}).Signup(ctx, "a@agents.test")
	var r *refusal.Refusal
	require.ErrorAs(t, err, &r)
	assert.Equal(t, http.StatusServiceUnavailable, r.Status)
	assert.Equal(t, wire.ReasonEmailUnavailable, r.Reason)

	_, err = (&agent.Broker{URL: s.BrokerURL}).EmailRequest(ctx, "a@agents.test")
	require.ErrorAs(t, err, &r)
	assert.Equal(t, http.StatusServiceUnavailable, r.Status)
	assert.Equal(t, wire.ReasonEmailUnavailable, r.Reason)

	_, err = master.CredStore(ctx, "openrouter", []byte("k"))
	assert.NoError(t, err, "control: the rest of the stack works as before")
}
