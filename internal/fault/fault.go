// Package fault names the known-bad variants of the mock stack that the mutation
// self-check runs the isolation suite against: each one a way a real deployment could
// fail to isolate agents. The suite must catch every one.
//
// The package is internal, so only this module's tests can select a fault; no flag or
// environment variable of a shipped binary reaches it, and cmd/mockstack never sets one.
package fault

// Set is the faults a stack runs with. The zero value is a correct stack.
type Set struct {
	// PolicyGrantsAllBots makes the STS stub's session policy cover all of bots/ in the
	// role's bucket instead of the caller's own prefix.
	PolicyGrantsAllBots bool
	// PolicyListsWholePrefix makes the session policy's ListBucket condition cover the
	// caller's whole prefix, every class under it, instead of the role's class only.
	PolicyListsWholePrefix bool
	// STSIgnoresRole makes the STS stub issue vault credentials for any role ARN.
	STSIgnoresRole bool
	// STSSkipsAudience makes the STS stub take a web identity token addressed to anyone,
	// a session JWT's audience included, as long as the broker signed it.
	STSSkipsAudience bool
	// WorkerSkipsSignature makes the workers accept a cap without checking broker_sig.
	WorkerSkipsSignature bool
	// WorkerKeyFromBody makes the workers take the actor of the object key from an
	// actor_omni field of the request body when there is one.
	WorkerKeyFromBody bool
	// WorkerUsesRootCredentials makes the workers write and read with MinIO's root
	// credentials instead of the caller's STS credentials.
	WorkerUsesRootCredentials bool
	// BrokerSkipsOperatorCheck makes the broker mint caps whose operator is not the
	// session's omni.
	BrokerSkipsOperatorCheck bool
	// BrokerSkipsDeviceBinding makes the broker mint caps whose operator and actor are
	// not the pair the device is bound to.
	BrokerSkipsDeviceBinding bool
	// MailboxSkipsOwnerCheck makes the broker's mailbox route hand out any message by
	// its id, whoever it is addressed to.
	MailboxSkipsOwnerCheck bool
}

// Named is one fault with the name the self-check reports it under.
type Named struct {
	Name string
	Set  Set
}

// All is every known-bad variant, one fault each.
func All() []Named {
	return []Named{
		{"policy-grants-all-bots", Set{PolicyGrantsAllBots: true}},
		{"policy-lists-whole-prefix", Set{PolicyListsWholePrefix: true}},
		{"sts-ignores-role", Set{STSIgnoresRole: true}},
		{"sts-skips-audience", Set{STSSkipsAudience: true}},
		{"worker-skips-signature", Set{WorkerSkipsSignature: true}},
		{"worker-key-from-body", Set{WorkerKeyFromBody: true}},
		{"worker-uses-root-credentials", Set{WorkerUsesRootCredentials: true}},
		{"broker-skips-operator-check", Set{BrokerSkipsOperatorCheck: true}},
		{"broker-skips-device-binding", Set{BrokerSkipsDeviceBinding: true}},
		{"mailbox-skips-owner-check", Set{MailboxSkipsOwnerCheck: true}},
	}
}
