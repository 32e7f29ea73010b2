// Package e2e is the harness's end-to-end suite. One stack serves the package; every
// test makes its own agents, in their own sandboxes, and acts as them from inside.
//
// Run it with `go test ./e2e` (HARNESS_BACKEND=docker|process|auto picks where the stack
// runs) or `make e2e`.
package e2e
