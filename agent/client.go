package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/agentkeys/harness/protocol/cap"
	"github.com/agentkeys/harness/protocol/evm"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/wire"
)

// Role names an STS role by what it is for.
type Role string

// The two roles.
const (
	RoleVault  Role = "vault"
	RoleMemory Role = "memory"
)

// Endpoints are where an agent finds the system. In a sandbox they come from AGENTKEYS_*
// environment variables; see EndpointsFromEnv.
type Endpoints struct {
	Broker        string
	STS           string
	CredWorker    string
	MemoryWorker  string
	S3            string
	VaultRoleARN  string
	MemoryRoleARN string
	VaultBucket   string
	MemoryBucket  string
	// Vendor is the mock vendor an agent signs up with; empty when the environment
	// names none, since only provisioning needs it.
	Vendor string
}

// The environment variables EndpointsFromEnv reads.
const (
	EnvBroker        = "AGENTKEYS_BROKER_URL"
	EnvSTS           = "AGENTKEYS_STS_URL"
	EnvCredWorker    = "AGENTKEYS_CRED_WORKER_URL"
	EnvMemoryWorker  = "AGENTKEYS_MEMORY_WORKER_URL"
	EnvS3            = "AGENTKEYS_S3_ENDPOINT"
	EnvVaultRoleARN  = "AGENTKEYS_VAULT_ROLE_ARN"
	EnvMemoryRoleARN = "AGENTKEYS_MEMORY_ROLE_ARN"
	EnvVaultBucket   = "AGENTKEYS_VAULT_BUCKET"
	EnvMemoryBucket  = "AGENTKEYS_MEMORY_BUCKET"
	EnvVendor        = "AGENTKEYS_VENDOR_URL"
	EnvKeyFile       = "AGENTKEYS_DEVICE_KEY_FILE"
	EnvSessionFile   = "AGENTKEYS_SESSION_FILE"
)

// EndpointsFromEnv reads the endpoints from the environment. The four service URLs are
// required; role ARNs and buckets default to the harness's names; the vendor's URL is
// optional.
func EndpointsFromEnv() (Endpoints, error) {
	e := Endpoints{
		Broker:        os.Getenv(EnvBroker),
		STS:           os.Getenv(EnvSTS),
		CredWorker:    os.Getenv(EnvCredWorker),
		MemoryWorker:  os.Getenv(EnvMemoryWorker),
		S3:            os.Getenv(EnvS3),
		VaultRoleARN:  envOr(EnvVaultRoleARN, wire.DefaultVaultRoleARN),
		MemoryRoleARN: envOr(EnvMemoryRoleARN, wire.DefaultMemoryRoleARN),
		VaultBucket:   envOr(EnvVaultBucket, wire.DefaultVaultBucket),
		MemoryBucket:  envOr(EnvMemoryBucket, wire.DefaultMemoryBucket),
		Vendor:        os.Getenv(EnvVendor),
	}
	var missing []string
	for name, v := range map[string]string{EnvBroker: e.Broker, EnvSTS: e.STS,
		EnvCredWorker: e.CredWorker, EnvMemoryWorker: e.MemoryWorker} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return Endpoints{}, fmt.Errorf("endpoints: %s not set", strings.Join(missing, ", "))
	}
	return e, nil
}

// Env returns the endpoints as AGENTKEYS_* variables, the inverse of EndpointsFromEnv.
// An empty vendor URL is left out, as EndpointsFromEnv reads a missing one.
func (e Endpoints) Env() map[string]string {
	env := map[string]string{
		EnvBroker: e.Broker, EnvSTS: e.STS, EnvCredWorker: e.CredWorker,
		EnvMemoryWorker: e.MemoryWorker, EnvS3: e.S3, EnvVaultRoleARN: e.VaultRoleARN,
		EnvMemoryRoleARN: e.MemoryRoleARN, EnvVaultBucket: e.VaultBucket,
		EnvMemoryBucket: e.MemoryBucket,
	}
	if e.Vendor != "" {
		env[EnvVendor] = e.Vendor
	}
	return env
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Client acts as one identity, a master or an agent: it holds the device key and the
// session and walks the chain cap-mint, OIDC JWT, STS, worker for each operation.
type Client struct {
	Endpoints
	// Key is the device key that signs proofs of possession.
	Key *evm.Key
	// Session is the broker session JWT.
	Session string
	// Omni is the session's identity.
	Omni omni.Omni
	// HTTP is the transport; nil means DefaultHTTPClient.
	HTTP *http.Client
}

func (c *Client) broker() *Broker { return &Broker{URL: c.Broker, HTTP: c.HTTP} }

// MintCap mints a cap at route for (operator, actor, service) with the client's device
// key as proof of possession, and returns the token's raw JSON.
func (c *Client) MintCap(ctx context.Context, route string, operator, actor omni.Omni,
	service string, opts ...MintOption) ([]byte, error) {
	req := wire.CapRequest{
		Operator: operator.Prefixed(), Actor: actor.Prefixed(), Service: service,
		DeviceKeyHash: c.Key.DeviceKeyHash(),
	}
	opts = append([]MintOption{WithPop(c.Key, time.Time{})}, opts...)
	_, raw, err := c.broker().MintCap(ctx, c.Session, route, req, opts...)
	return raw, err
}

// Credentials mints an OIDC JWT with the session and exchanges it at the STS stub for
// the role's temporary credentials.
func (c *Client) Credentials(ctx context.Context, role Role) (STSCreds, error) {
	arn := c.VaultRoleARN
	if role == RoleMemory {
		arn = c.MemoryRoleARN
	}
	if arn == "" {
		return STSCreds{}, fmt.Errorf("credentials: no role ARN for %s", role)
	}
	oidc, err := c.broker().MintOIDC(ctx, c.Session)
	if err != nil {
		return STSCreds{}, err
	}
	sts := &STS{URL: c.STS, HTTP: c.HTTP}
	return sts.AssumeRole(ctx, arn, oidc.JWT, "agentkeys-"+c.Omni.String()[:16], 0)
}

// CredStore stores a self-owned credential: cap-mint with operator = actor = the
// client's omni, vault credentials, then the cred worker.
func (c *Client) CredStore(ctx context.Context, service string, plaintext []byte) (
	wire.StoreAnswer, error) {
	token, err := c.MintCap(ctx, wire.RouteCapCredStore, c.Omni, c.Omni, service)
	if err != nil {
		return wire.StoreAnswer{}, err
	}
	creds, err := c.Credentials(ctx, RoleVault)
	if err != nil {
		return wire.StoreAnswer{}, err
	}
	return c.credWorker().CredStore(ctx, creds, token, plaintext)
}

// CredFetch reads a self-owned credential back.
func (c *Client) CredFetch(ctx context.Context, service string) ([]byte, error) {
	token, err := c.MintCap(ctx, wire.RouteCapCredFetch, c.Omni, c.Omni, service)
	if err != nil {
		return nil, err
	}
	creds, err := c.Credentials(ctx, RoleVault)
	if err != nil {
		return nil, err
	}
	return c.credWorker().CredFetch(ctx, creds, token)
}

// CredList names the services in the client's own vault. The list route takes a
// master-self fetch cap; its service names nothing, so the route's own name is used.
func (c *Client) CredList(ctx context.Context) ([]string, error) {
	token, err := c.MintCap(ctx, wire.RouteCapCredFetch, c.Omni, c.Omni, "list")
	if err != nil {
		return nil, err
	}
	creds, err := c.Credentials(ctx, RoleVault)
	if err != nil {
		return nil, err
	}
	return c.credWorker().CredList(ctx, creds, token)
}

// MemoryService is the cap service of a memory namespace.
func MemoryService(namespace string) string { return "memory:" + namespace }

// MemoryPut stores memory under namespace. With token nil it mints a self-owned cap;
// otherwise it uses the given cap (one a master minted for this agent, say) with the
// client's own memory credentials.
func (c *Client) MemoryPut(ctx context.Context, namespace string, plaintext, token []byte) (
	wire.StoreAnswer, error) {
	if token == nil {
		var err error
		token, err = c.MintCap(ctx, wire.RouteCapMemoryPut, c.Omni, c.Omni,
			MemoryService(namespace))
		if err != nil {
			return wire.StoreAnswer{}, err
		}
	}
	creds, err := c.Credentials(ctx, RoleMemory)
	if err != nil {
		return wire.StoreAnswer{}, err
	}
	return c.memoryWorker().MemoryPut(ctx, creds, token, plaintext)
}

// MemoryGet reads memory under namespace, with a self-owned cap when token is nil.
func (c *Client) MemoryGet(ctx context.Context, namespace string, token []byte) ([]byte, error) {
	if token == nil {
		var err error
		token, err = c.MintCap(ctx, wire.RouteCapMemoryGet, c.Omni, c.Omni,
			MemoryService(namespace))
		if err != nil {
			return nil, err
		}
	}
	creds, err := c.Credentials(ctx, RoleMemory)
	if err != nil {
		return nil, err
	}
	return c.memoryWorker().MemoryGet(ctx, creds, token)
}

func (c *Client) credWorker() *Worker   { return &Worker{URL: c.CredWorker, HTTP: c.HTTP} }
func (c *Client) memoryWorker() *Worker { return &Worker{URL: c.MemoryWorker, HTTP: c.HTTP} }

// PayloadOf returns the payload of a raw cap token, for callers that need its fields.
func PayloadOf(token []byte) (cap.Payload, error) {
	t, err := cap.Decode(token)
	if err != nil {
		return cap.Payload{}, err
	}
	return t.Payload, nil
}

// ErrNotPaired means the agent has no session yet.
var ErrNotPaired = errors.New("not paired: run pair request and pair poll first")
