package mailer

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNormalizeAddress(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string
	}{
		{"bare", "alice-0123abcd@agents.test", "alice-0123abcd@agents.test", ""},
		{"upper case folds", "Alice@Agents.Test", "alice@agents.test", ""},
		{"empty", "", "", "required"},
		{"display name", "Alice <alice@agents.test>", "", "ASCII without spaces"},
		{"angle brackets", "<alice@agents.test>", "", "bare address"},
		{"header injection", "alice@agents.test\r\nBcc: bob@agents.test", "", "ASCII"},
		{"two recipients", "alice@agents.test,bob@agents.test", "", "single address"},
		{"no domain", "alice@", "", "alice@"},
		{"no at", "alice", "", "alice"},
		{"non-ascii", "alíce@agents.test", "", "ASCII"},
		{"too long", strings.Repeat("a", 250) + "@a.test", "", "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeAddress(tt.in)

			if tt.wantErr != "" {
				require.Error(t, err)
				assert.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestComposeKeepsHeadersOnTheirLines(t *testing.T) {
	msg := string(compose("broker@agentkeys.test", "alice@agents.test", "Grüße", "line\n"))

	head, body, ok := strings.Cut(msg, "\r\n\r\n")
	require.True(t, ok, "header and body are separated by an empty line")
	assert.Equal(t, "line\n", body)
	assert.Contains(t, head, "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=")
	assert.Contains(t, head, "To: alice@agents.test\r\n")
	assert.Contains(t, head, "Message-ID: <")
}
