// Command sandbox-agent is the agent's CLI inside its sandbox. It makes the device key
// there, pairs with a master, and stores and reads memory and service credentials with
// its own key, session and STS credentials.
//
//	sandbox-agent keygen
//	sandbox-agent pair request
//	sandbox-agent pair poll [--timeout 30s]
//	sandbox-agent whoami
//	sandbox-agent memory put --namespace N (--content C | --stdin) [--cap-file F]
//	sandbox-agent memory get --namespace N [--cap-file F]
//	sandbox-agent cred store --service S (--content C | --stdin)
//	sandbox-agent cred fetch --service S
//	sandbox-agent cred list
//	sandbox-agent cred provision --service S
//	sandbox-agent cap mint --route R --service S [--ttl 30m]
//	sandbox-agent mail list
//
// cred provision signs up at the vendor (AGENTKEYS_VENDOR_URL) with the agent's own
// email address, confirms the link from its own mailbox and stores the API key it gets
// as the agent's credential for S; it prints where the key went, never the key.
//
// cap mint --ttl asks for a lifetime from 1m to 30m, the range the broker grants; without
// it the broker gives its default, 5m.
//
// Endpoints and role ARNs come from AGENTKEYS_* variables. The key lives in
// ~/.agentkeys/agent-device.key (AGENTKEYS_DEVICE_KEY_FILE), the session beside it.
//
// Exit status: 0 success; 1 refused by the system (the stderr line names the HTTP status,
// reason or S3 code); 2 usage; 3 any other failure. Secrets reach stdout only from
// cred fetch and memory get, and are never logged.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
