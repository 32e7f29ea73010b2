package stage3

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Verdicts.
const (
	OK    = "ok"
	Fail  = "fail"
	Skip  = "skip"
	Defer = "defer"
)

// event is one line of `go test -json` (test2json).
type event struct {
	Action  string `json:"Action"`
	Package string `json:"Package"`
	Test    string `json:"Test"`
	Output  string `json:"Output"`
}

// TestKey is one test of one package: its import path and full name, with subtests.
// The Test of a package's own output, outside any test, is empty; so are both for a
// line that go test printed itself.
type TestKey struct {
	Package string
	Test    string
}

func (k TestKey) String() string { return k.Test + " (" + k.Package + ")" }

// Results are the outcomes of one `go test -json` run.
type Results struct {
	// Tests maps each test to pass, fail or skip.
	Tests map[TestKey]string
	// Output keeps each test's output, for reporting failures, in lines that end in a
	// newline.
	Output map[TestKey][]string
	// Failed is true when anything failed: a test, or a package that did not build or
	// whose TestMain gave up.
	Failed bool
	// Events counts the lines read.
	Events int
}

// ReadEvents reads a `go test -json` stream. Lines that are not JSON (a build error
// printed by go test itself, say) are kept as output of the run and mark it failed.
func ReadEvents(r io.Reader) (*Results, error) {
	res := &Results{Tests: map[TestKey]string{}, Output: map[TestKey][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			res.Output[TestKey{}] = append(res.Output[TestKey{}], string(line)+"\n")
			res.Failed = true
			continue
		}
		res.Events++
		key := TestKey{Package: e.Package, Test: e.Test}
		switch e.Action {
		case "pass", "fail", "skip":
			if e.Test != "" {
				res.Tests[key] = e.Action
			}
			if e.Action == "fail" {
				res.Failed = true
			}
		case "output":
			res.Output[key] = append(res.Output[key], e.Output)
		case "build-output":
			res.Output[TestKey{}] = append(res.Output[TestKey{}],
				strings.TrimRight(e.Output, "\n")+"\n")
		case "build-fail":
			res.Failed = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read test events: %w", err)
	}
	return res, nil
}

// TestResult is one mapped test's outcome; "missing" when it did not run.
type TestResult struct {
	Package string `json:"package"`
	Name    string `json:"name"`
	Result  string `json:"result"`
}

// Verdict is the gate's word on one step.
type Verdict struct {
	Step    int          `json:"step"`
	Check   string       `json:"check"`
	Verdict string       `json:"verdict"`
	Why     string       `json:"why,omitempty"`
	Tests   []TestResult `json:"tests"`
}

// Evaluate gives each step its verdict: defer when the map defers it; fail when any of
// its tests failed or did not run at all; skip when none failed but one was skipped;
// otherwise ok. A test that did not run is a failure, never a pass: a renamed test must
// not turn a step green. A step's tests are looked up in its package only, so a test of
// the same name elsewhere in the stream does not count for it.
func Evaluate(steps []Step, res *Results) []Verdict {
	out := make([]Verdict, 0, len(steps))
	for _, s := range steps {
		v := Verdict{Step: s.Step, Check: s.Check}
		if s.Defer != "" {
			v.Verdict, v.Why = Defer, s.Defer
			out = append(out, v)
			continue
		}
		var failed, skipped []string
		pkg := s.TestPackage()
		for _, name := range s.Tests {
			r, ok := res.Tests[TestKey{Package: pkg, Test: name}]
			if !ok {
				r = "missing"
			}
			v.Tests = append(v.Tests, TestResult{Package: pkg, Name: name, Result: r})
			switch r {
			case "pass":
			case "skip":
				skipped = append(skipped, name)
			default:
				failed = append(failed, name+" ("+r+")")
			}
		}
		switch {
		case len(failed) > 0:
			v.Verdict, v.Why = Fail, strings.Join(failed, ", ")
		case len(skipped) > 0:
			v.Verdict, v.Why = Skip, strings.Join(skipped, ", ")+" skipped"
		default:
			v.Verdict = OK
		}
		out = append(out, v)
	}
	return out
}
