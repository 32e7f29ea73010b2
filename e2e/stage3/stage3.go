// Package stage3 is the map from the numbered checks of the upstream stage-3 demo to the
// e2e tests that cover them. The map itself is steps.json beside this file, so that it
// reads as a table; this package embeds and validates it.
package stage3

import (
	_ "embed"
	"encoding/json"
	"fmt"
)

// First and Last are the stage-3 steps the harness gates.
const (
	First = 4
	Last  = 18
)

// Package is the e2e suite, where a step's tests are unless the step names another
// package. A test is known by its package and its name: the mocks' own tests have some
// of the same names, and their results must not decide a step.
const Package = "github.com/agentkeys/harness/e2e"

// Step is one numbered check and the tests that cover it. A step holds when every one
// of its tests passed.
type Step struct {
	Step     int      `json:"step"`
	Check    string   `json:"check"`
	Expected string   `json:"expected"`
	Tests    []string `json:"tests"`
	// Package is the import path the tests are in; empty means Package.
	Package string `json:"package,omitempty"`
	// Defer, when set, says why the step is not gated yet; it is reported, not required.
	Defer string `json:"defer,omitempty"`
}

//go:embed steps.json
var stepsJSON []byte

// Steps returns the map, checked: every step from First to Last exactly once, in order,
// each with at least one test unless deferred.
func Steps() ([]Step, error) {
	var steps []Step
	if err := json.Unmarshal(stepsJSON, &steps); err != nil {
		return nil, fmt.Errorf("stage-3 map: %w", err)
	}
	if len(steps) != Last-First+1 {
		return nil, fmt.Errorf("stage-3 map: %d steps, want %d (%d to %d)", len(steps),
			Last-First+1, First, Last)
	}
	for i, s := range steps {
		if s.Step != First+i {
			return nil, fmt.Errorf("stage-3 map: entry %d is step %d, want %d", i, s.Step,
				First+i)
		}
		if len(s.Tests) == 0 && s.Defer == "" {
			return nil, fmt.Errorf("stage-3 map: step %d names no test", s.Step)
		}
	}
	return steps, nil
}

// TestPackage is the package the step's tests are in.
func (s Step) TestPackage() string {
	if s.Package == "" {
		return Package
	}
	return s.Package
}
