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
	m := workertest.NewMaster(e.Chain)
	a := workertest.NewAgent(e.Chain, m, "alice")
	creds := e.Creds(t, a.Omni)

	secret := make([]byte, 300)
	_, err := rand.Read(secret)
	require.NoError(t, err)
	store := e.Broker.Mint(workertest.Self(e.Chain, a, "openrouter", cap.OpStore,
		cap.ClassCredentials))
	ans, err := e.Client.CredStore(t.Context(), creds, store, secret)
	require.NoError(t, err)

	key := "bots/" + a.Omni.String() + "/credentials/openrouter.enc"
	assert.True(t, ans.OK)
	assert.Equal(t, key, ans.S3Key)
	assert.Equal(t, len(secret)+envelope.Overhead, ans.EnvelopeSize)

	fetch := e.Broker.Mint(workertest.Self(e.Chain, a, "openrouter", cap.OpFetch,
		cap.ClassCredentials))
	got, err := e.Client.CredFetch(t.Context(), creds, fetch)
	require.NoError(t, err)
	assert.Equal(t, secret, got, "plaintext back byte for byte")

	// What lands in S3 is an envelope, never the plaintext.
	raw := e.Raw(t, key)
	require.Len(t, raw, len(secret)+29)
	assert.Equal(t, byte(0x02), raw[0])
	assert.False(t, bytes.Contains(raw, secret))

	// The audit log names the store by the hash the answer returned, records the
	// envelope's hash, and holds neither the plaintext nor the credentials.
	audit := getAudit(t, e.URL)
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

// control proves the agent's own store and fetch work before a case expects a refusal,
// so that a worker refusing everything cannot pass.
func (e *env) control(t *testing.T, ae workertest.Agent, service string) {
	t.Helper()
	secret := []byte("control-" + service)
	store := e.Broker.Mint(workertest.Self(e.Chain, ae.Agent, service, cap.OpStore,
		cap.ClassCredentials))
	_, err := e.Client.CredStore(t.Context(), ae.Creds, store, secret)
	require.NoError(t, err, "control store")
	fetch := e.Broker.Mint(workertest.Self(e.Chain, ae.Agent, service, cap.OpFetch,
		cap.ClassCredentials))
	got, err := e.Client.CredFetch(t.Context(), ae.Creds, fetch)
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
		_, err = e.Client.CredStore(t.Context(), creds, tok, []byte("sk-refused"))
	case wire.RouteCredFetch:
		_, err = e.Client.CredFetch(t.Context(), creds, tok)
	case wire.RouteCredList:
		_, err = e.Client.CredList(t.Context(), creds, tok)
	default:
		t.Fatalf("no route %s", route)
	}
	return err
}

func TestCredCapChecks(t *testing.T) {
	const svc = "openrouter"
	self := func(e *env, ae workertest.Agent, op, class string) cap.Payload {
		return workertest.Self(e.Chain, ae.Agent, svc, op, class)
	}
	fetch := func(e *env, ae workertest.Agent) cap.Payload {
		return self(e, ae, cap.OpFetch, cap.ClassCredentials)
	}
	otherDevice, err := evm.GenerateKey()
	require.NoError(t, err)

	cases := []struct {
		name  string
		route string
		token func(e *env, ae workertest.Agent) json.RawMessage
		// reason "" means the request must succeed: these rows are the positive
		// controls of the refusals beside them.
		reason string
	}{
		{"valid cap", wire.RouteCredFetch, func(e *env, ae workertest.Agent) json.RawMessage {
			return e.Broker.Mint(fetch(e, ae))
		}, ""},
		{"service edited after signing", wire.RouteCredFetch,
			func(e *env, ae workertest.Agent) json.RawMessage {
				tok, err := cap.Decode(e.Broker.Mint(fetch(e, ae)))
				require.NoError(t, err)
				tok.Payload.Service = "anthropic"
				return workertest.Encode(tok)
			}, wire.ReasonBrokerSigInvalid},
		{"expiry edited after signing", wire.RouteCredFetch,
			func(e *env, ae workertest.Agent) json.RawMessage {
				tok, err := cap.Decode(e.Broker.Mint(fetch(e, ae)))
				require.NoError(t, err)
				tok.Payload.ExpiresAt += 3600
				return workertest.Encode(tok)
			}, wire.ReasonBrokerSigInvalid},
		{"signed by another broker", wire.RouteCredFetch,
			func(e *env, ae workertest.Agent) json.RawMessage {
				return workertest.NewBroker().Mint(fetch(e, ae))
			}, wire.ReasonBrokerSigInvalid},
		{"signature truncated", wire.RouteCredFetch,
			func(e *env, ae workertest.Agent) json.RawMessage {
				tok, err := cap.Decode(e.Broker.Mint(fetch(e, ae)))
				require.NoError(t, err)
				tok.BrokerSig = tok.BrokerSig[:40]
				return workertest.Encode(tok)
			}, wire.ReasonBrokerSigInvalid},
		{"pop by the cap's own device", wire.RouteCredFetch,
			func(e *env, ae workertest.Agent) json.RawMessage {
				return e.Broker.Sign(workertest.WithPop(fetch(e, ae), ae.Agent.Device))
			}, ""},
		{"pop by another device", wire.RouteCredFetch,
			func(e *env, ae workertest.Agent) json.RawMessage {
				return e.Broker.Sign(workertest.WithPop(fetch(e, ae), otherDevice))
			}, wire.ReasonCapPopInvalid},
		{"pop over another nonce", wire.RouteCredFetch,
			func(e *env, ae workertest.Agent) json.RawMessage {
				tok := workertest.WithPop(fetch(e, ae), ae.Agent.Device)
				tok.ClientNonce = cap.NewNonce()
				return e.Broker.Sign(tok)
			}, wire.ReasonCapPopInvalid},
		{"pop without its timestamp", wire.RouteCredFetch,
			func(e *env, ae workertest.Agent) json.RawMessage {
				tok := workertest.WithPop(fetch(e, ae), ae.Agent.Device)
				tok.ClientTS = nil
				return e.Broker.Sign(tok)
			}, wire.ReasonCapPopInvalid},
		{"pop that is not a signature", wire.RouteCredFetch,
			func(e *env, ae workertest.Agent) json.RawMessage {
				tok := workertest.WithPop(fetch(e, ae), ae.Agent.Device)
				tok.ClientSig = "0xdeadbeef"
				return e.Broker.Sign(tok)
			}, wire.ReasonCapPopInvalid},
		{"fetch cap at store", wire.RouteCredStore,
			func(e *env, ae workertest.Agent) json.RawMessage {
				return e.Broker.Mint(fetch(e, ae))
			}, wire.ReasonCapOpMismatch},
		{"store cap at fetch", wire.RouteCredFetch,
			func(e *env, ae workertest.Agent) json.RawMessage {
				return e.Broker.Mint(self(e, ae, cap.OpStore, cap.ClassCredentials))
			}, wire.ReasonCapOpMismatch},
		{"store cap at list", wire.RouteCredList,
			func(e *env, ae workertest.Agent) json.RawMessage {
				return e.Broker.Mint(self(e, ae, cap.OpStore, cap.ClassCredentials))
			}, wire.ReasonCapOpMismatch},
		{"memory cap at store", wire.RouteCredStore,
			func(e *env, ae workertest.Agent) json.RawMessage {
				return e.Broker.Mint(self(e, ae, cap.OpStore, cap.ClassMemory))
			}, wire.ReasonCapDataClassMismatch},
		{"memory cap at fetch", wire.RouteCredFetch,
			func(e *env, ae workertest.Agent) json.RawMessage {
				return e.Broker.Mint(self(e, ae, cap.OpFetch, cap.ClassMemory))
			}, wire.ReasonCapDataClassMismatch},
		{"expired a second ago", wire.RouteCredFetch,
			func(e *env, ae workertest.Agent) json.RawMessage {
				p := fetch(e, ae)
				p.IssuedAt, p.ExpiresAt = time.Now().Unix()-301, time.Now().Unix()-1
				return e.Broker.Mint(p)
			}, wire.ReasonCapFreshnessFailed},
		{"issued two minutes ahead", wire.RouteCredFetch,
			func(e *env, ae workertest.Agent) json.RawMessage {
				p := fetch(e, ae)
				p.IssuedAt = time.Now().Unix() + 120
				p.ExpiresAt = p.IssuedAt + 300
				return e.Broker.Mint(p)
			}, wire.ReasonCapFreshnessFailed},
		{"issued half a minute ahead, within the skew", wire.RouteCredFetch,
			func(e *env, ae workertest.Agent) json.RawMessage {
				p := fetch(e, ae)
				p.IssuedAt = time.Now().Unix() + 30
				return e.Broker.Mint(p)
			}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, shared)
			ae := e.NewAgent(t, "alice")
			e.control(t, ae, svc)

			err := e.send(t, tc.route, ae.Creds, tc.token(e, ae))
			if tc.reason == "" {
				require.NoError(t, err)
				return
			}
			workertest.AssertRefused(t, err, http.StatusForbidden, tc.reason, "")
		})
	}
}

func TestCredChainChecks(t *testing.T) {
	const svc = "openrouter"
	cases := []struct {
		name string
		// setup returns the identity to send as (its credentials are used) and the
		// cap; it may change the chain after the control ran.
		setup  func(t *testing.T, e *env, ae workertest.Agent) (agent.STSCreds, json.RawMessage)
		reason string
	}{
		{"unknown device", func(t *testing.T, e *env, ae workertest.Agent) (agent.STSCreds,
			json.RawMessage) {
			ghost := workertest.NewUnregistered(ae.Master, "ghost")
			return e.Creds(t, ghost.Omni), e.Broker.Mint(workertest.Self(e.Chain,
				ghost, svc, cap.OpFetch, cap.ClassCredentials))
		}, wire.ReasonDeviceInactive},
		{"revoked device", func(t *testing.T, e *env, ae workertest.Agent) (agent.STSCreds,
			json.RawMessage) {
			tok := e.Broker.Mint(workertest.Self(e.Chain, ae.Agent, svc, cap.OpFetch,
				cap.ClassCredentials))
			require.NoError(t, e.Chain.Revoke(ae.Agent.DeviceKeyHash()))
			return ae.Creds, tok
		}, wire.ReasonDeviceInactive},
		{"device bound to another agent", func(t *testing.T, e *env, ae workertest.Agent) (
			agent.STSCreds, json.RawMessage) {
			bob := workertest.NewAgent(e.Chain, ae.Master, "bob")
			// Bob's self cap, but signed for alice's device.
			p := workertest.Payload(e.Chain, ae.Agent, bob.Omni, bob.Omni, svc, cap.OpFetch,
				cap.ClassCredentials, time.Now())
			return e.Creds(t, bob.Omni), e.Broker.Mint(p)
		}, wire.ReasonDeviceBindingMismatch},
		{"device without the cap-mint role", func(t *testing.T, e *env, ae workertest.Agent) (
			agent.STSCreds, json.RawMessage) {
			workertest.Register(e.Chain, ae.Agent)
			return ae.Creds, e.Broker.Mint(workertest.Self(e.Chain, ae.Agent, svc, cap.OpFetch,
				cap.ClassCredentials))
		}, wire.ReasonDeviceRoleMissing},
		{"delegated service outside the scope", func(t *testing.T, e *env, ae workertest.Agent) (
			agent.STSCreds, json.RawMessage) {
			e.Chain.Grant(ae.Agent.Omni, "anthropic")
			p := workertest.Payload(e.Chain, ae.Agent, ae.Master.Omni, ae.Agent.Omni, svc,
				cap.OpFetch, cap.ClassCredentials, time.Now())
			return e.Creds(t, ae.Master.Omni), e.Broker.Mint(p)
		}, wire.ReasonServiceNotInScope},
		{"k3 epoch moved on", func(t *testing.T, e *env, ae workertest.Agent) (agent.STSCreds,
			json.RawMessage) {
			tok := e.Broker.Mint(workertest.Self(e.Chain, ae.Agent, svc, cap.OpFetch,
				cap.ClassCredentials))
			e.Chain.BumpEpoch()
			return ae.Creds, tok
		}, wire.ReasonK3EpochMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, shared)
			ae := e.NewAgent(t, "alice")
			e.control(t, ae, svc)

			creds, tok := tc.setup(t, e, ae)
			err := e.send(t, wire.RouteCredFetch, creds, tok)
			workertest.AssertRefused(t, err, http.StatusForbidden, tc.reason, "")
		})
	}
}

// TestCredDelegatedFetch covers single-vault credentials: the master vaults, and an agent
// with a scope grant fetches from the master's prefix with a delegated cap. The read runs
// with the caller's credentials, so only operator credentials can make it.
func TestCredDelegatedFetch(t *testing.T) {
	e := newEnv(t, shared)
	m := workertest.NewMaster(e.Chain)
	a := workertest.NewAgent(e.Chain, m, "alice")
	masterCreds := e.Creds(t, m.Omni)
	agentCreds := e.Creds(t, a.Omni)
	secret := []byte("sk-master-vaulted")

	store := e.Broker.Mint(workertest.Self(e.Chain, m, "openrouter", cap.OpStore,
		cap.ClassCredentials))
	_, err := e.Client.CredStore(t.Context(), masterCreds, store, secret)
	require.NoError(t, err)
	delegated := func() json.RawMessage {
		return e.Broker.Mint(workertest.Payload(e.Chain, a, m.Omni, a.Omni, "openrouter",
			cap.OpFetch, cap.ClassCredentials, time.Now()))
	}

	_, err = e.Client.CredFetch(t.Context(), masterCreds, delegated())
	workertest.AssertRefused(t, err, http.StatusForbidden, wire.ReasonServiceNotInScope, "")

	e.Chain.Grant(a.Omni, "openrouter")
	got, err := e.Client.CredFetch(t.Context(), masterCreds, delegated())
	require.NoError(t, err, "granted delegated fetch")
	assert.Equal(t, secret, got)

	// The agent's own credentials do not reach the master's vault.
	_, err = e.Client.CredFetch(t.Context(), agentCreds, delegated())
	workertest.AssertRefused(t, err, http.StatusBadGateway, wire.ReasonS3Get, "AccessDenied")
}

func TestCredStoreNotMasterSelf(t *testing.T) {
	e := newEnv(t, shared)
	ae := e.NewAgent(t, "alice")
	e.control(t, ae, "anthropic")
	e.Chain.Grant(ae.Agent.Omni, "openrouter")

	p := workertest.Payload(e.Chain, ae.Agent, ae.Master.Omni, ae.Agent.Omni, "openrouter",
		cap.OpStore, cap.ClassCredentials, time.Now())
	for _, creds := range []agent.STSCreds{ae.Creds, e.Creds(t, ae.Master.Omni)} {
		err := e.send(t, wire.RouteCredStore, creds, e.Broker.Mint(p))
		workertest.AssertRefused(t, err, http.StatusForbidden,
			wire.ReasonCredStoreNotMasterSelf, "")
	}
	assert.Nil(t, e.Raw(t, credworker.Key(ae.Agent.Omni, "openrouter")))
	assert.Nil(t, e.Raw(t, credworker.Key(ae.Master.Omni, "openrouter")))
}

func TestCredList(t *testing.T) {
	e := newEnv(t, shared)
	ae := e.NewAgent(t, "alice")
	list := func() json.RawMessage {
		return e.Broker.Mint(workertest.Self(e.Chain, ae.Agent, "openrouter", cap.OpFetch,
			cap.ClassCredentials))
	}

	services, err := e.Client.CredList(t.Context(), ae.Creds, list())
	require.NoError(t, err)
	assert.Equal(t, []string{}, services, "an empty vault lists as [], not null")

	for _, svc := range []string{"openrouter", "anthropic", "gmail-app"} {
		e.control(t, ae, svc)
	}
	services, err = e.Client.CredList(t.Context(), ae.Creds, list())
	require.NoError(t, err)
	assert.Equal(t, []string{"anthropic", "gmail-app", "openrouter"}, services)

	e.Chain.Grant(ae.Agent.Omni, "openrouter")
	delegated := e.Broker.Mint(workertest.Payload(e.Chain, ae.Agent, ae.Master.Omni, ae.Agent.Omni,
		"openrouter", cap.OpFetch, cap.ClassCredentials, time.Now()))
	_, err = e.Client.CredList(t.Context(), e.Creds(t, ae.Master.Omni), delegated)
	workertest.AssertRefused(t, err, http.StatusForbidden, wire.ReasonListNotMasterSelf, "")
}

func TestCredPlaintextB64Decode(t *testing.T) {
	e := newEnv(t, shared)
	ae := e.NewAgent(t, "alice")
	e.control(t, ae, "anthropic")

	tok := e.Broker.Mint(workertest.Self(e.Chain, ae.Agent, "openrouter", cap.OpStore,
		cap.ClassCredentials))
	// Not base64, missing padding, excess padding, padding in the middle.
	for _, bad := range []string{"not base64!", "c2stc2VjcmV0Cg", "c2stc2VjcmV0==",
		"c2s=c2VjcmV0"} {
		body, err := json.Marshal(wire.StoreRequest{Cap: tok, PlaintextB64: bad})
		require.NoError(t, err)
		resp, raw := workertest.Post(t, e.URL+wire.RouteCredStore,
			workertest.CredsHeader(ae.Creds), body)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%q", bad)
		assert.Equal(t, wire.ReasonPlaintextB64Decode, workertest.ReasonOf(t, raw), "%q", bad)
	}
	assert.Nil(t, e.Raw(t, credworker.Key(ae.Agent.Omni, "openrouter")))
}

func TestCredFetchMissing(t *testing.T) {
	e := newEnv(t, shared)
	ae := e.NewAgent(t, "alice")
	e.control(t, ae, "openrouter")

	tok := e.Broker.Mint(workertest.Self(e.Chain, ae.Agent, "never-stored", cap.OpFetch,
		cap.ClassCredentials))
	_, err := e.Client.CredFetch(t.Context(), ae.Creds, tok)
	workertest.AssertRefused(t, err, http.StatusBadGateway, wire.ReasonS3Get, "NoSuchKey")
}

// TestCredStolenCap: agent A holds caps minted for B but only its own credentials. The
// worker obeys the caps, and IAM refuses the S3 calls; B's object stays as it was.
func TestCredStolenCap(t *testing.T) {
	e := newEnv(t, shared)
	alice := e.NewAgent(t, "alice")
	bob := e.NewAgent(t, "bob")
	e.control(t, alice, "openrouter")

	bobSecret := []byte("sk-bob-only")
	_, err := e.Client.CredStore(t.Context(), bob.Creds, e.Broker.Mint(workertest.Self(
		e.Chain, bob.Agent, "openrouter", cap.OpStore, cap.ClassCredentials)), bobSecret)
	require.NoError(t, err)
	key := credworker.Key(bob.Agent.Omni, "openrouter")
	before := e.Raw(t, key)
	require.NotNil(t, before)

	stolenStore := e.Broker.Mint(workertest.Self(e.Chain, bob.Agent, "openrouter", cap.OpStore,
		cap.ClassCredentials))
	_, err = e.Client.CredStore(t.Context(), alice.Creds, stolenStore, []byte("sk-evil"))
	workertest.AssertRefused(t, err, http.StatusBadGateway, wire.ReasonS3Put, "AccessDenied")

	stolenFetch := e.Broker.Mint(workertest.Self(e.Chain, bob.Agent, "openrouter", cap.OpFetch,
		cap.ClassCredentials))
	_, err = e.Client.CredFetch(t.Context(), alice.Creds, stolenFetch)
	workertest.AssertRefused(t, err, http.StatusBadGateway, wire.ReasonS3Get, "AccessDenied")

	_, err = e.Client.CredList(t.Context(), alice.Creds, stolenFetch)
	workertest.AssertRefused(t, err, http.StatusBadGateway, wire.ReasonS3List, "AccessDenied")

	assert.Equal(t, before, e.Raw(t, key), "bob's object changed")
	got, err := e.Client.CredFetch(t.Context(), bob.Creds, stolenFetch)
	require.NoError(t, err)
	assert.Equal(t, bobSecret, got)
}

// TestCredEnvelopeBoundToOwner: the AAD names owner and service, so an envelope copied
// (here by root, past IAM) to another agent's key or another service does not open.
func TestCredEnvelopeBoundToOwner(t *testing.T) {
	e := newEnv(t, shared)
	alice := e.NewAgent(t, "alice")
	bob := e.NewAgent(t, "bob")
	e.control(t, bob, "openrouter")
	e.control(t, alice, "openrouter")

	bobEnv := e.Raw(t, credworker.Key(bob.Agent.Omni, "openrouter"))
	for _, target := range []struct {
		key, service string
	}{
		{credworker.Key(alice.Agent.Omni, "openrouter"), "openrouter"},
		{credworker.Key(bob.Agent.Omni, "anthropic"), "anthropic"},
	} {
		_, err := e.Root.PutObject(t.Context(), e.Bucket, target.key,
			bytes.NewReader(bobEnv), int64(len(bobEnv)), minio.PutObjectOptions{})
		require.NoError(t, err)
	}

	_, err := e.Client.CredFetch(t.Context(), alice.Creds, e.Broker.Mint(workertest.Self(
		e.Chain, alice.Agent, "openrouter", cap.OpFetch, cap.ClassCredentials)))
	workertest.AssertRefused(t, err, http.StatusInternalServerError, wire.ReasonEnvelopeDecrypt, "")
	_, err = e.Client.CredFetch(t.Context(), bob.Creds, e.Broker.Mint(workertest.Self(
		e.Chain, bob.Agent, "anthropic", cap.OpFetch, cap.ClassCredentials)))
	workertest.AssertRefused(t, err, http.StatusInternalServerError, wire.ReasonEnvelopeDecrypt, "")
}
