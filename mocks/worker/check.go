package worker

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/agentkeys/harness/mocks/chain"
	"github.com/agentkeys/harness/protocol/cap"
	"github.com/agentkeys/harness/protocol/evm"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/wire"
)

// maxIssuedAhead is how far in the future issued_at may lie: room for clock skew between
// broker and worker, no more.
const maxIssuedAhead = 60

// Checked is a cap that passed every shared check, with its omnis parsed. Everything a
// route needs to build an S3 key comes from here.
type Checked struct {
	Token    cap.Token
	Operator omni.Omni
	Actor    omni.Omni
	// Service is the signed service name, already validated for use in a key.
	Service string
}

// checkCap runs the cap checks in the contract's order and stops at the first failure,
// so that a cap wrong in several ways is always refused for the same, first reason.
// Identities go into the audit entry only once broker_sig has verified.
func (c *Core) checkCap(raw json.RawMessage, rt Route, entry *wire.AuditEntry) (Checked,
	*Refusal) {
	tok, err := cap.Decode(raw)
	if err != nil {
		return Checked{}, Refuse(http.StatusBadRequest, wire.ReasonInvalidInput, err.Error())
	}
	if err := cap.Verify(c.cfg.BrokerKey, tok); err != nil &&
		!c.cfg.Faults.WorkerSkipsSignature {
		return Checked{}, Refuse(http.StatusForbidden, wire.ReasonBrokerSigInvalid,
			err.Error())
	}
	p := tok.Payload
	entry.Operator, entry.Actor = omni.Normalize(p.Operator), omni.Normalize(p.Actor)
	entry.Service = p.Service

	checked, err := parsePayload(tok)
	if err != nil {
		// Only a broker that signs garbage gets here; the key must still never be built
		// from a segment that is not canonical.
		return Checked{}, Refuse(http.StatusBadRequest, wire.ReasonInvalidInput, err.Error())
	}

	// A present client_sig is always checked, even though the contract lets a cap come
	// without one: a signature that is there and wrong is a forgery attempt.
	if tok.ClientSig != "" {
		if err := checkPop(checked); err != nil {
			return Checked{}, Refuse(http.StatusForbidden, wire.ReasonCapPopInvalid,
				err.Error())
		}
	}
	if p.Op != rt.Op {
		return Checked{}, Refuse(http.StatusForbidden, wire.ReasonCapOpMismatch,
			fmt.Sprintf("cap op is %q, this route needs %q", p.Op, rt.Op))
	}
	if p.DataClass != rt.DataClass {
		return Checked{}, Refuse(http.StatusForbidden, wire.ReasonCapDataClassMismatch,
			fmt.Sprintf("cap data class is %q, this worker serves %q", p.DataClass,
				rt.DataClass))
	}

	now := c.cfg.Now().Unix()
	if p.ExpiresAt <= now {
		return Checked{}, Refuse(http.StatusForbidden, wire.ReasonCapFreshnessFailed,
			fmt.Sprintf("cap expired at %d, now is %d", p.ExpiresAt, now))
	}
	if p.IssuedAt > now+maxIssuedAhead {
		return Checked{}, Refuse(http.StatusForbidden, wire.ReasonCapFreshnessFailed,
			fmt.Sprintf("cap issued at %d, more than %d s after now (%d)", p.IssuedAt,
				maxIssuedAhead, now))
	}

	epoch := p.K3Epoch
	err = chain.Check(c.cfg.Chain, p.DeviceKeyHash, checked.Operator, checked.Actor,
		p.Service, &epoch)
	if err != nil {
		return Checked{}, Refuse(http.StatusForbidden, rt.ChainReason(chain.FailureOf(err)),
			err.Error())
	}
	return checked, nil
}

// parsePayload checks that the signed payload is in the broker's canonical form: omnis
// and the device key hash "0x" + 64 lowercase hex, the service lowercased and safe for
// an S3 key.
func parsePayload(tok cap.Token) (Checked, error) {
	p := tok.Payload
	operator, err := omni.ParsePrefixed(p.Operator)
	if err != nil {
		return Checked{}, fmt.Errorf("signed operator_omni: %w", err)
	}
	actor, err := omni.ParsePrefixed(p.Actor)
	if err != nil {
		return Checked{}, fmt.Errorf("signed actor_omni: %w", err)
	}
	if rest, ok := strings.CutPrefix(p.DeviceKeyHash, "0x"); !ok || len(rest) != 64 ||
		!omni.IsLowerHex(rest) {
		return Checked{}, errors.New("signed device_key_hash: want 0x and 64 lowercase hex")
	}
	if err := cap.ValidateService(p.Service); err != nil {
		return Checked{}, fmt.Errorf("signed service: %w", err)
	}
	if p.Service != strings.ToLower(strings.TrimSpace(p.Service)) {
		return Checked{}, fmt.Errorf("signed service %q is not trimmed and lowercased",
			p.Service)
	}
	return Checked{Token: tok, Operator: operator, Actor: actor, Service: p.Service}, nil
}

// checkPop recovers the signer of the cap proof of possession over the echoed nonce and
// timestamp and requires its device key hash to be the one the broker signed into the
// payload: a cap lifted from another device does not carry that device's signature.
func checkPop(c Checked) error {
	tok := c.Token
	if tok.ClientNonce == "" || tok.ClientTS == nil {
		return errors.New("client_sig present without client_nonce and client_ts")
	}
	p := tok.Payload
	pre := evm.CapPop{
		Operator:    c.Operator,
		Actor:       c.Actor,
		Service:     p.Service,
		Op:          p.Op,
		DataClass:   p.DataClass,
		ClientNonce: tok.ClientNonce,
		ClientTS:    *tok.ClientTS,
	}.Preimage()
	addr, err := evm.RecoverPersonal(pre, tok.ClientSig)
	if err != nil {
		return fmt.Errorf("client_sig: %w", err)
	}
	got, err := evm.DeviceKeyHash(addr)
	if err != nil {
		return fmt.Errorf("client_sig signer: %w", err)
	}
	if got != strings.ToLower(p.DeviceKeyHash) {
		return fmt.Errorf("client_sig signed by device %s, the cap names %s", got,
			p.DeviceKeyHash)
	}
	return nil
}
