package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"

	"github.com/agentkeys/harness/e2e/stage3"
)

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("isolation-gate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pkg := fs.String("pkg", "./e2e", "the package of the e2e suite")
	fromJSON := fs.String("from-json", "", "read this go test -json output instead of running")
	junit := fs.String("junit", "", "write the verdicts as JUnit XML to this file")
	report := fs.String("report", "", "write the verdicts as JSON to this file")
	allowSkip := fs.String("allow-skip", "", "let skipped steps pass as PARTIAL, for this reason")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if isSet(fs, "allow-skip") && *allowSkip == "" {
		fmt.Fprintln(stderr, "isolation-gate: --allow-skip needs a reason")
		return 2
	}

	steps, err := stage3.Steps()
	if err != nil {
		fmt.Fprintf(stderr, "isolation-gate: %v\n", err)
		return 3
	}

	var res *stage3.Results
	if *fromJSON != "" {
		res, err = readFile(*fromJSON)
	} else {
		res, err = runSuite(*pkg, fs.Args(), stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "isolation-gate: %v\n", err)
		return 3
	}

	verdicts := stage3.Evaluate(steps, res)
	sum := stage3.Summarize(verdicts, res.Failed, *allowSkip)
	harness := harnessLines(res)
	if res.Failed {
		printFailures(stderr, res)
	} else {
		// Which backend the stack ran on, and how long it took to start.
		fmt.Fprint(stderr, strings.Join(harness, ""))
	}
	stage3.WriteText(stdout, verdicts, sum)
	fmt.Fprintln(stdout, testCount(res))
	if res.Failed && len(res.Tests) == 0 {
		// Every step then reads "missing"; the one line that says why goes last.
		fmt.Fprintf(stderr, "isolation-gate: no e2e test ran; the suite's stack said:\n%s",
			cmp.Or(strings.Join(harness, ""), "(nothing; see the output above)\n"))
	}

	for path, write := range map[string]func(io.Writer) error{
		*junit:  func(w io.Writer) error { return stage3.WriteJUnit(w, verdicts) },
		*report: func(w io.Writer) error { return stage3.WriteJSON(w, verdicts, sum) },
	} {
		if path == "" {
			continue
		}
		if err := writeFile(path, write); err != nil {
			fmt.Fprintf(stderr, "isolation-gate: %v\n", err)
			return 3
		}
	}
	if !sum.Passed() {
		return 1
	}
	return 0
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func readFile(path string) (*stage3.Results, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read test events: %w", err)
	}
	defer f.Close()
	return stage3.ReadEvents(f)
}

// runSuite runs `go test -json` on pkg and reads its events as they come. A failing
// suite is a result, not an error; only a go command that could not start is.
func runSuite(pkg string, extra []string, stderr io.Writer) (*stage3.Results, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	args := append([]string{"test", "-json", "-count=1"}, extra...)
	args = append(args, pkg)
	fmt.Fprintf(stderr, "isolation-gate: go %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, "go", args...)
	var goErr bytes.Buffer
	cmd.Stderr = io.MultiWriter(stderr, &goErr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("run suite: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run suite: %w", err)
	}
	res, readErr := stage3.ReadEvents(out)
	waitErr := cmd.Wait()
	if readErr != nil {
		return nil, readErr
	}
	var exit *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exit) {
		return nil, fmt.Errorf("run suite: %w", waitErr)
	}
	if waitErr != nil {
		res.Failed = true
	}
	return res, nil
}

// printFailures shows the output of each failed test, deepest names last, so that the
// reason for a red gate is on the screen above the verdicts; then what was printed
// outside any test, such as a build error or a TestMain that gave up.
func printFailures(w io.Writer, res *stage3.Results) {
	var failed, outside []stage3.TestKey
	for k, r := range res.Tests {
		if r == "fail" {
			failed = append(failed, k)
		}
	}
	for k := range res.Output {
		if k.Test == "" {
			outside = append(outside, k)
		}
	}
	byKey := func(a, b stage3.TestKey) int {
		return cmp.Or(cmp.Compare(a.Package, b.Package), cmp.Compare(a.Test, b.Test))
	}
	slices.SortFunc(failed, byKey)
	slices.SortFunc(outside, byKey)

	for _, k := range failed {
		fmt.Fprintf(w, "--- FAIL: %s\n%s", k, strings.Join(res.Output[k], ""))
	}
	for _, k := range outside {
		lines := res.Output[k]
		if len(lines) == 0 {
			continue
		}
		where := "go test"
		if k.Package != "" {
			where = k.Package
		}
		fmt.Fprintf(w, "--- %s output outside any test ---\n%s", where,
			strings.Join(lines, ""))
	}
}

// testCount counts the suite's tests and subtests by result, in the plain form that CI
// systems read: "e2e: N passed, N failed, N skipped".
func testCount(res *stage3.Results) string {
	n := map[string]int{}
	for _, r := range res.Tests {
		n[r]++
	}
	return fmt.Sprintf("e2e: %d passed, %d failed, %d skipped", n["pass"], n["fail"],
		n["skip"])
}

// harnessLines are the lines the e2e package's TestMain printed about its stack, outside
// any test: "fixtures: stack ready on <backend> in ...", or why the stack did not start.
func harnessLines(res *stage3.Results) []string {
	var keys []stage3.TestKey
	for k := range res.Output {
		if k.Test == "" {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b stage3.TestKey) int {
		return cmp.Compare(a.Package, b.Package)
	})
	var lines []string
	for _, k := range keys {
		for _, l := range res.Output[k] {
			if strings.HasPrefix(l, "fixtures: ") {
				lines = append(lines, l)
			}
		}
	}
	return lines
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
