// Package selfcheck proves that the isolation suite would notice a broken stack. For
// each known-bad variant of the mocks it starts a stack with that fault on the process
// backend, runs the same isolation scenario the e2e suite runs, and requires that it
// fails, caught by the assertion that guards against that fault.
package selfcheck
