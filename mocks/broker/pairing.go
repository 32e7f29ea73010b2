package broker

import (
	"cmp"
	"crypto/rand"
	"fmt"
	"net/http"
	"slices"

	"github.com/agentkeys/harness/mocks/reply"
	"github.com/agentkeys/harness/protocol/cap"
	"github.com/agentkeys/harness/protocol/evm"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/wire"
)

// pairing is one agent's pairing request, from the code it showed to the ack of the
// master that claimed it.
type pairing struct {
	requestID     string
	code          string
	devicePubkey  string // lowercase 0x address
	deviceKeyHash string

	// Set by the claim.
	claimed        bool
	claimSeq       uint64
	master         omni.Omni
	masterWallet   string
	child          omni.Omni
	label          string
	derivationPath string
	scope          []string
	email          string // the agent's own address, wire.AgentEmail

	acked bool
}

// agentSession is the session of the agent a claimed pairing made, whichever way the
// agent signs in: by polling its pairing or by email.
func agentSession(p pairing) session {
	return session{
		omni:           p.child,
		wallet:         p.masterWallet,
		agent:          true,
		parent:         p.master,
		derivationPath: p.derivationPath,
		devicePubkey:   p.devicePubkey,
		email:          p.email,
	}
}

// checkPop verifies a pairing pop_sig: the device key's EIP-191 signature over the
// pairing preimage of its own device key hash. It returns the device key hash.
func checkPop(address, popSig string) (string, error) {
	hash, err := evm.DeviceKeyHash(address)
	if err != nil {
		return "", err
	}
	if err := evm.VerifyPersonal(evm.PairingPreimage(hash), popSig, address); err != nil {
		return "", fmt.Errorf("pop_sig: %w", err)
	}
	return hash, nil
}

// devicePop reads the device_pubkey and pop_sig shared by the pairing request and poll.
// A field that is missing or not an address is invalid input; a signature that does not
// prove the key is a 401.
func (b *Broker) devicePop(w http.ResponseWriter, r *http.Request, pubkey,
	popSig string) (address, hash string, ok bool) {
	address, err := evm.NormalizeAddress(pubkey)
	if err != nil {
		b.invalid(w, r, "device_pubkey: "+err.Error())
		return "", "", false
	}
	if popSig == "" {
		b.invalid(w, r, "pop_sig is required")
		return "", "", false
	}
	hash, err = checkPop(address, popSig)
	if err != nil {
		b.refuse(w, r, http.StatusUnauthorized, wire.ReasonPopSigInvalid, err.Error())
		return "", "", false
	}
	return address, hash, true
}

func (b *Broker) pairingRequest(w http.ResponseWriter, r *http.Request) {
	var req wire.PairingRequest
	if !b.decode(w, r, &req) {
		return
	}
	address, hash, ok := b.devicePop(w, r, req.DevicePubkey, req.PopSig)
	if !ok {
		return
	}

	p := &pairing{requestID: randomHex(16), devicePubkey: address, deviceKeyHash: hash}
	b.mu.Lock()
	for p.code == "" || b.codes[p.code] != "" {
		p.code = pairingCode()
	}
	b.codes[p.code] = p.requestID
	b.pairings[p.requestID] = p
	b.mu.Unlock()

	b.log.Info("broker pairing requested", "request_id", p.requestID, "device", address)
	reply.JSON(w, http.StatusOK, wire.PairingRequestAnswer{
		RequestID: p.requestID, PairingCode: p.code, DeviceKeyHash: hash,
	})
}

// pairingCode is eight base32 characters in two groups, short enough to read aloud.
func pairingCode() string {
	t := rand.Text()
	return t[:4] + "-" + t[4:8]
}

func (b *Broker) pairingClaim(w http.ResponseWriter, r *http.Request) {
	var req wire.PairingClaimRequest
	if !b.decode(w, r, &req) {
		return
	}
	if req.PairingCode == "" {
		b.invalid(w, r, "pairing_code is required")
		return
	}
	if err := omni.ValidateLabel(req.Label); err != nil {
		b.invalid(w, r, "label: "+err.Error())
		return
	}
	for _, svc := range req.RequestedScope {
		if err := cap.ValidateService(svc); err != nil {
			b.invalid(w, r, "requested_scope: "+err.Error())
			return
		}
	}
	master, ok := b.requireMaster(w, r)
	if !ok {
		return
	}

	// The code is deleted by the claim that finds it, so a second claim cannot.
	b.mu.Lock()
	p := b.pairings[b.codes[req.PairingCode]]
	delete(b.codes, req.PairingCode)
	var child omni.Omni
	var err error
	if p != nil {
		key := labelKey{master: master.omni, label: req.Label}
		gen := b.generations[key]
		child, err = omni.Agent(master.omni, req.Label, gen)
		if err == nil {
			b.generations[key]++
			b.claimCount++
			p.claimed = true
			p.claimSeq = b.claimCount
			p.master = master.omni
			p.masterWallet = master.wallet
			p.child = child
			p.label = req.Label
			p.derivationPath = omni.DerivationPath(req.Label, gen)
			p.scope = slices.Clone(req.RequestedScope)
			p.email = wire.AgentEmail(req.Label, child)
			b.bindEmail(p)
		}
	}
	b.mu.Unlock()
	if p == nil {
		b.refuse(w, r, http.StatusUnauthorized, wire.ReasonPairingCodeInvalid,
			"pairing code unknown or already claimed")
		return
	}
	if err != nil { // not reached: the label was validated above
		b.invalid(w, r, "derive child omni: "+err.Error())
		return
	}

	b.log.Info("broker pairing claimed", "request_id", p.requestID, "master", master.omni,
		"child", child, "derivation_path", p.derivationPath, "email", p.email)
	reply.JSON(w, http.StatusOK, wire.PairingClaimAnswer{
		ChildOmni:    child.Prefixed(),
		OperatorOmni: master.omni.Prefixed(),
		RequestID:    p.requestID,
		DevicePubkey: p.devicePubkey,
		Email:        p.email,
	})
}

func (b *Broker) pairingPoll(w http.ResponseWriter, r *http.Request) {
	var req wire.PairingPollRequest
	if !b.decode(w, r, &req) {
		return
	}
	if req.RequestID == "" {
		b.invalid(w, r, "request_id is required")
		return
	}
	address, _, ok := b.devicePop(w, r, req.DevicePubkey, req.PopSig)
	if !ok {
		return
	}

	b.mu.Lock()
	var snapshot pairing
	p := b.pairings[req.RequestID]
	if p != nil {
		snapshot = *p
	}
	b.mu.Unlock()
	if p == nil {
		b.refuse(w, r, http.StatusNotFound, wire.ReasonRequestNotFound,
			"pairing request unknown")
		return
	}
	// A valid pop for another key proves nothing about this request's device.
	if snapshot.devicePubkey != address {
		b.refuse(w, r, http.StatusUnauthorized, wire.ReasonPopSigInvalid,
			"pop_sig is from another device than the pairing request's")
		return
	}
	if !snapshot.claimed {
		reply.JSON(w, http.StatusOK, wire.PairingPollAnswer{Status: wire.PairingPending})
		return
	}

	token, err := b.issueSession(r, agentSession(snapshot))
	if err != nil {
		b.internal(w, r, err)
		return
	}
	reply.JSON(w, http.StatusOK, wire.PairingPollAnswer{
		Status:         wire.PairingClaimed,
		SessionJWT:     token,
		ChildOmni:      snapshot.child.Prefixed(),
		DerivationPath: snapshot.derivationPath,
		Email:          snapshot.email,
	})
}

func (b *Broker) pendingBindings(w http.ResponseWriter, r *http.Request) {
	master, ok := b.requireMaster(w, r)
	if !ok {
		return
	}

	b.mu.Lock()
	var mine []*pairing
	for _, p := range b.pairings {
		if p.claimed && !p.acked && p.master == master.omni {
			mine = append(mine, p)
		}
	}
	slices.SortFunc(mine, func(x, y *pairing) int { return cmp.Compare(x.claimSeq, y.claimSeq) })
	list := make([]wire.PendingBinding, 0, len(mine))
	for _, p := range mine {
		list = append(list, wire.PendingBinding{
			RequestID:      p.requestID,
			ChildOmni:      p.child.Prefixed(),
			OperatorOmni:   p.master.Prefixed(),
			DevicePubkey:   p.devicePubkey,
			DeviceKeyHash:  p.deviceKeyHash,
			Label:          p.label,
			DerivationPath: p.derivationPath,
			RequestedScope: slices.Clone(p.scope),
			Email:          p.email,
		})
	}
	b.mu.Unlock()

	reply.JSON(w, http.StatusOK, wire.PendingBindingsAnswer{Bindings: list})
}

func (b *Broker) pendingAck(w http.ResponseWriter, r *http.Request) {
	var req wire.AckRequest
	if !b.decode(w, r, &req) {
		return
	}
	if req.RequestID == "" {
		b.invalid(w, r, "request_id is required")
		return
	}
	master, ok := b.requireMaster(w, r)
	if !ok {
		return
	}

	// Another master's binding answers exactly as an unknown one, so that request ids
	// cannot be probed across masters.
	b.mu.Lock()
	p := b.pairings[req.RequestID]
	found := p != nil && p.claimed && !p.acked && p.master == master.omni
	if found {
		p.acked = true
	}
	b.mu.Unlock()
	if !found {
		b.refuse(w, r, http.StatusNotFound, wire.ReasonRequestNotFound,
			"no pending binding with this request_id")
		return
	}

	b.log.Info("broker binding acked", "request_id", req.RequestID)
	reply.JSON(w, http.StatusOK, wire.AckAnswer{Acked: true})
}
