package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/agentkeys/harness/protocol/cap"
	"github.com/agentkeys/harness/protocol/evm"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/wire"
)

// DefaultChainID is the chain id a wallet sign-in names when the caller gives none.
const DefaultChainID = 1

// Broker is a client of the broker. The zero HTTP uses DefaultHTTPClient.
type Broker struct {
	// URL is the broker's base URL, without a trailing slash.
	URL  string
	HTTP *http.Client
}

func (b *Broker) url(route string) string { return strings.TrimSuffix(b.URL, "/") + route }

// WalletSignIn signs in as the master whose wallet is key: it starts a sign-in, signs the
// sign-in text with EIP-191 and returns the session JWT.
func (b *Broker) WalletSignIn(ctx context.Context, key *evm.Key) (string, error) {
	start, err := b.WalletStart(ctx, key.Address(), DefaultChainID)
	if err != nil {
		return "", fmt.Errorf("wallet sign-in: %w", err)
	}
	// A wallet shows the text before it signs; signing text for another account would
	// hand that account's session to whoever asked.
	if !strings.Contains(strings.ToLower(start.SIWEMessage), key.Address()) {
		return "", errors.New("wallet sign-in: the sign-in text names another address")
	}
	sig := key.SignPersonal([]byte(start.SIWEMessage))
	session, err := b.WalletVerify(ctx, start.RequestID, sig)
	if err != nil {
		return "", fmt.Errorf("wallet sign-in: %w", err)
	}
	return session, nil
}

// WalletStart asks for the sign-in text of address on chainID.
func (b *Broker) WalletStart(ctx context.Context, address string,
	chainID int64) (wire.WalletStartAnswer, error) {
	var ans wire.WalletStartAnswer
	err := call(ctx, b.HTTP, "wallet start", http.MethodPost, b.url(wire.RouteWalletStart),
		nil, wire.WalletStartRequest{Address: address, ChainID: &chainID}, &ans)
	return ans, err
}

// WalletVerify sends the signature of a started sign-in and returns the session JWT.
func (b *Broker) WalletVerify(ctx context.Context, requestID, signature string) (string,
	error) {
	var ans wire.WalletVerifyAnswer
	err := call(ctx, b.HTTP, "wallet verify", http.MethodPost, b.url(wire.RouteWalletVerify),
		nil, wire.WalletVerifyRequest{RequestID: requestID, Signature: signature}, &ans)
	return ans.SessionJWT, err
}

// pairingPop is the device's proof of possession for pairing.
func pairingPop(key *evm.Key) string {
	return key.SignPersonal(evm.PairingPreimage(key.DeviceKeyHash()))
}

// PairingRequest asks for a pairing code for the device key.
func (b *Broker) PairingRequest(ctx context.Context,
	key *evm.Key) (wire.PairingRequestAnswer, error) {
	var ans wire.PairingRequestAnswer
	err := call(ctx, b.HTTP, "pairing request", http.MethodPost,
		b.url(wire.RoutePairingRequest), nil,
		wire.PairingRequest{DevicePubkey: key.Address(), PopSig: pairingPop(key)}, &ans)
	return ans, err
}

// PairingClaim claims an agent's pairing code as the master of masterSession, naming the
// agent label and the services it asks for.
func (b *Broker) PairingClaim(ctx context.Context, masterSession, code, label string,
	scope []string) (wire.PairingClaimAnswer, error) {
	var ans wire.PairingClaimAnswer
	err := call(ctx, b.HTTP, "pairing claim", http.MethodPost, b.url(wire.RoutePairingClaim),
		bearer(masterSession),
		wire.PairingClaimRequest{PairingCode: code, Label: label, RequestedScope: scope}, &ans)
	return ans, err
}

// PairingPoll asks whether the pairing request was claimed; once it was, the answer
// carries the agent's session JWT.
func (b *Broker) PairingPoll(ctx context.Context, key *evm.Key,
	requestID string) (wire.PairingPollAnswer, error) {
	var ans wire.PairingPollAnswer
	err := call(ctx, b.HTTP, "pairing poll", http.MethodPost, b.url(wire.RoutePairingPoll),
		nil, wire.PairingPollRequest{
			RequestID: requestID, DevicePubkey: key.Address(), PopSig: pairingPop(key),
		}, &ans)
	return ans, err
}

// PendingBindings lists the master's claimed pairings that are not acked yet.
func (b *Broker) PendingBindings(ctx context.Context,
	masterSession string) ([]wire.PendingBinding, error) {
	var ans wire.PendingBindingsAnswer
	err := call(ctx, b.HTTP, "pending bindings", http.MethodGet,
		b.url(wire.RoutePendingBindings), bearer(masterSession), nil, &ans)
	return ans.Bindings, err
}

// Ack marks a pending binding as written to the chain.
func (b *Broker) Ack(ctx context.Context, masterSession, requestID string) error {
	var ans wire.AckAnswer
	err := call(ctx, b.HTTP, "pending bindings ack", http.MethodPost,
		b.url(wire.RoutePendingAck), bearer(masterSession),
		wire.AckRequest{RequestID: requestID}, &ans)
	if err != nil {
		return err
	}
	if !ans.Acked {
		return errors.New("pending bindings ack: broker answered acked=false")
	}
	return nil
}

// MintOption changes a cap-mint request before it is sent.
type MintOption func(req *wire.CapRequest, route wire.CapRoute) error

// WithPop adds the client_* proof of possession, signed by the device key at the time
// at (time.Now when zero). A test passes another key or a stale time to provoke
// cap_pop_invalid.
func WithPop(key *evm.Key, at time.Time) MintOption {
	return func(req *wire.CapRequest, route wire.CapRoute) error {
		operator, err := omni.ParseBare(omni.Normalize(req.Operator))
		if err != nil {
			return fmt.Errorf("proof of possession: operator_omni: %w", err)
		}
		actor, err := omni.ParseBare(omni.Normalize(req.Actor))
		if err != nil {
			return fmt.Errorf("proof of possession: actor_omni: %w", err)
		}
		if at.IsZero() {
			at = time.Now()
		}
		nonce, ts := cap.NewNonce(), at.Unix()
		sig := key.SignPersonal(evm.CapPop{
			Operator: operator, Actor: actor, Service: req.Service, Op: route.Op,
			DataClass: route.DataClass, ClientNonce: nonce, ClientTS: ts,
		}.Preimage())
		req.ClientSig, req.ClientNonce, req.ClientTS = &sig, &nonce, &ts
		return nil
	}
}

// WithTTL asks for a cap lifetime in seconds; the broker clamps it.
func WithTTL(seconds int64) MintOption {
	return func(req *wire.CapRequest, _ wire.CapRoute) error {
		req.TTLSeconds = &seconds
		return nil
	}
}

// MintCap mints a cap at route (one of wire.CapRoutes) with session. It returns the
// parsed token and the answer's raw bytes, which a worker call forwards unchanged.
func (b *Broker) MintCap(ctx context.Context, session, route string, req wire.CapRequest,
	opts ...MintOption) (cap.Token, []byte, error) {
	r, ok := wire.CapRouteByPath(route)
	if !ok {
		return cap.Token{}, nil, fmt.Errorf("mint cap: %q is not a cap-mint route", route)
	}
	for _, opt := range opts {
		if err := opt(&req, r); err != nil {
			return cap.Token{}, nil, fmt.Errorf("mint cap: %w", err)
		}
	}

	var raw json.RawMessage
	if err := call(ctx, b.HTTP, "mint cap", http.MethodPost, b.url(route), bearer(session),
		req, &raw); err != nil {
		return cap.Token{}, nil, err
	}
	token, err := cap.Decode(raw)
	if err != nil {
		return cap.Token{}, nil, fmt.Errorf("mint cap: %w", err)
	}
	return token, raw, nil
}

// MintOIDC mints an OIDC JWT for the STS stub with session.
func (b *Broker) MintOIDC(ctx context.Context, session string) (wire.MintOIDCAnswer, error) {
	var ans wire.MintOIDCAnswer
	err := call(ctx, b.HTTP, "mint oidc jwt", http.MethodPost, b.url(wire.RouteMintOIDC),
		bearer(session), nil, &ans)
	return ans, err
}

// Discovery reads the OpenID configuration.
func (b *Broker) Discovery(ctx context.Context) (wire.Discovery, error) {
	var ans wire.Discovery
	err := call(ctx, b.HTTP, "oidc discovery", http.MethodGet, b.url(wire.RouteDiscovery),
		nil, nil, &ans)
	return ans, err
}

// JWKS reads the OIDC public keys.
func (b *Broker) JWKS(ctx context.Context) (wire.JWKS, error) {
	var ans wire.JWKS
	err := call(ctx, b.HTTP, "oidc jwks", http.MethodGet, b.url(wire.RouteJWKS), nil, nil,
		&ans)
	return ans, err
}

// Healthz reads the broker's health.
func (b *Broker) Healthz(ctx context.Context) (wire.Healthz, error) {
	var ans wire.Healthz
	err := call(ctx, b.HTTP, "broker healthz", http.MethodGet, b.url(wire.RouteHealthz), nil,
		nil, &ans)
	return ans, err
}
