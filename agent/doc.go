// Package agent is the client side of the wire: what an agent (or a master acting from
// the host) says to the broker, the STS stub and the workers. sandbox-agent and
// isolation-probe are thin commands over it, and host-side tests use it directly.
//
// Every call that the system under test refuses returns a *refusal.Refusal, so callers
// can tell an HTTP 403 with a reason from a transport failure.
package agent
