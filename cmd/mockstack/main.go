// Command mockstack serves the four agentkeys mocks (broker, STS stub, credentials
// worker, memory worker) over one MinIO, each on its own port, and the mock vendor on a
// fifth, and prints one ready line with their URLs. It stops cleanly on SIGTERM or
// SIGINT. Given a mail catcher's SMTP address and API URL, it turns on email sign-in,
// the agents' mailbox and the vendor's sign-up; without them those answer 503.
//
// Every flag has an environment variable; secrets (MinIO root credentials, the admin
// token, the workers' KEKs) are read from the environment only, so they never show in a
// process listing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/agentkeys/harness/mocks/stack"
	"github.com/agentkeys/harness/protocol/envelope"
	"github.com/agentkeys/harness/protocol/wire"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mockstack:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mockstack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	str := func(name, env, def, usage string) *string {
		if v := os.Getenv(env); v != "" {
			def = v
		}
		return fs.String(name, def, usage+" (env "+env+")")
	}
	brokerAddr := str("broker-addr", "MOCKSTACK_BROKER_ADDR", "127.0.0.1:8080",
		"broker listen address")
	stsAddr := str("sts-addr", "MOCKSTACK_STS_ADDR", "127.0.0.1:8081", "STS stub listen address")
	credAddr := str("cred-addr", "MOCKSTACK_CRED_ADDR", "127.0.0.1:8082",
		"credentials worker listen address")
	memAddr := str("memory-addr", "MOCKSTACK_MEMORY_ADDR", "127.0.0.1:8083",
		"memory worker listen address")
	minioURL := str("minio", "MOCKSTACK_MINIO_ENDPOINT", "", "MinIO base URL (required)")
	vault := str("vault-bucket", "MOCKSTACK_VAULT_BUCKET", wire.DefaultVaultBucket,
		"vault bucket")
	memory := str("memory-bucket", "MOCKSTACK_MEMORY_BUCKET", wire.DefaultMemoryBucket,
		"memory bucket")
	public := str("broker-public-url", "MOCKSTACK_BROKER_PUBLIC_URL", "",
		"the broker's URL as clients reach it, used as the OIDC issuer")
	vendorAddr := str("vendor-addr", "MOCKSTACK_VENDOR_ADDR", "127.0.0.1:8084",
		"mock vendor listen address")
	vendorPublic := str("vendor-public-url", "MOCKSTACK_VENDOR_PUBLIC_URL", "",
		"the vendor's URL as a mail's reader reaches it, the base of its links")
	smtpAddr := str("smtp", "MOCKSTACK_SMTP_ADDR", "",
		"the mail catcher's SMTP host:port; empty turns email off")
	mailAPI := str("mail-api", "MOCKSTACK_MAIL_API_URL", "",
		"the mail catcher's HTTP API base URL, read by the agents' mailbox")
	if err := fs.Parse(args); err != nil {
		return err
	}

	cfg := stack.Config{
		MinIOEndpoint: *minioURL, VaultBucket: *vault, MemoryBucket: *memory,
		RootUser:     os.Getenv("MOCKSTACK_MINIO_ROOT_USER"),
		RootPassword: os.Getenv("MOCKSTACK_MINIO_ROOT_PASSWORD"),
		BrokerAddr:   *brokerAddr, STSAddr: *stsAddr, CredAddr: *credAddr,
		MemoryAddr: *memAddr, BrokerPublicURL: *public,
		VendorAddr: *vendorAddr, VendorPublicURL: *vendorPublic,
		SMTPAddr: *smtpAddr, MailAPIURL: *mailAPI,
		AdminToken: os.Getenv("MOCKSTACK_ADMIN_TOKEN"),
		Logger:     slog.New(slog.NewTextHandler(stderr, nil)),
	}
	if cfg.MinIOEndpoint == "" {
		return errors.New("-minio (MOCKSTACK_MINIO_ENDPOINT) is required")
	}
	if cfg.RootUser == "" || cfg.RootPassword == "" {
		return errors.New(
			"MOCKSTACK_MINIO_ROOT_USER and MOCKSTACK_MINIO_ROOT_PASSWORD are required")
	}
	if cfg.AdminToken == "" {
		return errors.New("MOCKSTACK_ADMIN_TOKEN is required: the chain's admin routes need it")
	}
	for env, dst := range map[string]*envelope.KEK{
		"MOCKSTACK_CRED_KEK": &cfg.CredKEK, "MOCKSTACK_MEMORY_KEK": &cfg.MemoryKEK,
	} {
		if v := os.Getenv(env); v != "" {
			k, err := envelope.ParseKEK(v)
			if err != nil {
				return fmt.Errorf("%s: %w", env, err)
			}
			*dst = k
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	s, err := stack.Start(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "mockstack ready broker=%s sts=%s cred-worker=%s memory-worker=%s "+
		"vendor=%s\n", s.BrokerURL, s.STSURL, s.CredURL, s.MemoryURL, s.VendorURL)

	<-ctx.Done()
	return s.Close()
}
