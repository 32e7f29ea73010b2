package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/protocol/refusal"
	"github.com/agentkeys/harness/protocol/wire"
)

// Exit statuses.
const (
	exitOK      = 0
	exitRefused = 1
	exitUsage   = 2
	exitFailed  = 3
)

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

type cli struct {
	stdin  io.Reader
	stdout io.Writer
	ctx    context.Context
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := &cli{stdin: stdin, stdout: stdout, ctx: ctx}

	name := strings.Join(firstWords(args, 2), " ")
	err := c.dispatch(args)
	if err == nil {
		return exitOK
	}

	fmt.Fprintf(stderr, "sandbox-agent: %s: %v\n", name, oneLine(err))
	var ue *usageError
	var r *refusal.Refusal
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &r):
		return exitRefused
	}
	return exitFailed
}

func (c *cli) dispatch(args []string) error {
	if len(args) == 0 {
		return usagef("no command; want keygen, pair, whoami, memory, cred, cap or mail")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "keygen":
		return c.keygen(rest)
	case "whoami":
		return c.whoami(rest)
	case "pair", "memory", "cred", "cap", "mail":
		if len(rest) == 0 {
			return usagef("%s needs a subcommand", cmd)
		}
		sub, rest := rest[0], rest[1:]
		switch cmd + " " + sub {
		case "pair request":
			return c.pairRequest(rest)
		case "pair poll":
			return c.pairPoll(rest)
		case "memory put":
			return c.memoryPut(rest)
		case "memory get":
			return c.memoryGet(rest)
		case "cred store":
			return c.credStore(rest)
		case "cred fetch":
			return c.credFetch(rest)
		case "cred list":
			return c.credList(rest)
		case "cred provision":
			return c.credProvision(rest)
		case "cap mint":
			return c.capMint(rest)
		case "mail list":
			return c.mailList(rest)
		}
		return usagef("unknown command %q", cmd+" "+sub)
	}
	return usagef("unknown command %q", args[0])
}

// flags parses args with fs, which has no output of its own: errors come back as usage
// errors for the one-line report.
func parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func (c *cli) keygen(args []string) error {
	if err := parse(flag.NewFlagSet("keygen", flag.ContinueOnError), args); err != nil {
		return err
	}
	p, err := agent.KeyPath()
	if err != nil {
		return err
	}
	k, err := agent.CreateKey(p)
	if err != nil {
		return err
	}
	return c.printJSON(map[string]string{
		"address": k.Address(), "device_key_hash": k.DeviceKeyHash(), "key_file": p,
	})
}

func (c *cli) pairRequest(args []string) error {
	if err := parse(flag.NewFlagSet("pair request", flag.ContinueOnError), args); err != nil {
		return err
	}
	k, e, err := c.keyAndEndpoints()
	if err != nil {
		return err
	}
	b := &agent.Broker{URL: e.Broker}
	ans, err := b.PairingRequest(c.ctx, k)
	if err != nil {
		return err
	}
	p, err := agent.PairingPath()
	if err != nil {
		return err
	}
	if err := agent.SaveJSON(p, agent.Pairing{RequestID: ans.RequestID,
		PairingCode: ans.PairingCode, DeviceKeyHash: ans.DeviceKeyHash}); err != nil {
		return err
	}
	return c.printJSON(ans)
}

func (c *cli) pairPoll(args []string) error {
	fs := flag.NewFlagSet("pair poll", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the claim")
	if err := parse(fs, args); err != nil {
		return err
	}
	k, e, err := c.keyAndEndpoints()
	if err != nil {
		return err
	}
	pp, err := agent.PairingPath()
	if err != nil {
		return err
	}
	var pending agent.Pairing
	if err := agent.LoadJSON(pp, &pending); err != nil {
		return fmt.Errorf("no pairing request: run pair request first: %w", err)
	}

	b := &agent.Broker{URL: e.Broker}
	deadline := time.Now().Add(*timeout)
	for {
		ans, err := b.PairingPoll(c.ctx, k, pending.RequestID)
		if err != nil {
			return err
		}
		if ans.Status == wire.PairingClaimed {
			sp, err := agent.SessionPath()
			if err != nil {
				return err
			}
			s := agent.Session{JWT: ans.SessionJWT, Omni: ans.ChildOmni,
				DerivationPath: ans.DerivationPath, Email: ans.Email}
			if err := agent.SaveJSON(sp, s); err != nil {
				return err
			}
			return c.printJSON(map[string]string{"status": ans.Status,
				"child_omni": ans.ChildOmni, "derivation_path": ans.DerivationPath,
				"email": ans.Email})
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still %s after %s: the master has not claimed the code",
				ans.Status, *timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *cli) whoami(args []string) error {
	if err := parse(flag.NewFlagSet("whoami", flag.ContinueOnError), args); err != nil {
		return err
	}
	kp, err := agent.KeyPath()
	if err != nil {
		return err
	}
	k, err := agent.LoadKey(kp)
	if err != nil {
		return err
	}
	fi, err := os.Stat(kp)
	if err != nil {
		return fmt.Errorf("stat key: %w", err)
	}
	out := map[string]string{"address": k.Address(), "device_key_hash": k.DeviceKeyHash(),
		"key_file": kp, "key_file_mode": fmt.Sprintf("%04o", fi.Mode().Perm())}
	if s, err := agent.LoadSession(); err == nil {
		out["omni"] = s.Omni
		out["derivation_path"] = s.DerivationPath
		if email, err := s.OwnEmail(); err == nil {
			out["email"] = email
		}
	}
	return c.printJSON(out)
}

func (c *cli) keyAndEndpoints() (*agentKey, agent.Endpoints, error) {
	kp, err := agent.KeyPath()
	if err != nil {
		return nil, agent.Endpoints{}, err
	}
	k, err := agent.LoadKey(kp)
	if err != nil {
		return nil, agent.Endpoints{}, err
	}
	e, err := agent.EndpointsFromEnv()
	if err != nil {
		return nil, agent.Endpoints{}, err
	}
	return k, e, nil
}

// client is the paired agent: key, session and endpoints.
func (c *cli) client() (*agent.Client, error) { return agent.LoadClient() }
