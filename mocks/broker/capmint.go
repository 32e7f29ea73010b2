package broker

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/agentkeys/harness/mocks/chain"
	"github.com/agentkeys/harness/mocks/reply"
	"github.com/agentkeys/harness/protocol/cap"
	"github.com/agentkeys/harness/protocol/evm"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/wire"
)

// The window a cap proof of possession's client_ts must fall in, around the broker's
// clock, in seconds.
const (
	popMaxAhead = 60
	popMaxAge   = 300
)

// capInput is a cap-mint request that passed step 1: every field parsed and canonical.
type capInput struct {
	operator      omni.Omni
	actor         omni.Omni
	service       string // trimmed and lowercased
	deviceKeyHash string // 0x + 64 lowercase hex
	ttl           int64
	pop           *capPop
}

// capPop is a proof of possession given in full; a partial one is ignored, as upstream.
type capPop struct {
	sig   string
	nonce string
	ts    int64
}

// parseCapRequest is step 1 of the mint checks: shapes only, nothing about who asks.
func parseCapRequest(req wire.CapRequest) (capInput, error) {
	var in capInput
	var err error
	if in.operator, err = omni.ParsePrefixed(req.Operator); err != nil {
		return capInput{}, fmt.Errorf("operator_omni: %w", err)
	}
	if in.actor, err = omni.ParsePrefixed(req.Actor); err != nil {
		return capInput{}, fmt.Errorf("actor_omni: %w", err)
	}
	// A device key hash has the shape of a prefixed omni: 0x + 64 lowercase hex.
	if _, err = omni.ParsePrefixed(req.DeviceKeyHash); err != nil {
		return capInput{}, fmt.Errorf("device_key_hash: want 0x + 64 lowercase hex: %w", err)
	}
	in.deviceKeyHash = req.DeviceKeyHash
	if err = cap.ValidateService(req.Service); err != nil {
		return capInput{}, fmt.Errorf("service: %w", err)
	}
	// The pop hashes the trimmed, lowercased service; the payload carries the same text
	// so that the cap names exactly what the device signed. Trimming can empty a name,
	// so that form is checked too, as a worker checks it.
	in.service = strings.ToLower(strings.TrimSpace(req.Service))
	if err = cap.ValidateService(in.service); err != nil {
		return capInput{}, fmt.Errorf("service as signed: %w", err)
	}

	in.ttl = wire.CapTTLDefault
	if req.TTLSeconds != nil {
		in.ttl = min(max(*req.TTLSeconds, wire.CapTTLMin), wire.CapTTLMax)
	}
	if req.ClientSig != nil && req.ClientNonce != nil && req.ClientTS != nil {
		in.pop = &capPop{sig: *req.ClientSig, nonce: *req.ClientNonce, ts: *req.ClientTS}
	}
	return in, nil
}

// deviceOnly hides scope from chain.Check. The contract checks the device in step 5 but
// scope only in step 7, after the proof of possession, so a request with a bad pop for
// an ungranted service must be refused as cap_pop_invalid, not service_not_in_scope.
type deviceOnly struct{ chain.Registry }

func (deviceOnly) InScope(omni.Omni, string) bool { return true }

// deviceReasons maps the chain failures of step 5 to the broker's reasons.
var deviceReasons = map[chain.Failure]string{
	chain.DeviceUnknown:   wire.ReasonDeviceNotActive,
	chain.DeviceRevoked:   wire.ReasonDeviceRevoked,
	chain.BindingMismatch: wire.ReasonDeviceBindingMismatch,
	chain.RoleMissing:     wire.ReasonDeviceRoleMissing,
}

// capMint serves one cap-mint route. The checks run in the contract's order; each
// refusal is the first failing step's.
func (b *Broker) capMint(route wire.CapRoute) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req wire.CapRequest
		if !b.decode(w, r, &req) {
			return
		}
		in, err := parseCapRequest(req)
		if err != nil {
			b.invalid(w, r, err.Error())
			return
		}

		s, ok := b.requireSession(w, r)
		if !ok {
			return
		}

		if s.omni != in.operator && !b.faults.BrokerSkipsOperatorCheck {
			b.refuse(w, r, http.StatusForbidden, wire.ReasonOperatorMismatch,
				"operator_omni is not the session's omni")
			return
		}

		credStore := route.Op == cap.OpStore && route.DataClass == cap.ClassCredentials
		if credStore && in.actor != s.omni {
			b.refuse(w, r, http.StatusForbidden, wire.ReasonCredStoreNotMasterSelf,
				"a credentials store cap must name the session's omni as actor")
			return
		}

		err = chain.Check(deviceOnly{b.chain}, in.deviceKeyHash, in.operator, in.actor,
			in.service, nil)
		if chain.FailureOf(err) == chain.BindingMismatch && b.faults.BrokerSkipsDeviceBinding {
			err = nil
		}
		if err != nil {
			reason, known := deviceReasons[chain.FailureOf(err)]
			if !known {
				b.internal(w, r, fmt.Errorf("device check: %w", err))
				return
			}
			b.refuse(w, r, http.StatusForbidden, reason, err.Error())
			return
		}

		if in.pop != nil {
			if err := b.checkCapPop(in, route); err != nil {
				b.refuse(w, r, http.StatusForbidden, wire.ReasonCapPopInvalid, err.Error())
				return
			}
		}

		if in.operator != in.actor && !b.chain.InScope(in.actor, in.service) {
			b.refuse(w, r, http.StatusForbidden, wire.ReasonServiceNotInScope,
				fmt.Sprintf("service %q is not in the actor's scope", in.service))
			return
		}

		token, err := b.mint(in, route)
		if err != nil {
			b.internal(w, r, err)
			return
		}
		b.log.Info("broker cap minted", "route", route.Path, "operator", in.operator,
			"actor", in.actor, "service", in.service, "expires_at", token.Payload.ExpiresAt)
		reply.JSON(w, http.StatusOK, token)
	}
}

// checkCapPop is step 6: a fresh client_ts, and a client_sig whose signer's device key
// hash is the request's.
func (b *Broker) checkCapPop(in capInput, route wire.CapRoute) error {
	now := b.now().Unix()
	switch {
	case in.pop.ts > now+popMaxAhead:
		return fmt.Errorf("client_ts %d is more than %d s ahead", in.pop.ts, popMaxAhead)
	case in.pop.ts < now-popMaxAge:
		return fmt.Errorf("client_ts %d is more than %d s old", in.pop.ts, popMaxAge)
	}

	preimage := evm.CapPop{
		Operator:    in.operator,
		Actor:       in.actor,
		Service:     in.service,
		Op:          route.Op,
		DataClass:   route.DataClass,
		ClientNonce: in.pop.nonce,
		ClientTS:    in.pop.ts,
	}.Preimage()
	signer, err := evm.RecoverPersonal(preimage, in.pop.sig)
	if err != nil {
		return fmt.Errorf("client_sig: %w", err)
	}
	hash, err := evm.DeviceKeyHash(signer)
	if err != nil {
		return fmt.Errorf("client_sig: %w", err)
	}
	if hash != in.deviceKeyHash {
		return errors.New("client_sig: signed by another device than device_key_hash")
	}
	return nil
}

// mint builds and signs the cap, echoing a proof of possession that was checked.
func (b *Broker) mint(in capInput, route wire.CapRoute) (cap.Token, error) {
	now := b.now().Unix() - b.chain.TakeCapBackdate(in.operator)
	p := cap.Payload{
		Operator:      in.operator.Prefixed(),
		Actor:         in.actor.Prefixed(),
		Service:       in.service,
		Op:            route.Op,
		DataClass:     route.DataClass,
		DeviceKeyHash: in.deviceKeyHash,
		K3Epoch:       b.chain.K3Epoch(),
		IssuedAt:      now,
		ExpiresAt:     now + in.ttl,
		Nonce:         cap.NewNonce(),
	}
	sig, err := cap.Sign(b.capKey, p)
	if err != nil {
		return cap.Token{}, fmt.Errorf("mint cap: %w", err)
	}

	t := cap.Token{Payload: p, BrokerSig: sig}
	if in.pop != nil {
		ts := in.pop.ts
		t.ClientSig, t.ClientNonce, t.ClientTS = in.pop.sig, in.pop.nonce, &ts
	}
	return t, nil
}
