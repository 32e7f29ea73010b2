package broker

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/agentkeys/harness/mocks/chain"
	"github.com/agentkeys/harness/mocks/reply"
	"github.com/agentkeys/harness/protocol/evm"
	"github.com/agentkeys/harness/protocol/wire"
)

// oidcClaims adapts wire.OIDCClaims to jwt.Claims, keeping aud a single string.
type oidcClaims struct{ wire.OIDCClaims }

func (c *oidcClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return numericDate(c.ExpiresAt), nil
}
func (c *oidcClaims) GetIssuedAt() (*jwt.NumericDate, error) {
	return numericDate(c.IssuedAt), nil
}
func (c *oidcClaims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }
func (c *oidcClaims) GetIssuer() (string, error)              { return c.Issuer, nil }
func (c *oidcClaims) GetSubject() (string, error)             { return c.Subject, nil }
func (c *oidcClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings{c.Audience}, nil
}

func (b *Broker) mintOIDC(w http.ResponseWriter, r *http.Request) {
	s, ok := b.requireSession(w, r)
	if !ok {
		return
	}

	// An agent's web identity is only as good as its device: a revoked or rebound device
	// must not reach S3 through STS even with a session that has not expired yet.
	subject := s.wallet
	if s.agent {
		if reason, msg := b.agentDeviceBound(s); reason != "" {
			b.refuse(w, r, http.StatusForbidden, reason, msg)
			return
		}
		subject = s.omni.String()
	}

	// A test may have asked for this JWT to be doctored (see chain.OIDCFlaw); it is
	// signed all the same, so only a check of the doctored claim can refuse it.
	flaw, back := b.chain.TakeOIDC(s.omni)
	now := b.now().Add(-time.Duration(back) * time.Second)
	actor := s.omni.String()
	claims := &oidcClaims{wire.OIDCClaims{
		Issuer:     b.issuerFor(r),
		Subject:    wire.OIDCSubjectPrefix + subject,
		Audience:   wire.AudienceSTS,
		IssuedAt:   now.Unix(),
		ExpiresAt:  now.Add(wire.OIDCLifetime * time.Second).Unix(),
		UserWallet: s.wallet,
		ActorOmni:  actor,
		Tags: wire.AWSTags{
			PrincipalTags: map[string][]string{
				wire.TagUserWallet: {s.wallet},
				wire.TagActorOmni:  {actor},
			},
			TransitiveTagKeys: []string{wire.TagUserWallet, wire.TagActorOmni},
		},
	}}
	var signedClaims jwt.Claims = claims
	switch flaw {
	case chain.OIDCWrongAudience:
		claims.Audience = wire.AudienceBroker
	case chain.OIDCUntagged:
		untagged, err := withoutActor(claims.OIDCClaims)
		if err != nil {
			b.internal(w, r, err)
			return
		}
		signedClaims = untagged
	}
	token := jwt.NewWithClaims(jwt.SigningMethodES256, signedClaims)
	token.Header["kid"] = b.oidcKid
	signed, err := token.SignedString(b.oidcKey)
	if err != nil {
		b.internal(w, r, fmt.Errorf("sign oidc jwt: %w", err))
		return
	}

	log := b.log
	if flaw != chain.OIDCSound {
		log = log.With("doctored", string(flaw))
	}
	log.Info("broker oidc jwt minted", "actor", actor, "agent", s.agent)
	reply.JSON(w, http.StatusOK, wire.MintOIDCAnswer{
		JWT: signed, Wallet: s.wallet, Expiration: claims.ExpiresAt,
	})
}

// withoutActor returns c as a claim set without the agentkeys_actor_omni claim and the
// AWS tags claim, for a JWT a test asked to have misissued untagged.
func withoutActor(c wire.OIDCClaims) (jwt.MapClaims, error) {
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("untagged oidc claims: %w", err)
	}
	claims := jwt.MapClaims{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // iat and exp stay integers
	if err := dec.Decode(&claims); err != nil {
		return nil, fmt.Errorf("untagged oidc claims: %w", err)
	}
	delete(claims, wire.TagActorOmni)
	delete(claims, wire.TagsClaim)
	return claims, nil
}

// agentDeviceBound checks that an agent session's device is registered, not revoked and
// bound to exactly (parent, agent). It returns the refusal reason, or "" when it is.
func (b *Broker) agentDeviceBound(s session) (reason, message string) {
	hash, err := evm.DeviceKeyHash(s.devicePubkey)
	if err != nil { // sessionFromClaims checked the address
		return wire.ReasonDeviceNotActive, "device_pubkey: " + err.Error()
	}
	d, ok := b.chain.Device(hash)
	switch {
	case !ok:
		return wire.ReasonDeviceNotActive, "the session's device is not registered"
	case d.Revoked:
		return wire.ReasonDeviceRevoked, "the session's device is revoked"
	case d.Parent != s.parent || d.Agent != s.omni:
		return wire.ReasonDeviceBindingMismatch,
			"the session's device is not bound to its parent and agent"
	}
	return "", ""
}

func (b *Broker) discovery(w http.ResponseWriter, r *http.Request) {
	iss := b.issuerFor(r)
	reply.JSON(w, http.StatusOK, wire.Discovery{
		Issuer:                           iss,
		JWKSURI:                          iss + wire.RouteJWKS,
		ResponseTypesSupported:           []string{"id_token"},
		SubjectTypesSupported:            []string{"public"},
		IDTokenSigningAlgValuesSupported: []string{jwt.SigningMethodES256.Alg()},
		ClaimsSupported: []string{"iss", "sub", "aud", "iat", "exp",
			wire.TagUserWallet, wire.TagActorOmni, wire.TagsClaim},
	})
}

func (b *Broker) jwks(w http.ResponseWriter, r *http.Request) {
	x, y, err := coordinates(&b.oidcKey.PublicKey)
	if err != nil {
		b.internal(w, r, err)
		return
	}
	reply.JSON(w, http.StatusOK, wire.JWKS{Keys: []wire.JWK{{
		Kty: "EC", Crv: "P-256", X: x, Y: y, Kid: b.oidcKid, Use: "sig",
		Alg: jwt.SigningMethodES256.Alg(),
	}}})
}

// coordinates returns a P-256 key's x and y as unpadded base64url of 32 bytes each.
func coordinates(pub *ecdsa.PublicKey) (x, y string, err error) {
	raw, err := pub.Bytes() // 0x04 ‖ x ‖ y
	if err != nil {
		return "", "", fmt.Errorf("encode public key: %w", err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(raw[1:33]), enc.EncodeToString(raw[33:65]), nil
}

// keyID is the RFC 7638 thumbprint of the key: stable for a key, different across keys,
// so a verifier holding an old JWKS sees at once that the key changed.
func keyID(pub *ecdsa.PublicKey) (string, error) {
	x, y, err := coordinates(pub)
	if err != nil {
		return "", err
	}
	members := `{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`
	sum := sha256.Sum256([]byte(members))
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}
