package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/protocol/cap"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/wire"
)

// target is another identity whose data A must not reach. email is set for an agent
// target, which has a mailbox; a master has none.
type target struct {
	label string
	omni  omni.Omni
	email string
}

type targets []target

func (t *targets) String() string { return fmt.Sprint(*t) }

func (t *targets) Set(v string) error {
	label, hex, ok := strings.Cut(v, "=")
	if !ok || label == "" {
		return errors.New("want label=omni")
	}
	o, err := omni.ParseBare(omni.Normalize(hex))
	if err != nil {
		return err
	}
	*t = append(*t, target{label: label, omni: o})
	return nil
}

// emails sets the address of targets named by earlier --target flags.
type emails struct{ t *targets }

func (e emails) String() string { return "" }

func (e emails) Set(v string) error {
	label, addr, ok := strings.Cut(v, "=")
	if !ok || label == "" || !strings.Contains(addr, "@") {
		return errors.New("want label=address")
	}
	for i := range *e.t {
		if (*e.t)[i].label == label {
			(*e.t)[i].email = addr
			return nil
		}
	}
	return fmt.Errorf("no --target %s before it", label)
}

// probe holds A's client and what the attempts need.
type probe struct {
	ctx       context.Context
	a         *agent.Client
	targets   targets
	stolenDir string
	backdated bool
	misissued bool
	out       *json.Encoder
	failed    int
	nonce     string
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("isolation-probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var p probe
	fs.Var(&p.targets, "target", "label=omni of an identity whose data must be out of reach")
	fs.Var(emails{&p.targets}, "email", "label=address of a target's mailbox")
	fs.StringVar(&p.stolenDir, "stolen-dir", "", "directory of caps minted for targets")
	fs.BoolVar(&p.backdated, "backdated", false,
		"the broker will date A's next cap and OIDC JWT an hour back")
	fs.BoolVar(&p.misissued, "misissued", false, "the broker will mint A's next OIDC JWTs, "+
		"after a backdated one, once with the wrong audience and once untagged")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if len(p.targets) == 0 {
		fmt.Fprintln(stderr, "isolation-probe: at least one --target is required")
		return 2
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a, err := agent.LoadClient()
	if err != nil {
		fmt.Fprintf(stderr, "isolation-probe: %v\n", err)
		return 3
	}
	p.ctx, p.a, p.nonce = ctx, a, cap.NewNonce()[:8]
	p.out = json.NewEncoder(stdout)
	p.out.SetEscapeHTML(false)

	if err := p.all(); err != nil {
		fmt.Fprintf(stderr, "isolation-probe: %v\n", err)
		return 3
	}
	if p.failed > 0 {
		fmt.Fprintf(stderr, "isolation-probe: %d attempts did not behave as expected\n",
			p.failed)
		return 1
	}
	return 0
}

// try records one attempt.
func (p *probe) try(name, target string, want expect, err error) {
	l := judge(name, target, want, err)
	if !l.Pass {
		p.failed++
	}
	_ = p.out.Encode(l)
}

// all runs every attempt. It returns an error only when the probe cannot go on at all:
// without A's own credentials there is nothing to compare the refusals with.
func (p *probe) all() error {
	// The doctored JWTs come first, because the broker doctors the very next ones, in
	// its fixed order: the backdated, then the misissued. Nothing else may mint a JWT
	// before they are spent, A's own credentials included.
	if p.backdated {
		p.expiredJWT()
	}
	if p.misissued {
		p.misissuedJWTs()
	}

	vault, err := p.a.Credentials(p.ctx, agent.RoleVault)
	p.try("sts/vault/control", "self", okay, err)
	if err != nil {
		return fmt.Errorf("no vault credentials for A: %w", err)
	}
	memory, err := p.a.Credentials(p.ctx, agent.RoleMemory)
	p.try("sts/memory/control", "self", okay, err)
	if err != nil {
		return fmt.Errorf("no memory credentials for A: %w", err)
	}

	// The backdated cap must be A's next cap, so it goes before any other mint.
	if p.backdated {
		p.expiredCap(memory)
	}

	p.s3(agent.RoleVault, vault, p.a.VaultBucket, p.a.MemoryBucket, "credentials", "memory")
	p.s3(agent.RoleMemory, memory, p.a.MemoryBucket, p.a.VaultBucket, "memory", "credentials")
	p.capMint()
	p.sts()
	p.worker(vault, memory)
	p.mail()
	return nil
}

// s3 makes the direct S3 attempts with one role's credentials. otherClass is the other
// role's class, whose prefix under A's own omni these credentials must not reach either.
func (p *probe) s3(role agent.Role, creds agent.STSCreds, bucket, otherBucket, class,
	otherClass string) {
	s := &agent.S3{Endpoint: p.a.S3}
	ctx := p.ctx
	own := "bots/" + p.a.Omni.String() + "/" + class + "/"
	key := own + "probe-" + p.nonce + ".enc"
	body := []byte("isolation probe " + p.nonce)
	n := func(what string) string { return "s3/" + string(role) + "/" + what }

	p.try(n("put/own"), "self", okay, s.Put(ctx, creds, bucket, key, body))
	_, err := s.Get(ctx, creds, bucket, key)
	p.try(n("get/own"), "self", okay, err)
	_, err = s.List(ctx, creds, bucket, own)
	p.try(n("list/own"), "self", okay, err)

	_, err = s.List(ctx, creds, bucket, "bots/")
	p.try(n("list/bots"), "self", s3Denied, err)
	_, err = s.List(ctx, creds, bucket, "")
	p.try(n("list/none"), "self", s3Denied, err)
	p.try(n("put/bots"), "self", s3Denied, s.Put(ctx, creds, bucket, "bots/probe.enc", body))
	p.try(n("put/root"), "self", s3Denied, s.Put(ctx, creds, bucket, "probe.enc", body))

	// A's own prefix, but the other role's class: each role reaches its own class only.
	mine := "bots/" + p.a.Omni.String() + "/" + otherClass + "/"
	_, err = s.List(ctx, creds, bucket, mine)
	p.try(n("list/own-other-class"), "self", s3Denied, err)
	p.try(n("put/own-other-class"), "self", s3Denied,
		s.Put(ctx, creds, bucket, mine+"probe-"+p.nonce+".enc", body))

	p.try(n("put/other-bucket"), "self", s3Denied, s.Put(ctx, creds, otherBucket, key, body))
	_, err = s.Get(ctx, creds, otherBucket, key)
	p.try(n("get/other-bucket"), "self", s3Denied, err)
	_, err = s.List(ctx, creds, otherBucket, own)
	p.try(n("list/other-bucket"), "self", s3Denied, err)

	for _, t := range p.targets {
		// The object the target stored under "probe" itself, so that a Get or Delete
		// let through would reach real data, and the host's before-and-after check of
		// the target's objects would see it.
		theirs := "bots/" + t.omni.String() + "/" + class + "/"
		object := theirs + targetObject[class]
		_, err := s.Get(ctx, creds, bucket, object)
		p.try(n("get/target"), t.label, s3Denied, err)
		p.try(n("put/target"), t.label, s3Denied,
			s.Put(ctx, creds, bucket, theirs+"probe-"+p.nonce+".enc", body))
		p.try(n("delete/target"), t.label, s3Denied, s.Delete(ctx, creds, bucket, object))
		_, err = s.List(ctx, creds, bucket, theirs)
		p.try(n("list/target"), t.label, s3Denied, err)
	}

	// Last, so that the list above sees the object.
	p.try(n("delete/own"), "self", okay, s.Delete(ctx, creds, bucket, key))
}

// targetObject is, by class, the name of the object a target keeps under the service
// "probe": the one the test has every victim store before the probe runs.
var targetObject = map[string]string{
	"credentials": "probe.enc",
	"memory":      agent.MemoryService("probe") + ".enc",
}

// capMint asks the broker, with A's session, for caps that name someone else.
func (p *probe) capMint() {
	self := p.a.Omni
	svc := agent.MemoryService("probe")
	_, err := p.a.MintCap(p.ctx, wire.RouteCapMemoryPut, self, self, svc)
	p.try("capmint/control", "self", okay, err)
	_, err = p.a.MintCap(p.ctx, wire.RouteCapCredFetch, self, self, provisioned)
	p.try("capmint/cred-fetch/own", "self", okay, err)

	for _, t := range p.targets {
		_, err := p.a.MintCap(p.ctx, wire.RouteCapMemoryPut, t.omni, self, svc)
		p.try("capmint/operator-other", t.label,
			brokerRefused(403, wire.ReasonOperatorMismatch), err)
		_, err = p.a.MintCap(p.ctx, wire.RouteCapMemoryPut, t.omni, t.omni, svc)
		p.try("capmint/operator-and-actor-other", t.label,
			brokerRefused(403, wire.ReasonOperatorMismatch), err)
		// A's device is bound to (parent, A), and the broker checks the binding before
		// the actor's scope, so the binding is what refuses this, whatever B's scope.
		_, err = p.a.MintCap(p.ctx, wire.RouteCapMemoryPut, self, t.omni, svc)
		p.try("capmint/actor-other", t.label,
			brokerRefused(403, wire.ReasonDeviceBindingMismatch), err)
		_, err = p.a.MintCap(p.ctx, wire.RouteCapCredStore, self, t.omni, "openrouter")
		p.try("capmint/cred-store-actor-other", t.label,
			brokerRefused(403, wire.ReasonCredStoreNotMasterSelf), err)
		// A fetch reads the operator's prefix, so a fetch cap naming the target as
		// operator is the way to the target's credentials; the mint is where it stops.
		_, err = p.a.MintCap(p.ctx, wire.RouteCapCredFetch, t.omni, t.omni, provisioned)
		p.try("capmint/cred-fetch/operator-other", t.label,
			brokerRefused(403, wire.ReasonOperatorMismatch), err)
	}
}

// sts presents A's OIDC JWT, altered as A could alter it, at the STS stub. Every change
// breaks the broker's signature; misissuedJWTs shows the audience and tag checks with
// JWTs the broker signed.
func (p *probe) sts() {
	b := &agent.Broker{URL: p.a.Broker, HTTP: p.a.HTTP}
	s := &agent.STS{URL: p.a.STS, HTTP: p.a.HTTP}
	ans, err := b.MintOIDC(p.ctx, p.a.Session)
	p.try("sts/jwt/control-mint", "self", okay, err)
	if err != nil {
		return
	}
	assume := func(arn, jwt string) error {
		_, err := s.AssumeRole(p.ctx, arn, jwt, "probe", 0)
		return err
	}
	p.try("sts/jwt/control", "self", okay, assume(p.a.VaultRoleARN, ans.JWT))

	invalid := refused(400, "InvalidIdentityToken")
	for _, t := range p.targets {
		p.try("sts/jwt/tampered-tag", t.label, invalid, assume(p.a.VaultRoleARN,
			editJWT(ans.JWT, func(c map[string]any) { setActorTag(c, t.omni.String()) })))
	}
	p.try("sts/jwt/tampered-audience", "self", invalid, assume(p.a.VaultRoleARN,
		editJWT(ans.JWT, func(c map[string]any) { c["aud"] = wire.AudienceBroker })))
	p.try("sts/jwt/tampered-untagged", "self", invalid, assume(p.a.VaultRoleARN,
		editJWT(ans.JWT, func(c map[string]any) { delete(c, wire.TagsClaim) })))
	p.try("sts/jwt/session-token", "self", invalid, assume(p.a.VaultRoleARN, p.a.Session))
	p.try("sts/role/unknown", "self", refused(403, "AccessDenied"),
		assume("arn:aws:iam::000000000000:role/admin", ans.JWT))
}

// presentNextJWT has the broker mint A's next OIDC JWT and presents it, as it came, at
// the STS stub for the vault role.
func (p *probe) presentNextJWT() error {
	b := &agent.Broker{URL: p.a.Broker, HTTP: p.a.HTTP}
	ans, err := b.MintOIDC(p.ctx, p.a.Session)
	if err != nil {
		return err
	}
	s := &agent.STS{URL: p.a.STS, HTTP: p.a.HTTP}
	_, err = s.AssumeRole(p.ctx, p.a.VaultRoleARN, ans.JWT, "probe", 0)
	return err
}

// expiredJWT presents a backdated OIDC JWT: correctly signed, out of date on arrival.
func (p *probe) expiredJWT() {
	p.try("sts/jwt/expired", "self", refused(400, "ExpiredTokenException"),
		p.presentNextJWT())
}

// expiredCap presents a backdated cap, with A's good memory credentials: correctly
// signed, out of date on arrival.
func (p *probe) expiredCap(memory agent.STSCreds) {
	token, err := p.a.MintCap(p.ctx, wire.RouteCapMemoryPut, p.a.Omni, p.a.Omni,
		agent.MemoryService("probe"))
	if err == nil {
		mem := &agent.Worker{URL: p.a.MemoryWorker, HTTP: p.a.HTTP}
		_, err = mem.MemoryPut(p.ctx, memory, token, []byte("expired"))
	}
	p.try("worker/cap/expired", "self",
		brokerRefused(403, wire.ReasonCapFreshnessFailed), err)
}

// misissuedJWTs presents the two OIDC JWTs the broker was asked to get wrong: one
// addressed to the broker instead of STS, one without the actor tag. Both carry the
// broker's valid signature, so only the stub's audience and tag checks can refuse them.
func (p *probe) misissuedJWTs() {
	invalid := refused(400, "InvalidIdentityToken")
	// In the broker's order: the wrong audience first, then the untagged.
	p.try("sts/jwt/wrong-audience", "self", invalid, p.presentNextJWT())
	p.try("sts/jwt/untagged", "self", invalid, p.presentNextJWT())
}

// worker calls the workers with A's credentials and caps that are not A's to use.
func (p *probe) worker(vault, memory agent.STSCreds) {
	ctx, self := p.ctx, p.a.Omni
	cred := &agent.Worker{URL: p.a.CredWorker, HTTP: p.a.HTTP}
	mem := &agent.Worker{URL: p.a.MemoryWorker, HTTP: p.a.HTTP}
	secret := []byte("probe secret " + p.nonce)
	mint := func(route, svc string) []byte {
		t, err := p.a.MintCap(ctx, route, self, self, svc)
		if err != nil {
			p.try("worker/mint "+route, "self", okay, err)
			return nil
		}
		return t
	}

	credStore := mint(wire.RouteCapCredStore, "probe")
	credFetch := mint(wire.RouteCapCredFetch, "probe")
	memPut := mint(wire.RouteCapMemoryPut, agent.MemoryService("probe"))
	memGet := mint(wire.RouteCapMemoryGet, agent.MemoryService("probe"))
	if credStore == nil || credFetch == nil || memPut == nil || memGet == nil {
		return
	}

	_, err := cred.CredStore(ctx, vault, credStore, secret)
	p.try("worker/cred/store/own", "self", okay, err)
	got, err := cred.CredFetch(ctx, vault, credFetch)
	if err == nil && string(got) != string(secret) {
		err = fmt.Errorf("fetched %d bytes that differ from the %d stored", len(got),
			len(secret))
	}
	p.try("worker/cred/fetch/own", "self", okay, err)
	_, err = mem.MemoryPut(ctx, memory, memPut, secret)
	p.try("worker/memory/put/own", "self", okay, err)
	got, err = mem.MemoryGet(ctx, memory, memGet)
	if err == nil && string(got) != string(secret) {
		err = fmt.Errorf("read %d bytes that differ from the %d stored", len(got), len(secret))
	}
	p.try("worker/memory/get/own", "self", okay, err)

	// A cap of the wrong class or op, each at a worker A has good credentials for.
	classMismatch := brokerRefused(403, wire.ReasonCapDataClassMismatch)
	opMismatch := brokerRefused(403, wire.ReasonCapOpMismatch)
	_, err = mem.MemoryPut(ctx, memory, credStore, secret)
	p.try("worker/class/cred-cap-at-memory-put", "self", classMismatch, err)
	_, err = cred.CredStore(ctx, vault, memPut, secret)
	p.try("worker/class/memory-cap-at-cred-store", "self", classMismatch, err)
	_, err = cred.CredStore(ctx, vault, credFetch, secret)
	p.try("worker/op/fetch-cap-at-cred-store", "self", opMismatch, err)
	_, err = mem.MemoryPut(ctx, memory, memGet, secret)
	p.try("worker/op/get-cap-at-memory-put", "self", opMismatch, err)

	// A's own cap with its payload edited: the signature no longer holds.
	sigInvalid := brokerRefused(403, wire.ReasonBrokerSigInvalid)
	edits := []struct {
		name   string
		target string
		edit   func(*cap.Payload)
		send   func([]byte) error
	}{
		{"service", "self", func(c *cap.Payload) { c.Service = agent.MemoryService("edited") },
			func(t []byte) error { _, err := mem.MemoryPut(ctx, memory, t, secret); return err }},
		{"expiry", "self", func(c *cap.Payload) { c.ExpiresAt += 24 * 3600 },
			func(t []byte) error { _, err := mem.MemoryPut(ctx, memory, t, secret); return err }},
		{"data-class", "self", func(c *cap.Payload) { c.DataClass = cap.ClassCredentials },
			func(t []byte) error { _, err := cred.CredStore(ctx, vault, t, secret); return err }},
	}
	for _, t := range p.targets {
		edits = append(edits, struct {
			name   string
			target string
			edit   func(*cap.Payload)
			send   func([]byte) error
		}{"actor", t.label, func(c *cap.Payload) { c.Actor = t.omni.Prefixed() },
			func(tok []byte) error {
				_, err := mem.MemoryPut(ctx, memory, tok, secret)
				return err
			}})
	}
	for _, e := range edits {
		tok, err := editCap(memPut, e.edit)
		if err == nil {
			err = e.send(tok)
		}
		p.try("worker/edited/"+e.name, e.target, sigInvalid, err)
	}

	for _, t := range p.targets {
		// A body that names the target beside A's own cap: the key must come from the
		// signed cap only, and a body field the worker does not know is refused.
		err := mem.Post(ctx, memory, wire.RouteMemoryPut, map[string]any{
			"cap": json.RawMessage(memPut), "actor_omni": t.omni.Prefixed(),
			"plaintext_b64": base64.StdEncoding.EncodeToString(secret),
		}, nil)
		p.try("worker/body/names-target", t.label,
			brokerRefused(400, wire.ReasonInvalidInput), err)

		p.stolen(t, cred, mem, vault, memory, secret)
	}
}

// stolen uses caps minted for t, planted in A's sandbox, with A's own credentials.
func (p *probe) stolen(t target, cred, mem *agent.Worker, vault, memory agent.STSCreds,
	secret []byte) {
	if p.stolenDir == "" {
		return
	}
	read := func(route string) []byte {
		b, err := os.ReadFile(filepath.Join(p.stolenDir, t.label+"."+route+".cap"))
		if err != nil {
			p.try("worker/stolen/"+route, t.label, okay, fmt.Errorf("read stolen cap: %w", err))
			return nil
		}
		return b
	}
	ctx := p.ctx
	if tok := read("cred-store"); tok != nil {
		_, err := cred.CredStore(ctx, vault, tok, secret)
		p.try("worker/stolen/cred-store", t.label, workerDenied(wire.ReasonS3Put), err)
	}
	if tok := read("cred-fetch"); tok != nil {
		_, err := cred.CredFetch(ctx, vault, tok)
		p.try("worker/stolen/cred-fetch", t.label, workerDenied(wire.ReasonS3Get), err)
	}
	if tok := read("memory-put"); tok != nil {
		_, err := mem.MemoryPut(ctx, memory, tok, secret)
		p.try("worker/stolen/memory-put", t.label, workerDenied(wire.ReasonS3Put), err)
	}
	if tok := read("memory-get"); tok != nil {
		_, err := mem.MemoryGet(ctx, memory, tok)
		p.try("worker/stolen/memory-get", t.label, workerDenied(wire.ReasonS3Get), err)
	}
}
