package workertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/agentkeys/harness/mocks/chain"
	"github.com/agentkeys/harness/protocol/cap"
	"github.com/agentkeys/harness/protocol/evm"
	"github.com/agentkeys/harness/protocol/omni"
)

// TTL is the lifetime of the caps Payload builds, the broker's default.
const TTL = 300 * time.Second

// Broker holds a broker signing key.
type Broker struct {
	Key *ecdsa.PrivateKey
}

// NewBroker makes a broker with a fresh P-256 key.
func NewBroker() *Broker {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic("workertest: generate broker key: " + err.Error())
	}
	return &Broker{Key: k}
}

// Public is the key a worker verifies with.
func (b *Broker) Public() *ecdsa.PublicKey { return &b.Key.PublicKey }

// Sign sets tok's broker_sig over its payload and returns the token's JSON.
func (b *Broker) Sign(tok cap.Token) json.RawMessage {
	sig, err := cap.Sign(b.Key, tok.Payload)
	if err != nil {
		panic("workertest: " + err.Error())
	}
	tok.BrokerSig = sig
	return Encode(tok)
}

// Mint signs p into a token without a proof of possession.
func (b *Broker) Mint(p cap.Payload) json.RawMessage { return b.Sign(cap.Token{Payload: p}) }

// Encode returns tok's JSON as sent on the wire, for tokens a test altered after signing.
func Encode(tok cap.Token) json.RawMessage {
	raw, err := json.Marshal(tok)
	if err != nil {
		panic("workertest: encode cap: " + err.Error())
	}
	return raw
}

// Identity is a master or an agent and the device key it acts with.
type Identity struct {
	// Master is the operator the device was paired under; for a master, itself.
	Master omni.Omni
	// Omni is the identity itself.
	Omni   omni.Omni
	Device *evm.Key
}

// DeviceKeyHash is the device's "0x" + 64 hex registry key.
func (id *Identity) DeviceKeyHash() string { return id.Device.DeviceKeyHash() }

// NewMaster makes a master with a random wallet and its own device, registered in reg.
func NewMaster(reg *chain.Memory) *Identity {
	var addr [20]byte
	if _, err := rand.Read(addr[:]); err != nil {
		panic("workertest: read random: " + err.Error())
	}
	m := omni.Master("0x" + hex.EncodeToString(addr[:]))
	id := &Identity{Master: m, Omni: m, Device: newDevice()}
	Register(reg, id, chain.RoleCapMint)
	return id
}

// NewAgent derives an agent of master under label and registers its device, bound to
// (master, agent) with the cap-mint role.
func NewAgent(reg *chain.Memory, master *Identity, label string) *Identity {
	a, err := omni.Agent(master.Omni, label, 0)
	if err != nil {
		panic("workertest: " + err.Error())
	}
	id := &Identity{Master: master.Omni, Omni: a, Device: newDevice()}
	Register(reg, id, chain.RoleCapMint)
	return id
}

// NewUnregistered makes an agent of master whose device the chain has never seen.
func NewUnregistered(master *Identity, label string) *Identity {
	a, err := omni.Agent(master.Omni, label, 0)
	if err != nil {
		panic("workertest: " + err.Error())
	}
	return &Identity{Master: master.Omni, Omni: a, Device: newDevice()}
}

// Register (re)registers id's device in reg with roles.
func Register(reg *chain.Memory, id *Identity, roles ...string) {
	err := reg.Register(chain.Device{DeviceKeyHash: id.DeviceKeyHash(), Parent: id.Master,
		Agent: id.Omni, Roles: roles})
	if err != nil {
		panic("workertest: " + err.Error())
	}
}

func newDevice() *evm.Key {
	k, err := evm.GenerateKey()
	if err != nil {
		panic("workertest: " + err.Error())
	}
	return k
}

// Payload is a cap payload, valid at now for TTL, that device signs as operator for
// actor. The epoch is the registry's current one.
func Payload(reg chain.Registry, device *Identity, operator, actor omni.Omni,
	service, op, class string, now time.Time) cap.Payload {
	return cap.Payload{
		Operator:      operator.Prefixed(),
		Actor:         actor.Prefixed(),
		Service:       service,
		Op:            op,
		DataClass:     class,
		DeviceKeyHash: device.DeviceKeyHash(),
		K3Epoch:       reg.K3Epoch(),
		IssuedAt:      now.Unix(),
		ExpiresAt:     now.Add(TTL).Unix(),
		Nonce:         cap.NewNonce(),
	}
}

// Self is Payload with id as both operator and actor.
func Self(reg chain.Registry, id *Identity, service, op, class string) cap.Payload {
	return Payload(reg, id, id.Omni, id.Omni, service, op, class, time.Now())
}

// WithPop returns a token for p carrying the proof of possession signed by key, over a
// fresh client nonce and now.
func WithPop(p cap.Payload, key *evm.Key) cap.Token {
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		panic("workertest: read random: " + err.Error())
	}
	operator, err1 := omni.ParsePrefixed(p.Operator)
	actor, err2 := omni.ParsePrefixed(p.Actor)
	if err1 != nil || err2 != nil {
		panic("workertest: WithPop needs canonical omnis in the payload")
	}
	ts := time.Now().Unix()
	pop := evm.CapPop{Operator: operator, Actor: actor, Service: p.Service, Op: p.Op,
		DataClass: p.DataClass, ClientNonce: hex.EncodeToString(n[:]), ClientTS: ts}
	return cap.Token{
		Payload:     p,
		ClientSig:   key.SignPersonal(pop.Preimage()),
		ClientNonce: pop.ClientNonce,
		ClientTS:    &ts,
	}
}
