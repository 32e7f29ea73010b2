// Package envelope seals and opens the v2 storage envelope both workers write to S3:
// the version byte 0x02, a 12-byte random nonce, then the AES-256-GCM ciphertext and tag.
// The AAD binds the envelope to its actor and service, so an object copied to another
// agent's key does not open there.
package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

const (
	// Version is the first byte of every v2 envelope.
	Version byte = 0x02
	// NonceSize is the GCM nonce length.
	NonceSize = 12
	// Overhead is how many bytes an envelope adds to its plaintext: version, nonce, tag.
	Overhead = 1 + NonceSize + 16
	// KEKSize is the length of a key-encryption key.
	KEKSize = 32
)

// ErrOpen is wrapped by every failure to open an envelope.
var ErrOpen = errors.New("open envelope")

// KEK is a worker's 32-byte key.
type KEK [KEKSize]byte

// ParseKEK reads a KEK from 64 hex characters and refuses a key whose bytes are all
// equal (all zero included): such a key is a placeholder, not a secret.
func ParseKEK(s string) (KEK, error) {
	raw, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return KEK{}, fmt.Errorf("parse kek: %w", err)
	}
	if len(raw) != KEKSize {
		return KEK{}, fmt.Errorf("parse kek: want %d bytes, got %d", KEKSize, len(raw))
	}
	var k KEK
	copy(k[:], raw)
	if err := k.Validate(); err != nil {
		return KEK{}, err
	}
	return k, nil
}

// NewKEK returns a random KEK.
func NewKEK() KEK {
	for {
		var k KEK
		if _, err := rand.Read(k[:]); err != nil {
			panic("envelope: read random: " + err.Error())
		}
		if k.Validate() == nil {
			return k
		}
	}
}

// Validate refuses a KEK whose bytes are all equal.
func (k KEK) Validate() error {
	for _, b := range k[1:] {
		if b != k[0] {
			return nil
		}
	}
	return fmt.Errorf("parse kek: all %d bytes are 0x%02x", KEKSize, k[0])
}

// String returns the KEK as hex. Treat it as a secret.
func (k KEK) String() string { return hex.EncodeToString(k[:]) }

// AAD is the additional data of an envelope for actor (bare lowercase omni) and service.
func AAD(actor, service string) []byte {
	return []byte("agentkeys.cred.aad.v2|" + strings.ToLower(actor) + "|" + service)
}

// Seal encrypts plaintext for actor and service.
func Seal(k KEK, actor, service string, plaintext []byte) ([]byte, error) {
	gcm, err := newGCM(k)
	if err != nil {
		return nil, err
	}

	out := make([]byte, 1+NonceSize, Overhead+len(plaintext))
	out[0] = Version
	if _, err := rand.Read(out[1 : 1+NonceSize]); err != nil {
		return nil, fmt.Errorf("seal envelope: %w", err)
	}
	return gcm.Seal(out, out[1:1+NonceSize], plaintext, AAD(actor, service)), nil
}

// Open decrypts an envelope sealed for actor and service.
func Open(k KEK, actor, service string, env []byte) ([]byte, error) {
	if len(env) < Overhead {
		return nil, fmt.Errorf("%w: %d bytes is shorter than the %d-byte overhead",
			ErrOpen, len(env), Overhead)
	}
	if env[0] != Version {
		return nil, fmt.Errorf("%w: version 0x%02x, want 0x%02x", ErrOpen, env[0], Version)
	}
	gcm, err := newGCM(k)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, env[1:1+NonceSize], env[1+NonceSize:], AAD(actor, service))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOpen, err)
	}
	return plain, nil
}

func newGCM(k KEK) (cipher.AEAD, error) {
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, fmt.Errorf("envelope cipher: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("envelope cipher: %w", err)
	}
	return gcm, nil
}
