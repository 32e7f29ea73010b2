// Command isolation-probe runs inside agent A's sandbox with A's own key, session and
// STS credentials, and tries to reach other identities' data in every way the wire
// contract says must be refused. Each attempt sits beside a positive control on A's own
// data, so a stack that refuses everything fails too.
//
//	isolation-probe --target bob=<omni> [--target master=<omni>] \
//	    [--email bob=<address>] [--stolen-dir DIR] [--backdated] [--misissued]
//
// --stolen-dir holds caps minted for a target (<label>.<route>.cap, with route one of
// cred-store, cred-fetch, memory-put, memory-get), planted by the test: the probe uses
// them with A's own credentials. For a target given an --email it also holds
// <label>.mail-ids, the ids of messages in the target's mailbox, one a line: the probe
// asks for them through A's own mailbox, and signs up at the vendor with the target's
// address to show that the link goes to the target, not to A. --backdated says the test
// has asked the broker to date A's next cap and next OIDC JWT an hour back, so the probe
// can show expired ones refused. --misissued says the test has asked the broker to mint
// A's next two OIDC JWTs (after the backdated one) wrong: first with the audience of a
// session JWT, then without the actor tag, so the probe can show the STS stub's own
// audience and tag checks refuse JWTs whose signature holds.
//
// It prints one JSON line per attempt (name, target, expect, status, reason, code,
// error, pass) and exits 0 only when every attempt behaved as expected; 1 when any did
// not; 2 on a usage error; 3 when it could not run at all.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
