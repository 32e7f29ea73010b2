// Package reply writes the mocks' JSON answers and errors and reads their JSON request
// bodies, so that every mock refuses bad input the same way: a 4xx with a reason.
package reply

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/agentkeys/harness/protocol/refusal"
)

// MaxBody is the largest request body any mock reads: 1 MiB.
const MaxBody = 1 << 20

// ReasonInvalidInput is the broker's reason for a request it cannot parse.
const ReasonInvalidInput = "invalid_input"

// JSON writes v with status.
func JSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, "encode answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Error writes the JSON error shape {"error", "reason"} and, when detail is not nil,
// "detail".
func Error(w http.ResponseWriter, status int, reason, message string, detail any) {
	body := struct {
		refusal.Body
		Detail any `json:"detail,omitempty"`
	}{Body: refusal.Body{Error: message, Reason: reason}, Detail: detail}
	JSON(w, status, body)
}

// BodyError is a request body that could not be read; Status says which 4xx it earns.
type BodyError struct {
	Status int
	Err    error
}

func (e *BodyError) Error() string { return e.Err.Error() }
func (e *BodyError) Unwrap() error { return e.Err }

// Decode reads r's body as one JSON object into v: at most MaxBody bytes (413 above),
// unknown fields and trailing data refused (400).
func Decode(w http.ResponseWriter, r *http.Request, v any) error {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &BodyError{http.StatusRequestEntityTooLarge,
				fmt.Errorf("body exceeds %d bytes", MaxBody)}
		}
		return &BodyError{http.StatusBadRequest, fmt.Errorf("read body: %w", err)}
	}

	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &BodyError{http.StatusBadRequest, fmt.Errorf("decode body: %w", err)}
	}
	if dec.More() {
		return &BodyError{http.StatusBadRequest, errors.New("decode body: trailing data")}
	}
	return nil
}

// DecodeError writes the answer for an error from Decode with reason.
func DecodeError(w http.ResponseWriter, err error, reason string) {
	status := http.StatusBadRequest
	var be *BodyError
	if errors.As(err, &be) {
		status = be.Status
	}
	if status == http.StatusRequestEntityTooLarge {
		reason = "payload_too_large"
	}
	Error(w, status, reason, err.Error(), nil)
}
