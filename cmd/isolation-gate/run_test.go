package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/e2e/stage3"
)

// events writes a go test -json stream in which every mapped test, in its step's
// package, ends with the action given by override, or pass; then the extra lines.
func events(t *testing.T, override map[string]string, extra ...string) string {
	t.Helper()
	steps, err := stage3.Steps()
	require.NoError(t, err)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, s := range steps {
		for _, name := range s.Tests {
			action, ok := override[name]
			if !ok {
				action = "pass"
			}
			if action == "absent" {
				continue
			}
			pkg := s.TestPackage()
			require.NoError(t, enc.Encode(map[string]string{"Action": "run", "Package": pkg,
				"Test": name}))
			require.NoError(t, enc.Encode(map[string]string{"Action": "output",
				"Package": pkg, "Test": name, "Output": "    detail of " + name + "\n"}))
			require.NoError(t, enc.Encode(map[string]string{"Action": action, "Package": pkg,
				"Test": name}))
		}
	}
	for _, line := range extra {
		b.WriteString(line + "\n")
	}
	f := filepath.Join(t.TempDir(), "events.json")
	require.NoError(t, os.WriteFile(f, b.Bytes(), 0o600))
	return f
}

func TestGateVerdicts(t *testing.T) {
	cases := []struct {
		name     string
		override map[string]string
		extra    []string
		args     []string
		exit     int
		summary  string
		line     string
	}{
		{name: "all pass", exit: 0, summary: "15 ok, 0 fail, 0 skip, 0 defer => PASS"},
		{name: "one step fails", override: map[string]string{"TestCredRoundtrip": "fail"},
			exit: 1, summary: "14 ok, 1 fail", line: "step 11  fail"},
		{name: "a mapped test did not run",
			override: map[string]string{"TestMasterCapMint/cross-actor-granted": "absent"},
			exit:     1, line: "step 18  fail", summary: "=> FAIL"},
		{name: "a skip fails without leave",
			override: map[string]string{"TestMemoryRoundtrip": "skip"},
			exit:     1, line: "step 12  skip", summary: "1 skip, 0 defer => FAIL"},
		{name: "a skip allowed with a reason",
			override: map[string]string{"TestMemoryRoundtrip": "skip"},
			args:     []string{"--allow-skip", "no docker on this runner"},
			exit:     0, summary: "=> PARTIAL"},
		{name: "an unmapped test fails",
			extra: []string{`{"Action":"fail","Test":"TestSomethingElse"}`},
			exit:  1, summary: "the e2e suite had failures => FAIL"},
		{name: "the package did not build", extra: []string{"# github.com/x [build failed]"},
			exit: 1, summary: "=> FAIL"},
		// The mocks have tests named as steps 11 and 12's; a stream of ./... carries both.
		{name: "a mock's passing namesake does not hide a failure",
			override: map[string]string{"TestCredRoundtrip": "fail"},
			extra:    []string{mockEvent("credworker", "TestCredRoundtrip", "pass")},
			exit:     1, line: "step 11  fail", summary: "14 ok, 1 fail"},
		{name: "a mock's passing namesake does not stand in for a missing test",
			override: map[string]string{"TestMemoryRoundtrip": "absent"},
			extra:    []string{mockEvent("memworker", "TestMemoryRoundtrip", "pass")},
			exit:     1, line: "step 12  fail", summary: "14 ok, 1 fail"},
		{name: "a mock's failing namesake does not fail the step",
			extra: []string{mockEvent("credworker", "TestCredRoundtrip", "fail")},
			exit:  1, line: "step 11  ok",
			summary: "15 ok, 0 fail, 0 skip, 0 defer; the e2e suite had failures => FAIL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := events(t, tc.override, tc.extra...)
			var out, errOut bytes.Buffer
			code := run(append([]string{"--from-json", f}, tc.args...), &out, &errOut)

			assert.Equal(t, tc.exit, code, "stdout:\n%s\nstderr:\n%s", out.String(),
				errOut.String())
			assert.Contains(t, out.String(), tc.summary)
			if tc.line != "" {
				assert.Contains(t, out.String(), tc.line)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			assert.Len(t, lines, 17, "one line per step 4 to 18, a summary and the count")
		})
	}
}

// mockEvent is the end of test in the mocks package pkg.
func mockEvent(pkg, test, action string) string {
	return `{"Action":"` + action + `","Package":"github.com/agentkeys/harness/mocks/` + pkg +
		`","Test":"` + test + `"}`
}

func TestGateShowsWhyAStepFailed(t *testing.T) {
	f := events(t, map[string]string{"TestCredRoundtrip": "fail"})
	var out, errOut bytes.Buffer
	require.Equal(t, 1, run([]string{"--from-json", f}, &out, &errOut))
	assert.Contains(t, errOut.String(), "--- FAIL: TestCredRoundtrip")
	assert.Contains(t, errOut.String(), "detail of TestCredRoundtrip")
}

func TestGateWritesJUnitAndJSON(t *testing.T) {
	f := events(t, map[string]string{"TestCredRoundtrip": "fail"})
	dir := t.TempDir()
	junit, report := filepath.Join(dir, "gate.xml"), filepath.Join(dir, "gate.json")
	var out, errOut bytes.Buffer
	require.Equal(t, 1, run([]string{"--from-json", f, "--junit", junit, "--report", report},
		&out, &errOut))

	raw, err := os.ReadFile(junit)
	require.NoError(t, err)
	var suite struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	require.NoError(t, xml.Unmarshal(raw, &suite))
	assert.Equal(t, 15, suite.Tests)
	assert.Equal(t, 1, suite.Failures)

	raw, err = os.ReadFile(report)
	require.NoError(t, err)
	var rep struct {
		Steps   []stage3.Verdict `json:"steps"`
		Summary stage3.Summary   `json:"summary"`
	}
	require.NoError(t, json.Unmarshal(raw, &rep))
	assert.Len(t, rep.Steps, 15)
	assert.Equal(t, "FAIL", rep.Summary.Result)
}

func TestAllowSkipNeedsAReason(t *testing.T) {
	var out, errOut bytes.Buffer
	assert.Equal(t, 2, run([]string{"--allow-skip="}, &out, &errOut))
}

func TestGateShowsBuildErrors(t *testing.T) {
	f := events(t, nil,
		`{"ImportPath":"x","Action":"build-output","Output":"x.go:1:1: undefined: y\n"}`,
		`{"ImportPath":"x","Action":"build-fail"}`)
	var out, errOut bytes.Buffer
	require.Equal(t, 1, run([]string{"--from-json", f}, &out, &errOut))
	assert.Contains(t, errOut.String(), "x.go:1:1: undefined: y")
	assert.Contains(t, out.String(), "the e2e suite had failures => FAIL")
}

// TestGateSaysWhyNoTestRan: when the suite's stack does not start, every step reads
// missing; the stack's own words close the output so that they are what a user reads.
func TestGateSaysWhyNoTestRan(t *testing.T) {
	const pkg = "github.com/agentkeys/harness/e2e"
	const why = `fixtures: start stack: HARNESS_BACKEND="bogus": want docker, process or auto`
	var b bytes.Buffer
	// Only what TestMain printed, as go test -json reports a package that ran no test.
	for _, s := range []string{"INFO swept containers=0\n", why + "\n",
		"FAIL\t" + pkg + "\t0.05s\n"} {
		line, err := json.Marshal(map[string]string{"Action": "output", "Package": pkg,
			"Output": s})
		require.NoError(t, err)
		b.Write(append(line, '\n'))
	}
	b.WriteString(`{"Action":"fail","Package":"` + pkg + `"}` + "\n")
	f := filepath.Join(t.TempDir(), "events.json")
	require.NoError(t, os.WriteFile(f, b.Bytes(), 0o600))

	var out, errOut bytes.Buffer
	require.Equal(t, 1, run([]string{"--from-json", f}, &out, &errOut))
	assert.Contains(t, out.String(), "0 ok, 15 fail")
	assert.True(t, strings.HasSuffix(errOut.String(),
		"isolation-gate: no e2e test ran; the suite's stack said:\n"+why+"\n"),
		"the cause closes the output; got:\n%s", errOut.String())
}

// TestGateNamesTheBackend: a passing run shows the stack's ready line, which names the
// backend, above the verdicts.
func TestGateNamesTheBackend(t *testing.T) {
	const ready = "fixtures: stack ready on docker in 1.4s (MinIO 1.1s, mail catcher 0.6s)"
	line, err := json.Marshal(map[string]string{"Action": "output",
		"Package": "github.com/agentkeys/harness/e2e", "Output": ready + "\n"})
	require.NoError(t, err)
	f := events(t, nil, string(line))

	var out, errOut bytes.Buffer
	require.Equal(t, 0, run([]string{"--from-json", f}, &out, &errOut))
	assert.Equal(t, ready+"\n", errOut.String())
}

// TestGateCountsTests: the last line of the verdicts counts the tests by result.
func TestGateCountsTests(t *testing.T) {
	steps, err := stage3.Steps()
	require.NoError(t, err)
	total := 0
	for _, s := range steps {
		total += len(s.Tests)
	}
	f := events(t, map[string]string{"TestCredRoundtrip": "fail"})

	var out, errOut bytes.Buffer
	require.Equal(t, 1, run([]string{"--from-json", f}, &out, &errOut))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	assert.Equal(t, fmt.Sprintf("e2e: %d passed, 1 failed, 0 skipped", total-1),
		lines[len(lines)-1])
}
