package worker

import (
	"errors"
	"net/http"
	"strings"

	"github.com/agentkeys/harness/protocol/wire"
)

// credentialHeaders are the three X-Aws-* headers; a request carries all or none.
var credentialHeaders = [...]string{
	wire.HeaderAccessKeyID,
	wire.HeaderSecretAccessKey,
	wire.HeaderSessionToken,
}

// errNoSTS is a request without any X-Aws-* header at a worker that requires them.
var errNoSTS = errors.New("STS credentials required: send X-Aws-Access-Key-Id, " +
	"X-Aws-Secret-Access-Key and X-Aws-Session-Token")

// credentialsFrom reads the caller's credentials from h. It runs before the body is
// read, so a request without credentials costs the worker no parsing. All three headers,
// each once and non-empty, give the caller's credentials; none gives the worker's own
// when the config allows them; anything in between is an error for a plain-text 401.
func (c *Core) credentialsFrom(h http.Header) (Credentials, error) {
	var vals [len(credentialHeaders)]string
	present := 0
	for i, name := range credentialHeaders {
		// http.Header keys are canonical, so this lookup is case-insensitive on the wire.
		vs, ok := h[http.CanonicalHeaderKey(name)]
		if !ok {
			continue
		}
		present++
		if len(vs) != 1 || strings.TrimSpace(vs[0]) == "" {
			return Credentials{}, errors.New(name + " must appear once with a value")
		}
		vals[i] = vs[0]
	}

	switch present {
	case len(credentialHeaders):
		return Credentials{AccessKeyID: vals[0], SecretAccessKey: vals[1],
			SessionToken: vals[2]}, nil
	case 0:
		if !c.cfg.AllowWorkerCredentials {
			return Credentials{}, errNoSTS
		}
		return c.cfg.Credentials, nil
	default:
		return Credentials{}, errors.New("incomplete STS credentials: send all three of " +
			"X-Aws-Access-Key-Id, X-Aws-Secret-Access-Key and X-Aws-Session-Token")
	}
}
