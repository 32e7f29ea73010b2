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
// With Config.Email set, the broker also gives agents an email identity, the agent-side
// flow upstream is adding. A claimed agent gets its own address, wire.AgentEmail of its
// label and omni, in the claim and poll answers and in its session's claims. Email
// sign-in mails a one-time link to that address over SMTP; once the link is visited, the
// request's status hands out, once, a session of that agent carrying its own omni, just
// as its pairing poll would. An address that no agent holds is refused with 403
// email_not_bound: the harness has no email-only identity, because a session without a
// wallet or a device could do nothing the suite checks, and a third identity type would
// be one more thing every route has to refuse correctly. The mailbox routes, a harness
// addition, read the mail catcher's API through a MailReader and show an agent session
// only the mail addressed to that agent; another mailbox's message answers exactly as a
// missing one.
//
// The broker keeps its sign-in, pairing and email state in memory; apart from sending
// mail and reading the catcher, it never reads the network or the disk.
package broker
