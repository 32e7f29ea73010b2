// Package broker is the harness's mock of the agentkeys broker: wallet sign-in, session
// JWTs, agent pairing, the four cap-mint routes, OIDC JWTs for the STS stub with their
// discovery document and JWKS, and the test-only chain admin routes.
//
// A Broker is built from a Config and served through Handler, by cmd/mockstack on a port
// of its own or in-process by NewServer. The cap-mint checks run in the order, and with
// the statuses and reasons, of the wire contract, because the isolation suite asserts on
// exactly those: a mock that refused for another reason would let a test pass for the
// wrong cause.
//
// The broker keeps its sign-in and pairing state in memory; it never reads the network or
// the disk.
package broker
