package broker

import (
	"context"
	"errors"
	"net/http"

	"github.com/agentkeys/harness/mocks/catcher"
	"github.com/agentkeys/harness/mocks/reply"
	"github.com/agentkeys/harness/protocol/wire"
)

// MailReader is where the mailbox route reads delivered mail: the mail catcher's API,
// which *catcher.Client reads. The reader sees every mailbox; the route shows an agent
// only its own.
type MailReader interface {
	MessagesTo(ctx context.Context, addr string) ([]catcher.Summary, error)
	Message(ctx context.Context, id string) (catcher.Message, error)
}

// mailboxOwner authenticates a mailbox request and returns the caller's address. Only an
// agent has one: a master session is refused by kind, a missing or bad one with 401.
func (b *Broker) mailboxOwner(w http.ResponseWriter, r *http.Request) (string, bool) {
	if b.email.mailbox == nil {
		b.refuse(w, r, http.StatusServiceUnavailable, wire.ReasonEmailUnavailable,
			"the broker runs without a mail catcher")
		return "", false
	}
	s, ok := b.requireSession(w, r)
	if !ok {
		return "", false
	}
	if !s.agent || s.email == "" {
		b.refuse(w, r, http.StatusForbidden, wire.ReasonAgentSessionRequired,
			"only an agent session has a mailbox")
		return "", false
	}
	return s.email, true
}

func (b *Broker) mailboxList(w http.ResponseWriter, r *http.Request) {
	addr, ok := b.mailboxOwner(w, r)
	if !ok {
		return
	}

	list, err := b.email.mailbox.MessagesTo(r.Context(), addr)
	if err != nil {
		b.refuse(w, r, http.StatusBadGateway, wire.ReasonMailboxReadFailed, err.Error())
		return
	}
	ans := wire.MailboxAnswer{Address: addr, Messages: make([]wire.MailboxMessage, 0, len(list))}
	for _, m := range list {
		ans.Messages = append(ans.Messages, wire.MailboxMessage{
			ID: m.ID, From: fromOf(m.From), To: addresses(m.To), Subject: m.Subject,
			Date: m.Created.Unix(),
		})
	}
	reply.JSON(w, http.StatusOK, ans)
}

func (b *Broker) mailboxRead(w http.ResponseWriter, r *http.Request) {
	addr, ok := b.mailboxOwner(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if !catcher.ValidID(id) {
		b.invalid(w, r, "a message id is 22 letters and digits")
		return
	}

	m, err := b.email.mailbox.Message(r.Context(), id)
	if err != nil && !errors.Is(err, catcher.ErrNotFound) {
		b.refuse(w, r, http.StatusBadGateway, wire.ReasonMailboxReadFailed, err.Error())
		return
	}
	// Another mailbox's message answers exactly as one that does not exist, so that an
	// agent cannot learn which ids are live.
	if err != nil || (!m.AddressedTo(addr) && !b.faults.MailboxSkipsOwnerCheck) {
		b.refuse(w, r, http.StatusNotFound, wire.ReasonMessageNotFound,
			"no message with this id in your mailbox")
		return
	}
	reply.JSON(w, http.StatusOK, wire.MailboxMessage{
		ID: m.ID, From: fromOf(m.From), To: addresses(m.To), Subject: m.Subject,
		Date: m.Date.Unix(), Text: m.Text,
	})
}

func fromOf(a *catcher.Address) string {
	if a == nil {
		return ""
	}
	return a.Address
}

func addresses(list []catcher.Address) []string {
	out := make([]string, 0, len(list))
	for _, a := range list {
		out = append(out, a.Address)
	}
	return out
}
