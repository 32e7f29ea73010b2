package broker_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/protocol/evm"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/wire"
)

func TestPairingRequestPop(t *testing.T) {
	s := newStack(t)
	device, other := newKey(t), newKey(t)

	ans, err := s.client.PairingRequest(context.Background(), device)
	require.NoError(t, err, "control")
	assert.Equal(t, device.DeviceKeyHash(), ans.DeviceKeyHash)
	assert.NotEmpty(t, ans.PairingCode)
	assert.NotEmpty(t, ans.RequestID)

	preimage := evm.PairingPreimage(device.DeviceKeyHash())
	tests := []struct {
		name string
		pop  string
	}{
		{"signed by another key", other.SignPersonal(preimage)},
		{"signed over another hash",
			device.SignPersonal(evm.PairingPreimage(other.DeviceKeyHash()))},
		{"signed over the text instead of its hash",
			device.SignPersonal([]byte("agentkeys-agent-pop:" + device.DeviceKeyHash()))},
		{"not a signature", "0x1234"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := s.post(t, wire.RoutePairingRequest, "", mustJSON(t,
				wire.PairingRequest{DevicePubkey: device.Address(), PopSig: tc.pop}))
			assert.Equal(t, http.StatusUnauthorized, status)
			assert.Equal(t, wire.ReasonPopSigInvalid, reasonOf(t, raw))
		})
	}

	t.Run("invalid input", func(t *testing.T) {
		pop := device.SignPersonal(evm.PairingPreimage(device.DeviceKeyHash()))
		for name, body := range map[string]wire.PairingRequest{
			"pubkey missing": {PopSig: pop},
			"pubkey short":   {DevicePubkey: device.Address()[:30], PopSig: pop},
			"pop missing":    {DevicePubkey: device.Address()},
		} {
			status, raw := s.post(t, wire.RoutePairingRequest, "", mustJSON(t, body))
			assert.Equal(t, http.StatusBadRequest, status, name)
			assert.Equal(t, wire.ReasonInvalidInput, reasonOf(t, raw), name)
		}
	})
}

func TestPairingClaim(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	m := s.newMaster(t)
	device := newKey(t)

	req, err := s.client.PairingRequest(ctx, device)
	require.NoError(t, err)

	poll, err := s.client.PairingPoll(ctx, device, req.RequestID)
	require.NoError(t, err)
	assert.Equal(t, wire.PairingPollAnswer{Status: wire.PairingPending}, poll)

	claim, err := s.client.PairingClaim(ctx, m.session, req.PairingCode, "alice",
		[]string{"openrouter"})
	require.NoError(t, err)
	child, err := omni.Agent(m.omni, "alice", 0)
	require.NoError(t, err)
	assert.Equal(t, wire.PairingClaimAnswer{
		ChildOmni: child.Prefixed(), OperatorOmni: m.omni.Prefixed(),
		RequestID: req.RequestID, DevicePubkey: device.Address(),
		Email: "alice-" + child.String()[:8] + "@agents.test",
	}, claim)

	t.Run("a code works once", func(t *testing.T) {
		_, err := s.client.PairingClaim(ctx, m.session, req.PairingCode, "alice", nil)
		r := refusalOf(t, err)
		assert.Equal(t, http.StatusUnauthorized, r.Status)
		assert.Equal(t, wire.ReasonPairingCodeInvalid, r.Reason)
	})

	t.Run("unknown code", func(t *testing.T) {
		_, err := s.client.PairingClaim(ctx, m.session, "NOPE-NOPE", "alice", nil)
		r := refusalOf(t, err)
		assert.Equal(t, http.StatusUnauthorized, r.Status)
		assert.Equal(t, wire.ReasonPairingCodeInvalid, r.Reason)
	})

	t.Run("poll after the claim hands out the session", func(t *testing.T) {
		poll, err := s.client.PairingPoll(ctx, device, req.RequestID)
		require.NoError(t, err)
		assert.Equal(t, wire.PairingClaimed, poll.Status)
		assert.Equal(t, child.Prefixed(), poll.ChildOmni)
		assert.Equal(t, "alice/0", poll.DerivationPath)
		assert.NotEmpty(t, poll.SessionJWT)
	})

	t.Run("poll with another device's valid pop", func(t *testing.T) {
		_, err := s.client.PairingPoll(ctx, newKey(t), req.RequestID)
		r := refusalOf(t, err)
		assert.Equal(t, http.StatusUnauthorized, r.Status)
		assert.Equal(t, wire.ReasonPopSigInvalid, r.Reason)
	})

	t.Run("poll with a bad pop", func(t *testing.T) {
		status, raw := s.post(t, wire.RoutePairingPoll, "", mustJSON(t, wire.PairingPollRequest{
			RequestID: req.RequestID, DevicePubkey: device.Address(),
			PopSig: newKey(t).SignPersonal(evm.PairingPreimage(device.DeviceKeyHash())),
		}))
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.Equal(t, wire.ReasonPopSigInvalid, reasonOf(t, raw))
	})

	t.Run("poll of an unknown request", func(t *testing.T) {
		_, err := s.client.PairingPoll(ctx, device, "0000")
		r := refusalOf(t, err)
		assert.Equal(t, http.StatusNotFound, r.Status)
		assert.Equal(t, wire.ReasonRequestNotFound, r.Reason)
	})
}

// TestPairingGenerations checks that the same master claiming the same label again gets
// the next generation, and that another master or label starts at 0.
func TestPairingGenerations(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	m, m2 := s.newMaster(t), s.newMaster(t)

	tests := []struct {
		name       string
		master     master
		label      string
		generation int
	}{
		{"first alice", m, "alice", 0},
		{"second alice", m, "alice", 1},
		{"first bob", m, "bob", 0},
		{"third alice", m, "alice", 2},
		{"another master's alice", m2, "alice", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := s.client.PairingRequest(ctx, newKey(t))
			require.NoError(t, err)
			claim, err := s.client.PairingClaim(ctx, tc.master.session, req.PairingCode,
				tc.label, nil)
			require.NoError(t, err)
			want, err := omni.Agent(tc.master.omni, tc.label, tc.generation)
			require.NoError(t, err)
			assert.Equal(t, want.Prefixed(), claim.ChildOmni)
		})
	}
}

func TestPairingClaimRefusals(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	m := s.newMaster(t)
	a := s.pairAgent(t, m, "alice")

	newCode := func(t *testing.T) string {
		req, err := s.client.PairingRequest(ctx, newKey(t))
		require.NoError(t, err)
		return req.PairingCode
	}

	tests := []struct {
		name       string
		session    string
		label      string
		scope      []string
		wantStatus int
		wantReason string
	}{
		{"no session", "", "bob", nil, http.StatusUnauthorized, wire.ReasonUnauthorized},
		{"agent session", a.session, "bob", nil, http.StatusForbidden,
			wire.ReasonMasterRequired},
		{"label upper case", m.session, "Bob", nil, http.StatusBadRequest,
			wire.ReasonInvalidInput},
		{"label too long", m.session, "abcdefghijklmnopqrstuvwxyz0123456", nil,
			http.StatusBadRequest, wire.ReasonInvalidInput},
		{"label empty", m.session, "", nil, http.StatusBadRequest, wire.ReasonInvalidInput},
		{"scope with a wildcard", m.session, "bob", []string{"*"}, http.StatusBadRequest,
			wire.ReasonInvalidInput},
		{"bad label beats missing session", "", "B/b", nil, http.StatusBadRequest,
			wire.ReasonInvalidInput},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code := newCode(t)
			_, err := s.client.PairingClaim(ctx, tc.session, code, tc.label, tc.scope)
			r := refusalOf(t, err)
			assert.Equal(t, tc.wantStatus, r.Status)
			assert.Equal(t, tc.wantReason, r.Reason, r.Message)

			// The refused claim did not spend the code: the master can still claim it.
			_, err = s.client.PairingClaim(ctx, m.session, code, "bob", []string{"github"})
			assert.NoError(t, err, "control")
		})
	}
}

func TestPendingBindings(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	m, m2 := s.newMaster(t), s.newMaster(t)
	device := newKey(t)

	req, err := s.client.PairingRequest(ctx, device)
	require.NoError(t, err)
	list, err := s.client.PendingBindings(ctx, m.session)
	require.NoError(t, err)
	assert.Empty(t, list, "an unclaimed request is not pending for anyone")

	claim, err := s.client.PairingClaim(ctx, m.session, req.PairingCode, "alice",
		[]string{"openrouter", "memory:notes"})
	require.NoError(t, err)

	list, err = s.client.PendingBindings(ctx, m.session)
	require.NoError(t, err)
	assert.Equal(t, []wire.PendingBinding{{
		RequestID: req.RequestID, ChildOmni: claim.ChildOmni, OperatorOmni: m.omni.Prefixed(),
		DevicePubkey: device.Address(), DeviceKeyHash: device.DeviceKeyHash(),
		Label: "alice", DerivationPath: "alice/0",
		RequestedScope: []string{"openrouter", "memory:notes"},
		Email:          "alice-" + claim.ChildOmni[2:10] + "@agents.test",
	}}, list)

	other, err := s.client.PendingBindings(ctx, m2.session)
	require.NoError(t, err)
	assert.Empty(t, other, "another master sees none of m's bindings")

	t.Run("another master cannot ack", func(t *testing.T) {
		r := refusalOf(t, s.client.Ack(ctx, m2.session, req.RequestID))
		assert.Equal(t, http.StatusNotFound, r.Status)
		assert.Equal(t, wire.ReasonRequestNotFound, r.Reason)
	})

	t.Run("agent session cannot list", func(t *testing.T) {
		a := s.pairAgent(t, m2, "bob")
		_, err := s.client.PendingBindings(ctx, a.session)
		r := refusalOf(t, err)
		assert.Equal(t, http.StatusForbidden, r.Status)
		assert.Equal(t, wire.ReasonMasterRequired, r.Reason)
	})

	t.Run("ack removes the binding once", func(t *testing.T) {
		require.NoError(t, s.client.Ack(ctx, m.session, req.RequestID))
		list, err := s.client.PendingBindings(ctx, m.session)
		require.NoError(t, err)
		assert.Empty(t, list)

		r := refusalOf(t, s.client.Ack(ctx, m.session, req.RequestID))
		assert.Equal(t, http.StatusNotFound, r.Status)
		assert.Equal(t, wire.ReasonRequestNotFound, r.Reason)
	})

	t.Run("ack without request id", func(t *testing.T) {
		status, raw := s.post(t, wire.RoutePendingAck, m.session, []byte(`{}`))
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, wire.ReasonInvalidInput, reasonOf(t, raw))
	})

	t.Run("list without session", func(t *testing.T) {
		_, err := s.client.PendingBindings(ctx, "")
		r := refusalOf(t, err)
		assert.Equal(t, http.StatusUnauthorized, r.Status)
		assert.Equal(t, wire.ReasonUnauthorized, r.Reason)
	})
}
