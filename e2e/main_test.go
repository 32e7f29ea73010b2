package e2e

import (
	"os"
	"testing"

	"github.com/agentkeys/harness/fixtures"
)

// stack is the package's running stack, started by TestMain.
var stack *fixtures.Stack

func TestMain(m *testing.M) { os.Exit(fixtures.Main(m, &stack)) }
