package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/protocol/evm"
	"github.com/agentkeys/harness/protocol/wire"
)

type agentKey = evm.Key

// content reads the secret from --content or, with --stdin, from standard input.
func (c *cli) content(text string, fromStdin bool) ([]byte, error) {
	switch {
	case fromStdin && text != "":
		return nil, usagef("give --content or --stdin, not both")
	case fromStdin:
		b, err := io.ReadAll(io.LimitReader(c.stdin, 2<<20))
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return b, nil
	case text == "":
		return nil, usagef("--content or --stdin is required")
	}
	return []byte(text), nil
}

// capFile reads a cap token planted in the sandbox, for calls with a cap minted by
// someone else (the master, for a delegated write).
func capFile(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read cap file: %w", err)
	}
	return b, nil
}

func (c *cli) printStored(ans wire.StoreAnswer) error {
	return c.printJSON(map[string]any{"s3_key": ans.S3Key, "envelope_size": ans.EnvelopeSize,
		"audit_envelope_hash": ans.AuditEnvelopeHash})
}

func (c *cli) memoryPut(args []string) error {
	fs := flag.NewFlagSet("memory put", flag.ContinueOnError)
	ns := fs.String("namespace", "", "memory namespace")
	text := fs.String("content", "", "the content to store")
	stdin := fs.Bool("stdin", false, "read the content from standard input")
	capPath := fs.String("cap-file", "", "use this cap instead of minting one")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *ns == "" {
		return usagef("--namespace is required")
	}
	data, err := c.content(*text, *stdin)
	if err != nil {
		return err
	}
	token, err := capFile(*capPath)
	if err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	ans, err := cl.MemoryPut(c.ctx, *ns, data, token)
	if err != nil {
		return err
	}
	return c.printStored(ans)
}

func (c *cli) memoryGet(args []string) error {
	fs := flag.NewFlagSet("memory get", flag.ContinueOnError)
	ns := fs.String("namespace", "", "memory namespace")
	capPath := fs.String("cap-file", "", "use this cap instead of minting one")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *ns == "" {
		return usagef("--namespace is required")
	}
	token, err := capFile(*capPath)
	if err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	data, err := cl.MemoryGet(c.ctx, *ns, token)
	if err != nil {
		return err
	}
	_, err = c.stdout.Write(data)
	return err
}

func (c *cli) credStore(args []string) error {
	fs := flag.NewFlagSet("cred store", flag.ContinueOnError)
	svc := fs.String("service", "", "the service the credential is for")
	text := fs.String("content", "", "the credential")
	stdin := fs.Bool("stdin", false, "read the credential from standard input")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *svc == "" {
		return usagef("--service is required")
	}
	data, err := c.content(*text, *stdin)
	if err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	ans, err := cl.CredStore(c.ctx, *svc, data)
	if err != nil {
		return err
	}
	return c.printStored(ans)
}

func (c *cli) credFetch(args []string) error {
	fs := flag.NewFlagSet("cred fetch", flag.ContinueOnError)
	svc := fs.String("service", "", "the service the credential is for")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *svc == "" {
		return usagef("--service is required")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	data, err := cl.CredFetch(c.ctx, *svc)
	if err != nil {
		return err
	}
	_, err = c.stdout.Write(data)
	return err
}

func (c *cli) credList(args []string) error {
	if err := parse(flag.NewFlagSet("cred list", flag.ContinueOnError), args); err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	services, err := cl.CredList(c.ctx)
	if err != nil {
		return err
	}
	for _, s := range services {
		fmt.Fprintln(c.stdout, s)
	}
	return nil
}

// credProvision signs the agent up at the vendor with its own address and stores the
// API key it receives as its own credential. It prints where the key went, never the
// key: provisioning is the one flow in which the agent holds a secret that no one handed
// it, so nothing but the vault may see it.
func (c *cli) credProvision(args []string) error {
	fs := flag.NewFlagSet("cred provision", flag.ContinueOnError)
	svc := fs.String("service", "", "the service name the vendor's key is stored under")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *svc == "" {
		return usagef("--service is required")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	if cl.Vendor == "" {
		return fmt.Errorf("%s is not set: provision needs the vendor's URL", agent.EnvVendor)
	}
	s, err := agent.LoadSession()
	if err != nil {
		return err
	}
	email, err := s.OwnEmail()
	if err != nil {
		return err
	}

	ans, err := cl.Provision(c.ctx, &agent.Vendor{URL: cl.Vendor}, email, *svc)
	if err != nil {
		return err
	}
	return c.printJSON(map[string]any{"service": *svc, "email": email, "s3_key": ans.S3Key,
		"envelope_size": ans.EnvelopeSize})
}

// mailList prints the agent's own mailbox as the broker's mailbox route shows it to the
// agent's session: ids, senders, recipients and subjects, without the texts, which carry
// one-time links.
func (c *cli) mailList(args []string) error {
	if err := parse(flag.NewFlagSet("mail list", flag.ContinueOnError), args); err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	box, err := (&agent.Broker{URL: cl.Broker}).Mailbox(c.ctx, cl.Session)
	if err != nil {
		return err
	}
	return c.printJSON(box)
}

// The cap lifetimes the broker grants.
const (
	capTTLMin = wire.CapTTLMin * time.Second
	capTTLMax = wire.CapTTLMax * time.Second
)

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// capMint mints a cap with the agent's own session and prints the token. The agent is
// operator and actor unless told otherwise; the broker decides what it may mint.
func (c *cli) capMint(args []string) error {
	fs := flag.NewFlagSet("cap mint", flag.ContinueOnError)
	route := fs.String("route", "", "cred-store, cred-fetch, memory-put or memory-get")
	svc := fs.String("service", "", "the service the cap names")
	ttl := fs.Duration("ttl", 0, "how long the cap lives, whole seconds from "+
		capTTLMin.String()+" to "+capTTLMax.String()+"; the broker's default when not given")
	if err := parse(fs, args); err != nil {
		return err
	}
	path := "/v1/cap/" + *route
	if _, ok := wire.CapRouteByPath(path); !ok {
		return usagef("--route %q: want cred-store, cred-fetch, memory-put or memory-get",
			*route)
	}
	if *svc == "" {
		return usagef("--service is required")
	}
	var opts []agent.MintOption
	if isSet(fs, "ttl") {
		// The broker would clamp a lifetime out of range; asking for one is a mistake.
		if *ttl < capTTLMin || *ttl > capTTLMax || *ttl%time.Second != 0 {
			return usagef("--ttl %s: want whole seconds from %s to %s", *ttl, capTTLMin,
				capTTLMax)
		}
		opts = append(opts, agent.WithTTL(int64(*ttl/time.Second)))
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	token, err := cl.MintCap(c.ctx, path, cl.Omni, cl.Omni, *svc, opts...)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "%s\n", token)
	return err
}
