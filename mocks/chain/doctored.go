package chain

import (
	"github.com/agentkeys/harness/protocol/omni"
)

// Doctored mints stand in for what an honest broker never hands out, so that a test can
// present it and see it refused for the right reason. A test asks the broker to mint the
// next few caps or OIDC JWTs of one identity with one thing wrong on purpose:
//
//   - dated back (caps and JWTs): a cap lives at least 60 s and a JWT 300 s, too long for
//     a test to wait out, so these arrive expired (RouteBackdate);
//   - misissued (JWTs): addressed to the broker instead of STS, or without the
//     agentkeys_actor_omni claim and the AWS tags claim (RouteMisissue).
//
// Each is signed with the broker's own key as usual, so a verifier that refuses one has
// checked the very thing that is wrong, not only the signature. Every other identity on
// the shared stack is untouched.

// OIDCFlaw is what the broker gets wrong in one OIDC JWT.
type OIDCFlaw string

// The OIDC flaws. A JWT carries at most one.
const (
	// OIDCSound is a JWT with nothing wrong.
	OIDCSound OIDCFlaw = ""
	// OIDCBackdated is dated back, so it is expired on arrival.
	OIDCBackdated OIDCFlaw = "backdated"
	// OIDCWrongAudience has aud agentkeys:broker, the session JWT's, not sts.amazonaws.com.
	OIDCWrongAudience OIDCFlaw = "wrong_audience"
	// OIDCUntagged has neither the agentkeys_actor_omni claim nor the AWS tags claim.
	OIDCUntagged OIDCFlaw = "untagged"
)

// oidcOrder is the order in which the broker spends one identity's pending flaws, one a
// JWT. It is fixed so that a test knows which JWT is which, whatever order it asked in.
var oidcOrder = []OIDCFlaw{OIDCBackdated, OIDCWrongAudience, OIDCUntagged}

// doctored is what is pending for one identity.
type doctored struct {
	seconds int64 // how far back a backdated mint is dated
	caps    int   // backdated caps left
	jwts    map[OIDCFlaw]int
}

// doctoredFor returns o's pending mints, made on first use. m.mu must be held.
func (m *Memory) doctoredFor(o omni.Omni) *doctored {
	d, ok := m.doctored[o]
	if !ok {
		d = &doctored{jwts: make(map[OIDCFlaw]int)}
		m.doctored[o] = d
	}
	return d
}

// Backdate dates the next caps and OIDC JWTs minted by o's sessions seconds in the past.
// It replaces what an earlier Backdate asked for o and keeps any Misissue.
func (m *Memory) Backdate(o omni.Omni, seconds int64, caps, jwts int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.doctoredFor(o)
	d.seconds, d.caps, d.jwts[OIDCBackdated] = seconds, caps, jwts
}

// Misissue has the broker mint o's next OIDC JWTs, after any backdated ones, with the
// wrong audience (wrongAudience of them) and then untagged (untagged of them). It
// replaces what an earlier Misissue asked for o and keeps any Backdate.
func (m *Memory) Misissue(o omni.Omni, wrongAudience, untagged int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.doctoredFor(o)
	d.jwts[OIDCWrongAudience], d.jwts[OIDCUntagged] = wrongAudience, untagged
}

// TakeCapBackdate returns how many seconds to date back the next cap minted for o, and
// uses one up. It returns 0 when none is pending.
func (m *Memory) TakeCapBackdate(o omni.Omni) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.doctored[o]
	if !ok || d.caps <= 0 {
		return 0
	}
	d.caps--
	return d.seconds
}

// TakeOIDC returns what to get wrong in the next OIDC JWT minted for o, and uses it up:
// the flaw, and for OIDCBackdated how many seconds back. It returns OIDCSound when
// nothing is pending.
func (m *Memory) TakeOIDC(o omni.Omni) (OIDCFlaw, int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.doctored[o]
	if !ok {
		return OIDCSound, 0
	}
	for _, f := range oidcOrder {
		if d.jwts[f] <= 0 {
			continue
		}
		d.jwts[f]--
		if f == OIDCBackdated {
			return f, d.seconds
		}
		return f, 0
	}
	return OIDCSound, 0
}
