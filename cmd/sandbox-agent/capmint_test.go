package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/protocol/wire"
)

// TestCapMintAsksForTheTTL: --ttl reaches the broker as ttl_seconds, and a lifetime the
// broker would not grant as asked is a usage error that sends nothing.
func TestCapMintAsksForTheTTL(t *testing.T) {
	ttl := func(s int64) *int64 { return &s }
	cases := []struct {
		name string
		args []string
		code int
		ttl  *int64 // what the broker was asked for; nil, nothing
	}{
		{"no ttl leaves it to the broker", nil, exitOK, nil},
		{"the longest the broker grants", []string{"--ttl", "30m"}, exitOK,
			ttl(wire.CapTTLMax)},
		{"the shortest the broker grants", []string{"--ttl", "60s"}, exitOK,
			ttl(wire.CapTTLMin)},
		{"shorter than the broker grants", []string{"--ttl", "59s"}, exitUsage, nil},
		{"longer than the broker grants", []string{"--ttl", "30m1s"}, exitUsage, nil},
		{"not whole seconds", []string{"--ttl", "90500ms"}, exitUsage, nil},
		{"zero", []string{"--ttl", "0s"}, exitUsage, nil},
		{"seconds without a unit", []string{"--ttl", "1800"}, exitUsage, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var asked []wire.CapRequest
			broker := httptest.NewServer(http.HandlerFunc(
				func(w http.ResponseWriter, r *http.Request) {
					var req wire.CapRequest
					assert.NoError(t, json.NewDecoder(r.Body).Decode(&req))
					asked = append(asked, req)
					_, _ = w.Write([]byte(`{"payload":{"service":"memory:n"},` +
						`"broker_sig":"0x00"}`))
				}))
			t.Cleanup(broker.Close)
			paired(t, t.TempDir(), agent.Session{JWT: "j", Omni: strings.Repeat("ab", 32),
				DerivationPath: "alice/0"})
			t.Setenv(agent.EnvBroker, broker.URL)

			code, out, stderr := runInPaired(t, append([]string{"cap", "mint",
				"--route", "memory-put", "--service", "memory:n"}, tc.args...)...)

			require.Equal(t, tc.code, code, stderr)
			if tc.code != exitOK {
				assert.Empty(t, asked, "a usage error sends no request")
				assert.Empty(t, out)
				assert.Contains(t, stderr, "ttl", "the stderr line names the flag")
				return
			}
			require.Len(t, asked, 1)
			assert.Equal(t, tc.ttl, asked[0].TTLSeconds)
			assert.Contains(t, out, `"broker_sig":"0x00"`)
		})
	}
}
