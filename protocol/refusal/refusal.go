// Package refusal is the typed form of a "no" from the system under test: the HTTP
// status, the snake_case reason of the broker and workers, and the S3 or STS error code.
// Tests compare these fields; they never search free text.
package refusal

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Body is the JSON error body of the broker and the workers.
type Body struct {
	Error  string          `json:"error"`
	Reason string          `json:"reason"`
	Detail json.RawMessage `json:"detail,omitempty"`
}

// Refusal is a failed call, as the caller observed it.
type Refusal struct {
	// Status is the HTTP status, or 0 when the refusal did not come over HTTP.
	Status int
	// Reason is the broker's or worker's reason string, when it sent one.
	Reason string
	// Code is the S3 or STS error code (AccessDenied, InvalidIdentityToken, ...). For a
	// worker's s3_get or s3_put it is the first s3_code of detail.attempts.
	Code string
	// Message is the human-readable text. It is for people, never for assertions.
	Message string
}

func (r *Refusal) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "refused: HTTP %d", r.Status)
	if r.Reason != "" {
		fmt.Fprintf(&b, " reason=%s", r.Reason)
	}
	if r.Code != "" {
		fmt.Fprintf(&b, " code=%s", r.Code)
	}
	if r.Message != "" {
		fmt.Fprintf(&b, ": %s", r.Message)
	}
	return b.String()
}

// Detail of a worker's S3 failure.
type s3Detail struct {
	Attempts []struct {
		S3Code string `json:"s3_code"`
	} `json:"attempts"`
	S3Code string `json:"s3_code"`
}

// FromResponse reads a non-2xx response of the broker or a worker into a Refusal. A body
// that is not the JSON error shape (a plain-text 401, say) becomes the Message.
func FromResponse(resp *http.Response) *Refusal {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	r := &Refusal{Status: resp.StatusCode}

	var body Body
	if err := json.Unmarshal(raw, &body); err != nil || (body.Reason == "" && body.Error == "") {
		r.Message = strings.TrimSpace(string(raw))
		return r
	}
	r.Reason = body.Reason
	r.Message = body.Error

	var d s3Detail
	if len(body.Detail) > 0 && json.Unmarshal(body.Detail, &d) == nil {
		r.Code = d.S3Code
		if len(d.Attempts) > 0 {
			r.Code = d.Attempts[0].S3Code
		}
	}
	return r
}
