// Package cap defines the broker-signed capability (cap) a worker checks before it
// touches S3: the payload with its fixed field order, the broker's P-256 signature, and
// the strict decoder every worker uses.
//
// The signature covers the payload re-serialized as compact JSON in field order with no
// HTML escaping, so a verifier never trusts the bytes it was sent, only the fields it
// parsed from them.
package cap

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Ops and data classes. The mint route fixes both.
const (
	OpStore = "store"
	OpFetch = "fetch"

	ClassCredentials = "credentials"
	ClassMemory      = "memory"
)

// Payload is what the broker signs. Field order is part of the signature: keep it.
type Payload struct {
	Operator      string `json:"operator_omni"`
	Actor         string `json:"actor_omni"`
	Service       string `json:"service"`
	Op            string `json:"op"`
	DataClass     string `json:"data_class"`
	DeviceKeyHash string `json:"device_key_hash"`
	K3Epoch       uint64 `json:"k3_epoch"`
	IssuedAt      int64  `json:"issued_at"`
	ExpiresAt     int64  `json:"expires_at"`
	Nonce         string `json:"nonce"`
}

// Token is a minted cap as the broker returns it and a worker receives it. The client_*
// fields echo the proof of possession of the mint request, when one was given.
type Token struct {
	Payload     Payload `json:"payload"`
	BrokerSig   string  `json:"broker_sig"`
	ClientSig   string  `json:"client_sig,omitempty"`
	ClientNonce string  `json:"client_nonce,omitempty"`
	ClientTS    *int64  `json:"client_ts,omitempty"`
}

// ErrBadSignature is returned when broker_sig does not verify.
var ErrBadSignature = errors.New("broker signature invalid")

// Canonical serializes the payload as compact JSON, in field order, without HTML
// escaping: the exact bytes the broker signs.
func (p Payload) Canonical() []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		panic("cap: encode payload: " + err.Error()) // only strings and integers
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// signedDigest is what the P-256 key signs: the upstream signer hashes its input once
// more, so the curve sees SHA-256(SHA-256(canonical payload)).
func (p Payload) signedDigest() []byte {
	first := sha256.Sum256(p.Canonical())
	second := sha256.Sum256(first[:])
	return second[:]
}

// Sign returns broker_sig for p: the fixed 64-byte r‖s, base64url without padding.
func Sign(key *ecdsa.PrivateKey, p Payload) (string, error) {
	r, s, err := ecdsa.Sign(rand.Reader, key, p.signedDigest())
	if err != nil {
		return "", fmt.Errorf("sign cap: %w", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return base64.RawURLEncoding.EncodeToString(sig), nil
}

// Verify checks broker_sig over the token's parsed payload.
func Verify(pub *ecdsa.PublicKey, t Token) error {
	sig, err := base64.RawURLEncoding.DecodeString(t.BrokerSig)
	if err != nil || len(sig) != 64 {
		return fmt.Errorf("%w: want 64 bytes of unpadded base64url", ErrBadSignature)
	}
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(pub, t.Payload.signedDigest(), r, s) {
		return ErrBadSignature
	}
	return nil
}

// NewNonce returns 16 random bytes as 32 lowercase hex characters.
func NewNonce() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("cap: read random: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// Decode parses a cap token strictly: unknown fields, trailing data and a missing
// payload or signature are errors. It checks shape only; Verify checks the signature.
func Decode(data []byte) (Token, error) {
	var t Token
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return Token{}, fmt.Errorf("decode cap: %w", err)
	}
	if dec.More() {
		return Token{}, errors.New("decode cap: trailing data after the token")
	}
	if t.BrokerSig == "" {
		return Token{}, errors.New("decode cap: broker_sig missing")
	}
	if t.Payload == (Payload{}) {
		return Token{}, errors.New("decode cap: payload missing")
	}
	return t, nil
}

// ValidateService checks a service name as the broker does at mint and a worker does on
// a signed cap: 1 to 64 characters (not bytes) of UTF-8, no control character, none of
// * ? / \ and no "..", so it can never widen or escape an S3 key, nor make one that S3
// refuses (MinIO refuses a NUL, say), which would turn the caller's mistake into a 502.
func ValidateService(service string) error {
	if !utf8.ValidString(service) {
		return fmt.Errorf("service %q is not UTF-8", service)
	}
	if n := utf8.RuneCountInString(service); n < 1 || n > 64 {
		return fmt.Errorf("service must be 1 to 64 characters, got %d", n)
	}
	if i := strings.IndexFunc(service, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(service[i:])
		return fmt.Errorf("service %q must not contain the control character %U", service, r)
	}
	for _, bad := range []string{"*", "?", "/", `\`, ".."} {
		if strings.Contains(service, bad) {
			return fmt.Errorf("service %q must not contain %q", service, bad)
		}
	}
	return nil
}
