package main

import "strings"

// firstWords returns up to n leading arguments that are not flags, to name the command
// in an error line.
func firstWords(args []string, n int) []string {
	var out []string
	for _, a := range args {
		if len(out) == n || strings.HasPrefix(a, "-") {
			break
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return []string{"usage"}
	}
	return out
}

// oneLine folds an error onto one line, so the stderr report is exactly one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
