// Package mocks holds the harness's stand-ins for the agentkeys services: the broker, the
// STS stub, the credentials and memory workers, and the in-memory chain they consult.
//
// Each mock is a package of its own whose Server starts in-process in the manner of
// net/http/httptest, and cmd/mockstack serves all four from one binary. The mocks follow
// the wire contract to the reason string; a lax mock would let the isolation suite pass
// on a stack that does not isolate.
package mocks
