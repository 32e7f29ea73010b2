package worker

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/agentkeys/harness/internal/fault"
	"github.com/agentkeys/harness/mocks/chain"
	"github.com/agentkeys/harness/protocol/envelope"
)

// Config configures a worker. The zero value of every optional field is the safe
// choice: in particular a worker requires STS credentials on every request unless
// AllowWorkerCredentials is set.
type Config struct {
	// Endpoint is the S3 (MinIO) base URL, e.g. http://127.0.0.1:9000.
	Endpoint string
	// Bucket is the bucket this worker reads and writes: the vault bucket for the
	// credentials worker, the memory bucket for the memory worker.
	Bucket string
	// KEK seals and opens envelopes. A KEK whose bytes are all equal is refused.
	KEK envelope.KEK
	// BrokerKey verifies broker_sig.
	BrokerKey *ecdsa.PublicKey
	// Chain is the registry the chain checks read.
	Chain chain.Registry

	// AllowWorkerCredentials turns require_sts off: a request with none of the X-Aws-*
	// headers then runs with Credentials below. Off, such a request is a 401, which is
	// the harness default and the only mode in which IAM limits a stolen cap.
	AllowWorkerCredentials bool
	// Credentials are the worker's own S3 credentials, used only when
	// AllowWorkerCredentials is set (and then required).
	Credentials Credentials

	// Now is the clock of the freshness check; nil means time.Now.
	Now func() time.Time
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
	// HTTPClient carries the S3 calls; nil means a client of the worker's own, so that
	// every per-request S3 client shares one connection pool.
	HTTPClient *http.Client
	// Faults selects known-bad behaviour for the mutation self-check. Zero is correct.
	// WorkerUsesRootCredentials needs Credentials set to MinIO's root credentials.
	Faults fault.Set
}

// Credentials are S3 credentials: a caller's temporary ones from the X-Aws-* headers, or
// the worker's own.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

// s3Timeout bounds one S3 call, so a stalled MinIO fails a request instead of hanging it.
const s3Timeout = 30 * time.Second

// withDefaults validates cfg and fills in the optional fields.
func (cfg Config) withDefaults() (Config, error) {
	u, err := url.Parse(cfg.Endpoint)
	switch {
	case cfg.Endpoint == "":
		return Config{}, errors.New("worker config: Endpoint is required")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return Config{}, fmt.Errorf("worker config: Endpoint %q is not an http(s) URL",
			cfg.Endpoint)
	case cfg.Bucket == "":
		return Config{}, errors.New("worker config: Bucket is required")
	case cfg.BrokerKey == nil:
		return Config{}, errors.New("worker config: BrokerKey is required")
	case cfg.Chain == nil:
		return Config{}, errors.New("worker config: Chain is required")
	}
	if err := cfg.KEK.Validate(); err != nil {
		return Config{}, fmt.Errorf("worker config: %w", err)
	}
	if cfg.AllowWorkerCredentials &&
		(cfg.Credentials.AccessKeyID == "" || cfg.Credentials.SecretAccessKey == "") {
		return Config{}, errors.New(
			"worker config: AllowWorkerCredentials needs the worker's own Credentials")
	}

	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTPClient == nil {
		// No proxy: the worker talks to its own S3 endpoint, and a proxy set in the
		// environment must never sit between it and that server.
		cfg.HTTPClient = &http.Client{
			Transport: &http.Transport{MaxIdleConnsPerHost: 32, IdleConnTimeout: time.Minute},
			Timeout:   s3Timeout,
		}
	}
	return cfg, nil
}
