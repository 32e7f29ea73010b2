package wire

import "github.com/agentkeys/harness/protocol/omni"

// The broker's email routes. Email sign-in and the mailbox are the harness's stand-ins for
// the agent-side identity upstream is adding: an agent proves that it holds its address by
// visiting a one-time link mailed to it. The {token}, {request_id} and {id} segments are
// ServeMux wildcards; a client joins the prefix and the value.
const (
	RouteEmailRequest = "/v1/auth/email/request"
	// RouteEmailVerifyPrefix + token is the one-time link the sign-in mail carries.
	RouteEmailVerifyPrefix = "/v1/auth/email/verify/"
	RouteEmailStatusPrefix = "/v1/auth/email/status/"
	// RouteMailbox lists the caller's mail; RouteMailbox + "/" + id reads one message.
	RouteMailbox = "/v1/mailbox"
)

// AgentEmailDomain is the domain of every agent's address. .test is reserved (RFC 2606),
// so no mail for it can leave a test machine by mistake.
const AgentEmailDomain = "agents.test"

// AgentEmail is the address an agent gets when its pairing is claimed:
// <label>-<first 8 hex of its omni>@agents.test. The label alone would collide between
// two masters' agents of the same name, and between generations of one label; the omni
// part keeps every agent's address its own while the label keeps it readable.
func AgentEmail(label string, agent omni.Omni) string {
	return label + "-" + agent.String()[:8] + "@" + AgentEmailDomain
}

// Email sign-in statuses.
const (
	EmailPending  = "pending"
	EmailVerified = "verified"
	// EmailExpired: the link was not visited, or the session not collected, in time.
	EmailExpired = "expired"
)

// Reasons of the email routes, chosen by the harness.
const (
	// ReasonEmailUnavailable: the stack runs without a mail catcher (503).
	ReasonEmailUnavailable = "email_unavailable"
	// ReasonEmailNotBound: sign-in for an address that no agent holds (403). The harness
	// has no email-only identity; see the broker's package documentation.
	ReasonEmailNotBound = "email_not_bound"
	// ReasonEmailTokenInvalid: a sign-in link that is unknown, spent or expired (401).
	ReasonEmailTokenInvalid = "email_token_invalid"
	// ReasonEmailSendFailed: the SMTP server did not take the mail (502).
	ReasonEmailSendFailed = "email_send_failed"
	// ReasonAgentSessionRequired: a master session on the mailbox, which only agents
	// have (403).
	ReasonAgentSessionRequired = "agent_session_required"
	// ReasonMessageNotFound: a message id that the caller's mailbox does not hold, whether
	// or not it exists in someone else's (404).
	ReasonMessageNotFound = "message_not_found"
	// ReasonMailboxReadFailed: the mail catcher's API failed (502).
	ReasonMailboxReadFailed = "mailbox_read_failed"
)

// EmailRequest is the body of RouteEmailRequest.
type EmailRequest struct {
	Email string `json:"email"`
}

// EmailRequestAnswer names the sign-in the link completes; the requester polls its status.
type EmailRequestAnswer struct {
	RequestID string `json:"request_id"`
}

// EmailVerifyAnswer is the answer of a visited sign-in link.
type EmailVerifyAnswer struct {
	Status string `json:"status"`
}

// EmailStatusAnswer is {status: pending} until the link is visited, then the session,
// which is handed out once.
type EmailStatusAnswer struct {
	Status     string `json:"status"`
	SessionJWT string `json:"session_jwt,omitempty"`
}

// MailboxMessage is one message of the caller's mailbox. To is the To header only:
// envelope recipients are never shown. Date, in unix seconds, is when the catcher received
// the message in a list, and the message's Date header when one message is read. Text is
// set when one message is read, not in a list.
type MailboxMessage struct {
	ID      string   `json:"id"`
	From    string   `json:"from"`
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	Date    int64    `json:"date"`
	Text    string   `json:"text,omitempty"`
}

// MailboxAnswer lists the caller's mail, newest first, under the caller's address.
type MailboxAnswer struct {
	Address  string           `json:"address"`
	Messages []MailboxMessage `json:"messages"`
}
