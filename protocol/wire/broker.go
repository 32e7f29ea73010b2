package wire

import "github.com/agentkeys/harness/protocol/cap"

// Broker routes.
const (
	RouteWalletStart     = "/v1/auth/wallet/start"
	RouteWalletVerify    = "/v1/auth/wallet/verify"
	RoutePairingRequest  = "/v1/agent/pairing/request"
	RoutePairingClaim    = "/v1/agent/pairing/claim"
	RoutePairingPoll     = "/v1/agent/pairing/poll"
	RoutePendingBindings = "/v1/agent/pending-bindings"
	RoutePendingAck      = "/v1/agent/pending-bindings/ack"
	RouteCapCredStore    = "/v1/cap/cred-store"
	RouteCapCredFetch    = "/v1/cap/cred-fetch"
	RouteCapMemoryPut    = "/v1/cap/memory-put"
	RouteCapMemoryGet    = "/v1/cap/memory-get"
	RouteMintOIDC        = "/v1/mint-oidc-jwt"
	RouteDiscovery       = "/.well-known/openid-configuration"
	RouteJWKS            = "/.well-known/jwks.json"
	RouteHealthz         = "/healthz"
)

// Reasons only the broker answers with. The reasons it shares with the workers
// (invalid_input, payload_too_large, cred_store_not_master_self, device_binding_mismatch,
// device_role_missing, cap_pop_invalid, service_not_in_scope) are declared in worker.go.
// The first group is the upstream system's; the second names refusals the contract gives
// a status but no reason for, so the harness chose them.
const (
	ReasonUnauthorized     = "unauthorized"
	ReasonOperatorMismatch = "operator_mismatch"
	ReasonDeviceNotActive  = "device_not_active"
	ReasonDeviceRevoked    = "device_revoked"

	// ReasonPopSigInvalid: a pairing pop_sig that does not recover to device_pubkey (401).
	ReasonPopSigInvalid = "pop_sig_invalid"
	// ReasonSignatureInvalid: a wallet sign-in signature by another address (401).
	ReasonSignatureInvalid = "signature_invalid"
	// ReasonPairingCodeInvalid: a pairing code that is unknown or already claimed (401).
	ReasonPairingCodeInvalid = "pairing_code_invalid"
	// ReasonRequestNotFound: an unknown, spent or foreign request_id.
	ReasonRequestNotFound = "request_not_found"
	// ReasonMasterRequired: an agent session on a route only a master may call (403).
	ReasonMasterRequired = "master_session_required"
	// ReasonNotFound and ReasonMethodNotAllowed answer a route the broker does not serve.
	ReasonNotFound         = "not_found"
	ReasonMethodNotAllowed = "method_not_allowed"
)

// Fixed claim values of the session and OIDC JWTs.
const (
	AudienceBroker = "agentkeys:broker"
	AudienceSTS    = "sts.amazonaws.com"

	// SessionSubjectPrefix is followed by the session's bare omni.
	SessionSubjectPrefix = "agentkeys:user:"
	// OIDCSubjectPrefix is followed by the master's wallet or the agent's bare omni.
	OIDCSubjectPrefix = "agentkeys:agent:"

	IdentityWallet = "wallet"
	IdentityAgent  = "agent"

	TagUserWallet = "agentkeys_user_wallet"
	TagActorOmni  = "agentkeys_actor_omni"
	// TagsClaim is the claim AWS reads session tags from.
	TagsClaim = "https://aws.amazon.com/tags"

	// OIDCLifetime is the lifetime of a minted OIDC JWT in seconds.
	OIDCLifetime = 300
)

// Pairing poll statuses.
const (
	PairingPending = "pending"
	PairingClaimed = "claimed"
)

// Cap-mint time to live, in seconds: the default and the clamp bounds.
const (
	CapTTLDefault = 300
	CapTTLMin     = 60
	CapTTLMax     = 1800
)

// CapRoute is a cap-mint route with the op and data class it fixes. A client never
// chooses op or class; the route it calls does.
type CapRoute struct {
	Path      string
	Op        string
	DataClass string
}

var capRoutes = [...]CapRoute{
	{RouteCapCredStore, cap.OpStore, cap.ClassCredentials},
	{RouteCapCredFetch, cap.OpFetch, cap.ClassCredentials},
	{RouteCapMemoryPut, cap.OpStore, cap.ClassMemory},
	{RouteCapMemoryGet, cap.OpFetch, cap.ClassMemory},
}

// CapRoutes returns the four cap-mint routes.
func CapRoutes() []CapRoute { return capRoutes[:] }

// CapRouteByPath returns the cap-mint route served at path.
func CapRouteByPath(path string) (CapRoute, bool) {
	for _, r := range capRoutes {
		if r.Path == path {
			return r, true
		}
	}
	return CapRoute{}, false
}

// CapRouteFor returns the cap-mint route that mints caps of op and dataClass.
func CapRouteFor(op, dataClass string) (CapRoute, bool) {
	for _, r := range capRoutes {
		if r.Op == op && r.DataClass == dataClass {
			return r, true
		}
	}
	return CapRoute{}, false
}

// WalletStartRequest is the body of RouteWalletStart. ChainID is a pointer so that a
// missing chain id is refused rather than read as zero.
type WalletStartRequest struct {
	Address string `json:"address"`
	ChainID *int64 `json:"chain_id"`
}

// WalletStartAnswer carries the sign-in text the wallet signs with EIP-191.
type WalletStartAnswer struct {
	RequestID   string `json:"request_id"`
	SIWEMessage string `json:"siwe_message"`
}

// WalletVerifyRequest is the body of RouteWalletVerify.
type WalletVerifyRequest struct {
	RequestID string `json:"request_id"`
	Signature string `json:"signature"`
}

// WalletVerifyAnswer carries the master's session JWT.
type WalletVerifyAnswer struct {
	SessionJWT string `json:"session_jwt"`
}

// PairingRequest is the body of RoutePairingRequest. DevicePubkey is the device key's
// address; PopSig is its EIP-191 signature over evm.PairingPreimage.
type PairingRequest struct {
	DevicePubkey string `json:"device_pubkey"`
	PopSig       string `json:"pop_sig"`
}

// PairingRequestAnswer carries the code the agent shows its master.
type PairingRequestAnswer struct {
	RequestID     string `json:"request_id"`
	PairingCode   string `json:"pairing_code"`
	DeviceKeyHash string `json:"device_key_hash"`
}

// PairingClaimRequest is the body of RoutePairingClaim.
type PairingClaimRequest struct {
	PairingCode    string   `json:"pairing_code"`
	Label          string   `json:"label"`
	RequestedScope []string `json:"requested_scope"`
}

// PairingClaimAnswer names the new agent. Both omnis are "0x" + 64 lowercase hex. Email
// is the agent's own address (see AgentEmail), a harness addition.
type PairingClaimAnswer struct {
	ChildOmni    string `json:"child_omni"`
	OperatorOmni string `json:"operator_omni"`
	RequestID    string `json:"request_id"`
	DevicePubkey string `json:"device_pubkey"`
	Email        string `json:"email,omitempty"`
}

// PairingPollRequest is the body of RoutePairingPoll; the pop is checked again.
type PairingPollRequest struct {
	RequestID    string `json:"request_id"`
	DevicePubkey string `json:"device_pubkey"`
	PopSig       string `json:"pop_sig"`
}

// PairingPollAnswer is {status: pending} until a master claims the code. ChildOmni is
// "0x" + 64 lowercase hex. Email is the agent's own address, a harness addition.
type PairingPollAnswer struct {
	Status         string `json:"status"`
	SessionJWT     string `json:"session_jwt,omitempty"`
	ChildOmni      string `json:"child_omni,omitempty"`
	DerivationPath string `json:"derivation_path,omitempty"`
	Email          string `json:"email,omitempty"`
}

// PendingBinding is a claimed pairing the master has yet to write to the chain and ack.
// Both omnis are "0x" + 64 lowercase hex.
type PendingBinding struct {
	RequestID      string   `json:"request_id"`
	ChildOmni      string   `json:"child_omni"`
	OperatorOmni   string   `json:"operator_omni"`
	DevicePubkey   string   `json:"device_pubkey"`
	DeviceKeyHash  string   `json:"device_key_hash"`
	Label          string   `json:"label"`
	DerivationPath string   `json:"derivation_path"`
	RequestedScope []string `json:"requested_scope"`
	Email          string   `json:"email,omitempty"`
}

// PendingBindingsAnswer is the answer of GET RoutePendingBindings.
type PendingBindingsAnswer struct {
	Bindings []PendingBinding `json:"bindings"`
}

// AckRequest is the body of RoutePendingAck.
type AckRequest struct {
	RequestID string `json:"request_id"`
}

// AckAnswer is the answer of RoutePendingAck.
type AckAnswer struct {
	Acked bool `json:"acked"`
}

// CapRequest is the body of the four cap-mint routes. Omnis and the device key hash are
// "0x" + 64 lowercase hex. The optional fields are pointers so that absent and present
// stay apart: a proof of possession is checked only when all three client_* are present.
type CapRequest struct {
	Operator      string  `json:"operator_omni"`
	Actor         string  `json:"actor_omni"`
	Service       string  `json:"service"`
	DeviceKeyHash string  `json:"device_key_hash"`
	TTLSeconds    *int64  `json:"ttl_seconds,omitempty"`
	ClientSig     *string `json:"client_sig,omitempty"`
	ClientNonce   *string `json:"client_nonce,omitempty"`
	ClientTS      *int64  `json:"client_ts,omitempty"`
}

// MintOIDCAnswer is the answer of RouteMintOIDC. Expiration is the JWT's exp, in unix
// seconds.
type MintOIDCAnswer struct {
	JWT        string `json:"jwt"`
	Wallet     string `json:"wallet"`
	Expiration int64  `json:"expiration"`
}

// Discovery is the OpenID configuration document.
type Discovery struct {
	Issuer                           string   `json:"issuer"`
	JWKSURI                          string   `json:"jwks_uri"`
	ResponseTypesSupported           []string `json:"response_types_supported"`
	SubjectTypesSupported            []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported                  []string `json:"claims_supported"`
}

// JWK is one public key of the JWKS: EC P-256, with x and y as unpadded base64url.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

// JWKS is the answer of RouteJWKS.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// Healthz is the answer of RouteHealthz.
type Healthz struct {
	OK      bool   `json:"ok"`
	Service string `json:"service"`
}

// SessionClaims are the claims of a session JWT (J1). Audience is a single string, not
// an array, as the upstream broker writes it.
type SessionClaims struct {
	Issuer    string          `json:"iss"`
	Subject   string          `json:"sub"`
	Audience  string          `json:"aud"`
	ExpiresAt int64           `json:"exp"`
	IssuedAt  int64           `json:"iat"`
	ID        string          `json:"jti"`
	Agentkeys SessionIdentity `json:"agentkeys"`
}

// SessionIdentity is the "agentkeys" claim: who the session acts as. Omnis are bare.
// The last four fields are set for agents only; Email, the agent's own address, is a
// harness addition that the mailbox route reads.
type SessionIdentity struct {
	OmniAccount    string `json:"omni_account"`
	WalletAddress  string `json:"wallet_address"`
	IdentityType   string `json:"identity_type"`
	ParentOmni     string `json:"parent_omni,omitempty"`
	DerivationPath string `json:"derivation_path,omitempty"`
	DevicePubkey   string `json:"device_pubkey,omitempty"`
	Email          string `json:"email,omitempty"`
}

// OIDCClaims are the claims of a minted OIDC JWT, exactly these and no others.
type OIDCClaims struct {
	Issuer     string  `json:"iss"`
	Subject    string  `json:"sub"`
	Audience   string  `json:"aud"`
	IssuedAt   int64   `json:"iat"`
	ExpiresAt  int64   `json:"exp"`
	UserWallet string  `json:"agentkeys_user_wallet"`
	ActorOmni  string  `json:"agentkeys_actor_omni"`
	Tags       AWSTags `json:"https://aws.amazon.com/tags"`
}

// AWSTags is the session-tag claim STS reads. Each principal tag holds one value.
type AWSTags struct {
	PrincipalTags     map[string][]string `json:"principal_tags"`
	TransitiveTagKeys []string            `json:"transitive_tag_keys"`
}
