package evm_test

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/protocol/evm"
)

// The well-known key 1 and its address, as every Ethereum library derives them.
const (
	keyOne     = "0x0000000000000000000000000000000000000000000000000000000000000001"
	keyOneAddr = "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf"
)

func TestKeccakKnownVector(t *testing.T) {
	assert.Equal(t, "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
		hex.EncodeToString(evm.Keccak256(nil)))
}

func TestAddressOfKeyOne(t *testing.T) {
	k, err := evm.ParseKey(keyOne)
	require.NoError(t, err)
	assert.Equal(t, keyOneAddr, k.Address())
	assert.Equal(t, keyOne, k.Hex())

	raw, _ := hex.DecodeString(keyOneAddr[2:])
	assert.Equal(t, "0x"+hex.EncodeToString(evm.Keccak256(raw)), k.DeviceKeyHash())
}

func TestParseKeyRefusesBadInput(t *testing.T) {
	for _, in := range []string{"", "0x", "0x00", keyOne[2:], "0x" + strings.Repeat("0", 64),
		"0x" + strings.Repeat("f", 64), "0x" + strings.Repeat("z", 64)} {
		_, err := evm.ParseKey(in)
		assert.Error(t, err, "key %q", in)
	}
}

func TestSignRecoverPersonal(t *testing.T) {
	k, err := evm.GenerateKey()
	require.NoError(t, err)
	msg := []byte("hello agentkeys")

	sig := k.SignPersonal(msg)
	raw, err := hex.DecodeString(sig[2:])
	require.NoError(t, err)
	require.Len(t, raw, 65)
	assert.Contains(t, []byte{27, 28}, raw[64])

	got, err := evm.RecoverPersonal(msg, sig)
	require.NoError(t, err)
	assert.Equal(t, k.Address(), got)
	require.NoError(t, evm.VerifyPersonal(msg, sig, k.Address()))

	// v = 0/1 is accepted too.
	raw[64] -= 27
	got, err = evm.RecoverPersonal(msg, "0x"+hex.EncodeToString(raw))
	require.NoError(t, err)
	assert.Equal(t, k.Address(), got)

	// Another message recovers another address, so verification fails.
	require.ErrorIs(t, evm.VerifyPersonal([]byte("other"), sig, k.Address()), evm.ErrBadSignature)
}

func TestRecoverRefusesMalformed(t *testing.T) {
	for _, sig := range []string{"", "0x", "0x00", strings.Repeat("a", 130),
		"0x" + strings.Repeat("a", 128) + "05"} {
		_, err := evm.RecoverPersonal([]byte("m"), sig)
		assert.ErrorIs(t, err, evm.ErrBadSignature, "sig %q", sig)
	}
}

func TestPersonalHashKnownVector(t *testing.T) {
	// keccak256("\x19Ethereum Signed Message:\n5hello"), as eth_sign computes it.
	assert.Equal(t, "50b2c43fd39106bafbba0da34fc430e1f91e3c96ea2acee2bc34119f92b37750",
		hex.EncodeToString(evm.PersonalHash([]byte("hello"))))
}
