package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/agentkeys/harness/protocol/refusal"
)

// DefaultHTTPClient is used when a caller gives none. It has a timeout so that a stalled
// component fails a test with a message rather than hanging it.
var DefaultHTTPClient = &http.Client{Timeout: 30 * time.Second}

// call sends a JSON request and decodes a JSON answer. A non-2xx answer becomes a
// *refusal.Refusal; a transport failure is wrapped with the operation's name.
func call(ctx context.Context, hc *http.Client, op, method, url string, header http.Header,
	body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s: encode request: %w", op, err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	if hc == nil {
		hc = DefaultHTTPClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s: %w", op, refusal.FromResponse(resp))
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", op, err)
	}
	return nil
}

// bearer returns the Authorization header for a session JWT.
func bearer(jwt string) http.Header {
	h := http.Header{}
	if jwt != "" {
		h.Set("Authorization", "Bearer "+jwt)
	}
	return h
}
