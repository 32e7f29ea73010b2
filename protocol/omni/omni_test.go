package omni_test

import (
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/protocol/omni"
)

func TestMasterHashesLowercasedAddressWithPrefix(t *testing.T) {
	addr := "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
	want := sha256.Sum256([]byte("agentkeysevm0x7e5f4552091a69125d5dfcb7b8c2659029395bdf"))

	got := omni.Master(addr)

	assert.Equal(t, omni.Omni(want), got)
	assert.Equal(t, got, omni.Master(strings.ToLower(addr)))
}

func TestAgentDerivation(t *testing.T) {
	parent := omni.Master("0x7e5f4552091a69125d5dfcb7b8c2659029395bdf")
	var preimage []byte
	preimage = append(preimage, "agentkeys-hdkd-v1"...)
	preimage = append(preimage, parent[:]...)
	preimage = append(preimage, "//alice/0"...)
	want := sha256.Sum256(preimage)

	got, err := omni.Agent(parent, "alice", 0)
	require.NoError(t, err)
	assert.Equal(t, omni.Omni(want), got)

	gen1, err := omni.Agent(parent, "alice", 1)
	require.NoError(t, err)
	assert.NotEqual(t, got, gen1, "generations must differ")

	for _, bad := range []string{"", "Alice", "a/b", "a..b", strings.Repeat("a", 33), "a b"} {
		_, err := omni.Agent(parent, bad, 0)
		assert.Error(t, err, "label %q", bad)
	}
}

func TestParse(t *testing.T) {
	o := omni.Master("0xabc")
	bare := o.String()
	upper := strings.ToUpper(bare)

	cases := []struct {
		name     string
		in       string
		prefixed bool
		ok       bool
	}{
		{"bare canonical", bare, false, true},
		{"prefixed canonical", "0x" + bare, true, true},
		{"bare given where 0x is required", bare, true, false},
		{"0x given where bare is required", "0x" + bare, false, false},
		{"capital 0X", "0X" + bare, true, false},
		{"upper case hex", "0x" + upper, true, false},
		{"upper case bare", upper, false, false},
		{"too short", "0x" + bare[:62], true, false},
		{"too long", "0x" + bare + "00", true, false},
		{"not hex", "0x" + strings.Repeat("g", 64), true, false},
		{"empty", "", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parse := omni.ParseBare
			if tc.prefixed {
				parse = omni.ParsePrefixed
			}
			got, err := parse(tc.in)
			if !tc.ok {
				require.ErrorIs(t, err, omni.ErrInvalid)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, o, got)
		})
	}
}

func TestNormalize(t *testing.T) {
	assert.Equal(t, "abcd", omni.Normalize("0XABCD"))
	assert.Equal(t, "abcd", omni.Normalize("0xabcd"))
	assert.Equal(t, "abcd", omni.Normalize("ABCD"))
}
