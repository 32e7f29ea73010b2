package stage3_test

import (
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
