package agent

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/wire"
)

func TestLinkToken(t *testing.T) {
	const prefix = wire.RouteVendorVerifyPrefix
	tests := []struct {
		name, text, want string
	}{
		{"plain link", "Visit\n\nhttp://vendor:8084/verify/abc123\n\nthanks", "abc123"},
		{"link at the end of a sentence", "Go to https://v.test/verify/abc.", "abc"},
		{"first of two", "http://v/verify/one http://v/verify/two", "one"},
		{"other routes skipped", "http://b/v1/auth/email/verify/x http://v/verify/y", "y"},
		{"query dropped", "http://v/verify/tok?utm=mail", "tok"},
		{"no link", "no link here", ""},
		{"deeper path refused", "http://v/verify/a/b", ""},
		{"empty token refused", "http://v/verify/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := LinkToken(tt.text, prefix)

			assert.Equal(t, tt.want != "", ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestSessionEmailMatchesTheBrokers(t *testing.T) {
	parent := omni.Master("0x00000000000000000000000000000000000000aa")
	child, err := omni.Agent(parent, "alice", 1)
	require.NoError(t, err)

	got, err := Session{Omni: child.Prefixed(), DerivationPath: "alice/1"}.OwnEmail()

	require.NoError(t, err)
	assert.Equal(t, wire.AgentEmail("alice", child), got)
	assert.Equal(t, "alice-"+child.String()[:8]+"@agents.test", got)

	_, err = Session{Omni: child.String(), DerivationPath: ""}.OwnEmail()
	assert.ErrorContains(t, err, "no label")

	got, err = Session{Omni: child.Prefixed(), DerivationPath: "alice/1",
		Email: "given@agents.test"}.OwnEmail()
	require.NoError(t, err)
	assert.Equal(t, "given@agents.test", got, "the address pairing stored comes first")
}
