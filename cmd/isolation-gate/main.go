// Command isolation-gate runs the e2e suite and gives one verdict for each gated step of
// the upstream stage-3 demo (ok, fail, skip, defer), then a summary. It exits 0 only when
// every required step is ok and the suite had no failure.
//
//	isolation-gate [--pkg ./e2e] [--from-json FILE] [--junit FILE] [--report FILE]
//	    [--allow-skip REASON] [-- extra go test flags]
//
// --from-json reads a `go test -json` stream that already ran instead of running the
// suite. --allow-skip turns skipped steps into a partial pass and records why.
//
// A test is known by its package and its name. A step's tests are those of the e2e
// package, github.com/agentkeys/harness/e2e, unless its entry in steps.json names
// another "package": the mocks have tests of the same names, and a stream of ./...
// carries their results too.
//
// Exit status: 0 pass (or partial pass); 1 the gate failed; 2 usage; 3 the gate could
// not run.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
