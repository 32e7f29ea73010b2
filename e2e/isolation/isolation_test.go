package isolation

import (
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// probeDir is the probe's source, from this package's directory.
const probeDir = "../../cmd/isolation-probe"

// The victim the attempts are expanded for: one target, with a mailbox.
const target = "bob"

// dynamicAttempts says what each p.try call whose name is not a plain string gives,
// keyed by the call's name and target as written. A new call of that kind fails the test
// until it is described here.
var dynamicAttempts = map[string][]string{
	// The edits of A's own memory-put cap: three on A's data and the actor one per target.
	`"worker/edited/" + e.name, e.target`: {"worker/edited/service@self",
		"worker/edited/expiry@self", "worker/edited/data-class@self",
		"worker/edited/actor@" + target},
	// Reported only when a planted cap could not be read, under the same name as the
	// attempt with the cap; the stolen caps are listed from the literal calls.
	`"worker/stolen/" + route, t.label`: nil,
	// Reported only when A's own mint failed, which fails the run on its own.
	`"worker/mint " + route, "self"`: nil,
}

// probeAttempts reads the probe's source and returns each attempt id its p.try calls
// report against target, with where the call is.
func probeAttempts(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(probeDir, "*.go"))
	require.NoError(t, err)
	fset := token.NewFileSet()
	ids := map[string]string{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		require.NoError(t, err)
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || !isTry(call) {
				return true
			}
			at := fset.Position(call.Pos()).String()
			for _, id := range expand(t, call.Args[0], call.Args[1], at) {
				ids[id] = at
			}
			return true
		})
	}
	require.NotEmpty(t, ids, "no p.try calls in %s", probeDir)
	return ids
}

func isTry(call *ast.CallExpr) bool {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "try" || len(call.Args) < 2 {
		return false
	}
	recv, ok := sel.X.(*ast.Ident)
	return ok && recv.Name == "p"
}

// expand turns one call's name and target into attempt ids.
func expand(t *testing.T, name, tgt ast.Expr, at string) []string {
	t.Helper()
	var who string
	switch types.ExprString(tgt) {
	case `"self"`:
		who = "self"
	case "t.label":
		who = target
	}

	var names []string
	if s, ok := stringLit(name); ok {
		names = []string{s}
	} else if call, ok := name.(*ast.CallExpr); ok && types.ExprString(call.Fun) == "n" &&
		len(call.Args) == 1 {
		// s3's n(what) is "s3/<role>/<what>", made with each role's credentials.
		s, ok := stringLit(call.Args[0])
		require.True(t, ok, "%s: n() of %s", at, types.ExprString(call.Args[0]))
		for _, role := range s3Roles {
			names = append(names, "s3/"+string(role)+"/"+s)
		}
	}
	if names == nil || who == "" {
		key := types.ExprString(name) + ", " + types.ExprString(tgt)
		ids, ok := dynamicAttempts[key]
		require.True(t, ok, "%s: p.try(%s, ...) is not described in dynamicAttempts", at,
			key)
		return ids
	}

	ids := make([]string, 0, len(names))
	for _, n := range names {
		ids = append(ids, n+"@"+who)
	}
	return ids
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// TestRequiredAttemptsMatchTheProbe: every attempt the probe reports is required, so
// that Run notices when the probe stops making it, and every required attempt is one the
// probe reports, so that the list does not drift from it the other way.
func TestRequiredAttemptsMatchTheProbe(t *testing.T) {
	reported := probeAttempts(t)
	required := RequiredAttempts([]Victim{{Label: target, Email: target + "@agents.test"}})

	var notRequired, neverReported []string
	for id, at := range reported {
		if !slices.Contains(required, id) {
			notRequired = append(notRequired, id+" (at "+at+")")
		}
	}
	for _, id := range required {
		if _, ok := reported[id]; !ok {
			neverReported = append(neverReported, id)
		}
	}
	slices.Sort(notRequired)
	assert.Empty(t, notRequired, "the probe reports these; RequiredAttempts lacks them")
	assert.Empty(t, neverReported, "RequiredAttempts has these; the probe never reports them")
}

// TestRequiredAttemptsPerVictim: per-target attempts once per victim, the mailbox ones
// only for a victim with a mailbox, A's own ones once.
func TestRequiredAttemptsPerVictim(t *testing.T) {
	agentVictim := Victim{Label: "bob", Email: "bob@agents.test"}
	masterVictim := Victim{Label: "master"}
	cases := []struct {
		name    string
		victims []Victim
		has     []string
		hasNot  []string
	}{
		{"no victims", nil,
			[]string{"sts/jwt/session-token@self", "s3/memory/put/root@self"},
			[]string{"capmint/operator-other@bob"}},
		{"an agent", []Victim{agentVictim},
			[]string{"capmint/operator-and-actor-other@bob", "mailbox/read/target@bob",
				"worker/stolen/memory-get@bob"},
			[]string{"capmint/operator-other@master"}},
		{"a master has no mailbox", []Victim{masterVictim},
			[]string{"capmint/operator-other@master", "s3/vault/put/target@master"},
			[]string{"mailbox/read/target@master", "vendor/signup/target@master"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ids := RequiredAttempts(tc.victims)

			assert.True(t, slices.IsSorted(ids))
			assert.Len(t, ids, len(slices.Compact(slices.Clone(ids))), "no id twice")
			for _, id := range tc.has {
				assert.True(t, slices.Contains(ids, id), "%s is required", id)
			}
			for _, id := range tc.hasNot {
				assert.False(t, slices.Contains(ids, id), "%s is not required", id)
			}
		})
	}
}

func TestCompareBothWays(t *testing.T) {
	required := []string{"a@self", "b@bob"}
	line := func(id string, pass bool) Line {
		name, tgt, _ := strings.Cut(id, "@")
		return Line{Name: name, Target: tgt, Pass: pass}
	}
	cases := []struct {
		name    string
		lines   []Line
		missing []string
		unknown []string
	}{
		{"every required attempt", []Line{line("a@self", true), line("b@bob", true)},
			nil, nil},
		{"one not made", []Line{line("a@self", true)}, []string{"b@bob"}, nil},
		{"a failing one still counts as made",
			[]Line{line("a@self", true), line("b@bob", false)}, nil, nil},
		{"one made that is not required",
			[]Line{line("a@self", true), line("b@bob", true), line("c@self", true)},
			nil, []string{"c@self"}},
		{"a failing unknown one is left to its own failure",
			[]Line{line("a@self", true), line("b@bob", true), line("c@self", false)},
			nil, nil},
		{"the same name at another target",
			[]Line{line("a@self", true), line("b@bob", true), line("a@bob", true)},
			nil, []string{"a@bob"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			missing, unknown := compare(tc.lines, required)

			assert.Equal(t, tc.missing, missing)
			assert.Equal(t, tc.unknown, unknown)
		})
	}
}

// TestHostJudgesEachLine: the host's judgement of a line agrees with the probe's on
// honest lines and catches a line the probe passed although what it observed was not
// the refusal it expected.
func TestHostJudgesEachLine(t *testing.T) {
	cases := []struct {
		name string
		line Line
		want bool
	}{
		{"success", Line{Expect: "ok", Status: 200}, true},
		{"refused where success expected", Line{Expect: "ok", Status: 403}, false},
		{"s3 denial", Line{Expect: "403 code=AccessDenied", Status: 403, Code: "AccessDenied"},
			true},
		{"other code", Line{Expect: "403 code=AccessDenied", Status: 403, Code: "NoSuchKey"},
			false},
		{"success where denial expected", Line{Expect: "403 code=AccessDenied", Status: 200},
			false},
		{"one of two reasons", Line{Expect: "403 reason=a|b", Status: 403, Reason: "b"}, true},
		{"another reason", Line{Expect: "403 reason=a|b", Status: 403, Reason: "c"}, false},
		{"reason and code", Line{Expect: "502 reason=s3_put code=AccessDenied", Status: 502,
			Reason: "s3_put", Code: "AccessDenied"}, true},
		{"reason without its code", Line{Expect: "502 reason=s3_put code=AccessDenied",
			Status: 502, Reason: "s3_put"}, false},
		{"wrong status", Line{Expect: "403 reason=a", Status: 401, Reason: "a"}, false},
		{"a success status is no refusal", Line{Expect: "200", Status: 200}, false},
		{"unknown field", Line{Expect: "403 kind=a", Status: 403}, false},
		{"empty", Line{Status: 403}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.line.Holds(), "%+v", tc.line)
		})
	}

	// A line the probe passed but the host does not is a failure of the run.
	o := Outcome{Compared: 1, Lines: []Line{
		{Name: "s3/vault/get/target", Target: "bob", Expect: "403 code=AccessDenied",
			Status: 404, Code: "NoSuchKey", Pass: true},
	}}
	assert.Equal(t, []string{"misjudged:s3/vault/get/target@bob"}, o.Failures())
}
