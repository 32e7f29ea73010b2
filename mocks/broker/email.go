package broker

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/agentkeys/harness/mocks/mailer"
	"github.com/agentkeys/harness/mocks/reply"
	"github.com/agentkeys/harness/protocol/wire"
)

// Defaults of EmailConfig.
const (
	DefaultEmailFrom    = "signin@broker.test"
	DefaultEmailLinkTTL = 15 * time.Minute
)

// EmailConfig turns on email sign-in and the agents' mailbox. Its zero value leaves both
// off: their routes answer 503 email_unavailable, and everything else works as before.
type EmailConfig struct {
	// SMTPAddr is the mail catcher's SMTP host:port, where sign-in links are sent. Empty
	// turns email sign-in off.
	SMTPAddr string
	// From is the sender of sign-in mail. Default DefaultEmailFrom.
	From string
	// LinkBaseURL is the broker's URL as the mail's reader reaches it; a link is
	// LinkBaseURL + /v1/auth/email/verify/<token>. Empty means the issuer.
	LinkBaseURL string
	// LinkTTL is how long a link works, and how long a verified sign-in waits for its
	// session to be collected. Default DefaultEmailLinkTTL.
	LinkTTL time.Duration
	// Mailbox is where the mailbox route reads delivered mail. Nil turns that route off.
	Mailbox MailReader
}

// emailState is the broker's email sign-in and mailbox state. Its maps are guarded by
// Broker.mu, like the pairings they point into.
type emailState struct {
	sender   *mailer.Sender // nil: sign-in off
	mailbox  MailReader     // nil: mailbox off
	linkBase string
	linkTTL  time.Duration

	agents   map[string]*pairing     // agent address → the claimed pairing it came from
	requests map[string]*emailSignIn // by request_id, until the session is collected
	tokens   map[string]*emailSignIn // by link token, until the link is visited
}

// emailSignIn is one request for a sign-in link.
type emailSignIn struct {
	requestID string
	token     string
	agent     *pairing
	expires   time.Time
	verified  bool
}

func newEmailState(cfg EmailConfig) (*emailState, error) {
	e := &emailState{
		mailbox:  cfg.Mailbox,
		linkBase: strings.TrimSuffix(cfg.LinkBaseURL, "/"),
		linkTTL:  cfg.LinkTTL,
		agents:   make(map[string]*pairing),
		requests: make(map[string]*emailSignIn),
		tokens:   make(map[string]*emailSignIn),
	}
	if e.linkTTL <= 0 {
		e.linkTTL = DefaultEmailLinkTTL
	}
	if cfg.SMTPAddr != "" {
		from := cfg.From
		if from == "" {
			from = DefaultEmailFrom
		}
		from, err := mailer.NormalizeAddress(from)
		if err != nil {
			return nil, fmt.Errorf("email from: %w", err)
		}
		e.sender = &mailer.Sender{Addr: cfg.SMTPAddr, From: from}
	}
	return e, nil
}

func (b *Broker) emailRoutes(handle func(method, path string, h http.HandlerFunc)) {
	handle(http.MethodPost, wire.RouteEmailRequest, b.emailRequest)
	handle(http.MethodGet, wire.RouteEmailVerifyPrefix+"{token}", b.emailVerify)
	handle(http.MethodGet, wire.RouteEmailStatusPrefix+"{request_id}", b.emailStatus)
	handle(http.MethodGet, wire.RouteMailbox, b.mailboxList)
	handle(http.MethodGet, wire.RouteMailbox+"/{id}", b.mailboxRead)
}

// bindEmail records the address of a freshly claimed agent, for sign-in by email.
// The caller holds b.mu.
func (b *Broker) bindEmail(p *pairing) {
	b.email.agents[p.email] = p
}

// emailOff answers 503 when the broker runs without a mail server, and reports whether
// it did.
func (b *Broker) emailOff(w http.ResponseWriter, r *http.Request) bool {
	if b.email.sender != nil {
		return false
	}
	b.refuse(w, r, http.StatusServiceUnavailable, wire.ReasonEmailUnavailable,
		"the broker runs without a mail server")
	return true
}

func (b *Broker) emailRequest(w http.ResponseWriter, r *http.Request) {
	if b.emailOff(w, r) {
		return
	}
	var req wire.EmailRequest
	if !b.decode(w, r, &req) {
		return
	}
	addr, err := mailer.NormalizeAddress(req.Email)
	if err != nil {
		b.invalid(w, r, err.Error())
		return
	}

	now := b.now()
	si := &emailSignIn{requestID: randomHex(16), token: randomHex(32),
		expires: now.Add(b.email.linkTTL)}
	b.mu.Lock()
	b.pruneEmail(now)
	si.agent = b.email.agents[addr]
	if si.agent != nil {
		b.email.requests[si.requestID] = si
		b.email.tokens[si.token] = si
	}
	b.mu.Unlock()
	if si.agent == nil {
		b.refuse(w, r, http.StatusForbidden, wire.ReasonEmailNotBound,
			"no agent holds this address")
		return
	}

	link := b.emailLinkBase(r) + wire.RouteEmailVerifyPrefix + si.token
	text := "An agentkeys sign-in was requested for this address.\n\n" +
		"Visit this link to complete it:\n\n" + link + "\n\n" +
		"The link works once, for " + b.email.linkTTL.String() + ". " +
		"If you did not ask for it, ignore this message.\n"
	if err := b.email.sender.Send(r.Context(), addr, "Your agentkeys sign-in link",
		text); err != nil {
		b.mu.Lock()
		delete(b.email.requests, si.requestID)
		delete(b.email.tokens, si.token)
		b.mu.Unlock()
		b.refuse(w, r, http.StatusBadGateway, wire.ReasonEmailSendFailed, err.Error())
		return
	}

	b.log.Info("broker email sign-in mailed", "request_id", si.requestID, "email", addr)
	reply.JSON(w, http.StatusOK, wire.EmailRequestAnswer{RequestID: si.requestID})
}

// emailLinkBase is the configured link base, else the issuer.
func (b *Broker) emailLinkBase(r *http.Request) string {
	if b.email.linkBase != "" {
		return b.email.linkBase
	}
	return b.issuerFor(r)
}

// pruneEmail forgets sign-ins past their expiry, so that a long run does not accumulate
// abandoned ones. The caller holds b.mu.
func (b *Broker) pruneEmail(now time.Time) {
	for id, si := range b.email.requests {
		if !now.Before(si.expires) {
			delete(b.email.requests, id)
			delete(b.email.tokens, si.token)
		}
	}
}

func (b *Broker) emailVerify(w http.ResponseWriter, r *http.Request) {
	if b.emailOff(w, r) {
		return
	}
	token := r.PathValue("token")
	if !isLowerHex(token, 64) {
		b.invalid(w, r, "the sign-in token is 64 lowercase hex characters")
		return
	}

	// The token is deleted by the visit that finds it, so a link works once.
	b.mu.Lock()
	si := b.email.tokens[token]
	delete(b.email.tokens, token)
	live := si != nil && b.now().Before(si.expires)
	if live {
		si.verified = true
	}
	b.mu.Unlock()
	if !live {
		// Never log the token: until it is spent it is as good as the session.
		b.refuse(w, r, http.StatusUnauthorized, wire.ReasonEmailTokenInvalid,
			"sign-in link unknown, already used or expired")
		return
	}

	b.log.Info("broker email sign-in verified", "request_id", si.requestID)
	reply.JSON(w, http.StatusOK, wire.EmailVerifyAnswer{Status: wire.EmailVerified})
}

func (b *Broker) emailStatus(w http.ResponseWriter, r *http.Request) {
	if b.emailOff(w, r) {
		return
	}
	id := r.PathValue("request_id")
	if !isLowerHex(id, 32) {
		b.invalid(w, r, "request_id is 32 lowercase hex characters")
		return
	}

	now := b.now()
	b.mu.Lock()
	si := b.email.requests[id]
	var status string
	var agent pairing
	switch {
	case si == nil:
	case !now.Before(si.expires):
		status = wire.EmailExpired
		delete(b.email.requests, id)
		delete(b.email.tokens, si.token)
	case !si.verified:
		status = wire.EmailPending
	default:
		// The session is handed out once: whoever learns the request id later, from a
		// log say, gets nothing.
		status = wire.EmailVerified
		agent = *si.agent
		delete(b.email.requests, id)
	}
	b.mu.Unlock()
	if si == nil {
		b.refuse(w, r, http.StatusNotFound, wire.ReasonRequestNotFound,
			"email sign-in request unknown or already collected")
		return
	}
	if status != wire.EmailVerified {
		reply.JSON(w, http.StatusOK, wire.EmailStatusAnswer{Status: status})
		return
	}

	token, err := b.issueSession(r, agentSession(agent))
	if err != nil {
		b.internal(w, r, err)
		return
	}
	reply.JSON(w, http.StatusOK, wire.EmailStatusAnswer{Status: status, SessionJWT: token})
}

// isLowerHex reports whether s is exactly n lowercase hex characters.
func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
