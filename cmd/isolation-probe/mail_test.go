package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEmailFlagNamesAnEarlierTarget(t *testing.T) {
	bob := strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		email   string
		wantErr string
	}{
		{"a target's address", "bob=bob-abababab@agents.test", ""},
		{"no such target", "carol=carol@agents.test", "no --target carol"},
		{"not an address", "bob=bob", "want label=address"},
		{"no label", "=bob@agents.test", "want label=address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ts targets
			require.NoError(t, ts.Set("bob="+bob))

			err := emails{&ts}.Set(tt.email)

			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				assert.Empty(t, ts[0].email)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "bob-abababab@agents.test", ts[0].email)
		})
	}
}
