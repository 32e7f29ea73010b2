package agent

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/protocol/wire"
)

func TestEndpointsRoundtripThroughTheEnvironment(t *testing.T) {
	base := Endpoints{
		Broker: "http://broker:8080", STS: "http://sts:8081",
		CredWorker: "http://cred-worker:8082", MemoryWorker: "http://memory-worker:8083",
		S3: "http://minio:9000", VaultRoleARN: wire.DefaultVaultRoleARN,
		MemoryRoleARN: wire.DefaultMemoryRoleARN, VaultBucket: "vault", MemoryBucket: "memory",
	}
	withVendor := base
	withVendor.Vendor = "http://vendor:8084"
	tests := []struct {
		name string
		in   Endpoints
	}{
		{"with the vendor", withVendor},
		{"without the vendor, which only provisioning needs", base},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvVendor, "") // whatever the test process was given
			for k, v := range tt.in.Env() {
				t.Setenv(k, v)
			}
			_, named := tt.in.Env()[EnvVendor]

			got, err := EndpointsFromEnv()

			require.NoError(t, err)
			assert.Equal(t, tt.in, got)
			assert.Equal(t, tt.in.Vendor != "", named, "an empty vendor URL is left out")
		})
	}
}
