package policy_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/policy"
)

func TestBuildScopesToOneOmniAndClass(t *testing.T) {
	o := omni.Master("0x1111111111111111111111111111111111111111")

	cases := []struct {
		role   policy.Role
		bucket string
		class  string
	}{
		{policy.Vault, "agentkeys-vault", "credentials"},
		{policy.Memory, "agentkeys-memory", "memory"},
	}
	for _, tc := range cases {
		t.Run(string(tc.role), func(t *testing.T) {
			raw, err := policy.Build(tc.role, tc.bucket, o)
			require.NoError(t, err)
			assert.NotContains(t, string(raw), " ", "compact JSON")
			assert.LessOrEqual(t, len(raw), policy.MaxSize)

			var doc policy.Document
			require.NoError(t, json.Unmarshal(raw, &doc))
			require.Len(t, doc.Statement, 2)
			prefix := "bots/" + o.String() + "/" + tc.class + "/"
			assert.Equal(t, []string{"arn:aws:s3:::" + tc.bucket + "/" + prefix + "*"},
				doc.Statement[0].Resource)
			assert.ElementsMatch(t, []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
				doc.Statement[0].Action)
			assert.Equal(t, []string{"s3:ListBucket"}, doc.Statement[1].Action)
			assert.Equal(t, prefix+"*", doc.Statement[1].Condition["StringLike"]["s3:prefix"])
		})
	}
}

func TestBuildRefuses(t *testing.T) {
	o := omni.Master("0x1111111111111111111111111111111111111111")

	_, err := policy.Build("admin", "b", o)
	assert.ErrorContains(t, err, "unknown role")

	_, err = policy.Build(policy.Vault, "b", omni.Omni{})
	assert.ErrorContains(t, err, "zero omni")

	_, err = policy.Build(policy.Vault, strings.Repeat("b", 1000), o)
	assert.ErrorContains(t, err, "2048")
}
