// Package isolation runs isolation-probe in an agent's sandbox against victims that
// have stored data and minted caps, and reports what the probe saw together with what
// the host saw: which required attempts were missing and which Victim objects changed.
// The e2e suite asserts on it; the mutation self-check runs it against broken stacks.
package isolation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/fixtures"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/wire"
)

// Line is one attempt as isolation-probe reports it.
type Line struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	Expect string `json:"expect"`
	Status int    `json:"status"`
	Reason string `json:"reason"`
	Code   string `json:"code"`
	Error  string `json:"error"`
	Pass   bool   `json:"pass"`
}

func (l Line) ID() string { return l.Name + "@" + l.Target }

// Holds judges the line again on the host, from its expectation and what was observed,
// without the probe's own verdict: "ok" needs a 200; a refusal needs its status, one of
// its reasons when any are named, and its code when one is named. An expectation that
// does not parse never holds.
func (l Line) Holds() bool {
	if l.Expect == "ok" {
		return l.Status == 200
	}
	fields := strings.Fields(l.Expect)
	if len(fields) == 0 || strconv.Itoa(l.Status) != fields[0] || l.Status < 400 {
		return false
	}
	for _, f := range fields[1:] {
		key, value, ok := strings.Cut(f, "=")
		switch {
		case !ok || value == "":
			return false
		case key == "reason" && !slices.Contains(strings.Split(value, "|"), l.Reason):
			return false
		case key == "code" && l.Code != value:
			return false
		case key != "reason" && key != "code":
			return false
		}
	}
	return true
}

// Victim is an identity whose data a probe must not reach. It has stored one credential
// and one memory before the probe runs, so there is something to steal; an agent Victim
// has also provisioned a vendor key, which put mail in its mailbox.
type Victim struct {
	Label string
	Omni  omni.Omni
	// Email is an agent Victim's address; a master has none, and no mail attempts are
	// made against it.
	Email string
	// caps minted by the Victim for itself, by route name, planted in the prober's
	// sandbox as stolen caps. They live as long as the broker allows (CapTTL), since
	// they are planted again in every probe run against the Victim, and a stolen cap
	// must be refused for being someone else's, not for being out of date.
	Caps map[string][]byte
}

// ProvisionedService is the service under which an agent Victim keeps the API key it
// provisioned at the mock vendor.
const ProvisionedService = "modelapi"

// probeRoutes are the cap routes a probe receives stolen caps for, by file name.
var probeRoutes = map[string]string{
	"cred-store": wire.RouteCapCredStore, "cred-fetch": wire.RouteCapCredFetch,
	"memory-put": wire.RouteCapMemoryPut, "memory-get": wire.RouteCapMemoryGet,
}

// CapTTL is the lifetime of a Victim's caps: the longest the broker grants.
const CapTTL = wire.CapTTLMax * time.Second

// probeService is what every stolen cap names, so that the Victim's stored objects are
// exactly what the stolen caps point at.
func probeService(route string) string {
	if strings.HasPrefix(route, "memory") {
		return agent.MemoryService("probe")
	}
	return "probe"
}

// AgentVictim has agent a store its data, provision a vendor key under
// ProvisionedService and mint its caps, inside its own sandbox.
func AgentVictim(ctx context.Context, a *fixtures.Agent) (Victim, error) {
	v := Victim{Label: a.Label, Omni: a.Omni, Email: a.Email, Caps: map[string][]byte{}}
	for _, args := range [][]string{
		{"cred", "store", "--service", "probe", "--content", "Victim cred of " + a.Label},
		{"memory", "put", "--namespace", "probe", "--content", "Victim memory of " + a.Label},
		{"cred", "provision", "--service", ProvisionedService},
	} {
		if err := runOK(ctx, a, args...); err != nil {
			return v, err
		}
	}
	for name, route := range probeRoutes {
		res, err := a.Run(ctx, []string{"cap", "mint", "--route", name,
			"--service", probeService(route), "--ttl", CapTTL.String()})
		if err == nil && res.ExitCode != 0 {
			err = &fixtures.CommandError{Args: []string{"cap", "mint", name}, Result: res}
		}
		if err != nil {
			return v, err
		}
		v.Caps[name] = []byte(strings.TrimSpace(res.Stdout))
	}
	return v, nil
}

// MasterVictim has master m store its data and mint its caps from the host.
func MasterVictim(ctx context.Context, label string, m *fixtures.Master) (Victim, error) {
	v := Victim{Label: label, Omni: m.Omni, Caps: map[string][]byte{}}
	if _, err := m.CredStore(ctx, "probe", []byte("Victim cred of "+label)); err != nil {
		return v, err
	}
	if _, err := m.MemoryPut(ctx, "probe", []byte("Victim memory of "+label), nil); err != nil {
		return v, err
	}
	for name, route := range probeRoutes {
		tok, err := m.MintCap(ctx, route, m.Omni, m.Omni, probeService(route),
			agent.WithTTL(int64(CapTTL/time.Second)))
		if err != nil {
			return v, err
		}
		v.Caps[name] = tok
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

// Outcome is what one run of the probe showed.
type Outcome struct {
	Prober   string
	Lines    []Line
	Exit     int
	Stderr   string
	Missing  []string // required attempts the probe did not report
	Unknown  []string // passing attempts the probe reported that are not required
	Changed  []string // victims' objects that differ after the probe
	Compared int      // how many Victim objects were compared
}

// Run plants the victims' caps and the ids of their mail (read on the host through the
// catcher's API) in the prober's sandbox, has the broker doctor the prober's next cap and
// OIDC JWTs (one of each backdated, then one JWT with the wrong audience and one
// untagged), runs isolation-probe there and checks, with root credentials, that every Victim object
// is byte-identical afterwards.
func Run(ctx context.Context, s *fixtures.Stack, prober *fixtures.Agent,
	victims ...Victim) (Outcome, error) {
	out := Outcome{Prober: prober.Label}
	dir, err := os.MkdirTemp("", "stolen-")
	if err != nil {
		return out, err
	}
	defer os.RemoveAll(dir)

	stolen := prober.Sandbox.Home() + "/stolen"
	args := []string{"isolation-probe", "--stolen-dir", stolen, "--backdated", "--misissued"}
	plant := func(name string, data []byte) error {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, data, 0o600); err != nil {
			return err
		}
		if err := prober.Sandbox.CopyFileTo(ctx, f, stolen+"/"+name, 0o600); err != nil {
			return fmt.Errorf("plant %s: %w", name, err)
		}
		return nil
	}
	for _, v := range victims {
		args = append(args, "--target", v.Label+"="+v.Omni.String())
		for name, tok := range v.Caps {
			if err := plant(v.Label+"."+name+".cap", tok); err != nil {
				return out, err
			}
		}
		if v.Email == "" {
			continue
		}
		args = append(args, "--email", v.Label+"="+v.Email)
		inbox, err := s.Mail().MessagesTo(ctx, v.Email)
		if err != nil {
			return out, fmt.Errorf("read %s's mailbox: %w", v.Label, err)
		}
		var ids strings.Builder
		for _, m := range inbox {
			fmt.Fprintln(&ids, m.ID)
		}
		if err := plant(v.Label+".mail-ids", []byte(ids.String())); err != nil {
			return out, err
		}
	}

	before, err := snapshot(ctx, s, victims)
	if err != nil {
		return out, err
	}
	if err := s.Admin().Backdate(ctx, prober.Omni, 3600, 1, 1); err != nil {
		return out, err
	}
	if err := s.Admin().Misissue(ctx, prober.Omni, 1, 1); err != nil {
		return out, err
	}

	res, err := prober.Sandbox.Exec(ctx, args)
	if err != nil {
		return out, fmt.Errorf("run isolation-probe: %w", err)
	}
	out.Exit, out.Stderr = res.ExitCode, res.Stderr
	for _, raw := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		if raw == "" {
			continue
		}
		var l Line
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			return out, fmt.Errorf("probe line %q: %w", raw, err)
		}
		out.Lines = append(out.Lines, l)
	}

	out.Missing, out.Unknown = compare(out.Lines, RequiredAttempts(victims))

	after, err := snapshot(ctx, s, victims)
	if err != nil {
		return out, err
	}
	out.Compared = len(before)
	for k, b := range before {
		if !bytes.Equal(b, after[k]) {
			out.Changed = append(out.Changed, k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			out.Changed = append(out.Changed, k+" (new)")
		}
	}
	return out, nil
}

// compare holds the probe's lines against the required ids, both ways: missing are the
// required attempts not reported; unknown are the passing attempts reported that are
// not required, which means the list is out of step with the probe. A failing line
// fails the run on its own, so it is not counted again.
func compare(lines []Line, required []string) (missing, unknown []string) {
	seen := map[string]bool{}
	for _, l := range lines {
		seen[l.ID()] = true
		if l.Pass && !slices.Contains(required, l.ID()) {
			unknown = append(unknown, l.ID())
		}
	}
	for _, id := range required {
		if !seen[id] {
			missing = append(missing, id)
		}
	}
	return missing, unknown
}

// snapshot reads every object under the victims' prefixes in both buckets.
func snapshot(ctx context.Context, s *fixtures.Stack, victims []Victim) (
	map[string][]byte, error) {
	objects := map[string][]byte{}
	for _, v := range victims {
		for _, bucket := range []string{s.Host.VaultBucket, s.Host.MemoryBucket} {
			keys, err := s.RootList(ctx, bucket, "bots/"+v.Omni.String()+"/")
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

// The attempts a probe run makes, grouped by the step of cmd/isolation-probe that makes
// them, so that a change there has one obvious place to go here. Run always passes
// --stolen-dir, --backdated and --misissued, so the attempts that need them are always made. Only
// "worker/mint <route>" is left out: the probe reports it only when A's own mint failed,
// which is a failure already. TestRequiredAttemptsMatchTheProbe reads the probe's source
// and fails when a name it reports is missing here, or a name here is never reported.
var (
	// s3 attempts, made once with the vault and once with the memory credentials.
	s3Self = []string{"put/own", "get/own", "list/own", "list/bots", "list/none",
		"put/bots", "put/root", "list/own-other-class", "put/own-other-class",
		"put/other-bucket", "get/other-bucket", "list/other-bucket", "delete/own"}
	s3PerTarget = []string{"get/target", "put/target", "delete/target", "list/target"}
	s3Roles     = []agent.Role{agent.RoleVault, agent.RoleMemory}

	// Attempts on A's own data, and those that name no one else, by the probe's steps.
	selfAttempts = []string{
		// all: A's own STS credentials, without which nothing else runs.
		"sts/vault/control", "sts/memory/control",
		// capMint
		"capmint/control", "capmint/cred-fetch/own",
		// sts
		"sts/jwt/control-mint", "sts/jwt/control", "sts/jwt/tampered-audience",
		"sts/jwt/tampered-untagged", "sts/jwt/session-token", "sts/role/unknown",
		// expiredJWT and expiredCap (--backdated)
		"sts/jwt/expired", "worker/cap/expired",
		// misissuedJWTs (--misissued)
		"sts/jwt/wrong-audience", "sts/jwt/untagged",
		// worker
		"worker/cred/store/own", "worker/cred/fetch/own",
		"worker/memory/put/own", "worker/memory/get/own",
		"worker/class/cred-cap-at-memory-put", "worker/class/memory-cap-at-cred-store",
		"worker/op/fetch-cap-at-cred-store", "worker/op/get-cap-at-memory-put",
		"worker/edited/service", "worker/edited/expiry", "worker/edited/data-class",
		// mail
		"mailbox/list/own", "vendor/signup/own", "mailbox/read/own",
	}
	// Attempts made once for each target.
	perTargetAttempts = []string{
		// capMint
		"capmint/operator-other", "capmint/operator-and-actor-other", "capmint/actor-other",
		"capmint/cred-store-actor-other", "capmint/cred-fetch/operator-other",
		// sts
		"sts/jwt/tampered-tag",
		// worker; worker/stolen/<route> for each route of probeRoutes is added below.
		"worker/edited/actor", "worker/body/names-target",
	}
	// A target with a mailbox, each beside the same thing on A's own mail: the mailbox
	// attempts beside mailbox/list/own and mailbox/read/own, the sign-up with the
	// target's address beside vendor/signup/own.
	perMailboxAttempts = []string{"vendor/signup/target", "mailbox/read/target",
		"mailbox/list/target"}
)

// RequiredAttempts is every attempt of the isolation contract that a probe run against
// victims must report: a probe that skipped one would otherwise pass by saying nothing.
func RequiredAttempts(victims []Victim) []string {
	self := slices.Clone(selfAttempts)
	perTarget := slices.Clone(perTargetAttempts)
	for _, role := range s3Roles {
		for _, a := range s3Self {
			self = append(self, "s3/"+string(role)+"/"+a)
		}
		for _, a := range s3PerTarget {
			perTarget = append(perTarget, "s3/"+string(role)+"/"+a)
		}
	}
	// stolen: one cap of each route Run plants.
	for name := range probeRoutes {
		perTarget = append(perTarget, "worker/stolen/"+name)
	}

	var ids []string
	for _, n := range self {
		ids = append(ids, n+"@self")
	}
	for _, v := range victims {
		for _, n := range perTarget {
			ids = append(ids, n+"@"+v.Label)
		}
		if v.Email != "" {
			for _, n := range perMailboxAttempts {
				ids = append(ids, n+"@"+v.Label)
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// Failures names everything in o that did not hold: each attempt that did not behave as
// expected, by the probe's judgement or the host's; each required attempt that was not
// made; each attempt made that is not required; each victim object that changed; and a
// probe that did not exit 0. It is empty exactly when the run proved isolation.
func (o Outcome) Failures() []string {
	var f []string
	for _, l := range o.Lines {
		switch {
		case !l.Pass:
			f = append(f, l.ID())
		case !l.Holds():
			// The probe passed an attempt that the host, judging the same line, does not.
			f = append(f, "misjudged:"+l.ID())
		}
	}
	for _, m := range o.Missing {
		f = append(f, "missing:"+m)
	}
	for _, u := range o.Unknown {
		f = append(f, "unknown:"+u)
	}
	for _, c := range o.Changed {
		f = append(f, "changed:"+c)
	}
	if o.Exit != 0 && len(f) == 0 {
		f = append(f, fmt.Sprintf("exit:%d", o.Exit))
	}
	if o.Compared == 0 {
		f = append(f, "no-victim-objects")
	}
	return f
}
