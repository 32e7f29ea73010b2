package envelope_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/protocol/envelope"
)

const actor = "5f0c6f1a8e2b9d7c4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f"

func TestSealLayoutAndOpen(t *testing.T) {
	k := envelope.NewKEK()
	plain := []byte("sk-or-v1-secret")

	env, err := envelope.Seal(k, actor, "openrouter", plain)
	require.NoError(t, err)

	assert.Equal(t, byte(0x02), env[0])
	assert.Len(t, env, len(plain)+29)
	assert.False(t, bytes.Contains(env, plain))

	// Open it with the standard library alone, to pin the layout and the AAD text.
	block, err := aes.NewCipher(k[:])
	require.NoError(t, err)
	gcm, err := cipher.NewGCM(block)
	require.NoError(t, err)
	aad := []byte("agentkeys.cred.aad.v2|" + actor + "|openrouter")
	got, err := gcm.Open(nil, env[1:13], env[13:], aad)
	require.NoError(t, err)
	assert.Equal(t, plain, got)

	got, err = envelope.Open(k, actor, "openrouter", env)
	require.NoError(t, err)
	assert.Equal(t, plain, got)
}

func TestOpenRefuses(t *testing.T) {
	k := envelope.NewKEK()
	env, err := envelope.Seal(k, actor, "svc", []byte("x"))
	require.NoError(t, err)
	other := strings.Replace(actor, "5", "6", 1)

	flipped := bytes.Clone(env)
	flipped[len(flipped)-1] ^= 1
	v1 := bytes.Clone(env)
	v1[0] = 0x01

	cases := map[string]struct {
		kek     envelope.KEK
		actor   string
		service string
		env     []byte
	}{
		"other actor":   {k, other, "svc", env},
		"other service": {k, actor, "svc2", env},
		"other kek":     {envelope.NewKEK(), actor, "svc", env},
		"flipped tag":   {k, actor, "svc", flipped},
		"version 1":     {k, actor, "svc", v1},
		"short":         {k, actor, "svc", env[:28]},
		"empty":         {k, actor, "svc", nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := envelope.Open(tc.kek, tc.actor, tc.service, tc.env)
			assert.ErrorIs(t, err, envelope.ErrOpen)
		})
	}
}

func TestParseKEK(t *testing.T) {
	good := envelope.NewKEK()
	got, err := envelope.ParseKEK(good.String())
	require.NoError(t, err)
	assert.Equal(t, good, got)

	for name, in := range map[string]string{
		"all zero":  strings.Repeat("00", 32),
		"all equal": strings.Repeat("ab", 32),
		"short":     strings.Repeat("01", 31),
		"not hex":   strings.Repeat("zz", 32),
	} {
		_, err := envelope.ParseKEK(in)
		assert.Error(t, err, name)
	}
}

func FuzzOpen(f *testing.F) {
	k := envelope.NewKEK()
	env, err := envelope.Seal(k, actor, "svc", []byte("hello"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(env, "svc")
	f.Add([]byte{0x02}, "")
	f.Add(make([]byte, 29), "svc")
	f.Fuzz(func(t *testing.T, data []byte, service string) {
		plain, err := envelope.Open(k, actor, service, data)
		if err != nil {
			return
		}
		// Only a genuine envelope opens, and only for its own AAD.
		assert.Equal(t, "svc", service)
		assert.Equal(t, []byte("hello"), plain)
	})
}
