package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/fixtures"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/wire"
)

// probeLine is one attempt as isolation-probe reports it.
type probeLine struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	Expect string `json:"expect"`
	Status int    `json:"status"`
	Reason string `json:"reason"`
	Code   string `json:"code"`
	Error  string `json:"error"`
	Pass   bool   `json:"pass"`
}

func (l probeLine) id() string { return l.Name + "@" + l.Target }

// victim is an identity whose data a probe must not reach. It has stored one credential
// and one memory before the probe runs, so there is something to steal.
type victim struct {
	label string
	omni  omni.Omni
	// caps minted by the victim for itself, by route name, planted in the prober's
	// sandbox as stolen caps.
	caps map[string][]byte
}

// probeRoutes are the cap routes a probe receives stolen caps for, by file name.
var probeRoutes = map[string]string{
	"cred-store": wire.RouteCapCredStore, "cred-fetch": wire.RouteCapCredFetch,
	"memory-put": wire.RouteCapMemoryPut, "memory-get": wire.RouteCapMemoryGet,
}

// probeService is what every stolen cap names, so that the victim's stored objects are
// exactly what the stolen caps point at.
func probeService(route string) string {
	if strings.HasPrefix(route, "memory") {
		return agent.MemoryService("probe")
	}
	return "probe"
}

// agentVictim has agent a store its data and mint its caps, inside its own sandbox.
func agentVictim(ctx context.Context, a *fixtures.Agent) (victim, error) {
	v := victim{label: a.Label, omni: a.Omni, caps: map[string][]byte{}}
	for _, args := range [][]string{
		{"cred", "store", "--service", "probe", "--content", "victim cred of " + a.Label},
		{"memory", "put", "--namespace", "probe", "--content", "victim memory of " + a.Label},
	} {
		if err := runOK(ctx, a, args...); err != nil {
			return v, err
		}
	}
	for name, route := range probeRoutes {
		res, err := a.Run(ctx, []string{"cap", "mint", "--route", name,
			"--service", probeService(route)})
		if err == nil && res.ExitCode != 0 {
			err = &fixtures.CommandError{Args: []string{"cap", "mint", name}, Result: res}
		}
		if err != nil {
			return v, err
		}
		v.caps[name] = []byte(strings.TrimSpace(res.Stdout))
	}
	return v, nil
}

// masterVictim has master m store its data and mint its caps from the host.
func masterVictim(ctx context.Context, label string, m *fixtures.Master) (victim, error) {
	v := victim{label: label, omni: m.Omni, caps: map[string][]byte{}}
	if _, err := m.CredStore(ctx, "probe", []byte("victim cred of "+label)); err != nil {
		return v, err
	}
	if _, err := m.MemoryPut(ctx, "probe", []byte("victim memory of "+label), nil); err != nil {
		return v, err
	}
	for name, route := range probeRoutes {
		tok, err := m.MintCap(ctx, route, m.Omni, m.Omni, probeService(route))
		if err != nil {
			return v, err
		}
		v.caps[name] = tok
	}
	return v, nil
}

func runOK(ctx context.Context, a *fixtures.Agent, args ...string) error {
	res, err := a.Run(ctx, args)
	if err == nil && res.ExitCode != 0 {
		err = &fixtures.CommandError{Args: args, Result: res}
	}
	return err
}

// probeOutcome is what one run of the probe showed.
type probeOutcome struct {
	prober   string
	lines    []probeLine
	exit     int
	stderr   string
	missing  []string // required attempts the probe did not report
	changed  []string // victims' objects that differ after the probe
	snapshot int      // how many victim objects were compared
}

// runProbe plants the victims' caps in the prober's sandbox, backdates the prober's next
// cap and OIDC JWT, runs isolation-probe there and checks, with root credentials, that
// every victim object is byte-identical afterwards.
func runProbe(ctx context.Context, s *fixtures.Stack, prober *fixtures.Agent,
	victims ...victim) (probeOutcome, error) {
	out := probeOutcome{prober: prober.Label}
	dir, err := os.MkdirTemp("", "stolen-")
	if err != nil {
		return out, err
	}
	defer os.RemoveAll(dir)

	stolen := prober.Sandbox.Home() + "/stolen"
	args := []string{"isolation-probe", "--stolen-dir", stolen, "--backdated"}
	for _, v := range victims {
		args = append(args, "--target", v.label+"="+v.omni.String())
		for name, tok := range v.caps {
			f := filepath.Join(dir, v.label+"."+name+".cap")
			if err := os.WriteFile(f, tok, 0o600); err != nil {
				return out, err
			}
			dst := stolen + "/" + filepath.Base(f)
			if err := prober.Sandbox.CopyFileTo(ctx, f, dst, 0o600); err != nil {
				return out, fmt.Errorf("plant %s: %w", filepath.Base(f), err)
			}
		}
	}

	before, err := snapshot(ctx, s, victims)
	if err != nil {
		return out, err
	}
	if err := s.Admin().Backdate(ctx, prober.Omni, 3600, 1, 1); err != nil {
		return out, err
	}

	res, err := prober.Sandbox.Exec(ctx, args)
	if err != nil {
		return out, fmt.Errorf("run isolation-probe: %w", err)
	}
	out.exit, out.stderr = res.ExitCode, res.Stderr
	for _, raw := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		if raw == "" {
			continue
		}
		var l probeLine
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			return out, fmt.Errorf("probe line %q: %w", raw, err)
		}
		out.lines = append(out.lines, l)
	}

	seen := map[string]bool{}
	for _, l := range out.lines {
		seen[l.id()] = true
	}
	for _, id := range requiredAttempts(victims) {
		if !seen[id] {
			out.missing = append(out.missing, id)
		}
	}

	after, err := snapshot(ctx, s, victims)
	if err != nil {
		return out, err
	}
	out.snapshot = len(before)
	for k, b := range before {
		if !bytes.Equal(b, after[k]) {
			out.changed = append(out.changed, k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			out.changed = append(out.changed, k+" (new)")
		}
	}
	return out, nil
}

// snapshot reads every object under the victims' prefixes in both buckets.
func snapshot(ctx context.Context, s *fixtures.Stack, victims []victim) (
	map[string][]byte, error) {
	objects := map[string][]byte{}
	for _, v := range victims {
		for _, bucket := range []string{s.Host.VaultBucket, s.Host.MemoryBucket} {
			keys, err := s.RootList(ctx, bucket, "bots/"+v.omni.String()+"/")
			if err != nil {
				return nil, err
			}
			for _, k := range keys {
				b, err := s.RootObject(ctx, bucket, k)
				if err != nil {
					return nil, err
				}
				objects[bucket+"/"+k] = b
			}
		}
	}
	return objects, nil
}

// requiredAttempts is every attempt of the isolation contract that a probe run against
// victims must report: a probe that skipped one would otherwise pass by saying nothing.
func requiredAttempts(victims []victim) []string {
	self := []string{
		"sts/vault/control", "sts/memory/control", "capmint/control", "sts/jwt/control",
		"sts/jwt/wrong-audience", "sts/jwt/untagged", "sts/jwt/expired", "sts/role/unknown",
		"worker/cap/expired",
		"worker/cred/store/own", "worker/cred/fetch/own",
		"worker/memory/put/own", "worker/memory/get/own",
		"worker/class/cred-cap-at-memory-put", "worker/class/memory-cap-at-cred-store",
		"worker/op/fetch-cap-at-cred-store", "worker/op/get-cap-at-memory-put",
		"worker/edited/service", "worker/edited/expiry", "worker/edited/data-class",
	}
	perTarget := []string{
		"capmint/operator-other", "capmint/actor-other", "capmint/cred-store-actor-other",
		"sts/jwt/tampered-tag", "worker/edited/actor", "worker/body/names-target",
		"worker/stolen/cred-store", "worker/stolen/cred-fetch",
		"worker/stolen/memory-put", "worker/stolen/memory-get",
	}
	for _, role := range []string{"vault", "memory"} {
		for _, a := range []string{"put/own", "get/own", "list/own", "delete/own",
			"list/bots", "list/none", "put/bots", "put/other-bucket", "get/other-bucket",
			"list/other-bucket"} {
			self = append(self, "s3/"+role+"/"+a)
		}
		for _, a := range []string{"get/target", "put/target", "delete/target",
			"list/target"} {
			perTarget = append(perTarget, "s3/"+role+"/"+a)
		}
	}

	var ids []string
	for _, n := range self {
		ids = append(ids, n+"@self")
	}
	for _, v := range victims {
		for _, n := range perTarget {
			ids = append(ids, n+"@"+v.label)
		}
	}
	slices.Sort(ids)
	return ids
}

// assertProbe reports a probe run as one subtest per attempt, named after the attempt,
// plus the host-side checks.
func assertProbe(t *testing.T, o probeOutcome) {
	t.Helper()
	require.NotEmpty(t, o.lines, "the probe reported nothing; stderr: %s", o.stderr)
	for _, l := range o.lines {
		t.Run(l.id(), func(t *testing.T) {
			assert.True(t, l.Pass, "%s at %s: expected %s, observed status %d reason %q "+
				"code %q %s", l.Name, l.Target, l.Expect, l.Status, l.Reason, l.Code, l.Error)
		})
	}
	assert.Empty(t, o.missing, "attempts the probe did not make")
	assert.Equal(t, 0, o.exit, "isolation-probe exit status; stderr: %s", o.stderr)
	t.Run("victims-unchanged", func(t *testing.T) {
		assert.NotZero(t, o.snapshot, "no victim objects to compare")
		assert.Empty(t, o.changed, "victim objects changed by the probe")
	})
}

// TestIsolationTwoAgents: two sibling agents under one master, each probing the other.
func TestIsolationTwoAgents(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	master := stack.NewMaster(t)
	alice := master.NewAgent(t, "alice")
	bob := master.NewAgent(t, "bob")

	va, err := agentVictim(ctx, alice)
	require.NoError(t, err)
	vb, err := agentVictim(ctx, bob)
	require.NoError(t, err)

	for _, c := range []struct {
		prober *fixtures.Agent
		victim victim
	}{{alice, vb}, {bob, va}} {
		t.Run(c.prober.Label, func(t *testing.T) {
			o, err := runProbe(ctx, stack, c.prober, c.victim)
			require.NoError(t, err)
			assertProbe(t, o)
		})
	}
}

// TestIsolationThreeIdentities: two agents under different masters and one of the
// masters; each agent probes the other agent and the master.
func TestIsolationThreeIdentities(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	carol := stack.NewAgent(t, "carol")
	master := stack.NewMaster(t)
	dave := master.NewAgent(t, "dave")

	vc, err := agentVictim(ctx, carol)
	require.NoError(t, err)
	vd, err := agentVictim(ctx, dave)
	require.NoError(t, err)
	vm, err := masterVictim(ctx, "master", master)
	require.NoError(t, err)

	for _, c := range []struct {
		prober  *fixtures.Agent
		victims []victim
	}{{carol, []victim{vd, vm}}, {dave, []victim{vc, vm}}} {
		t.Run(c.prober.Label, func(t *testing.T) {
			o, err := runProbe(ctx, stack, c.prober, c.victims...)
			require.NoError(t, err)
			assertProbe(t, o)
		})
	}
}
