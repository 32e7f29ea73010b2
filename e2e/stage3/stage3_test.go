package stage3_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/e2e/stage3"
)

func TestEveryStepIsCovered(t *testing.T) {
	steps, err := stage3.Steps()
	require.NoError(t, err)
	for _, s := range steps {
		assert.Empty(t, s.Defer, "step %d is deferred", s.Step)
		assert.NotEmpty(t, s.Tests, "step %d", s.Step)
		assert.NotEmpty(t, s.Check, "step %d", s.Step)
	}
}

// TestStepsResolveInTheirPackage: a step's tests are looked up in the e2e package, or in
// the package the step names, and a test of the same name elsewhere does not count.
func TestStepsResolveInTheirPackage(t *testing.T) {
	const other = "github.com/agentkeys/harness/mocks/credworker"
	stream := strings.Join([]string{
		`{"Action":"pass","Package":"` + stage3.Package + `","Test":"TestBoth"}`,
		`{"Action":"fail","Package":"` + other + `","Test":"TestBoth"}`,
		`{"Action":"pass","Package":"` + other + `","Test":"TestOnlyInMocks"}`,
		`{"Action":"pass","Package":"` + stage3.Package + `","Test":"TestOnlyInE2E"}`,
	}, "\n")
	res, err := stage3.ReadEvents(strings.NewReader(stream))
	require.NoError(t, err)

	cases := []struct {
		name    string
		step    stage3.Step
		verdict string
		why     string
	}{
		{"the e2e test by default", stage3.Step{Tests: []string{"TestBoth"}}, stage3.OK, ""},
		{"a package named explicitly",
			stage3.Step{Tests: []string{"TestBoth"}, Package: other}, stage3.Fail,
			"TestBoth (fail)"},
		{"a test only in another package is missing from e2e",
			stage3.Step{Tests: []string{"TestOnlyInMocks"}}, stage3.Fail,
			"TestOnlyInMocks (missing)"},
		{"a test only in e2e is missing from the named package",
			stage3.Step{Tests: []string{"TestOnlyInE2E"}, Package: other}, stage3.Fail,
			"TestOnlyInE2E (missing)"},
		{"a test only in the named package",
			stage3.Step{Tests: []string{"TestOnlyInMocks"}, Package: other}, stage3.OK, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := stage3.Evaluate([]stage3.Step{tc.step}, res)

			require.Len(t, v, 1)
			assert.Equal(t, tc.verdict, v[0].Verdict)
			assert.Equal(t, tc.why, v[0].Why)
			require.Len(t, v[0].Tests, 1)
			assert.Equal(t, tc.step.TestPackage(), v[0].Tests[0].Package)
		})
	}
}
