package vendor_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/fixtures/mailcatcher"
	"github.com/agentkeys/harness/mocks/vendor"
	"github.com/agentkeys/harness/protocol/refusal"
	"github.com/agentkeys/harness/protocol/wire"
)

// clock is a settable vendor clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fixture is a vendor that mails over real SMTP to a real mailpit, and the harness-side
// view of that catcher, which stands in for the mailbox of whoever owns an address.
type fixture struct {
	srv    *vendor.Server
	mail   *mailcatcher.Server
	client *agent.Vendor
	clock  *clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	mc := mailcatcher.StartTB(t)
	c := &clock{now: time.Now()}
	srv, err := vendor.NewServer(vendor.Config{SMTPAddr: mc.SMTPAddr, Now: c.Now})
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, mail: mc, client: &agent.Vendor{URL: srv.URL}, clock: c}
}

// latestToken reads the newest verification link mailed to email, as the owner of that
// mailbox would, and checks how many the mailbox holds by then.
func (f *fixture) latestToken(t *testing.T, email string, wantMails int) string {
	t.Helper()
	inbox, err := f.mail.Client().MessagesTo(t.Context(), email)
	require.NoError(t, err)
	require.Len(t, inbox, wantMails)
	msg, err := f.mail.Client().Message(t.Context(), inbox[0].ID)
	require.NoError(t, err)
	assert.Equal(t, vendor.DefaultFrom, msg.From.Address)
	assert.Contains(t, msg.Text, f.srv.URL+wire.RouteVendorVerifyPrefix)
	assert.NotContains(t, msg.Text, vendor.KeyPrefix, "the mail never carries a key")
	token, ok := agent.LinkToken(msg.Text, wire.RouteVendorVerifyPrefix)
	require.True(t, ok, "no link in %q", msg.Text)
	return token
}

// signUp signs email up and confirms through its mailbox; it returns the new key.
func (f *fixture) signUp(t *testing.T, email string, wantMails int) string {
	t.Helper()
	require.NoError(t, f.client.Signup(t.Context(), email))
	ans, err := f.client.Verify(t.Context(), f.latestToken(t, email, wantMails))
	require.NoError(t, err)
	assert.Equal(t, email, ans.Email)
	assert.True(t, strings.HasPrefix(ans.APIKey, vendor.KeyPrefix), "key %q", ans.APIKey)
	return ans.APIKey
}

// refusalOf extracts the typed refusal from a client error.
func refusalOf(t *testing.T, err error) *refusal.Refusal {
	t.Helper()
	require.Error(t, err)
	var r *refusal.Refusal
	require.ErrorAs(t, err, &r)
	return r
}

func assertInvalidKey(t *testing.T, f *fixture, key, why string) {
	t.Helper()
	_, err := f.client.Whoami(t.Context(), key)
	r := refusalOf(t, err)
	assert.Equal(t, http.StatusUnauthorized, r.Status, why)
	assert.Equal(t, wire.ReasonInvalidAPIKey, r.Reason, why)
}

func TestSignupVerifyWhoami(t *testing.T) {
	f := newFixture(t)
	const email = "alice-0123abcd@agents.test"

	key := f.signUp(t, email, 1)

	got, err := f.client.Whoami(t.Context(), key)
	require.NoError(t, err)
	assert.Equal(t, email, got)
	assertInvalidKey(t, f, key+"x", "a key that differs in one character")
}

func TestConfirmedSignupRotatesTheKey(t *testing.T) {
	f := newFixture(t)
	const alice, bob = "alice-0123abcd@agents.test", "bob-4567cdef@agents.test"
	first := f.signUp(t, alice, 1)
	bobs := f.signUp(t, bob, 1)

	second := f.signUp(t, alice, 2)

	assert.NotEqual(t, first, second)
	got, err := f.client.Whoami(t.Context(), second)
	require.NoError(t, err, "control: the new key works")
	assert.Equal(t, alice, got)
	assertInvalidKey(t, f, first, "the first key is revoked")
	got, err = f.client.Whoami(t.Context(), bobs)
	require.NoError(t, err, "another email's key is untouched")
	assert.Equal(t, bob, got)
}

func TestUnconfirmedSignupChangesNothing(t *testing.T) {
	f := newFixture(t)
	const alice = "alice-0123abcd@agents.test"
	key := f.signUp(t, alice, 1)

	// Someone else signs up with alice's address: the link lands in her mailbox, and
	// without it nothing happens.
	require.NoError(t, f.client.Signup(t.Context(), alice))
	_ = f.latestToken(t, alice, 2)

	got, err := f.client.Whoami(t.Context(), key)
	require.NoError(t, err, "alice's key keeps working")
	assert.Equal(t, alice, got)
}

func TestVerificationLinkWorksOnceAndExpires(t *testing.T) {
	f := newFixture(t)
	const alice = "alice-0123abcd@agents.test"

	require.NoError(t, f.client.Signup(t.Context(), alice))
	token := f.latestToken(t, alice, 1)
	require.NoError(t, f.client.Signup(t.Context(), alice))
	stale := f.latestToken(t, alice, 2)

	_, err := f.client.Verify(t.Context(), token)
	require.NoError(t, err, "control: a fresh link works")
	_, err = f.client.Verify(t.Context(), token)
	r := refusalOf(t, err)
	assert.Equal(t, http.StatusUnauthorized, r.Status, "a second visit")
	assert.Equal(t, wire.ReasonVerificationInvalid, r.Reason)

	f.clock.Advance(vendor.DefaultLinkTTL)
	_, err = f.client.Verify(t.Context(), stale)
	r = refusalOf(t, err)
	assert.Equal(t, http.StatusUnauthorized, r.Status, "an expired link")
	assert.Equal(t, wire.ReasonVerificationInvalid, r.Reason)
}

func TestBadInput(t *testing.T) {
	f := newFixture(t)

	tests := []struct {
		name, method, route, auth, body string
		status                          int
		reason                          string
	}{
		{"signup: email missing", "POST", wire.RouteVendorSignup, "", `{}`, 400,
			wire.ReasonInvalidInput},
		{"signup: not an address", "POST", wire.RouteVendorSignup, "", `{"email":"x"}`, 400,
			wire.ReasonInvalidInput},
		{"signup: header injection", "POST", wire.RouteVendorSignup, "",
			`{"email":"a@agents.test\r\nBcc: b@agents.test"}`, 400, wire.ReasonInvalidInput},
		{"signup: unknown field", "POST", wire.RouteVendorSignup, "",
			`{"email":"a@agents.test","plan":"free"}`, 400, wire.ReasonInvalidInput},
		{"signup: not json", "POST", wire.RouteVendorSignup, "", `email=a@agents.test`, 400,
			wire.ReasonInvalidInput},
		{"verify: token not hex", "GET", wire.RouteVendorVerifyPrefix + "token", "", "", 400,
			wire.ReasonInvalidInput},
		{"verify: unknown token", "GET",
			wire.RouteVendorVerifyPrefix + strings.Repeat("0", 64), "", "", 401,
			wire.ReasonVerificationInvalid},
		{"whoami: no key", "GET", wire.RouteVendorWhoami, "", "", 401,
			wire.ReasonInvalidAPIKey},
		{"whoami: basic auth", "GET", wire.RouteVendorWhoami, "Basic YTpi", "", 401,
			wire.ReasonInvalidAPIKey},
		{"whoami: unknown key", "GET", wire.RouteVendorWhoami,
			"Bearer " + vendor.KeyPrefix + "nothing", "", 401, wire.ReasonInvalidAPIKey},
		{"unknown route", "GET", "/v1/models", "", "", 404, wire.ReasonNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, reason := do(t, tc.method, f.srv.URL+tc.route, tc.auth, tc.body)
			assert.Equal(t, tc.status, status)
			assert.Equal(t, tc.reason, reason)
		})
	}

	// Control: the same routes answer a good request.
	key := f.signUp(t, "a@agents.test", 1)
	status, _ := do(t, "GET", f.srv.URL+wire.RouteVendorWhoami, "Bearer "+key, "")
	assert.Equal(t, http.StatusOK, status)
}

func TestSignupUnavailableWithoutAMailServer(t *testing.T) {
	srv, err := vendor.NewServer(vendor.Config{})
	require.NoError(t, err)
	t.Cleanup(srv.Close)

	status, reason := do(t, "POST", srv.URL+wire.RouteVendorSignup, "",
		`{"email":"a@agents.test"}`)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, wire.ReasonEmailUnavailable, reason)

	status, reason = do(t, "GET", srv.URL+wire.RouteVendorWhoami, "Bearer x", "")
	assert.Equal(t, http.StatusUnauthorized, status, "the rest of the vendor still answers")
	assert.Equal(t, wire.ReasonInvalidAPIKey, reason)
}

// do sends one raw request and returns the status and the reason of the answer, or ""
// for a success.
func do(t *testing.T, method, url, auth, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url,
		bytes.NewReader([]byte(body)))
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode < 300 {
		return resp.StatusCode, ""
	}
	var b refusal.Body
	require.NoError(t, json.Unmarshal(raw, &b), "answer: %s", raw)
	return resp.StatusCode, b.Reason
}
