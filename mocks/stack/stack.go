// Package stack runs the four mocks together over one MinIO: the broker (with the chain's
// admin routes), the STS stub and both workers, each on its own listener, and beside them
// the mock vendor that agents sign up with by email. cmd/mockstack serves a Stack as a
// program; the process backend of the harness runs one in the test process.
package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/agentkeys/harness/internal/fault"
	"github.com/agentkeys/harness/mocks/broker"
	"github.com/agentkeys/harness/mocks/catcher"
	"github.com/agentkeys/harness/mocks/chain"
	"github.com/agentkeys/harness/mocks/credworker"
	"github.com/agentkeys/harness/mocks/memworker"
	"github.com/agentkeys/harness/mocks/sts"
	"github.com/agentkeys/harness/mocks/vendor"
	"github.com/agentkeys/harness/mocks/worker"
	"github.com/agentkeys/harness/protocol/envelope"
)

// Config says where MinIO is and where the mocks listen.
type Config struct {
	// MinIOEndpoint is MinIO's base URL as the mocks reach it.
	MinIOEndpoint string
	// RootUser and RootPassword are the STS stub's parent credentials.
	RootUser     string
	RootPassword string
	VaultBucket  string
	MemoryBucket string

	// Listen addresses; empty means a free port on 127.0.0.1.
	BrokerAddr string
	STSAddr    string
	CredAddr   string
	MemoryAddr string
	// BrokerPublicURL is the broker's URL as its clients reach it, which becomes the
	// OIDC issuer; empty means the URL of its listener.
	BrokerPublicURL string

	// AdminToken guards the chain's admin routes; empty means a random one.
	AdminToken string
	// CredKEK and MemoryKEK are the workers' keys; zero means random.
	CredKEK   envelope.KEK
	MemoryKEK envelope.KEK

	// SMTPAddr is the mail catcher's SMTP host:port and MailAPIURL the base URL of its
	// HTTP API, both as the mocks reach them. They turn on email sign-in, the mailbox
	// and the vendor's sign-up; while they are empty those answer 503 email_unavailable
	// and nothing else changes.
	SMTPAddr   string
	MailAPIURL string
	// VendorAddr is the vendor's listen address; empty means a free port on 127.0.0.1.
	// VendorPublicURL is its URL as a mail's reader reaches it, the base of its
	// verification links; empty means the URL of its listener.
	VendorAddr      string
	VendorPublicURL string

	// Now is the clock of the broker, the STS stub and the workers; nil means time.Now.
	Now func() time.Time
	// Logger receives the mocks' lines; nil discards.
	Logger *slog.Logger

	// Faults selects known-bad behaviour for the mutation self-check. Zero is correct,
	// and cmd/mockstack never sets it.
	Faults fault.Set
}

// Stack is the four mocks, running.
type Stack struct {
	Chain  *chain.Memory
	Broker *broker.Broker
	STS    *sts.Stub
	Cred   *credworker.Worker
	Memory *memworker.Worker
	Vendor *vendor.Vendor

	BrokerURL  string
	STSURL     string
	CredURL    string
	MemoryURL  string
	VendorURL  string
	AdminToken string

	servers []*http.Server
	done    []chan error
}

// Start builds the mocks and serves each on its listener. The listeners are bound before
// Start returns, so the URLs answer at once.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.AdminToken == "" {
		cfg.AdminToken = randomHex(16)
	}
	if cfg.CredKEK == (envelope.KEK{}) {
		cfg.CredKEK = envelope.NewKEK()
	}
	if cfg.MemoryKEK == (envelope.KEK{}) {
		cfg.MemoryKEK = envelope.NewKEK()
	}

	s := &Stack{Chain: chain.NewMemory(), AdminToken: cfg.AdminToken}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()

	brokerLn, brokerURL, err := listen(cfg.BrokerAddr)
	if err != nil {
		return nil, fmt.Errorf("start broker: %w", err)
	}
	s.BrokerURL = brokerURL
	public := cfg.BrokerPublicURL
	if public == "" {
		public = brokerURL
	}
	s.Broker, err = broker.New(broker.Config{
		Chain: s.Chain, AdminToken: cfg.AdminToken, Issuer: public, Now: cfg.Now,
		Logger: log.With("mock", "broker"), Faults: cfg.Faults,
		Email: emailConfig(cfg, public),
	})
	if err != nil {
		brokerLn.Close()
		return nil, fmt.Errorf("start broker: %w", err)
	}
	s.serve(brokerLn, s.Broker.Handler())

	// The stub fetches the JWKS over the broker's own listener, which it can always
	// reach, whatever name the broker's clients use.
	s.STS, err = sts.New(sts.Config{
		MinIOEndpoint: cfg.MinIOEndpoint, ParentAccessKey: cfg.RootUser,
		ParentSecretKey: cfg.RootPassword, VaultBucket: cfg.VaultBucket,
		MemoryBucket: cfg.MemoryBucket, JWKSURL: brokerURL + "/.well-known/jwks.json",
		Now: cfg.Now, Logger: log.With("mock", "sts"), Faults: cfg.Faults,
	})
	if err != nil {
		return nil, fmt.Errorf("start sts stub: %w", err)
	}
	if s.STSURL, err = s.listenAndServe(cfg.STSAddr, s.STS.Handler()); err != nil {
		return nil, fmt.Errorf("start sts stub: %w", err)
	}

	base := worker.Config{
		Endpoint: cfg.MinIOEndpoint, BrokerKey: s.Broker.CapPublicKey(), Chain: s.Chain,
		Now: cfg.Now, Faults: cfg.Faults,
	}
	if cfg.Faults.WorkerUsesRootCredentials {
		base.Credentials = worker.Credentials{AccessKeyID: cfg.RootUser,
			SecretAccessKey: cfg.RootPassword}
	}
	credCfg := base
	credCfg.Bucket, credCfg.KEK = cfg.VaultBucket, cfg.CredKEK
	credCfg.Logger = log.With("mock", "cred-worker")
	if s.Cred, err = credworker.New(credCfg); err != nil {
		return nil, fmt.Errorf("start cred worker: %w", err)
	}
	if s.CredURL, err = s.listenAndServe(cfg.CredAddr, s.Cred.Handler()); err != nil {
		return nil, fmt.Errorf("start cred worker: %w", err)
	}

	memCfg := base
	memCfg.Bucket, memCfg.KEK = cfg.MemoryBucket, cfg.MemoryKEK
	memCfg.Logger = log.With("mock", "memory-worker")
	if s.Memory, err = memworker.New(memCfg); err != nil {
		return nil, fmt.Errorf("start memory worker: %w", err)
	}
	if s.MemoryURL, err = s.listenAndServe(cfg.MemoryAddr, s.Memory.Handler()); err != nil {
		return nil, fmt.Errorf("start memory worker: %w", err)
	}

	if err := s.startVendor(cfg, log); err != nil {
		return nil, fmt.Errorf("start vendor: %w", err)
	}

	log.Info("mock stack ready", "broker", s.BrokerURL, "sts", s.STSURL, "cred", s.CredURL,
		"memory", s.MemoryURL, "vendor", s.VendorURL, "smtp", cfg.SMTPAddr)
	return s, nil
}

// emailConfig is the broker's email set-up: links name the broker's public URL, and the
// mailbox reads the catcher's API.
func emailConfig(cfg Config, public string) broker.EmailConfig {
	e := broker.EmailConfig{SMTPAddr: cfg.SMTPAddr, LinkBaseURL: public}
	if cfg.MailAPIURL != "" {
		e.Mailbox = &catcher.Client{URL: cfg.MailAPIURL}
	}
	return e
}

// startVendor serves the mock vendor on its own listener.
func (s *Stack) startVendor(cfg Config, log *slog.Logger) error {
	ln, url, err := listen(cfg.VendorAddr)
	if err != nil {
		return err
	}
	public := cfg.VendorPublicURL
	if public == "" {
		public = url
	}
	s.Vendor, err = vendor.New(vendor.Config{
		SMTPAddr: cfg.SMTPAddr, PublicURL: public, Now: cfg.Now,
		Logger: log.With("mock", "vendor"),
	})
	if err != nil {
		ln.Close()
		return err
	}
	s.serve(ln, s.Vendor.Handler())
	s.VendorURL = url
	return nil
}

// Admin is a client of the chain's admin routes on this stack's broker.
func (s *Stack) Admin() *chain.Admin {
	return &chain.Admin{URL: s.BrokerURL, Token: s.AdminToken}
}

// Close stops every listener, letting requests in flight finish for up to five seconds.
func (s *Stack) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range s.servers {
		errs = append(errs, srv.Shutdown(ctx))
	}
	for _, d := range s.done {
		if err := <-d; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	s.servers, s.done = nil, nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close mock stack: %w", err)
	}
	return nil
}

func (s *Stack) listenAndServe(addr string, h http.Handler) (string, error) {
	ln, url, err := listen(addr)
	if err != nil {
		return "", err
	}
	s.serve(ln, h)
	return url, nil
}

func (s *Stack) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	s.servers = append(s.servers, srv)
	s.done = append(s.done, done)
}

// listen binds addr (a free loopback port when empty) and returns the listener and the
// URL that reaches it from this host.
func listen(addr string) (net.Listener, string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("listen on %s: %w", addr, err)
	}
	a := ln.Addr().(*net.TCPAddr)
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return ln, fmt.Sprintf("http://%s", net.JoinHostPort(host, fmt.Sprint(a.Port))), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("stack: read random: " + err.Error())
	}
	return hex.EncodeToString(b)
}
