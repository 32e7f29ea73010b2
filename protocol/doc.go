// Package protocol holds what both sides of the agentkeys wire share: identities (omni),
// Ethereum-style device signatures (evm), broker-signed capabilities (cap), the storage
// envelope (envelope) and the per-agent S3 session policy (policy).
//
// Each concern is a sub-package with no knowledge of HTTP servers, MinIO or Docker, so the
// mocks, the agent CLI and the tests can all import the same definitions.
package protocol
