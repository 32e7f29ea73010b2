package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/agentkeys/harness/protocol/refusal"
)

func TestJudgeMatchesTheExactKind(t *testing.T) {
	denied := &refusal.Refusal{Status: 403, Code: "AccessDenied"}
	opMismatch := &refusal.Refusal{Status: 403, Reason: "operator_mismatch"}
	stolen := &refusal.Refusal{Status: 502, Reason: "s3_put", Code: "AccessDenied"}

	cases := []struct {
		name   string
		want   expect
		expect string // the line's expect field, as printed
		err    error
		pass   bool
	}{
		{"success expected and seen", okay, "ok", nil, true},
		{"refusal where success expected", okay, "ok", denied, false},
		{"success where refusal expected", s3Denied, "403 code=AccessDenied", nil, false},
		{"s3 denial", s3Denied, "403 code=AccessDenied", fmt.Errorf("wrapped: %w", denied), true},
		{"other s3 code", s3Denied, "403 code=AccessDenied",
			&refusal.Refusal{Status: 403, Code: "SignatureDoesNotMatch"}, false},
		{"not found is no refusal", s3Denied, "403 code=AccessDenied",
			&refusal.Refusal{Status: 404, Code: "NoSuchKey"}, false},
		{"reason matched", brokerRefused(403, "operator_mismatch"), "403 reason=operator_mismatch",
			opMismatch, true},
		{"one of two reasons", brokerRefused(403, "a", "operator_mismatch"),
			"403 reason=a|operator_mismatch", opMismatch, true},
		{"wrong reason", brokerRefused(403, "device_binding_mismatch"),
			"403 reason=device_binding_mismatch", opMismatch, false},
		{"wrong status", brokerRefused(401, "operator_mismatch"), "401 reason=operator_mismatch",
			opMismatch, false},
		{"worker relays denial", workerDenied("s3_put"), "502 reason=s3_put code=AccessDenied", stolen,
			true},
		{"worker relays other code", workerDenied("s3_put"), "502 reason=s3_put code=AccessDenied",
			&refusal.Refusal{Status: 502, Reason: "s3_put", Code: "RequestError"}, false},
		{"transport failure never passes", s3Denied, "403 code=AccessDenied",
			errors.New("connection refused"), false},
		{"a 5xx never passes for a 4xx", brokerRefused(403, "x"), "403 reason=x",
			&refusal.Refusal{Status: 500, Reason: "x"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := judge("n", "self", tc.want, tc.err)
			assert.Equal(t, tc.pass, l.Pass, "%+v", l)
			assert.Equal(t, tc.expect, l.Expect)
		})
	}
}
