package worker_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentkeys/harness/mocks/worker"
	"github.com/agentkeys/harness/mocks/worker/workertest"
	"github.com/agentkeys/harness/protocol/refusal"
)

// FuzzWorkerRequest throws arbitrary bodies at every route of both workers with valid
// credentials headers. Whatever arrives, a worker must not panic, must not answer 5xx
// (no garbage may reach S3 or the envelope), and must refuse with a JSON reason.
func FuzzWorkerRequest(f *testing.F) {
	// The fuzz target may not log through f, so the workers stay silent here.
	s := newStack(f, shared, func(c *worker.Config) {
		c.Logger = slog.New(slog.DiscardHandler)
	})
	s.seed(f)

	for i, rt := range routes {
		valid := s.validBody(rt)
		f.Add(uint8(i), valid)
		// A valid body of one route at every other route.
		for j := range routes {
			if j != i {
				f.Add(uint8(j), valid)
			}
		}
		f.Add(uint8(i), body(rt, s.broker.Sign(workertest.WithPop(s.payload(rt),
			s.alice.Device))))
		f.Add(uint8(i), body(rt, workertest.NewBroker().Mint(s.payload(rt))))
	}
	for _, garbage := range []string{
		"", "{", "null", "[]", `"cap"`, `{"cap":null}`, `{"cap":{}}`, `{"cap":[]}`,
		`{"cap":{"payload":{},"broker_sig":""}}`,
		`{"cap":{"payload":{"k3_epoch":-1,"issued_at":1e400},"broker_sig":"x"}}`,
		`{"cap":{"payload":{"operator_omni":"0x` + strings.Repeat("A", 64) + `"},` +
			`"broker_sig":"` + strings.Repeat("A", 86) + `"}}`,
		`{"cap":{"payload":{"service":"\u0000"},"broker_sig":"AA","client_sig":"0x00"}}`,
		`{"plaintext_b64":"=","cap":{"payload":{"op":"store"},"broker_sig":"@"}}`,
		strings.Repeat("[", 10000),
	} {
		for i := range routes {
			f.Add(uint8(i), []byte(garbage))
		}
	}

	f.Fuzz(func(t *testing.T, which uint8, raw []byte) {
		rt := routes[int(which)%len(routes)]
		req := httptest.NewRequest(http.MethodPost, rt.path, bytes.NewReader(raw))
		for k, vs := range s.headers(rt) {
			req.Header[k] = vs
		}
		rec := httptest.NewRecorder()
		s.handler(rt).ServeHTTP(rec, req)

		if rec.Code >= 500 || rec.Code == http.StatusUnauthorized {
			t.Fatalf("%s answered %d: %s", rt.path, rec.Code, rec.Body.Bytes())
		}
		if rec.Code == http.StatusOK {
			return
		}
		var b refusal.Body
		if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Reason == "" {
			t.Fatalf("%s answered %d without a JSON reason: %s", rt.path, rec.Code,
				rec.Body.Bytes())
		}
	})
}
