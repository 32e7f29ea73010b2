package cap_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/protocol/cap"
)

func samplePayload() cap.Payload {
	return cap.Payload{
		Operator:      "0x" + repeat("a", 64),
		Actor:         "0x" + repeat("b", 64),
		Service:       "openrouter<&>",
		Op:            cap.OpStore,
		DataClass:     cap.ClassCredentials,
		DeviceKeyHash: "0x" + repeat("c", 64),
		K3Epoch:       1,
		IssuedAt:      1700000000,
		ExpiresAt:     1700000300,
		Nonce:         repeat("d", 32),
	}
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

func TestCanonicalOrderAndNoHTMLEscaping(t *testing.T) {
	p := samplePayload()
	want := `{"operator_omni":"0x` + repeat("a", 64) + `","actor_omni":"0x` + repeat("b", 64) +
		`","service":"openrouter<&>","op":"store","data_class":"credentials",` +
		`"device_key_hash":"0x` + repeat("c", 64) + `","k3_epoch":1,"issued_at":1700000000,` +
		`"expires_at":1700000300,"nonce":"` + repeat("d", 32) + `"}`
	assert.Equal(t, want, string(p.Canonical()))
}

func TestSignatureIsDoubleSHA256OverCanonical(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	p := samplePayload()

	sig, err := cap.Sign(key, p)
	require.NoError(t, err)
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	require.NoError(t, err)
	require.Len(t, raw, 64)

	// Check the construction independently of Verify: the curve signs SHA-256 of the
	// SHA-256 digest of the canonical bytes.
	first := sha256.Sum256(p.Canonical())
	second := sha256.Sum256(first[:])
	r, s := new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])
	assert.True(t, ecdsa.Verify(&key.PublicKey, second[:], r, s))
	assert.False(t, ecdsa.Verify(&key.PublicKey, first[:], r, s))

	require.NoError(t, cap.Verify(&key.PublicKey, cap.Token{Payload: p, BrokerSig: sig}))
}

func TestVerifyRefusesEdits(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	p := samplePayload()
	sig, err := cap.Sign(key, p)
	require.NoError(t, err)

	edits := map[string]func(*cap.Payload){
		"actor":      func(p *cap.Payload) { p.Actor = "0x" + repeat("e", 64) },
		"service":    func(p *cap.Payload) { p.Service = "other" },
		"expiry":     func(p *cap.Payload) { p.ExpiresAt += 3600 },
		"data class": func(p *cap.Payload) { p.DataClass = cap.ClassMemory },
		"op":         func(p *cap.Payload) { p.Op = cap.OpFetch },
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			edited := p
			edit(&edited)
			err := cap.Verify(&key.PublicKey, cap.Token{Payload: edited, BrokerSig: sig})
			assert.ErrorIs(t, err, cap.ErrBadSignature)
		})
	}
	t.Run("other key", func(t *testing.T) {
		err := cap.Verify(&other.PublicKey, cap.Token{Payload: p, BrokerSig: sig})
		assert.ErrorIs(t, err, cap.ErrBadSignature)
	})
	t.Run("padded base64", func(t *testing.T) {
		err := cap.Verify(&key.PublicKey, cap.Token{Payload: p, BrokerSig: sig + "=="})
		assert.ErrorIs(t, err, cap.ErrBadSignature)
	})
}

func TestDecode(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	p := samplePayload()
	sig, err := cap.Sign(key, p)
	require.NoError(t, err)
	good, err := json.Marshal(cap.Token{Payload: p, BrokerSig: sig})
	require.NoError(t, err)

	tok, err := cap.Decode(good)
	require.NoError(t, err)
	require.NoError(t, cap.Verify(&key.PublicKey, tok))

	for name, in := range map[string]string{
		"empty":          ``,
		"not an object":  `[]`,
		"unknown field":  `{"payload":{},"broker_sig":"x","admin":true}`,
		"no signature":   string(good[:len(good)-1]) + `,"broker_sig":""}`,
		"no payload":     `{"broker_sig":"x"}`,
		"wrong type":     `{"payload":{"k3_epoch":"1"},"broker_sig":"x"}`,
		"trailing data":  string(good) + `{}`,
		"negative epoch": `{"payload":{"k3_epoch":-1},"broker_sig":"x"}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := cap.Decode([]byte(in))
			assert.Error(t, err)
		})
	}
}

func TestValidateService(t *testing.T) {
	tests := []struct {
		name    string
		service string
		ok      bool
	}{
		{"plain", "openrouter", true},
		{"memory namespace", "memory:notes", true},
		{"one character", "a", true},
		{"64 characters", repeat("x", 64), true},
		{"64 two-byte characters", repeat("\u00e9", 64), true},
		{"space inside", "my service", true},
		{"empty", "", false},
		{"65 characters", repeat("x", 65), false},
		{"65 two-byte characters", repeat("\u00e9", 65), false},
		{"slash", "a/b", false},
		{"star", "a*", false},
		{"question mark", "a?", false},
		{"backslash", `a\b`, false},
		{"dot dot", "..", false},
		{"dot dot inside", "a..b", false},
		{"NUL", "open\x00router", false},
		{"newline", "open\nrouter", false},
		{"trailing newline", "openrouter\n", false},
		{"tab", "open\trouter", false},
		{"DEL", "open\x7frouter", false},
		{"C1 control", "open\u0085router", false},
		{"not UTF-8", "open\xffrouter", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := cap.ValidateService(tc.service)
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"payload":{"operator_omni":"0x00","k3_epoch":1},"broker_sig":"abc"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"payload":null,"broker_sig":"","client_ts":1}`))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := cap.Decode(data)
		if err != nil {
			return
		}
		// Whatever decodes must verify or fail cleanly, and re-encode to a token that
		// decodes to the same fields.
		_ = cap.Verify(&key.PublicKey, tok)
		again, err := json.Marshal(tok)
		require.NoError(t, err)
		back, err := cap.Decode(again)
		require.NoError(t, err)
		assert.Equal(t, tok.Payload, back.Payload)
	})
}
