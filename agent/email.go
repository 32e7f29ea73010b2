package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/wire"
)

// MailPoll is how often AwaitLinkToken looks at the mailbox again. Delivery to the
// catcher is synchronous, so the first look usually finds the mail; the interval only
// matters for a slow machine.
const MailPoll = 100 * time.Millisecond

// DefaultMailWait bounds AwaitLinkToken when its context has no deadline.
const DefaultMailWait = 30 * time.Second

// EmailRequest asks the broker to mail a one-time sign-in link to email, and returns the
// request id whose status tells when the link was visited.
func (b *Broker) EmailRequest(ctx context.Context, email string) (string, error) {
	var ans wire.EmailRequestAnswer
	err := call(ctx, b.HTTP, "email sign-in request", http.MethodPost,
		b.url(wire.RouteEmailRequest), nil, wire.EmailRequest{Email: email}, &ans)
	return ans.RequestID, err
}

// EmailVerify visits the sign-in link whose token the mail carried. It calls the broker
// this client knows rather than whatever host the mail names, so a forged mail cannot
// send the agent elsewhere.
func (b *Broker) EmailVerify(ctx context.Context, token string) error {
	var ans wire.EmailVerifyAnswer
	return call(ctx, b.HTTP, "email sign-in verify", http.MethodGet,
		b.url(wire.RouteEmailVerifyPrefix+url.PathEscape(token)), nil, nil, &ans)
}

// EmailStatus reads a sign-in's status. Once it is verified, the answer carries the
// session, and only that once.
func (b *Broker) EmailStatus(ctx context.Context,
	requestID string) (wire.EmailStatusAnswer, error) {
	var ans wire.EmailStatusAnswer
	err := call(ctx, b.HTTP, "email sign-in status", http.MethodGet,
		b.url(wire.RouteEmailStatusPrefix+url.PathEscape(requestID)), nil, nil, &ans)
	return ans, err
}

// EmailSignIn signs in by email as the agent whose address email is, proving that it
// reads that address's mail with session (the agent's pairing session): it requests a
// link, finds it in the mailbox, visits it and returns the new session JWT.
func (b *Broker) EmailSignIn(ctx context.Context, session, email string) (string, error) {
	seen, err := b.MailboxIDs(ctx, session)
	if err != nil {
		return "", fmt.Errorf("email sign-in: %w", err)
	}
	requestID, err := b.EmailRequest(ctx, email)
	if err != nil {
		return "", fmt.Errorf("email sign-in: %w", err)
	}
	token, err := b.AwaitLinkToken(ctx, session, seen, wire.RouteEmailVerifyPrefix)
	if err != nil {
		return "", fmt.Errorf("email sign-in: %w", err)
	}
	if err := b.EmailVerify(ctx, token); err != nil {
		return "", fmt.Errorf("email sign-in: %w", err)
	}

	st, err := b.EmailStatus(ctx, requestID)
	if err != nil {
		return "", fmt.Errorf("email sign-in: %w", err)
	}
	if st.Status != wire.EmailVerified || st.SessionJWT == "" {
		return "", fmt.Errorf("email sign-in: status %q after the link was visited", st.Status)
	}
	return st.SessionJWT, nil
}

// Mailbox lists the mail addressed to the agent of session, newest first, without
// bodies.
func (b *Broker) Mailbox(ctx context.Context, session string) (wire.MailboxAnswer, error) {
	var ans wire.MailboxAnswer
	err := call(ctx, b.HTTP, "mailbox list", http.MethodGet, b.url(wire.RouteMailbox),
		bearer(session), nil, &ans)
	return ans, err
}

// MailboxMessage reads one message of the agent's mailbox, with its text.
func (b *Broker) MailboxMessage(ctx context.Context, session,
	id string) (wire.MailboxMessage, error) {
	var ans wire.MailboxMessage
	err := call(ctx, b.HTTP, "mailbox read", http.MethodGet,
		b.url(wire.RouteMailbox+"/"+url.PathEscape(id)), bearer(session), nil, &ans)
	return ans, err
}

// MailboxIDs returns the ids of the messages in the agent's mailbox, to pass to
// AwaitLinkToken as those that were there before.
func (b *Broker) MailboxIDs(ctx context.Context, session string) ([]string, error) {
	box, err := b.Mailbox(ctx, session)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(box.Messages))
	for _, m := range box.Messages {
		ids = append(ids, m.ID)
	}
	return ids, nil
}

// AwaitLinkToken polls the agent's mailbox until a message that is not in seen carries a
// link whose path starts with routePrefix, and returns the token that follows the
// prefix. Passing the ids seen before the action that mails the link keeps an older
// link, already spent, from being taken for the new one.
func (b *Broker) AwaitLinkToken(ctx context.Context, session string, seen []string,
	routePrefix string) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultMailWait)
		defer cancel()
	}

	tick := time.NewTicker(MailPoll)
	defer tick.Stop()
	for {
		box, err := b.Mailbox(ctx, session)
		if err != nil {
			return "", fmt.Errorf("await link: %w", err)
		}
		// Newest first, so the first match is the latest link.
		for _, m := range box.Messages {
			if slices.Contains(seen, m.ID) {
				continue
			}
			full, err := b.MailboxMessage(ctx, session, m.ID)
			if err != nil {
				return "", fmt.Errorf("await link: %w", err)
			}
			if token, ok := LinkToken(full.Text, routePrefix); ok {
				return token, nil
			}
		}

		select {
		case <-ctx.Done():
			return "", fmt.Errorf("await link: no new mail with a %s link: %w", routePrefix,
				context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// urlPattern finds http and https URLs in a plain-text body.
var urlPattern = regexp.MustCompile(`https?://[^\s<>"']+`)

// LinkToken returns the path segment after routePrefix in the first URL of text whose
// path starts with routePrefix. Sentence punctuation after a URL is not part of it.
func LinkToken(text, routePrefix string) (string, bool) {
	for _, raw := range urlPattern.FindAllString(text, -1) {
		// Prose around a link ends it with punctuation that is not part of the URL.
		u, err := url.Parse(strings.TrimRight(raw, ".,;:!?)"))
		if err != nil {
			continue
		}
		token, ok := strings.CutPrefix(u.Path, routePrefix)
		if ok && token != "" && !strings.Contains(token, "/") {
			return token, true
		}
	}
	return "", false
}

// Vendor is a client of the mock model-API vendor. The zero HTTP uses DefaultHTTPClient.
// Nothing here logs or prints an API key; a caller that has one keeps it that way.
type Vendor struct {
	// URL is the vendor's base URL, without a trailing slash.
	URL  string
	HTTP *http.Client
}

func (v *Vendor) url(route string) string { return strings.TrimSuffix(v.URL, "/") + route }

// Signup asks the vendor to mail a verification link to email.
func (v *Vendor) Signup(ctx context.Context, email string) error {
	var ans wire.VendorSignupAnswer
	return call(ctx, v.HTTP, "vendor signup", http.MethodPost, v.url(wire.RouteVendorSignup),
		nil, wire.VendorSignupRequest{Email: email}, &ans)
}

// Verify visits the verification link whose token the mail carried and returns the API
// key it issues. Like Broker.EmailVerify it calls the vendor this client knows, never a
// host named in the mail.
func (v *Vendor) Verify(ctx context.Context, token string) (wire.VendorVerifyAnswer, error) {
	var ans wire.VendorVerifyAnswer
	err := call(ctx, v.HTTP, "vendor verify", http.MethodGet,
		v.url(wire.RouteVendorVerifyPrefix+url.PathEscape(token)), nil, nil, &ans)
	return ans, err
}

// Whoami returns the email that key is bound to.
func (v *Vendor) Whoami(ctx context.Context, key string) (string, error) {
	var ans wire.VendorWhoamiAnswer
	err := call(ctx, v.HTTP, "vendor whoami", http.MethodGet, v.url(wire.RouteVendorWhoami),
		bearer(key), nil, &ans)
	return ans.Email, err
}

// SignUp runs the vendor's whole sign-up for the agent whose address email is: it signs
// up, finds the verification link in the agent's mailbox through mailbox with session,
// visits it and returns the new API key. Each call rotates the key.
func (v *Vendor) SignUp(ctx context.Context, mailbox *Broker, session,
	email string) (string, error) {
	seen, err := mailbox.MailboxIDs(ctx, session)
	if err != nil {
		return "", fmt.Errorf("vendor sign-up: %w", err)
	}
	if err := v.Signup(ctx, email); err != nil {
		return "", fmt.Errorf("vendor sign-up: %w", err)
	}
	token, err := mailbox.AwaitLinkToken(ctx, session, seen, wire.RouteVendorVerifyPrefix)
	if err != nil {
		return "", fmt.Errorf("vendor sign-up: %w", err)
	}
	ans, err := v.Verify(ctx, token)
	if err != nil {
		return "", fmt.Errorf("vendor sign-up: %w", err)
	}
	return ans.APIKey, nil
}

// Provision is the agent-side provisioning flow: the agent signs up at vendor with its
// own address email, reads the verification link from its own mailbox with its session,
// confirms it, and stores the API key it receives as a self-owned credential under
// service. Each call rotates the key at the vendor. The key goes from the vendor's answer
// to the cred worker and nowhere else; it is not returned.
func (c *Client) Provision(ctx context.Context, vendor *Vendor, email, service string) (
	wire.StoreAnswer, error) {
	key, err := vendor.SignUp(ctx, c.broker(), c.Session, email)
	if err != nil {
		return wire.StoreAnswer{}, fmt.Errorf("provision %s: %w", service, err)
	}
	ans, err := c.CredStore(ctx, service, []byte(key))
	if err != nil {
		return wire.StoreAnswer{}, fmt.Errorf("provision %s: %w", service, err)
	}
	return ans, nil
}

// OwnEmail is the agent's own address: the one pairing stored, else the one derived
// from the label in its derivation path and its omni exactly as the broker derives it at
// the claim (wire.AgentEmail), so an agent whose session file predates the address still
// knows it.
func (s Session) OwnEmail() (string, error) {
	if s.Email != "" {
		return s.Email, nil
	}
	label, _, ok := strings.Cut(s.DerivationPath, "/")
	if !ok || label == "" {
		return "", fmt.Errorf("agent email: derivation path %q has no label", s.DerivationPath)
	}
	o, err := omni.ParseBare(omni.Normalize(s.Omni))
	if err != nil {
		return "", fmt.Errorf("agent email: child_omni: %w", err)
	}
	return wire.AgentEmail(label, o), nil
}
