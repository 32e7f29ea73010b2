package credworker_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/mocks/credworker"
	"github.com/agentkeys/harness/mocks/worker/workertest"
	"github.com/agentkeys/harness/protocol/cap"
	"github.com/agentkeys/harness/protocol/envelope"
	"github.com/agentkeys/harness/protocol/evm"
	"github.com/agentkeys/harness/protocol/wire"
)

func TestCredRoundtrip(t *testing.T) {
	e := newEnv(t, shared)
	m := workertest.NewMaster(e.reg)
	a := workertest.NewAgent(e.reg, m, "alice")
	creds := e.vaultCreds(t, a.Omni)

	secret := make([]byte, 300)
	_, err := rand.Read(secret)
	require.NoError(t, err)
	store := e.broker.Mint(workertest.Self(e.reg, a, "openrouter", cap.OpStore,
		cap.ClassCredentials))
	ans, err := e.client.CredStore(t.Context(), creds, store, secret)
	require.NoError(t, err)

	key := "bots/" + a.Omni.String() + "/credentials/openrouter.enc"
	assert.True(t, ans.OK)
	assert.Equal(t, key, ans.S3Key)
	assert.Equal(t, len(secret)+envelope.Overhead, ans.EnvelopeSize)

	fetch := e.broker.Mint(workertest.Self(e.reg, a, "openrouter", cap.OpFetch,
		cap.ClassCredentials))
	got, err := e.client.CredFetch(t.Context(), creds, fetch)
	require.NoError(t, err)
	assert.Equal(t, secret, got, "plaintext back byte for byte")

	// What lands in S3 is an envelope, never the plaintext.
	raw := e.raw(t, e.srv.VaultBucket, key)
	require.Len(t, raw, len(secret)+29)
	assert.Equal(t, byte(0x02), raw[0])
	assert.False(t, bytes.Contains(raw, secret))

	// The audit log names the store by the hash the answer returned, records the
	// envelope's hash, and holds neither the plaintext nor the credentials.
	audit := getAudit(t, e.url)
	var stored *wire.AuditEntry
	for i := range audit.Entries {
		if audit.Entries[i].Hash == ans.AuditEnvelopeHash {
			stored = &audit.Entries[i]
		}
	}
	require.NotNil(t, stored, "no audit entry with hash %s", ans.AuditEnvelopeHash)
	sum := sha256.Sum256(raw)
	assert.Equal(t, hex.EncodeToString(sum[:]), stored.EnvelopeSHA256)
	assert.Equal(t, wire.RouteCredStore, stored.Route)
	assert.Equal(t, a.Omni.String(), stored.Actor)
	assert.Equal(t, key, stored.S3Key)
	logJSON, err := json.Marshal(audit)
	require.NoError(t, err)
	for _, secretish := range []string{base64.StdEncoding.EncodeToString(secret),
		hex.EncodeToString(secret), creds.SecretAccessKey, creds.SessionToken,
		creds.AccessKeyID} {
		assert.NotContains(t, string(logJSON), secretish)
	}
}

func getAudit(t *testing.T, url string) wire.AuditAnswer {
	t.Helper()
	resp, err := http.Get(url + wire.RouteAudit)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var ans wire.AuditAnswer
	require.NoError(t, json.Unmarshal(body, &ans))
	return ans
}

// agentEnv is one agent of a fresh master, with its vault credentials.
type agentEnv struct {
	m, a  *workertest.Identity
	creds agent.STSCreds
}

func (e *env) newAgent(t testing.TB, label string) agentEnv {
	t.Helper()
	m := workertest.NewMaster(e.reg)
	a := workertest.NewAgent(e.reg, m, label)
	return agentEnv{m: m, a: a, creds: e.vaultCreds(t, a.Omni)}
}

// control proves the agent's own store and fetch work before a case expects a refusal,
// so that a worker refusing everything cannot pass.
func (e *env) control(t *testing.T, ae agentEnv, service string) {
	t.Helper()
	secret := []byte("control-" + service)
	store := e.broker.Mint(workertest.Self(e.reg, ae.a, service, cap.OpStore,
		cap.ClassCredentials))
	_, err := e.client.CredStore(t.Context(), ae.creds, store, secret)
	require.NoError(t, err, "control store")
	fetch := e.broker.Mint(workertest.Self(e.reg, ae.a, service, cap.OpFetch,
		cap.ClassCredentials))
	got, err := e.client.CredFetch(t.Context(), ae.creds, fetch)
	require.NoError(t, err, "control fetch")
	require.Equal(t, secret, got, "control fetch")
}

// send makes the request of route with tok and returns the worker's error, if any.
func (e *env) send(t *testing.T, route string, creds agent.STSCreds,
	tok json.RawMessage) error {
	t.Helper()
	var err error
	switch route {
	case wire.RouteCredStore:
		_, err = e.client.CredStore(t.Context(), creds, tok, []byte("sk-refused"))
	case wire.RouteCredFetch:
		_, err = e.client.CredFetch(t.Context(), creds, tok)
	case wire.RouteCredList:
		_, err = e.client.CredList(t.Context(), creds, tok)
	default:
		t.Fatalf("no route %s", route)
	}
	return err
}

func assertRefused(t *testing.T, err error, status int, reason, code string) {
	t.Helper()
	r := refusalOf(t, err)
	assert.Equal(t, status, r.Status, "status (%v)", r)
	assert.Equal(t, reason, r.Reason, "reason (%v)", r)
	assert.Equal(t, code, r.Code, "s3 code (%v)", r)
}

func TestCredCapChecks(t *testing.T) {
	const svc = "openrouter"
	self := func(e *env, ae agentEnv, op, class string) cap.Payload {
		return workertest.Self(e.reg, ae.a, svc, op, class)
	}
	fetch := func(e *env, ae agentEnv) cap.Payload {
		return self(e, ae, cap.OpFetch, cap.ClassCredentials)
	}
	otherDevice, err := evm.GenerateKey()
	require.NoError(t, err)

	cases := []struct {
		name  string
		route string
		token func(e *env, ae agentEnv) json.RawMessage
		// reason "" means the request must succeed: these rows are the positive
		// controls of the refusals beside them.
		reason string
	}{
		{"valid cap", wire.RouteCredFetch, func(e *env, ae agentEnv) json.RawMessage {
			return e.broker.Mint(fetch(e, ae))
		}, ""},
		{"service edited after signing", wire.RouteCredFetch,
			func(e *env, ae agentEnv) json.RawMessage {
				tok, err := cap.Decode(e.broker.Mint(fetch(e, ae)))
				require.NoError(t, err)
				tok.Payload.Service = "anthropic"
				return workertest.Encode(tok)
			}, wire.ReasonBrokerSigInvalid},
		{"expiry edited after signing", wire.RouteCredFetch,
			func(e *env, ae agentEnv) json.RawMessage {
				tok, err := cap.Decode(e.broker.Mint(fetch(e, ae)))
				require.NoError(t, err)
				tok.Payload.ExpiresAt += 3600
				return workertest.Encode(tok)
			}, wire.ReasonBrokerSigInvalid},
		{"signed by another broker", wire.RouteCredFetch,
			func(e *env, ae agentEnv) json.RawMessage {
				return workertest.NewBroker().Mint(fetch(e, ae))
			}, wire.ReasonBrokerSigInvalid},
		{"signature truncated", wire.RouteCredFetch,
			func(e *env, ae agentEnv) json.RawMessage {
				tok, err := cap.Decode(e.broker.Mint(fetch(e, ae)))
				require.NoError(t, err)
				tok.BrokerSig = tok.BrokerSig[:40]
				return workertest.Encode(tok)
			}, wire.ReasonBrokerSigInvalid},
		{"pop by the cap's own device", wire.RouteCredFetch,
			func(e *env, ae agentEnv) json.RawMessage {
				return e.broker.Sign(workertest.WithPop(fetch(e, ae), ae.a.Device))
			}, ""},
		{"pop by another device", wire.RouteCredFetch,
			func(e *env, ae agentEnv) json.RawMessage {
				return e.broker.Sign(workertest.WithPop(fetch(e, ae), otherDevice))
			}, wire.ReasonCapPopInvalid},
		{"pop over another nonce", wire.RouteCredFetch,
			func(e *env, ae agentEnv) json.RawMessage {
				tok := workertest.WithPop(fetch(e, ae), ae.a.Device)
				tok.ClientNonce = cap.NewNonce()
				return e.broker.Sign(tok)
			}, wire.ReasonCapPopInvalid},
		{"pop without its timestamp", wire.RouteCredFetch,
			func(e *env, ae agentEnv) json.RawMessage {
				tok := workertest.WithPop(fetch(e, ae), ae.a.Device)
				tok.ClientTS = nil
				return e.broker.Sign(tok)
			}, wire.ReasonCapPopInvalid},
		{"pop that is not a signature", wire.RouteCredFetch,
			func(e *env, ae agentEnv) json.RawMessage {
				tok := workertest.WithPop(fetch(e, ae), ae.a.Device)
				tok.ClientSig = "0xdeadbeef"
				return e.broker.Sign(tok)
			}, wire.ReasonCapPopInvalid},
		{"fetch cap at store", wire.RouteCredStore,
			func(e *env, ae agentEnv) json.RawMessage {
				return e.broker.Mint(fetch(e, ae))
			}, wire.ReasonCapOpMismatch},
		{"store cap at fetch", wire.RouteCredFetch,
			func(e *env, ae agentEnv) json.RawMessage {
				return e.broker.Mint(self(e, ae, cap.OpStore, cap.ClassCredentials))
			}, wire.ReasonCapOpMismatch},
		{"store cap at list", wire.RouteCredList,
			func(e *env, ae agentEnv) json.RawMessage {
				return e.broker.Mint(self(e, ae, cap.OpStore, cap.ClassCredentials))
			}, wire.ReasonCapOpMismatch},
		{"memory cap at store", wire.RouteCredStore,
			func(e *env, ae agentEnv) json.RawMessage {
				return e.broker.Mint(self(e, ae, cap.OpStore, cap.ClassMemory))
			}, wire.ReasonCapDataClassMismatch},
		{"memory cap at fetch", wire.RouteCredFetch,
			func(e *env, ae agentEnv) json.RawMessage {
				return e.broker.Mint(self(e, ae, cap.OpFetch, cap.ClassMemory))
			}, wire.ReasonCapDataClassMismatch},
		{"expired a second ago", wire.RouteCredFetch,
			func(e *env, ae agentEnv) json.RawMessage {
				p := fetch(e, ae)
				p.IssuedAt, p.ExpiresAt = time.Now().Unix()-301, time.Now().Unix()-1
				return e.broker.Mint(p)
			}, wire.ReasonCapFreshnessFailed},
		{"issued two minutes ahead", wire.RouteCredFetch,
			func(e *env, ae agentEnv) json.RawMessage {
				p := fetch(e, ae)
				p.IssuedAt = time.Now().Unix() + 120
				p.ExpiresAt = p.IssuedAt + 300
				return e.broker.Mint(p)
			}, wire.ReasonCapFreshnessFailed},
		{"issued half a minute ahead, within the skew", wire.RouteCredFetch,
			func(e *env, ae agentEnv) json.RawMessage {
				p := fetch(e, ae)
				p.IssuedAt = time.Now().Unix() + 30
				return e.broker.Mint(p)
			}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, shared)
			ae := e.newAgent(t, "alice")
			e.control(t, ae, svc)

			err := e.send(t, tc.route, ae.creds, tc.token(e, ae))
			if tc.reason == "" {
				require.NoError(t, err)
				return
			}
			assertRefused(t, err, http.StatusForbidden, tc.reason, "")
		})
	}
}

func TestCredChainChecks(t *testing.T) {
	const svc = "openrouter"
	cases := []struct {
		name string
		// setup returns the identity to send as (its credentials are used) and the
		// cap; it may change the chain after the control ran.
		setup  func(t *testing.T, e *env, ae agentEnv) (agent.STSCreds, json.RawMessage)
		reason string
	}{
		{"unknown device", func(t *testing.T, e *env, ae agentEnv) (agent.STSCreds,
			json.RawMessage) {
			ghost := workertest.NewUnregistered(ae.m, "ghost")
			return e.vaultCreds(t, ghost.Omni), e.broker.Mint(workertest.Self(e.reg,
				ghost, svc, cap.OpFetch, cap.ClassCredentials))
		}, wire.ReasonDeviceInactive},
		{"revoked device", func(t *testing.T, e *env, ae agentEnv) (agent.STSCreds,
			json.RawMessage) {
			tok := e.broker.Mint(workertest.Self(e.reg, ae.a, svc, cap.OpFetch,
				cap.ClassCredentials))
			require.NoError(t, e.reg.Revoke(ae.a.DeviceKeyHash()))
			return ae.creds, tok
		}, wire.ReasonDeviceInactive},
		{"device bound to another agent", func(t *testing.T, e *env, ae agentEnv) (
			agent.STSCreds, json.RawMessage) {
			bob := workertest.NewAgent(e.reg, ae.m, "bob")
			// Bob's self cap, but signed for alice's device.
			p := workertest.Payload(e.reg, ae.a, bob.Omni, bob.Omni, svc, cap.OpFetch,
				cap.ClassCredentials, time.Now())
			return e.vaultCreds(t, bob.Omni), e.broker.Mint(p)
		}, wire.ReasonDeviceBindingMismatch},
		{"device without the cap-mint role", func(t *testing.T, e *env, ae agentEnv) (
			agent.STSCreds, json.RawMessage) {
			workertest.Register(e.reg, ae.a)
			return ae.creds, e.broker.Mint(workertest.Self(e.reg, ae.a, svc, cap.OpFetch,
				cap.ClassCredentials))
		}, wire.ReasonDeviceRoleMissing},
		{"delegated service outside the scope", func(t *testing.T, e *env, ae agentEnv) (
			agent.STSCreds, json.RawMessage) {
			e.reg.Grant(ae.a.Omni, "anthropic")
			p := workertest.Payload(e.reg, ae.a, ae.m.Omni, ae.a.Omni, svc, cap.OpFetch,
				cap.ClassCredentials, time.Now())
			return e.vaultCreds(t, ae.m.Omni), e.broker.Mint(p)
		}, wire.ReasonServiceNotInScope},
		{"k3 epoch moved on", func(t *testing.T, e *env, ae agentEnv) (agent.STSCreds,
			json.RawMessage) {
			tok := e.broker.Mint(workertest.Self(e.reg, ae.a, svc, cap.OpFetch,
				cap.ClassCredentials))
			e.reg.BumpEpoch()
			return ae.creds, tok
		}, wire.ReasonK3EpochMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, shared)
			ae := e.newAgent(t, "alice")
			e.control(t, ae, svc)

			creds, tok := tc.setup(t, e, ae)
			err := e.send(t, wire.RouteCredFetch, creds, tok)
			assertRefused(t, err, http.StatusForbidden, tc.reason, "")
		})
	}
}

// TestCredDelegatedFetch covers single-vault credentials: the master vaults, and an agent
// with a scope grant fetches from the master's prefix with a delegated cap. The read runs
// with the caller's credentials, so only operator credentials can make it.
func TestCredDelegatedFetch(t *testing.T) {
	e := newEnv(t, shared)
	m := workertest.NewMaster(e.reg)
	a := workertest.NewAgent(e.reg, m, "alice")
	masterCreds := e.vaultCreds(t, m.Omni)
	agentCreds := e.vaultCreds(t, a.Omni)
	secret := []byte("sk-master-vaulted")

	store := e.broker.Mint(workertest.Self(e.reg, m, "openrouter", cap.OpStore,
		cap.ClassCredentials))
	_, err := e.client.CredStore(t.Context(), masterCreds, store, secret)
	require.NoError(t, err)
	delegated := func() json.RawMessage {
		return e.broker.Mint(workertest.Payload(e.reg, a, m.Omni, a.Omni, "openrouter",
			cap.OpFetch, cap.ClassCredentials, time.Now()))
	}

	_, err = e.client.CredFetch(t.Context(), masterCreds, delegated())
	assertRefused(t, err, http.StatusForbidden, wire.ReasonServiceNotInScope, "")

	e.reg.Grant(a.Omni, "openrouter")
	got, err := e.client.CredFetch(t.Context(), masterCreds, delegated())
	require.NoError(t, err, "granted delegated fetch")
	assert.Equal(t, secret, got)

	// The agent's own credentials do not reach the master's vault.
	_, err = e.client.CredFetch(t.Context(), agentCreds, delegated())
	assertRefused(t, err, http.StatusBadGateway, wire.ReasonS3Get, "AccessDenied")
}

func TestCredStoreNotMasterSelf(t *testing.T) {
	e := newEnv(t, shared)
	ae := e.newAgent(t, "alice")
	e.control(t, ae, "anthropic")
	e.reg.Grant(ae.a.Omni, "openrouter")

	p := workertest.Payload(e.reg, ae.a, ae.m.Omni, ae.a.Omni, "openrouter", cap.OpStore,
		cap.ClassCredentials, time.Now())
	for _, creds := range []agent.STSCreds{ae.creds, e.vaultCreds(t, ae.m.Omni)} {
		err := e.send(t, wire.RouteCredStore, creds, e.broker.Mint(p))
		assertRefused(t, err, http.StatusForbidden, wire.ReasonCredStoreNotMasterSelf, "")
	}
	assert.Nil(t, e.raw(t, e.srv.VaultBucket, credworker.Key(ae.a.Omni, "openrouter")))
	assert.Nil(t, e.raw(t, e.srv.VaultBucket, credworker.Key(ae.m.Omni, "openrouter")))
}

func TestCredList(t *testing.T) {
	e := newEnv(t, shared)
	ae := e.newAgent(t, "alice")
	list := func() json.RawMessage {
		return e.broker.Mint(workertest.Self(e.reg, ae.a, "openrouter", cap.OpFetch,
			cap.ClassCredentials))
	}

	services, err := e.client.CredList(t.Context(), ae.creds, list())
	require.NoError(t, err)
	assert.Equal(t, []string{}, services, "an empty vault lists as [], not null")

	for _, svc := range []string{"openrouter", "anthropic", "gmail-app"} {
		e.control(t, ae, svc)
	}
	services, err = e.client.CredList(t.Context(), ae.creds, list())
	require.NoError(t, err)
	assert.Equal(t, []string{"anthropic", "gmail-app", "openrouter"}, services)

	e.reg.Grant(ae.a.Omni, "openrouter")
	delegated := e.broker.Mint(workertest.Payload(e.reg, ae.a, ae.m.Omni, ae.a.Omni,
		"openrouter", cap.OpFetch, cap.ClassCredentials, time.Now()))
	_, err = e.client.CredList(t.Context(), e.vaultCreds(t, ae.m.Omni), delegated)
	assertRefused(t, err, http.StatusForbidden, wire.ReasonListNotMasterSelf, "")
}

func TestCredPlaintextB64Decode(t *testing.T) {
	e := newEnv(t, shared)
	ae := e.newAgent(t, "alice")
	e.control(t, ae, "anthropic")

	tok := e.broker.Mint(workertest.Self(e.reg, ae.a, "openrouter", cap.OpStore,
		cap.ClassCredentials))
	// Not base64, missing padding, excess padding, padding in the middle.
	for _, bad := range []string{"not base64!", "c2stc2VjcmV0Cg", "c2stc2VjcmV0==",
		"c2s=c2VjcmV0"} {
		body, err := json.Marshal(wire.StoreRequest{Cap: tok, PlaintextB64: bad})
		require.NoError(t, err)
		resp, raw := post(t, e.url, wire.RouteCredStore, ae.creds, body)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%q", bad)
		assert.Contains(t, string(raw), `"reason":"plaintext_b64_decode"`, "%q", bad)
	}
	assert.Nil(t, e.raw(t, e.srv.VaultBucket, credworker.Key(ae.a.Omni, "openrouter")))
}

func TestCredFetchMissing(t *testing.T) {
	e := newEnv(t, shared)
	ae := e.newAgent(t, "alice")
	e.control(t, ae, "openrouter")

	tok := e.broker.Mint(workertest.Self(e.reg, ae.a, "never-stored", cap.OpFetch,
		cap.ClassCredentials))
	_, err := e.client.CredFetch(t.Context(), ae.creds, tok)
	assertRefused(t, err, http.StatusBadGateway, wire.ReasonS3Get, "NoSuchKey")
}

// TestCredStolenCap: agent A holds caps minted for B but only its own credentials. The
// worker obeys the caps, and IAM refuses the S3 calls; B's object stays as it was.
func TestCredStolenCap(t *testing.T) {
	e := newEnv(t, shared)
	alice := e.newAgent(t, "alice")
	bob := e.newAgent(t, "bob")
	e.control(t, alice, "openrouter")

	bobSecret := []byte("sk-bob-only")
	_, err := e.client.CredStore(t.Context(), bob.creds, e.broker.Mint(workertest.Self(
		e.reg, bob.a, "openrouter", cap.OpStore, cap.ClassCredentials)), bobSecret)
	require.NoError(t, err)
	key := credworker.Key(bob.a.Omni, "openrouter")
	before := e.raw(t, e.srv.VaultBucket, key)
	require.NotNil(t, before)

	stolenStore := e.broker.Mint(workertest.Self(e.reg, bob.a, "openrouter", cap.OpStore,
		cap.ClassCredentials))
	_, err = e.client.CredStore(t.Context(), alice.creds, stolenStore, []byte("sk-evil"))
	assertRefused(t, err, http.StatusBadGateway, wire.ReasonS3Put, "AccessDenied")

	stolenFetch := e.broker.Mint(workertest.Self(e.reg, bob.a, "openrouter", cap.OpFetch,
		cap.ClassCredentials))
	_, err = e.client.CredFetch(t.Context(), alice.creds, stolenFetch)
	assertRefused(t, err, http.StatusBadGateway, wire.ReasonS3Get, "AccessDenied")

	_, err = e.client.CredList(t.Context(), alice.creds, stolenFetch)
	assertRefused(t, err, http.StatusBadGateway, wire.ReasonS3List, "AccessDenied")

	assert.Equal(t, before, e.raw(t, e.srv.VaultBucket, key), "bob's object changed")
	got, err := e.client.CredFetch(t.Context(), bob.creds, stolenFetch)
	require.NoError(t, err)
	assert.Equal(t, bobSecret, got)
}

// TestCredEnvelopeBoundToOwner: the AAD names owner and service, so an envelope copied
// (here by root, past IAM) to another agent's key or another service does not open.
func TestCredEnvelopeBoundToOwner(t *testing.T) {
	e := newEnv(t, shared)
	alice := e.newAgent(t, "alice")
	bob := e.newAgent(t, "bob")
	e.control(t, bob, "openrouter")
	e.control(t, alice, "openrouter")

	bobEnv := e.raw(t, e.srv.VaultBucket, credworker.Key(bob.a.Omni, "openrouter"))
	for _, target := range []struct {
		key, service string
	}{
		{credworker.Key(alice.a.Omni, "openrouter"), "openrouter"},
		{credworker.Key(bob.a.Omni, "anthropic"), "anthropic"},
	} {
		_, err := e.root.PutObject(t.Context(), e.srv.VaultBucket, target.key,
			bytes.NewReader(bobEnv), int64(len(bobEnv)), minio.PutObjectOptions{})
		require.NoError(t, err)
	}

	_, err := e.client.CredFetch(t.Context(), alice.creds, e.broker.Mint(workertest.Self(
		e.reg, alice.a, "openrouter", cap.OpFetch, cap.ClassCredentials)))
	assertRefused(t, err, http.StatusInternalServerError, wire.ReasonEnvelopeDecrypt, "")
	_, err = e.client.CredFetch(t.Context(), bob.creds, e.broker.Mint(workertest.Self(
		e.reg, bob.a, "anthropic", cap.OpFetch, cap.ClassCredentials)))
	assertRefused(t, err, http.StatusInternalServerError, wire.ReasonEnvelopeDecrypt, "")
}
