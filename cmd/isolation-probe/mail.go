package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/protocol/wire"
)

// provisioned is the service under which the test's agents keep the API key they
// provisioned at the vendor. A cap request naming it is refused whatever the name; naming
// the real one keeps the attempt honest.
const provisioned = "modelapi"

// mail makes the mailbox and vendor attempts for the targets that have an address: A
// reads only its own mail, and a sign-up with a target's address sends the link to the
// target, never to A, so A cannot take the target's key over.
func (p *probe) mail() {
	ctx, session := p.ctx, p.a.Session
	b := &agent.Broker{URL: p.a.Broker, HTTP: p.a.HTTP}
	v := &agent.Vendor{URL: p.a.Vendor, HTTP: p.a.HTTP}

	own, err := ownEmail(p.a)
	var seen []string
	if err == nil {
		seen, err = b.MailboxIDs(ctx, session)
	}
	p.try("mailbox/list/own", "self", okay, err)
	if err != nil {
		return
	}

	// The targets' sign-ups go first and A's own last: the vendor mails them in order,
	// so once A's own link shows, a target's link that went astray would show too.
	signups := map[string]error{}
	for _, t := range p.targets {
		if t.email != "" {
			signups[t.label] = v.Signup(ctx, t.email)
		}
	}
	err = v.Signup(ctx, own)
	if err == nil {
		_, err = b.AwaitLinkToken(ctx, session, seen, wire.RouteVendorVerifyPrefix)
	}
	p.try("vendor/signup/own", "self", okay, err)

	box, listErr := b.Mailbox(ctx, session)
	err = listErr
	var fresh []wire.MailboxMessage
	if err == nil {
		for _, m := range box.Messages {
			if !slices.Contains(seen, m.ID) {
				fresh = append(fresh, m)
			}
		}
		if len(fresh) == 0 {
			err = errors.New("A's own sign-up link is not in its mailbox list")
		}
	}
	if err == nil {
		_, err = b.MailboxMessage(ctx, session, fresh[0].ID)
	}
	p.try("mailbox/read/own", "self", okay, err)

	for _, t := range p.targets {
		if t.email == "" {
			continue
		}
		err := signups[t.label]
		if err == nil && len(fresh) != 1 {
			err = fmt.Errorf("%d new messages in A's mailbox after a sign-up with its own "+
				"address and one with %s's; want only its own", len(fresh), t.label)
		}
		p.try("vendor/signup/target", t.label, okay, err)

		p.theirMail(b, t, box, listErr)
	}
}

// theirMail asks for the target's messages by id, planted by the test, through A's own
// mailbox, and looks for anything of the target's in box, the list A was shown (or
// could not be, with listErr).
func (p *probe) theirMail(b *agent.Broker, t target, box wire.MailboxAnswer,
	listErr error) {
	notFound := brokerRefused(404, wire.ReasonMessageNotFound)
	ids, err := readLines(filepath.Join(p.stolenDir, t.label+".mail-ids"))
	if err == nil && len(ids) == 0 {
		err = errors.New("no message ids of the target were planted")
	}
	if err != nil {
		p.try("mailbox/read/target", t.label, notFound, err)
		p.try("mailbox/list/target", t.label, okay, err)
		return
	}

	// The first id that is not refused as missing decides; otherwise all were.
	for _, id := range ids {
		_, err = b.MailboxMessage(p.ctx, p.a.Session, id)
		if !judge("", "", notFound, err).Pass {
			break
		}
	}
	p.try("mailbox/read/target", t.label, notFound, err)

	err = listErr
	for _, m := range box.Messages {
		if slices.Contains(ids, m.ID) || slices.ContainsFunc(m.To, func(to string) bool {
			return strings.EqualFold(to, t.email)
		}) {
			err = fmt.Errorf("A's mailbox lists message %s of %s", m.ID, t.label)
			break
		}
	}
	p.try("mailbox/list/target", t.label, okay, err)
}

// ownEmail is A's address from its session file, and whether the vendor is known.
func ownEmail(a *agent.Client) (string, error) {
	if a.Vendor == "" {
		return "", fmt.Errorf("%s is not set", agent.EnvVendor)
	}
	s, err := agent.LoadSession()
	if err != nil {
		return "", err
	}
	return s.OwnEmail()
}

// readLines reads a planted file of one value a line.
func readLines(path string) ([]string, error) {
	if path == "" {
		return nil, errors.New("no --stolen-dir")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read planted file: %w", err)
	}
	return strings.Fields(string(b)), nil
}
