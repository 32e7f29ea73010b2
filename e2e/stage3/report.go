package stage3

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
)

// Summary counts verdicts and says whether the gate passes.
type Summary struct {
	OK        int    `json:"ok"`
	Fail      int    `json:"fail"`
	Skip      int    `json:"skip"`
	Defer     int    `json:"defer"`
	SuiteFail bool   `json:"suite_failed"`
	AllowSkip string `json:"allow_skip,omitempty"`
	// Result is PASS, PARTIAL (passing only because skips were allowed) or FAIL.
	Result string `json:"result"`
}

// Summarize decides the gate: it passes only when every required step is ok and the
// suite had no failure; allowSkip, when not empty, lets skipped steps pass as PARTIAL.
func Summarize(verdicts []Verdict, suiteFailed bool, allowSkip string) Summary {
	s := Summary{SuiteFail: suiteFailed, AllowSkip: allowSkip}
	for _, v := range verdicts {
		switch v.Verdict {
		case OK:
			s.OK++
		case Fail:
			s.Fail++
		case Skip:
			s.Skip++
		case Defer:
			s.Defer++
		}
	}
	switch {
	case s.Fail > 0 || suiteFailed:
		s.Result = "FAIL"
	case s.Skip > 0 && allowSkip == "":
		s.Result = "FAIL"
	case s.Skip > 0:
		s.Result = "PARTIAL"
	default:
		s.Result = "PASS"
	}
	return s
}

// Passed reports whether the gate lets the demo go on.
func (s Summary) Passed() bool { return s.Result == "PASS" || s.Result == "PARTIAL" }

// WriteText prints one line per step and the summary line.
func WriteText(w io.Writer, verdicts []Verdict, s Summary) {
	for _, v := range verdicts {
		line := fmt.Sprintf("step %2d  %-5s %s", v.Step, v.Verdict, v.Check)
		if v.Why != "" {
			line += "  [" + v.Why + "]"
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "stage-3 gate: %d ok, %d fail, %d skip, %d defer", s.OK, s.Fail, s.Skip,
		s.Defer)
	if s.SuiteFail {
		fmt.Fprint(w, "; the e2e suite had failures")
	}
	if s.Result == "PARTIAL" {
		fmt.Fprintf(w, "; skips allowed: %s", s.AllowSkip)
	}
	fmt.Fprintf(w, " => %s\n", s.Result)
}

// WriteJSON writes the verdicts and summary as one JSON document.
func WriteJSON(w io.Writer, verdicts []Verdict, s Summary) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Steps   []Verdict `json:"steps"`
		Summary Summary   `json:"summary"`
	}{verdicts, s})
}

type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
}

// WriteJUnit writes one test case per step, for CI systems that read JUnit XML.
func WriteJUnit(w io.Writer, verdicts []Verdict) error {
	suite := junitSuite{Name: "agentkeys stage-3 gate", Tests: len(verdicts)}
	for _, v := range verdicts {
		c := junitCase{Name: fmt.Sprintf("step %d: %s", v.Step, v.Check),
			Classname: "stage3"}
		switch v.Verdict {
		case Fail:
			c.Failure = &junitMessage{Message: v.Why}
			suite.Failures++
		case Skip, Defer:
			c.Skipped = &junitMessage{Message: v.Verdict + ": " + v.Why}
			suite.Skipped++
		}
		suite.Cases = append(suite.Cases, c)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(suite); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}
