package broker_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/fixtures/mailcatcher"
	"github.com/agentkeys/harness/mocks/broker"
	"github.com/agentkeys/harness/mocks/catcher"
	"github.com/agentkeys/harness/mocks/chain"
	"github.com/agentkeys/harness/mocks/mailer"
	"github.com/agentkeys/harness/protocol/wire"
)

// newEmailStack is newStack with email turned on, over a real mailpit: sign-in links
// travel over SMTP and the mailbox reads them back through the catcher's API.
func newEmailStack(t *testing.T) (*stack, *mailcatcher.Server) {
	t.Helper()
	mc := mailcatcher.StartTB(t)
	c := &clock{now: start}
	mem := chain.NewMemory()
	srv, err := broker.NewServer(broker.Config{
		Chain: mem, AdminToken: adminToken, Now: c.Now, Logger: testLogger(t),
		Email: broker.EmailConfig{SMTPAddr: mc.SMTPAddr, Mailbox: mc.Client()},
	})
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	return &stack{srv: srv, chain: mem, client: &agent.Broker{URL: srv.URL}, clock: c}, mc
}

// identityOf verifies a session JWT with the broker's key and returns its agentkeys claim.
func (s *stack) identityOf(t *testing.T, session string) map[string]any {
	t.Helper()
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(session, claims, func(*jwt.Token) (any, error) {
		return s.srv.SessionPublicKey(), nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(s.clock.Now))
	require.NoError(t, err)
	id, ok := claims["agentkeys"].(map[string]any)
	require.True(t, ok, "agentkeys claim: %v", claims)
	return id
}

// addressOf is the address the broker gives agent a labelled label.
func addressOf(label string, a agentID) string { return wire.AgentEmail(label, a.omni) }

func TestEmailSignInEndToEnd(t *testing.T) {
	s, mc := newEmailStack(t)
	ctx := t.Context()
	m := s.newMaster(t)
	a := s.pairAgent(t, m, "alice")
	addr := addressOf("alice", a)
	assert.Regexp(t, `^alice-[0-9a-f]{8}@agents\.test$`, addr)

	requestID, err := s.client.EmailRequest(ctx, strings.ToUpper(addr))
	require.NoError(t, err, "the address is matched without case")

	st, err := s.client.EmailStatus(ctx, requestID)
	require.NoError(t, err)
	assert.Equal(t, wire.EmailStatusAnswer{Status: wire.EmailPending}, st,
		"no session before the link is visited")

	// The link travelled over SMTP: the catcher holds it, addressed to the agent alone.
	inbox, err := mc.Client().MessagesTo(ctx, addr)
	require.NoError(t, err)
	require.Len(t, inbox, 1)
	assert.Equal(t, broker.DefaultEmailFrom, inbox[0].From.Address)
	msg, err := mc.Client().Message(ctx, inbox[0].ID)
	require.NoError(t, err)
	assert.Contains(t, msg.Text, s.srv.URL+wire.RouteEmailVerifyPrefix,
		"the link names the broker's public URL")
	token, ok := agent.LinkToken(msg.Text, wire.RouteEmailVerifyPrefix)
	require.True(t, ok, "no link in %q", msg.Text)

	require.NoError(t, s.client.EmailVerify(ctx, token))

	st, err = s.client.EmailStatus(ctx, requestID)
	require.NoError(t, err)
	require.Equal(t, wire.EmailVerified, st.Status)
	assert.Equal(t, map[string]any{
		"omni_account":    a.omni.String(),
		"wallet_address":  m.wallet.Address(),
		"identity_type":   "agent",
		"parent_omni":     m.omni.String(),
		"derivation_path": "alice/0",
		"device_pubkey":   a.device.Address(),
		"email":           addr,
	}, s.identityOf(t, st.SessionJWT), "the email session is the agent's own")

	_, _, err = s.client.MintCap(ctx, st.SessionJWT, wire.RouteCapMemoryPut,
		capRequest(a.omni, a.omni, "memory:notes", a.device))
	assert.NoError(t, err, "the email session mints the agent's self caps")

	t.Run("the session is handed out once", func(t *testing.T) {
		_, err := s.client.EmailStatus(ctx, requestID)
		r := refusalOf(t, err)
		assert.Equal(t, http.StatusNotFound, r.Status)
		assert.Equal(t, wire.ReasonRequestNotFound, r.Reason)
	})
	t.Run("the link works once", func(t *testing.T) {
		err := s.client.EmailVerify(ctx, token)
		r := refusalOf(t, err)
		assert.Equal(t, http.StatusUnauthorized, r.Status)
		assert.Equal(t, wire.ReasonEmailTokenInvalid, r.Reason)
	})
	t.Run("the composed flow through the mailbox", func(t *testing.T) {
		session, err := s.client.EmailSignIn(ctx, a.session, addr)
		require.NoError(t, err)
		assert.Equal(t, a.omni.String(), s.identityOf(t, session)["omni_account"])
	})
}

func TestEmailSignInAddressesAreTheAgentsOwn(t *testing.T) {
	s, _ := newEmailStack(t)
	ctx := t.Context()
	m1, m2 := s.newMaster(t), s.newMaster(t)
	a1 := s.pairAgent(t, m1, "alice")
	a2 := s.pairAgent(t, m2, "alice")
	a3 := s.pairAgent(t, m1, "alice") // the next generation of m1's alice

	addrs := map[string]bool{}
	for _, a := range []agentID{a1, a2, a3} {
		addrs[addressOf("alice", a)] = true
	}
	require.Len(t, addrs, 3, "one label under two masters or two generations: three addresses")

	for _, a := range []agentID{a1, a2, a3} {
		session, err := s.client.EmailSignIn(ctx, a.session, addressOf("alice", a))
		require.NoError(t, err)
		assert.Equal(t, a.omni.String(), s.identityOf(t, session)["omni_account"],
			"each address signs in as its own agent")
	}
}

func TestEmailSignInRefusals(t *testing.T) {
	s, _ := newEmailStack(t)
	ctx := t.Context()
	a := s.pairAgent(t, s.newMaster(t), "alice")

	// Control: the agent's own address is accepted.
	_, err := s.client.EmailRequest(ctx, addressOf("alice", a))
	require.NoError(t, err)

	requests := []struct {
		name   string
		body   string
		status int
		reason string
	}{
		{"email missing", `{}`, 400, wire.ReasonInvalidInput},
		{"not an address", `{"email":"alice"}`, 400, wire.ReasonInvalidInput},
		{"display name", `{"email":"Alice <` + addressOf("alice", a) + `>"}`, 400,
			wire.ReasonInvalidInput},
		{"two addresses", `{"email":"` + addressOf("alice", a) + `,x@agents.test"}`, 400,
			wire.ReasonInvalidInput},
		{"unknown field", `{"email":"` + addressOf("alice", a) + `","x":1}`, 400,
			wire.ReasonInvalidInput},
		{"not json", `email=x`, 400, wire.ReasonInvalidInput},
		{"the label without the omni part", `{"email":"alice@agents.test"}`, 403,
			wire.ReasonEmailNotBound},
		{"an address outside the agents' domain", `{"email":"alice@example.com"}`, 403,
			wire.ReasonEmailNotBound},
	}
	for _, tc := range requests {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := s.post(t, wire.RouteEmailRequest, "", []byte(tc.body))
			assert.Equal(t, tc.status, status, "answer: %s", raw)
			assert.Equal(t, tc.reason, reasonOf(t, raw))
		})
	}

	gets := []struct {
		name   string
		route  string
		status int
		reason string
	}{
		{"verify: token not hex", wire.RouteEmailVerifyPrefix + strings.Repeat("z", 64), 400,
			wire.ReasonInvalidInput},
		{"verify: token short", wire.RouteEmailVerifyPrefix + "abcd", 400,
			wire.ReasonInvalidInput},
		{"verify: unknown token", wire.RouteEmailVerifyPrefix + strings.Repeat("a", 64), 401,
			wire.ReasonEmailTokenInvalid},
		{"status: id not hex", wire.RouteEmailStatusPrefix + "request", 400,
			wire.ReasonInvalidInput},
		{"status: unknown request", wire.RouteEmailStatusPrefix + strings.Repeat("a", 32), 404,
			wire.ReasonRequestNotFound},
	}
	for _, tc := range gets {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := s.do(t, http.MethodGet, tc.route, "", nil)
			assert.Equal(t, tc.status, status, "answer: %s", raw)
			assert.Equal(t, tc.reason, reasonOf(t, raw))
		})
	}
}

func TestEmailSignInExpires(t *testing.T) {
	s, mc := newEmailStack(t)
	ctx := t.Context()
	a := s.pairAgent(t, s.newMaster(t), "alice")
	addr := addressOf("alice", a)

	requestID, err := s.client.EmailRequest(ctx, addr)
	require.NoError(t, err)
	inbox, err := mc.Client().MessagesTo(ctx, addr)
	require.NoError(t, err)
	require.Len(t, inbox, 1)
	msg, err := mc.Client().Message(ctx, inbox[0].ID)
	require.NoError(t, err)
	token, ok := agent.LinkToken(msg.Text, wire.RouteEmailVerifyPrefix)
	require.True(t, ok)

	s.clock.Advance(broker.DefaultEmailLinkTTL)

	err = s.client.EmailVerify(ctx, token)
	r := refusalOf(t, err)
	assert.Equal(t, http.StatusUnauthorized, r.Status)
	assert.Equal(t, wire.ReasonEmailTokenInvalid, r.Reason)
	st, err := s.client.EmailStatus(ctx, requestID)
	require.NoError(t, err)
	assert.Equal(t, wire.EmailExpired, st.Status)
	assert.Empty(t, st.SessionJWT)
}

func TestEmailUnavailableWithoutAMailServer(t *testing.T) {
	s := newStack(t)
	a := s.pairAgent(t, s.newMaster(t), "alice")

	routes := []struct {
		name, method, route, session, body string
	}{
		{"request", http.MethodPost, wire.RouteEmailRequest, "",
			`{"email":"` + addressOf("alice", a) + `"}`},
		{"verify", http.MethodGet, wire.RouteEmailVerifyPrefix + strings.Repeat("a", 64), "", ""},
		{"status", http.MethodGet, wire.RouteEmailStatusPrefix + strings.Repeat("a", 32), "", ""},
		{"mailbox", http.MethodGet, wire.RouteMailbox, a.session, ""},
		{"mailbox message", http.MethodGet, wire.RouteMailbox + "/" + strings.Repeat("A", 22),
			a.session, ""},
	}
	for _, tc := range routes {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := s.do(t, tc.method, tc.route, tc.session, []byte(tc.body))
			assert.Equal(t, http.StatusServiceUnavailable, status, "answer: %s", raw)
			assert.Equal(t, wire.ReasonEmailUnavailable, reasonOf(t, raw))
		})
	}
}

func TestMailboxShowsOnlyTheCallersMail(t *testing.T) {
	s, mc := newEmailStack(t)
	ctx := t.Context()
	m := s.newMaster(t)
	a := s.pairAgent(t, m, "alice")
	b := s.pairAgent(t, m, "bob")
	addrA, addrB := addressOf("alice", a), addressOf("bob", b)

	out := &mailer.Sender{Addr: mc.SMTPAddr, From: "vendor@vendor.test"}
	require.NoError(t, out.Send(ctx, addrA, "for alice", "alice's secret link"))
	require.NoError(t, out.Send(ctx, addrB, "for bob", "bob's secret link"))

	boxA, err := s.client.Mailbox(ctx, a.session)
	require.NoError(t, err)
	boxB, err := s.client.Mailbox(ctx, b.session)
	require.NoError(t, err)
	assert.Equal(t, addrA, boxA.Address)
	require.Len(t, boxA.Messages, 1, "alice sees exactly her one message")
	require.Len(t, boxB.Messages, 1, "bob sees exactly his one message")
	idA, idB := boxA.Messages[0].ID, boxB.Messages[0].ID
	assert.Equal(t, wire.MailboxMessage{
		ID: idA, From: "vendor@vendor.test", To: []string{addrA}, Subject: "for alice",
		Date: boxA.Messages[0].Date,
	}, boxA.Messages[0], "a list carries no text")
	assert.WithinDuration(t, time.Now(), time.Unix(boxA.Messages[0].Date, 0), time.Minute)

	t.Run("each reads its own message", func(t *testing.T) {
		got, err := s.client.MailboxMessage(ctx, a.session, idA)
		require.NoError(t, err)
		assert.Equal(t, "alice's secret link", strings.TrimSpace(got.Text))
		got, err = s.client.MailboxMessage(ctx, b.session, idB)
		require.NoError(t, err)
		assert.Equal(t, "bob's secret link", strings.TrimSpace(got.Text))
	})

	// Another mailbox's message, a message that does not exist: the same answer, so the
	// refusal tells nothing about which ids are live.
	for name, id := range map[string]string{
		"another agent's message": idB, "a message that does not exist": strings.Repeat("A", 22),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s.client.MailboxMessage(ctx, a.session, id)
			r := refusalOf(t, err)
			assert.Equal(t, http.StatusNotFound, r.Status)
			assert.Equal(t, wire.ReasonMessageNotFound, r.Reason)
			assert.Equal(t, "no message with this id in your mailbox", r.Message)
		})
	}

	t.Run("the catcher still holds bob's message", func(t *testing.T) {
		_, err := mc.Client().Message(ctx, idB)
		assert.NoError(t, err, "the 404 above is the mailbox's refusal, not a lost message")
	})

	refusals := []struct {
		name    string
		route   string
		session string
		status  int
		reason  string
	}{
		{"no session", wire.RouteMailbox, "", 401, wire.ReasonUnauthorized},
		{"a forged session", wire.RouteMailbox, a.session[:len(a.session)-4] + "AAAA", 401,
			wire.ReasonUnauthorized},
		{"no session on a message", wire.RouteMailbox + "/" + idA, "", 401,
			wire.ReasonUnauthorized},
		{"a master session", wire.RouteMailbox, m.session, 403,
			wire.ReasonAgentSessionRequired},
		{"an id of another form", wire.RouteMailbox + "/latest", a.session, 400,
			wire.ReasonInvalidInput},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := s.do(t, http.MethodGet, tc.route, tc.session, nil)
			assert.Equal(t, tc.status, status, "answer: %s", raw)
			assert.Equal(t, tc.reason, reasonOf(t, raw))
		})
	}
}

// failingReader is a catcher that cannot be read, to show that its failure is a 502 by
// name rather than an empty mailbox.
type failingReader struct{}

func (failingReader) MessagesTo(context.Context, string) ([]catcher.Summary, error) {
	return nil, context.DeadlineExceeded
}

func (failingReader) Message(context.Context, string) (catcher.Message, error) {
	return catcher.Message{}, context.DeadlineExceeded
}

func TestMailboxReportsAFailingCatcher(t *testing.T) {
	c := &clock{now: start}
	mem := chain.NewMemory()
	srv, err := broker.NewServer(broker.Config{
		Chain: mem, Now: c.Now, Logger: testLogger(t),
		Email: broker.EmailConfig{Mailbox: failingReader{}},
	})
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	s := &stack{srv: srv, chain: mem, client: &agent.Broker{URL: srv.URL}, clock: c}
	a := s.pairAgent(t, s.newMaster(t), "alice")

	for _, route := range []string{wire.RouteMailbox, wire.RouteMailbox + "/" +
		strings.Repeat("A", 22)} {
		status, raw := s.do(t, http.MethodGet, route, a.session, nil)
		assert.Equal(t, http.StatusBadGateway, status, route)
		assert.Equal(t, wire.ReasonMailboxReadFailed, reasonOf(t, raw), route)
	}
}
