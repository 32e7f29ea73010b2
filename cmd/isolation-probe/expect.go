package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/agentkeys/harness/protocol/refusal"
)

// expect is what an attempt must observe: success, or a refusal of one exact kind.
type expect struct {
	ok      bool
	status  int
	reasons []string // one of these, when not empty
	code    string   // exactly this, when not empty
}

var okay = expect{ok: true}

func refused(status int, code string, reasons ...string) expect {
	return expect{status: status, code: code, reasons: reasons}
}

// s3Denied is MinIO's own policy engine saying no.
var s3Denied = refused(403, "AccessDenied")

// workerDenied is a worker relaying MinIO's no for the caller's credentials.
func workerDenied(reason string) expect { return refused(502, "AccessDenied", reason) }

// brokerRefused and workerRefused are refusals by reason string.
func brokerRefused(status int, reasons ...string) expect { return refused(status, "", reasons...) }

func (e expect) String() string {
	if e.ok {
		return "ok"
	}
	// Named fields, so that the host can judge the line again on its own.
	parts := []string{fmt.Sprint(e.status)}
	if len(e.reasons) > 0 {
		parts = append(parts, "reason="+strings.Join(e.reasons, "|"))
	}
	if e.code != "" {
		parts = append(parts, "code="+e.code)
	}
	return strings.Join(parts, " ")
}

// line is one attempt's report.
type line struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	Expect string `json:"expect"`
	Status int    `json:"status"`
	Reason string `json:"reason,omitempty"`
	Code   string `json:"code,omitempty"`
	Error  string `json:"error,omitempty"`
	Pass   bool   `json:"pass"`
}

// judge compares what happened with what was expected. A refusal counts only as its
// exact kind; a transport failure or a refusal of another kind is a failure, never a
// pass, because a broken component must not look like isolation.
func judge(name, target string, want expect, err error) line {
	l := line{Name: name, Target: target, Expect: want.String()}
	var r *refusal.Refusal
	switch {
	case err == nil:
		l.Status = 200
		l.Pass = want.ok
	case errors.As(err, &r):
		l.Status, l.Reason, l.Code = r.Status, r.Reason, r.Code
		l.Pass = !want.ok && r.Status == want.status &&
			(len(want.reasons) == 0 || slices.Contains(want.reasons, r.Reason)) &&
			(want.code == "" || r.Code == want.code)
		if !l.Pass {
			l.Error = r.Message
		}
	default:
		l.Error = err.Error()
	}
	return l
}
