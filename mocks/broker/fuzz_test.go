package broker_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/agent"
	"github.com/agentkeys/harness/mocks/broker"
	"github.com/agentkeys/harness/mocks/chain"
	"github.com/agentkeys/harness/protocol/cap"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/refusal"
	"github.com/agentkeys/harness/protocol/wire"
)

// FuzzCapRequest feeds arbitrary bodies to the cap-mint routes, with and without a valid
// session. Whatever the bytes, the broker answers a JSON 2xx or 4xx with a reason; it
// never panics and never answers 5xx. A 200 must carry a cap that verifies.
func FuzzCapRequest(f *testing.F) {
	mem := chain.NewMemory()
	c := &clock{now: start}
	srv, err := broker.NewServer(broker.Config{
		Chain: mem, Now: c.Now, Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(f, err)
	f.Cleanup(srv.Close)

	client := &agent.Broker{URL: srv.URL}
	wallet, device := newKey(f), newKey(f)
	session, err := client.WalletSignIn(context.Background(), wallet)
	require.NoError(f, err)
	m := omni.Master(wallet.Address())
	require.NoError(f, mem.Register(chain.Device{
		DeviceKeyHash: device.DeviceKeyHash(), Parent: m, Agent: m,
		Roles: []string{chain.RoleCapMint},
	}))

	valid := capRequest(m, m, "memory:notes", device)
	route, _ := wire.CapRouteByPath(wire.RouteCapMemoryPut)
	withPop := valid
	require.NoError(f, agent.WithPop(device, start)(&withPop, route))
	ttl := int64(900)
	withTTL := valid
	withTTL.TTLSeconds = &ttl
	for _, seed := range [][]byte{
		mustJSON(f, valid), mustJSON(f, withPop), mustJSON(f, withTTL),
		[]byte(`{}`), []byte(`null`), []byte(`{"service":"..","ttl_seconds":1e400}`),
		[]byte(`{"operator_omni":"0x","client_ts":-9223372036854775808}`),
	} {
		f.Add(uint8(2), true, seed)
	}
	f.Add(uint8(0), false, mustJSON(f, valid))

	handler := srv.Handler()
	routes := wire.CapRoutes()
	f.Fuzz(func(t *testing.T, which uint8, authenticated bool, body []byte) {
		route := routes[int(which)%len(routes)]
		req := httptest.NewRequest(http.MethodPost, route.Path, bytes.NewReader(body))
		if authenticated {
			req.Header.Set("Authorization", "Bearer "+session)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)

		if rec.Code >= 500 {
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body)
		}
		if rec.Code == http.StatusOK {
			token, err := cap.Decode(rec.Body.Bytes())
			if err != nil {
				t.Fatalf("200 with an undecodable cap: %v", err)
			}
			if err := cap.Verify(srv.CapPublicKey(), token); err != nil {
				t.Fatalf("200 with a cap that does not verify: %v", err)
			}
			return
		}
		r := refusal.FromResponse(rec.Result())
		if r.Reason == "" {
			t.Fatalf("status %d without a reason: %s", rec.Code, rec.Body)
		}
	})
}
