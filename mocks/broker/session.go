package broker

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/agentkeys/harness/protocol/evm"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/wire"
)

// session is a verified session JWT, parsed into the types the handlers compare.
type session struct {
	omni   omni.Omni
	wallet string
	agent  bool
	// For agents only.
	parent         omni.Omni
	derivationPath string
	devicePubkey   string
	email          string
}

// sessionClaims adapts wire.SessionClaims to jwt.Claims. The wire type keeps aud a single
// string; jwt.RegisteredClaims would write a one-element array.
type sessionClaims struct{ wire.SessionClaims }

func (c *sessionClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return numericDate(c.ExpiresAt), nil
}
func (c *sessionClaims) GetIssuedAt() (*jwt.NumericDate, error) {
	return numericDate(c.IssuedAt), nil
}
func (c *sessionClaims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }
func (c *sessionClaims) GetIssuer() (string, error)              { return c.Issuer, nil }
func (c *sessionClaims) GetSubject() (string, error)             { return c.Subject, nil }
func (c *sessionClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings{c.Audience}, nil
}

// numericDate maps an absent (zero) time claim to nil, so that the parser's "required"
// options see it as missing rather than as 1970.
func numericDate(unix int64) *jwt.NumericDate {
	if unix == 0 {
		return nil
	}
	return jwt.NewNumericDate(time.Unix(unix, 0))
}

// issueSession signs a session JWT for s.
func (b *Broker) issueSession(r *http.Request, s session) (string, error) {
	now := b.now()
	id := wire.SessionIdentity{
		OmniAccount:   s.omni.String(),
		WalletAddress: s.wallet,
		IdentityType:  wire.IdentityWallet,
	}
	if s.agent {
		id.IdentityType = wire.IdentityAgent
		id.ParentOmni = s.parent.String()
		id.DerivationPath = s.derivationPath
		id.DevicePubkey = s.devicePubkey
		id.Email = s.email
	}
	claims := &sessionClaims{wire.SessionClaims{
		Issuer:    b.issuerFor(r),
		Subject:   wire.SessionSubjectPrefix + s.omni.String(),
		Audience:  wire.AudienceBroker,
		ExpiresAt: now.Add(b.sessionTTL).Unix(),
		IssuedAt:  now.Unix(),
		ID:        randomHex(16),
		Agentkeys: id,
	}}

	token, err := jwt.NewWithClaims(jwt.SigningMethodES256, claims).SignedString(b.sessionKey)
	if err != nil {
		return "", fmt.Errorf("sign session: %w", err)
	}
	b.log.Info("broker session issued", "omni", s.omni.String(), "type", id.IdentityType)
	return token, nil
}

// errNoBearer is a request without "Authorization: Bearer <jwt>".
var errNoBearer = errors.New("bearer token missing")

// authenticate verifies the request's bearer session JWT: ES256 under the session key,
// audience agentkeys:broker, the current issuer when one is set, not expired, and an
// agentkeys claim whose every omni is canonical.
func (b *Broker) authenticate(r *http.Request) (session, error) {
	scheme, raw, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return session{}, errNoBearer
	}

	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithAudience(wire.AudienceBroker),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(b.now),
	}
	if iss := b.Issuer(); iss != "" {
		opts = append(opts, jwt.WithIssuer(iss))
	}
	var claims sessionClaims
	_, err := jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) {
		return &b.sessionKey.PublicKey, nil
	}, opts...)
	if err != nil {
		return session{}, fmt.Errorf("verify session: %w", err)
	}

	s, err := sessionFromClaims(claims.SessionClaims)
	if err != nil {
		return session{}, fmt.Errorf("verify session: %w", err)
	}
	return s, nil
}

// sessionFromClaims checks the claims a handler relies on. The broker signed them, so a
// failure here means a token from another issuer that happens to share the key.
func sessionFromClaims(c wire.SessionClaims) (session, error) {
	id := c.Agentkeys
	o, err := omni.ParseBare(id.OmniAccount)
	if err != nil {
		return session{}, fmt.Errorf("omni_account: %w", err)
	}
	if c.Subject != wire.SessionSubjectPrefix+id.OmniAccount {
		return session{}, errors.New("sub does not name omni_account")
	}
	s := session{omni: o, wallet: id.WalletAddress}

	switch id.IdentityType {
	case wire.IdentityWallet:
		return s, nil
	case wire.IdentityAgent:
		s.agent = true
		if s.parent, err = omni.ParseBare(id.ParentOmni); err != nil {
			return session{}, fmt.Errorf("parent_omni: %w", err)
		}
		if s.devicePubkey, err = evm.NormalizeAddress(id.DevicePubkey); err != nil {
			return session{}, fmt.Errorf("device_pubkey: %w", err)
		}
		s.derivationPath = id.DerivationPath
		s.email = id.Email
		return s, nil
	default:
		return session{}, fmt.Errorf("unknown identity_type %q", id.IdentityType)
	}
}

// requireSession authenticates the request and answers 401 unauthorized when it cannot.
func (b *Broker) requireSession(w http.ResponseWriter, r *http.Request) (session, bool) {
	s, err := b.authenticate(r)
	if err != nil {
		b.refuse(w, r, http.StatusUnauthorized, wire.ReasonUnauthorized, err.Error())
		return session{}, false
	}
	return s, true
}

// requireMaster is requireSession for the routes only a wallet-authenticated master may
// call.
func (b *Broker) requireMaster(w http.ResponseWriter, r *http.Request) (session, bool) {
	s, ok := b.requireSession(w, r)
	if !ok {
		return session{}, false
	}
	if s.agent {
		b.refuse(w, r, http.StatusForbidden, wire.ReasonMasterRequired,
			"an agent session cannot act as a master")
		return session{}, false
	}
	return s, true
}
