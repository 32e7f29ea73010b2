package agent

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"github.com/agentkeys/harness/protocol/wire"
)

// Worker calls the credentials worker or the memory worker; which one is URL's business.
// Every call carries the caller's STS credentials in the X-Aws-* headers, so that the
// worker writes and reads through the caller's own IAM policy.
type Worker struct {
	// URL is the worker's base URL.
	URL string
	// HTTP is the transport; nil means DefaultHTTPClient.
	HTTP *http.Client
}

// CredStore vaults plaintext under a cred-store cap (token is the cap token JSON).
func (w *Worker) CredStore(ctx context.Context, creds STSCreds, token, plaintext []byte) (
	wire.StoreAnswer, error) {
	return w.store(ctx, "cred store", wire.RouteCredStore, creds, token, plaintext)
}

// CredFetch reads a credential back under a cred-fetch cap.
func (w *Worker) CredFetch(ctx context.Context, creds STSCreds, token []byte) ([]byte, error) {
	return w.fetch(ctx, "cred fetch", wire.RouteCredFetch, creds, token)
}

// CredList names the services in the vault of a master-self cred-fetch cap.
func (w *Worker) CredList(ctx context.Context, creds STSCreds, token []byte) ([]string, error) {
	var ans wire.ListAnswer
	err := call(ctx, w.HTTP, "cred list", http.MethodPost, w.url(wire.RouteCredList),
		workerHeaders(creds), wire.FetchRequest{Cap: token}, &ans)
	if err != nil {
		return nil, err
	}
	return ans.Services, nil
}

// MemoryPut stores plaintext under a memory-put cap.
func (w *Worker) MemoryPut(ctx context.Context, creds STSCreds, token, plaintext []byte) (
	wire.StoreAnswer, error) {
	return w.store(ctx, "memory put", wire.RouteMemoryPut, creds, token, plaintext)
}

// MemoryGet reads memory back under a memory-get cap.
func (w *Worker) MemoryGet(ctx context.Context, creds STSCreds, token []byte) ([]byte, error) {
	return w.fetch(ctx, "memory get", wire.RouteMemoryGet, creds, token)
}

func (w *Worker) store(ctx context.Context, op, route string, creds STSCreds, token,
	plaintext []byte) (wire.StoreAnswer, error) {
	var ans wire.StoreAnswer
	body := wire.StoreRequest{Cap: token,
		PlaintextB64: base64.StdEncoding.EncodeToString(plaintext)}
	err := call(ctx, w.HTTP, op, http.MethodPost, w.url(route), workerHeaders(creds), body,
		&ans)
	return ans, err
}

func (w *Worker) fetch(ctx context.Context, op, route string, creds STSCreds,
	token []byte) ([]byte, error) {
	var ans wire.FetchAnswer
	err := call(ctx, w.HTTP, op, http.MethodPost, w.url(route), workerHeaders(creds),
		wire.FetchRequest{Cap: token}, &ans)
	if err != nil {
		return nil, err
	}
	plaintext, err := base64.StdEncoding.DecodeString(ans.PlaintextB64)
	if err != nil {
		return nil, fmt.Errorf("%s: decode plaintext_b64: %w", op, err)
	}
	return plaintext, nil
}

func (w *Worker) url(route string) string { return strings.TrimSuffix(w.URL, "/") + route }

// workerHeaders puts each credential that is set into its X-Aws-* header. Zero creds send
// none, which a worker running without require_sts answers with its own credentials.
func workerHeaders(creds STSCreds) http.Header {
	h := http.Header{}
	for name, v := range map[string]string{
		wire.HeaderAccessKeyID:     creds.AccessKeyID,
		wire.HeaderSecretAccessKey: creds.SecretAccessKey,
		wire.HeaderSessionToken:    creds.SessionToken,
	} {
		if v != "" {
			h.Set(name, v)
		}
	}
	return h
}

// Post sends any body to a worker route with creds, for callers that must send what the
// typed methods would not (an extra field, say) to show how the worker answers it.
func (w *Worker) Post(ctx context.Context, creds STSCreds, route string, body, out any) error {
	return call(ctx, w.HTTP, "worker "+route, http.MethodPost, w.url(route),
		workerHeaders(creds), body, out)
}
