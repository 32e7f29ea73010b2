// Package omni derives, formats and validates omnis, the 32-byte identities of masters
// and agents.
//
// An omni has two spellings on the wire: bare (64 lowercase hex characters) in JWT
// claims, session tags, S3 key segments and the envelope AAD, and prefixed ("0x" + 64
// lowercase hex) in cap-mint requests and signed cap payloads. Parsing is strict in both
// forms, because a key segment that is not canonical must never reach S3.
package omni

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Size is the length of an omni in bytes.
const Size = 32

// Omni is a 32-byte identity.
type Omni [Size]byte

// ErrInvalid is wrapped by every parse failure.
var ErrInvalid = errors.New("invalid omni")

var labelPattern = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// Master derives the omni of a wallet-authenticated master from its EVM address.
// The address is lowercased, and keeps its 0x, before hashing.
func Master(walletAddress string) Omni {
	return sha256.Sum256([]byte("agentkeys" + "evm" + strings.ToLower(walletAddress)))
}

// Agent derives the omni of a child agent from its parent, label and generation.
func Agent(parent Omni, label string, generation int) (Omni, error) {
	if err := ValidateLabel(label); err != nil {
		return Omni{}, err
	}
	if generation < 0 {
		return Omni{}, fmt.Errorf("derive agent omni: negative generation %d", generation)
	}

	h := sha256.New()
	h.Write([]byte("agentkeys-hdkd-v1"))
	h.Write(parent[:])
	h.Write([]byte("//"))
	h.Write([]byte(DerivationPath(label, generation)))

	var o Omni
	copy(o[:], h.Sum(nil))
	return o, nil
}

// DerivationPath is the text after "//" in an agent's derivation: label/generation.
func DerivationPath(label string, generation int) string {
	return label + "/" + strconv.Itoa(generation)
}

// ValidateLabel checks an agent label against ^[a-z0-9-]{1,32}$.
func ValidateLabel(label string) error {
	if !labelPattern.MatchString(label) {
		return fmt.Errorf("invalid agent label %q: want 1 to 32 of a-z, 0-9 and -", label)
	}
	return nil
}

// String returns the bare canonical form: 64 lowercase hex characters.
func (o Omni) String() string { return hex.EncodeToString(o[:]) }

// Prefixed returns "0x" followed by the bare form.
func (o Omni) Prefixed() string { return "0x" + o.String() }

// IsZero reports whether o is the zero omni, which no real identity has.
func (o Omni) IsZero() bool { return o == Omni{} }

// ParseBare accepts exactly 64 lowercase hex characters with no prefix.
func ParseBare(s string) (Omni, error) {
	if len(s) != 2*Size {
		return Omni{}, fmt.Errorf("%w: %q: want 64 hex characters, got %d", ErrInvalid, s, len(s))
	}
	if !isLowerHex(s) {
		return Omni{}, fmt.Errorf("%w: %q: want lowercase hex only", ErrInvalid, s)
	}
	var o Omni
	if _, err := hex.Decode(o[:], []byte(s)); err != nil {
		return Omni{}, fmt.Errorf("%w: %q: %v", ErrInvalid, s, err)
	}
	return o, nil
}

// ParsePrefixed accepts exactly "0x" followed by 64 lowercase hex characters.
// "0X", upper case, a bare omni and any other length are refused.
func ParsePrefixed(s string) (Omni, error) {
	rest, ok := strings.CutPrefix(s, "0x")
	if !ok {
		return Omni{}, fmt.Errorf("%w: %q: want 0x prefix", ErrInvalid, s)
	}
	o, err := ParseBare(rest)
	if err != nil {
		return Omni{}, fmt.Errorf("%w: %q: want 0x and 64 lowercase hex characters", ErrInvalid, s)
	}
	return o, nil
}

// Normalize is the comparison form of any spelling: 0x or 0X stripped, lowercased.
// It does not validate; use it only to compare values that were parsed elsewhere.
func Normalize(s string) string {
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s = s[2:]
	}
	return strings.ToLower(s)
}

// IsLowerHex reports whether s is non-empty and made only of 0-9 and a-f.
func IsLowerHex(s string) bool { return isLowerHex(s) }

func isLowerHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
