package worker_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/fixtures/minioserver"
	"github.com/agentkeys/harness/mocks/chain"
	"github.com/agentkeys/harness/mocks/reply"
	"github.com/agentkeys/harness/mocks/worker"
	"github.com/agentkeys/harness/mocks/worker/workertest"
	"github.com/agentkeys/harness/protocol/cap"
	"github.com/agentkeys/harness/protocol/envelope"
	"github.com/agentkeys/harness/protocol/evm"
	"github.com/agentkeys/harness/protocol/refusal"
	"github.com/agentkeys/harness/protocol/wire"
)

func TestNewRefusesBadConfig(t *testing.T) {
	broker := workertest.NewBroker()
	valid := func() worker.Config {
		return worker.Config{Endpoint: "http://127.0.0.1:9000", Bucket: "vault",
			KEK: envelope.NewKEK(), BrokerKey: broker.Public(), Chain: chain.NewMemory()}
	}
	_, err := worker.New("test", valid())
	require.NoError(t, err, "the valid config is the control")

	cases := []struct {
		name   string
		change func(*worker.Config)
	}{
		{"no endpoint", func(c *worker.Config) { c.Endpoint = "" }},
		{"endpoint not a URL", func(c *worker.Config) { c.Endpoint = "127.0.0.1:9000" }},
		{"no bucket", func(c *worker.Config) { c.Bucket = "" }},
		{"zero KEK", func(c *worker.Config) { c.KEK = envelope.KEK{} }},
		{"all-equal KEK", func(c *worker.Config) {
			for i := range c.KEK {
				c.KEK[i] = 0x11
			}
		}},
		{"no broker key", func(c *worker.Config) { c.BrokerKey = nil }},
		{"no chain", func(c *worker.Config) { c.Chain = nil }},
		{"own credentials allowed but missing", func(c *worker.Config) {
			c.AllowWorkerCredentials = true
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid()
			tc.change(&cfg)
			_, err := worker.New("test", cfg)
			assert.Error(t, err)
		})
	}
}

// TestCredentialHeaders: all three X-Aws-* headers or nothing at all; anything between is
// a plain-text 401, decided before the body is read.
func TestCredentialHeaders(t *testing.T) {
	s := newStack(t, shared)
	s.seed(t)
	garbage := []byte(`{"cap": nope`)
	huge := bytes.Repeat([]byte(" "), reply.MaxBody+1)

	cases := []struct {
		name   string
		header func(full http.Header) http.Header
		body   func(valid []byte) []byte
		status int
	}{
		{"all three", func(h http.Header) http.Header { return h }, nil, http.StatusOK},
		{"all three, names in lower case", func(h http.Header) http.Header {
			low := http.Header{}
			for k, vs := range h {
				low[strings.ToLower(k)] = vs
			}
			return low
		}, nil, http.StatusOK},
		{"none", func(http.Header) http.Header { return http.Header{} }, nil,
			http.StatusUnauthorized},
		{"access key only", keep(wire.HeaderAccessKeyID), nil, http.StatusUnauthorized},
		{"no session token", keep(wire.HeaderAccessKeyID, wire.HeaderSecretAccessKey), nil,
			http.StatusUnauthorized},
		{"no access key", keep(wire.HeaderSecretAccessKey, wire.HeaderSessionToken), nil,
			http.StatusUnauthorized},
		{"empty session token", func(h http.Header) http.Header {
			h.Set(wire.HeaderSessionToken, "")
			return h
		}, nil, http.StatusUnauthorized},
		{"access key twice", func(h http.Header) http.Header {
			h.Add(wire.HeaderAccessKeyID, "AKIAOTHER")
			return h
		}, nil, http.StatusUnauthorized},
		{"one header and a malformed body", keep(wire.HeaderAccessKeyID),
			func([]byte) []byte { return garbage }, http.StatusUnauthorized},
		{"none and a body over 1 MiB", func(http.Header) http.Header { return http.Header{} },
			func([]byte) []byte { return huge }, http.StatusUnauthorized},
	}
	for _, rt := range routes {
		for _, tc := range cases {
			t.Run(rt.path+"/"+tc.name, func(t *testing.T) {
				raw := s.validBody(rt)
				if tc.body != nil {
					raw = tc.body(raw)
				}
				resp, got := s.post(t, rt, tc.header(s.headers(rt)), raw)
				require.Equal(t, tc.status, resp.StatusCode, "%s", got)
				if tc.status == http.StatusUnauthorized {
					assert.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"),
						"text/plain"), "401 body is plain text")
					assert.NotContains(t, string(got), `"reason"`)
				}
			})
		}
	}
}

// keep returns a header filter that keeps only names.
func keep(names ...string) func(http.Header) http.Header {
	return func(h http.Header) http.Header {
		out := http.Header{}
		for _, n := range names {
			out[http.CanonicalHeaderKey(n)] = h.Values(n)
		}
		return out
	}
}

// TestWorkerOwnCredentials: with require_sts explicitly off, a request with no headers
// runs with the worker's own credentials; a partial set is still a 401.
func TestWorkerOwnCredentials(t *testing.T) {
	s := newStack(t, shared, func(c *worker.Config) {
		c.AllowWorkerCredentials = true
		c.Credentials = worker.Credentials{AccessKeyID: shared.RootUser,
			SecretAccessKey: shared.RootPassword}
	})
	for _, rt := range routes {
		resp, got := s.post(t, rt, http.Header{}, s.validBody(rt))
		assert.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", rt.path, got)

		resp, got = s.post(t, rt, keep(wire.HeaderAccessKeyID)(s.headers(rt)),
			s.validBody(rt))
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s: %s", rt.path, got)
	}
}

// TestBodyLimit: a body above 1 MiB is a 413 on every route, whatever it holds; the
// largest store that fits is the control.
func TestBodyLimit(t *testing.T) {
	s := newStack(t, shared)
	s.seed(t)
	for _, rt := range routes {
		t.Run(rt.path, func(t *testing.T) {
			valid := s.validBody(rt)
			if rt.store {
				// 760 KiB of plaintext is just under 1 MiB once in base64.
				big := bytes.Repeat([]byte("m"), 760<<10)
				raw, err := json.Marshal(wire.StoreRequest{
					Cap:          s.broker.Mint(s.payload(rt)),
					PlaintextB64: base64.StdEncoding.EncodeToString(big)})
				require.NoError(t, err)
				require.Less(t, len(raw), reply.MaxBody)
				resp, got := s.post(t, rt, s.headers(rt), raw)
				require.Equal(t, http.StatusOK, resp.StatusCode, "control: %s", got)
			}

			padded := append(valid, bytes.Repeat([]byte(" "), reply.MaxBody+1-len(valid))...)
			resp, got := s.post(t, rt, s.headers(rt), padded)
			assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
			assert.Equal(t, wire.ReasonPayloadTooLarge, reasonOf(t, got))
		})
	}
}

func reasonOf(t testing.TB, raw []byte) string {
	t.Helper()
	var b refusal.Body
	require.NoError(t, json.Unmarshal(raw, &b), "%s", raw)
	return b.Reason
}

// TestBadInputWritesNothing sends every kind of malformed body to every route with valid
// credentials: each is a 4xx with a reason, and neither bucket changes.
func TestBadInputWritesNothing(t *testing.T) {
	srv := minioserver.StartTB(t)
	s := newStack(t, srv)
	s.seed(t)
	before := listBoth(t, srv)
	require.NotEmpty(t, before, "the seed objects are the control")

	signed := func(rt route, change func(*cap.Payload)) json.RawMessage {
		p := s.payload(rt)
		change(&p)
		return s.broker.Mint(p)
	}
	validCap := func(rt route) string { return string(s.broker.Mint(s.payload(rt))) }
	pt := `"` + base64.StdEncoding.EncodeToString([]byte("sk-never-stored")) + `"`

	cases := []struct {
		name   string
		body   func(rt route) []byte
		only   func(rt route) bool
		status int
		reason string
	}{
		{"empty body", func(route) []byte { return nil }, nil, 400, wire.ReasonInvalidInput},
		{"not JSON", func(route) []byte { return []byte(`{"cap":`) }, nil, 400,
			wire.ReasonInvalidInput},
		{"an array", func(route) []byte { return []byte(`[]`) }, nil, 400,
			wire.ReasonInvalidInput},
		{"cap missing", func(rt route) []byte {
			if rt.store {
				return []byte(`{"plaintext_b64":` + pt + `}`)
			}
			return []byte(`{}`)
		}, nil, 400, wire.ReasonInvalidInput},
		{"cap is a string", func(rt route) []byte {
			return []byte(`{"cap":"` + base64.StdEncoding.EncodeToString(
				[]byte(validCap(rt))) + `"}`)
		}, fetchOnly, 400, wire.ReasonInvalidInput},
		{"cap is null", func(route) []byte { return []byte(`{"cap":null}`) }, fetchOnly,
			400, wire.ReasonInvalidInput},
		{"cap is a number", func(route) []byte { return []byte(`{"cap":7}`) }, fetchOnly,
			400, wire.ReasonInvalidInput},
		{"plaintext_b64 missing", func(rt route) []byte {
			return []byte(`{"cap":` + validCap(rt) + `}`)
		}, storeOnly, 400, wire.ReasonInvalidInput},
		{"plaintext_b64 is a number", func(rt route) []byte {
			return []byte(`{"cap":` + validCap(rt) + `,"plaintext_b64":12}`)
		}, storeOnly, 400, wire.ReasonInvalidInput},
		{"plaintext on a fetch route", func(rt route) []byte {
			return []byte(`{"cap":` + validCap(rt) + `,"plaintext_b64":` + pt + `}`)
		}, fetchOnly, 400, wire.ReasonInvalidInput},
		{"body names its own key", func(rt route) []byte {
			extra := `,"s3_key":"bots/` + strings.Repeat("0", 64) + `/credentials/x.enc"`
			if rt.store {
				extra += `,"plaintext_b64":` + pt
			}
			return []byte(`{"cap":` + validCap(rt) + extra + `}`)
		}, nil, 400, wire.ReasonInvalidInput},
		{"trailing data", func(rt route) []byte {
			return append(body(rt, json.RawMessage(validCap(rt))), []byte(`{}`)...)
		}, nil, 400, wire.ReasonInvalidInput},
		{"cap without broker_sig", func(rt route) []byte {
			tok, err := cap.Decode(json.RawMessage(validCap(rt)))
			require.NoError(t, err)
			tok.BrokerSig = ""
			return body(rt, workertest.Encode(tok))
		}, nil, 400, wire.ReasonInvalidInput},
		{"cap without payload", func(rt route) []byte {
			return body(rt, json.RawMessage(`{"broker_sig":"AAAA"}`))
		}, nil, 400, wire.ReasonInvalidInput},
		{"cap with an unknown field", func(rt route) []byte {
			raw := validCap(rt)
			return body(rt, json.RawMessage(raw[:len(raw)-1]+`,"bucket":"other"}`))
		}, nil, 400, wire.ReasonInvalidInput},
		{"epoch as a string", func(rt route) []byte {
			raw := strings.Replace(validCap(rt), `"k3_epoch":1`, `"k3_epoch":"1"`, 1)
			return body(rt, json.RawMessage(raw))
		}, nil, 400, wire.ReasonInvalidInput},
		{"signed actor without 0x", func(rt route) []byte {
			return body(rt, signed(rt, func(p *cap.Payload) {
				p.Actor = strings.TrimPrefix(p.Actor, "0x")
			}))
		}, nil, 400, wire.ReasonInvalidInput},
		{"signed operator in upper case", func(rt route) []byte {
			return body(rt, signed(rt, func(p *cap.Payload) {
				p.Operator = "0x" + strings.ToUpper(p.Operator[2:])
			}))
		}, nil, 400, wire.ReasonInvalidInput},
		{"signed service that climbs out", func(rt route) []byte {
			return body(rt, signed(rt, func(p *cap.Payload) { p.Service = "../../x" }))
		}, nil, 400, wire.ReasonInvalidInput},
		{"signed service with a slash", func(rt route) []byte {
			return body(rt, signed(rt, func(p *cap.Payload) { p.Service = "a/b" }))
		}, nil, 400, wire.ReasonInvalidInput},
		{"signed service in upper case", func(rt route) []byte {
			return body(rt, signed(rt, func(p *cap.Payload) { p.Service = "OpenRouter" }))
		}, nil, 400, wire.ReasonInvalidInput},
		{"signed service of 65 characters", func(rt route) []byte {
			return body(rt, signed(rt, func(p *cap.Payload) {
				p.Service = strings.Repeat("s", 65)
			}))
		}, nil, 400, wire.ReasonInvalidInput},
		{"signed service with a NUL", func(rt route) []byte {
			return body(rt, signed(rt, func(p *cap.Payload) { p.Service += "\x00" }))
		}, nil, 400, wire.ReasonInvalidInput},
		{"signed service with a newline", func(rt route) []byte {
			return body(rt, signed(rt, func(p *cap.Payload) { p.Service += "\nx" }))
		}, nil, 400, wire.ReasonInvalidInput},
		{"signed device hash without 0x", func(rt route) []byte {
			return body(rt, signed(rt, func(p *cap.Payload) {
				p.DeviceKeyHash = p.DeviceKeyHash[2:]
			}))
		}, nil, 400, wire.ReasonInvalidInput},
		{"over 1 MiB", func(rt route) []byte {
			return []byte(`{"cap":` + validCap(rt) + `,"plaintext_b64":"` +
				strings.Repeat("A", reply.MaxBody) + `"}`)
		}, nil, 413, wire.ReasonPayloadTooLarge},
	}
	for _, rt := range routes {
		for _, tc := range cases {
			if tc.only != nil && !tc.only(rt) {
				continue
			}
			t.Run(rt.path+"/"+tc.name, func(t *testing.T) {
				resp, got := s.post(t, rt, s.headers(rt), tc.body(rt))
				assert.Equal(t, tc.status, resp.StatusCode, "%s", got)
				assert.Equal(t, tc.reason, reasonOf(t, got))
			})
		}
	}
	assert.Equal(t, before, listBoth(t, srv), "a refused request wrote to S3")
}

func storeOnly(rt route) bool { return rt.store }
func fetchOnly(rt route) bool { return !rt.store }

func listBoth(t *testing.T, srv *minioserver.Server) []string {
	t.Helper()
	keys, err := srv.ListBoth(t.Context())
	require.NoError(t, err)
	return keys
}

// TestCheckOrder: a cap wrong in several ways is refused for the first check it fails,
// on both workers, so that the reason a caller sees never depends on luck.
func TestCheckOrder(t *testing.T) {
	s := newStack(t, shared)
	s.seed(t)
	otherDevice, err := evm.GenerateKey()
	require.NoError(t, err)
	stranger := workertest.NewUnregistered(s.alice, "stranger")

	otherOp := map[string]string{cap.OpStore: cap.OpFetch, cap.OpFetch: cap.OpStore}
	otherClass := map[string]string{cap.ClassCredentials: cap.ClassMemory,
		cap.ClassMemory: cap.ClassCredentials}
	expire := func(p *cap.Payload) {
		p.IssuedAt, p.ExpiresAt = time.Now().Unix()-600, time.Now().Unix()-300
	}

	cases := []struct {
		name   string
		token  func(rt route) json.RawMessage
		reason string
	}{
		{"valid", func(rt route) json.RawMessage { return s.broker.Mint(s.payload(rt)) }, ""},
		{"tampered, wrong class, expired, bad pop", func(rt route) json.RawMessage {
			p := s.payload(rt)
			p.DataClass = otherClass[rt.class]
			expire(&p)
			raw := s.broker.Sign(workertest.WithPop(p, otherDevice))
			tok, err := cap.Decode(raw)
			require.NoError(t, err)
			tok.Payload.Nonce = cap.NewNonce()
			return workertest.Encode(tok)
		}, wire.ReasonBrokerSigInvalid},
		{"bad pop, wrong op, wrong class", func(rt route) json.RawMessage {
			p := s.payload(rt)
			p.Op, p.DataClass = otherOp[rt.op], otherClass[rt.class]
			return s.broker.Sign(workertest.WithPop(p, otherDevice))
		}, wire.ReasonCapPopInvalid},
		{"wrong op, wrong class, expired", func(rt route) json.RawMessage {
			p := s.payload(rt)
			p.Op, p.DataClass = otherOp[rt.op], otherClass[rt.class]
			expire(&p)
			return s.broker.Mint(p)
		}, wire.ReasonCapOpMismatch},
		{"wrong class, expired, unknown device", func(rt route) json.RawMessage {
			p := workertest.Payload(s.reg, stranger, s.alice.Omni, s.alice.Omni, rt.service,
				rt.op, otherClass[rt.class], time.Now())
			expire(&p)
			return s.broker.Mint(p)
		}, wire.ReasonCapDataClassMismatch},
		{"expired, unknown device, old epoch", func(rt route) json.RawMessage {
			p := workertest.Payload(s.reg, stranger, s.alice.Omni, s.alice.Omni, rt.service,
				rt.op, rt.class, time.Now())
			expire(&p)
			p.K3Epoch = 99
			return s.broker.Mint(p)
		}, wire.ReasonCapFreshnessFailed},
	}
	for _, rt := range routes {
		for _, tc := range cases {
			t.Run(rt.path+"/"+tc.name, func(t *testing.T) {
				resp, got := s.post(t, rt, s.headers(rt), body(rt, tc.token(rt)))
				if tc.reason == "" {
					assert.Equal(t, http.StatusOK, resp.StatusCode, "%s", got)
					return
				}
				assert.Equal(t, http.StatusForbidden, resp.StatusCode, "%s", got)
				assert.Equal(t, tc.reason, reasonOf(t, got))
			})
		}
	}
}

// TestAuditHashesOnly: the audit log records who, where and the envelope's hash, names
// an identity only once broker_sig verified, and never holds plaintext or credentials.
func TestAuditHashesOnly(t *testing.T) {
	s := newStack(t, shared)
	secret := []byte("sk-audit-never-logged")
	rt := routes[0]
	raw, err := json.Marshal(wire.StoreRequest{Cap: s.broker.Mint(s.payload(rt)),
		PlaintextB64: base64.StdEncoding.EncodeToString(secret)})
	require.NoError(t, err)
	resp, got := s.post(t, rt, s.headers(rt), raw)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", got)
	var ans wire.StoreAnswer
	require.NoError(t, json.Unmarshal(got, &ans))

	forged := workertest.NewBroker().Mint(s.payload(rt))
	resp, _ = s.post(t, rt, s.headers(rt), body(rt, forged))
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, _ = s.post(t, rt, http.Header{}, s.validBody(rt))
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	auditResp, err := http.Get(s.credURL + wire.RouteAudit)
	require.NoError(t, err)
	defer auditResp.Body.Close()
	logRaw, err := io.ReadAll(auditResp.Body)
	require.NoError(t, err)
	var log wire.AuditAnswer
	require.NoError(t, json.Unmarshal(logRaw, &log))
	require.Len(t, log.Entries, 3)

	stored, refused, unauth := log.Entries[0], log.Entries[1], log.Entries[2]
	assert.Equal(t, ans.AuditEnvelopeHash, stored.Hash)
	assert.Equal(t, "ok", stored.Outcome)
	assert.Equal(t, s.alice.Omni.String(), stored.Actor)
	assert.Equal(t, ans.S3Key, stored.S3Key)
	assert.Regexp(t, "^[0-9a-f]{64}$", stored.EnvelopeSHA256)

	assert.Equal(t, wire.ReasonBrokerSigInvalid, refused.Reason)
	assert.Empty(t, refused.Actor+refused.Operator+refused.Service,
		"a forged cap's identities reached the log")
	assert.Equal(t, http.StatusUnauthorized, unauth.Status)
	assert.Equal(t, "refused", unauth.Outcome)

	for _, e := range log.Entries {
		h := e.Hash
		e.Hash = ""
		raw, err := json.Marshal(e)
		require.NoError(t, err)
		sum := sha256.Sum256(raw)
		assert.Equal(t, "0x"+hex.EncodeToString(sum[:]), h, "entry %d hash", e.Seq)
	}
	for _, leak := range []string{string(secret), base64.StdEncoding.EncodeToString(secret),
		s.vault.AccessKeyID, s.vault.SecretAccessKey, s.vault.SessionToken} {
		assert.NotContains(t, string(logRaw), leak)
	}
}
