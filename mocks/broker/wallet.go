package broker

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/agentkeys/harness/mocks/reply"
	"github.com/agentkeys/harness/protocol/evm"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/wire"
)

// siweStatement is the human-readable line of the sign-in text.
const siweStatement = "Sign in to the agentkeys broker as the master of your agents."

// signIn is a started wallet sign-in waiting for its signature.
type signIn struct {
	address string // lowercase 0x address
	message string
}

func (b *Broker) walletStart(w http.ResponseWriter, r *http.Request) {
	var req wire.WalletStartRequest
	if !b.decode(w, r, &req) {
		return
	}
	address, err := evm.NormalizeAddress(req.Address)
	if err != nil {
		b.invalid(w, r, "address: "+err.Error())
		return
	}
	if req.ChainID == nil || *req.ChainID <= 0 {
		b.invalid(w, r, "chain_id: want a positive integer")
		return
	}

	iss := b.issuerFor(r)
	domain := r.Host
	if u, err := url.Parse(iss); err == nil && u.Host != "" {
		domain = u.Host
	}
	msg := siweMessage(domain, address, iss, *req.ChainID, rand.Text(),
		b.now().UTC().Format("2006-01-02T15:04:05Z"))

	id := randomHex(16)
	b.mu.Lock()
	b.signIns[id] = signIn{address: address, message: msg}
	b.mu.Unlock()

	reply.JSON(w, http.StatusOK, wire.WalletStartAnswer{RequestID: id, SIWEMessage: msg})
}

func (b *Broker) walletVerify(w http.ResponseWriter, r *http.Request) {
	var req wire.WalletVerifyRequest
	if !b.decode(w, r, &req) {
		return
	}
	if req.RequestID == "" || req.Signature == "" {
		b.invalid(w, r, "request_id and signature are required")
		return
	}

	// The request is spent by the first attempt, good signature or not, so that a
	// request_id can neither be replayed nor used to try signatures one by one.
	b.mu.Lock()
	in, ok := b.signIns[req.RequestID]
	delete(b.signIns, req.RequestID)
	b.mu.Unlock()
	if !ok {
		b.refuse(w, r, http.StatusUnauthorized, wire.ReasonRequestNotFound,
			"sign-in request unknown or already used")
		return
	}
	if err := evm.VerifyPersonal([]byte(in.message), req.Signature, in.address); err != nil {
		b.refuse(w, r, http.StatusUnauthorized, wire.ReasonSignatureInvalid, err.Error())
		return
	}

	token, err := b.issueSession(r, session{omni: omni.Master(in.address), wallet: in.address})
	if err != nil {
		b.internal(w, r, err)
		return
	}
	reply.JSON(w, http.StatusOK, wire.WalletVerifyAnswer{SessionJWT: token})
}

// siweMessage writes the EIP-4361 sign-in text. The address is shown in its EIP-55
// checksum form, as a wallet would display it.
func siweMessage(domain, address, uri string, chainID int64, nonce, issuedAt string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s wants you to sign in with your Ethereum account:\n", domain)
	fmt.Fprintf(&b, "%s\n\n%s\n\n", checksumAddress(address), siweStatement)
	fmt.Fprintf(&b, "URI: %s\nVersion: 1\nChain ID: %d\n", uri, chainID)
	fmt.Fprintf(&b, "Nonce: %s\nIssued At: %s", nonce, issuedAt)
	return b.String()
}

// checksumAddress applies EIP-55 mixed case to a lowercase 0x address: a letter is upper
// case where the matching nibble of keccak-256 over the lowercase hex is 8 or more.
func checksumAddress(lower string) string {
	digits := strings.TrimPrefix(lower, "0x")
	hash := evm.Keccak256([]byte(digits))
	out := []byte(digits)
	for i, c := range out {
		nibble := hash[i/2] >> 4
		if i%2 == 1 {
			nibble = hash[i/2] & 0x0f
		}
		if c >= 'a' && c <= 'f' && nibble >= 8 {
			out[i] = c - 'a' + 'A'
		}
	}
	return "0x" + string(out)
}
