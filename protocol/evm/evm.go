// Package evm implements the Ethereum-style primitives of the agent's device key (K10):
// keccak-256, secp256k1 keys, addresses, the device key hash, EIP-191 personal-message
// signatures, and the two proof-of-possession preimages the broker and workers check.
package evm

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/sha3"

	"github.com/agentkeys/harness/protocol/omni"
)

// SignatureSize is the length of an r‖s‖v signature.
const SignatureSize = 65

// ErrBadSignature is wrapped by every signature parse or recovery failure.
var ErrBadSignature = errors.New("bad signature")

// Keccak256 is the legacy Keccak-256 hash Ethereum uses (not SHA3-256).
func Keccak256(parts ...[]byte) []byte {
	h := sha3.NewLegacyKeccak256()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// Key is a secp256k1 private key.
type Key struct {
	priv *secp256k1.PrivateKey
	// address and deviceKeyHash are derived once, when the key is made: the public key
	// takes a scalar multiplication, and every cap-mint and pairing call asks for them.
	address       string
	deviceKeyHash string
}

func newKey(priv *secp256k1.PrivateKey) *Key {
	addr := PubKeyAddress(priv.PubKey())
	h, err := DeviceKeyHash(addr)
	if err != nil {
		panic("evm: own address does not parse: " + err.Error())
	}
	return &Key{priv: priv, address: addr, deviceKeyHash: h}
}

// GenerateKey makes a new random key.
func GenerateKey() (*Key, error) {
	priv, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		return nil, fmt.Errorf("generate secp256k1 key: %w", err)
	}
	return newKey(priv), nil
}

// ParseKey reads the on-disk form: "0x" + 64 hex characters, surrounding space ignored.
func ParseKey(s string) (*Key, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, "0x")
	if !ok || len(rest) != 64 {
		return nil, errors.New("parse device key: want 0x and 64 hex characters")
	}
	raw, err := hex.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("parse device key: %w", err)
	}

	var scalar secp256k1.ModNScalar
	if overflow := scalar.SetByteSlice(raw); overflow || scalar.IsZero() {
		return nil, errors.New("parse device key: not a valid secp256k1 scalar")
	}
	return newKey(secp256k1.NewPrivateKey(&scalar)), nil
}

// Hex returns the on-disk form of the key. Treat the result as a secret.
func (k *Key) Hex() string { return "0x" + hex.EncodeToString(k.priv.Serialize()) }

// Address is the key's EVM address, "0x" + 40 lowercase hex.
func (k *Key) Address() string { return k.address }

// DeviceKeyHash is keccak-256 of the key's 20 raw address bytes, "0x" + 64 hex.
func (k *Key) DeviceKeyHash() string { return k.deviceKeyHash }

// SignPersonal signs msg as an EIP-191 personal message and returns "0x" + r‖s‖v with
// v = 27 or 28 and a low s.
func (k *Key) SignPersonal(msg []byte) string {
	compact := ecdsa.SignCompact(k.priv, PersonalHash(msg), false)

	// SignCompact gives v‖r‖s with v = 27 + recovery id; the wire wants r‖s‖v.
	sig := make([]byte, SignatureSize)
	copy(sig, compact[1:])
	sig[64] = compact[0]
	return "0x" + hex.EncodeToString(sig)
}

// PubKeyAddress derives the EVM address of a public key: the last 20 bytes of keccak-256
// over the uncompressed x‖y.
func PubKeyAddress(pub *secp256k1.PublicKey) string {
	uncompressed := pub.SerializeUncompressed()
	return "0x" + hex.EncodeToString(Keccak256(uncompressed[1:])[12:])
}

// DeviceKeyHash hashes a "0x" + 40 hex address into the device key hash.
func DeviceKeyHash(address string) (string, error) {
	raw, err := parseAddress(address)
	if err != nil {
		return "", err
	}
	return "0x" + hex.EncodeToString(Keccak256(raw)), nil
}

// NormalizeAddress validates an address and returns it lowercased.
func NormalizeAddress(address string) (string, error) {
	raw, err := parseAddress(address)
	if err != nil {
		return "", err
	}
	return "0x" + hex.EncodeToString(raw), nil
}

func parseAddress(address string) ([]byte, error) {
	rest, ok := strings.CutPrefix(address, "0x")
	if !ok || len(rest) != 40 {
		return nil, fmt.Errorf("parse address %q: want 0x and 40 hex characters", address)
	}
	raw, err := hex.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("parse address %q: %w", address, err)
	}
	return raw, nil
}

// PersonalHash is the EIP-191 digest of msg:
// keccak-256("\x19Ethereum Signed Message:\n" + len(msg) + msg).
func PersonalHash(msg []byte) []byte {
	prefix := "\x19Ethereum Signed Message:\n" + strconv.Itoa(len(msg))
	return Keccak256([]byte(prefix), msg)
}

// RecoverPersonal returns the address that signed msg as an EIP-191 personal message.
// It accepts v = 27/28 and v = 0/1, and refuses a high s.
func RecoverPersonal(msg []byte, signature string) (string, error) {
	rest, ok := strings.CutPrefix(signature, "0x")
	if !ok {
		return "", fmt.Errorf("%w: want 0x prefix", ErrBadSignature)
	}
	sig, err := hex.DecodeString(rest)
	if err != nil || len(sig) != SignatureSize {
		return "", fmt.Errorf("%w: want %d bytes of hex", ErrBadSignature, SignatureSize)
	}

	v := sig[64]
	if v < 27 {
		v += 27
	}
	if v != 27 && v != 28 {
		return "", fmt.Errorf("%w: v is %d", ErrBadSignature, sig[64])
	}

	var s secp256k1.ModNScalar
	s.SetByteSlice(sig[32:64])
	if s.IsOverHalfOrder() {
		return "", fmt.Errorf("%w: high s", ErrBadSignature)
	}

	compact := append([]byte{v}, sig[:64]...)
	pub, _, err := ecdsa.RecoverCompact(compact, PersonalHash(msg))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return PubKeyAddress(pub), nil
}

// VerifyPersonal reports whether signature over msg recovers to address.
func VerifyPersonal(msg []byte, signature, address string) error {
	want, err := NormalizeAddress(address)
	if err != nil {
		return err
	}
	got, err := RecoverPersonal(msg, signature)
	if err != nil {
		return err
	}
	if !bytes.Equal([]byte(got), []byte(want)) {
		return fmt.Errorf("%w: signed by %s, not %s", ErrBadSignature, got, want)
	}
	return nil
}

// PairingPreimage is the 32-byte message of a pairing pop_sig:
// keccak-256("agentkeys-agent-pop:" + device_key_hash with its 0x).
func PairingPreimage(deviceKeyHash string) []byte {
	return Keccak256([]byte("agentkeys-agent-pop:" + deviceKeyHash))
}

// CapPop holds the fields a cap proof-of-possession signature covers.
type CapPop struct {
	Operator    omni.Omni
	Actor       omni.Omni
	Service     string
	Op          string
	DataClass   string
	ClientNonce string
	ClientTS    int64
}

// ServiceHash is hex keccak-256 of the trimmed, lowercased service name.
func ServiceHash(service string) string {
	return hex.EncodeToString(Keccak256([]byte(strings.ToLower(strings.TrimSpace(service)))))
}

// Preimage is the 32-byte message of a cap client_sig.
func (p CapPop) Preimage() []byte {
	text := fmt.Sprintf("agentkeys-cap-pop:v1:%s:%s:%s:%s:%s:%s:%d",
		p.Operator, p.Actor, ServiceHash(p.Service), p.Op, p.DataClass, p.ClientNonce, p.ClientTS)
	return Keccak256([]byte(text))
}
