package sandbox_test

import (
	"context"
	"fmt"
	"log"

	"github.com/agentkeys/harness/sandbox"
)

// A test picks a backend, gives the sandbox its programs, and acts as the agent through Exec.
// A non-zero exit comes back in the result, for the test to judge.
func Example() {
	ctx := context.Background()
	root, err := sandbox.FindModuleRoot(".")
	if err != nil {
		log.Fatal(err)
	}
	bins, err := sandbox.BuildBinaries(ctx, root, "", "sandbox-init", "sandbox-agent")
	if err != nil {
		log.Fatal(err)
	}

	var sb sandbox.Sandbox
	if sandbox.Available(ctx) {
		spec, err := sandbox.SandboxImageSpec(bins)
		if err != nil {
			log.Fatal(err)
		}
		tag, err := sandbox.BuildImage(ctx, spec)
		if err != nil {
			log.Fatal(err)
		}
		sb, err = sandbox.NewContainer(ctx, sandbox.WithImage(tag), sandbox.WithName("alice"),
			sandbox.WithNetwork("agentkeys-net"))
		if err != nil {
			log.Fatal(err)
		}
	} else {
		sb, err = sandbox.NewProcess(ctx, sandbox.WithBinaries(bins), sandbox.WithName("alice"))
		if err != nil {
			log.Fatal(err)
		}
	}
	defer sb.Close(ctx)

	res, err := sb.Exec(ctx, []string{"sandbox-agent", "cred", "store", "--service", "openrouter"},
		sandbox.WithStdinBytes([]byte("the secret")),
		sandbox.WithEnv("AGENTKEYS_BROKER_URL=http://broker:8080"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.ExitCode, res.Stderr)
}

// Sweep belongs in TestMain, before the stack starts: it removes what a killed run left.
func ExampleSweep() {
	if err := sandbox.Sweep(context.Background()); err != nil {
		log.Printf("sweep: %v", err)
	}
}
