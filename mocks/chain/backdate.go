package chain

import (
	"github.com/agentkeys/harness/protocol/omni"
)

// Backdating stands in for the passage of time for one identity. A cap lives at least
// 60 s and an OIDC JWT 300 s, too long for a test to wait out; so a test asks the broker
// to date the next few caps or JWTs of one omni an hour back. They are signed as usual
// and simply expired on arrival, and every other identity on the shared stack is
// untouched.

// Backdate kinds.
const (
	BackdateCap  = "cap"
	BackdateOIDC = "oidc"
)

type backdate struct {
	seconds int64
	left    map[string]int
}

// Backdate dates the next caps and OIDC JWTs minted by o's sessions seconds in the past.
func (m *Memory) Backdate(o omni.Omni, seconds int64, caps, jwts int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.backdates[o] = backdate{seconds: seconds,
		left: map[string]int{BackdateCap: caps, BackdateOIDC: jwts}}
}

// TakeBackdate returns how many seconds to date back the next mint of kind for o, and
// uses one up. It returns 0 when none is pending.
func (m *Memory) TakeBackdate(o omni.Omni, kind string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.backdates[o]
	if !ok || b.left[kind] <= 0 {
		return 0
	}
	b.left[kind]--
	return b.seconds
}
