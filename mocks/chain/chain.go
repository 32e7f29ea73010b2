// Package chain is the harness's in-memory stand-in for the on-chain registry the broker
// and workers consult: devices and their (operator, actor) binding, per-actor service
// scope grants, and the K3 epoch. Upstream keeps these on a chain; the harness keeps them
// in a map behind the Registry interface, with admin routes that only tests call.
package chain

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/agentkeys/harness/protocol/omni"
)

// RoleCapMint is the device role that allows minting caps.
const RoleCapMint = "cap-mint"

// Device is a registered device key.
type Device struct {
	// DeviceKeyHash is "0x" + 64 lowercase hex, the registry key.
	DeviceKeyHash string `json:"device_key_hash"`
	// Parent is the operator the device was paired under (the master).
	Parent omni.Omni `json:"-"`
	// Agent is the identity the device acts as. A master's own device has Agent = Parent.
	Agent   omni.Omni `json:"-"`
	Roles   []string  `json:"roles"`
	Revoked bool      `json:"revoked"`
}

// HasRole reports whether the device holds role.
func (d Device) HasRole(role string) bool {
	for _, r := range d.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// BoundTo reports whether the device may act for (operator, actor): either the pairing
// binding itself (parent, agent), or the agent acting for itself (operator = actor =
// agent), which is how an agent mints its own self-owned caps.
func (d Device) BoundTo(operator, actor omni.Omni) bool {
	if d.Parent == operator && d.Agent == actor {
		return true
	}
	return operator == actor && d.Agent == actor
}

// Registry is what the broker and workers read.
type Registry interface {
	Device(deviceKeyHash string) (Device, bool)
	InScope(actor omni.Omni, service string) bool
	K3Epoch() uint64
}

// Failure is a chain check that did not pass. Each mock maps it to its own reason.
type Failure int

// The chain failures, in the order Check tests them.
const (
	DeviceUnknown Failure = iota + 1
	DeviceRevoked
	BindingMismatch
	RoleMissing
	NotInScope
	EpochMismatch
)

var failureNames = map[Failure]string{
	DeviceUnknown:   "device unknown",
	DeviceRevoked:   "device revoked",
	BindingMismatch: "device bound to another operator or actor",
	RoleMissing:     "device lacks the cap-mint role",
	NotInScope:      "service not in the actor's scope",
	EpochMismatch:   "k3 epoch is not current",
}

// CheckError is returned by Check.
type CheckError struct{ Failure Failure }

func (e *CheckError) Error() string { return "chain check: " + failureNames[e.Failure] }

// FailureOf returns the Failure in err, or 0.
func FailureOf(err error) Failure {
	var ce *CheckError
	if errors.As(err, &ce) {
		return ce.Failure
	}
	return 0
}

// Check runs the chain checks shared by the broker and the workers: the device is known,
// not revoked, bound to (operator, actor) and holds the cap-mint role; when operator and
// actor differ, service is in the actor's scope. The epoch is checked only when
// epoch is not nil, because the broker stamps the epoch rather than checking one.
func Check(reg Registry, deviceKeyHash string, operator, actor omni.Omni, service string,
	epoch *uint64) error {
	d, ok := reg.Device(strings.ToLower(deviceKeyHash))
	switch {
	case !ok:
		return &CheckError{DeviceUnknown}
	case d.Revoked:
		return &CheckError{DeviceRevoked}
	case !d.BoundTo(operator, actor):
		return &CheckError{BindingMismatch}
	case !d.HasRole(RoleCapMint):
		return &CheckError{RoleMissing}
	case operator != actor && !reg.InScope(actor, service):
		return &CheckError{NotInScope}
	case epoch != nil && *epoch != reg.K3Epoch():
		return &CheckError{EpochMismatch}
	}
	return nil
}

// Memory is the in-memory Registry. The zero value is not usable; call NewMemory.
type Memory struct {
	mu      sync.RWMutex
	devices map[string]Device
	scopes  map[omni.Omni]map[string]bool
	epoch   uint64

	doctored map[omni.Omni]*doctored
}

// NewMemory returns an empty registry at epoch 1.
func NewMemory() *Memory {
	return &Memory{
		devices: make(map[string]Device),
		scopes:  make(map[omni.Omni]map[string]bool),
		epoch:   1,

		doctored: make(map[omni.Omni]*doctored),
	}
}

// Device implements Registry.
func (m *Memory) Device(deviceKeyHash string) (Device, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	d, ok := m.devices[deviceKeyHash]
	return d, ok
}

// InScope implements Registry.
func (m *Memory) InScope(actor omni.Omni, service string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.scopes[actor][strings.ToLower(service)]
}

// K3Epoch implements Registry.
func (m *Memory) K3Epoch() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.epoch
}

// Register adds or replaces a device.
func (m *Memory) Register(d Device) error {
	if _, err := omni.ParsePrefixed(d.DeviceKeyHash); err != nil {
		return fmt.Errorf("register device: device_key_hash: %w", err)
	}
	if d.Parent.IsZero() || d.Agent.IsZero() {
		return errors.New("register device: parent and agent omnis are required")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.devices[d.DeviceKeyHash] = d
	return nil
}

// Revoke marks a device revoked.
func (m *Memory) Revoke(deviceKeyHash string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[deviceKeyHash]
	if !ok {
		return fmt.Errorf("revoke device %s: unknown", deviceKeyHash)
	}
	d.Revoked = true
	m.devices[deviceKeyHash] = d
	return nil
}

// Grant adds services to actor's scope.
func (m *Memory) Grant(actor omni.Omni, services ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.scopes[actor] == nil {
		m.scopes[actor] = make(map[string]bool)
	}
	for _, s := range services {
		m.scopes[actor][strings.ToLower(s)] = true
	}
}

// BumpEpoch advances the K3 epoch and returns the new value.
func (m *Memory) BumpEpoch() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.epoch++
	return m.epoch
}
