package chain

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/agentkeys/harness/mocks/reply"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/refusal"
	"github.com/agentkeys/harness/protocol/wire"
)

// The admin routes stand in for on-chain transactions the master would send. Only tests
// call them, with the admin token the mock stack was started with.
const (
	RouteRegister = "/v1/chain/devices"
	RouteRevoke   = "/v1/chain/revoke"
	RouteGrant    = "/v1/chain/scope"
	RouteEpoch    = "/v1/chain/epoch"
	RouteBackdate = "/v1/chain/backdate"
	RouteMisissue = "/v1/chain/misissue"
)

// BackdateRequest is the body of RouteBackdate: date the next Caps caps and JWTs OIDC
// JWTs minted by Omni's sessions Seconds in the past.
type BackdateRequest struct {
	Omni    string `json:"omni"`
	Seconds int64  `json:"seconds"`
	Caps    int    `json:"caps"`
	JWTs    int    `json:"jwts"`
}

// MisissueRequest is the body of RouteMisissue: mint Omni's next OIDC JWTs, after any
// backdated ones, WrongAudience of them with the wrong audience and then Untagged of
// them without the actor tag. See Memory.Misissue.
type MisissueRequest struct {
	Omni          string `json:"omni"`
	WrongAudience int    `json:"wrong_audience"`
	Untagged      int    `json:"untagged"`
}

// RegisterRequest is the body of RouteRegister.
type RegisterRequest struct {
	DeviceKeyHash string   `json:"device_key_hash"`
	ParentOmni    string   `json:"parent_omni"`
	AgentOmni     string   `json:"agent_omni"`
	Roles         []string `json:"roles"`
}

// RevokeRequest is the body of RouteRevoke.
type RevokeRequest struct {
	DeviceKeyHash string `json:"device_key_hash"`
}

// GrantRequest is the body of RouteGrant.
type GrantRequest struct {
	ActorOmni string   `json:"actor_omni"`
	Services  []string `json:"services"`
}

// EpochAnswer is the answer of RouteEpoch.
type EpochAnswer struct {
	K3Epoch uint64 `json:"k3_epoch"`
}

// decoded serves a route whose body is a T: a body that does not decode as one, strictly,
// is refused with 400 invalid_input before serve sees it.
func decoded[T any](serve func(http.ResponseWriter, T)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req T
		if err := reply.Decode(w, r, &req); err != nil {
			reply.DecodeError(w, err, reply.ReasonInvalidInput)
			return
		}
		serve(w, req)
	}
}

// AdminHandler serves the admin routes over m, each behind "Authorization: Bearer token".
func AdminHandler(m *Memory, token string) http.Handler {
	mux := http.NewServeMux()
	known := make(map[string]bool)
	handle := func(route string, h http.HandlerFunc) {
		mux.HandleFunc(http.MethodPost+" "+route, h)
		known[route] = true
	}
	handle(RouteRegister, decoded(func(w http.ResponseWriter, req RegisterRequest) {
		parent, err1 := omni.ParsePrefixed(req.ParentOmni)
		agent, err2 := omni.ParsePrefixed(req.AgentOmni)
		if err1 != nil || err2 != nil {
			reply.Error(w, http.StatusBadRequest, reply.ReasonInvalidInput,
				"parent_omni and agent_omni must be 0x + 64 lowercase hex", nil)
			return
		}
		d := Device{DeviceKeyHash: req.DeviceKeyHash, Parent: parent, Agent: agent,
			Roles: req.Roles}
		if err := m.Register(d); err != nil {
			reply.Error(w, http.StatusBadRequest, reply.ReasonInvalidInput, err.Error(), nil)
			return
		}
		reply.JSON(w, http.StatusOK, map[string]bool{"ok": true})
	}))
	handle(RouteRevoke, decoded(func(w http.ResponseWriter, req RevokeRequest) {
		if err := m.Revoke(req.DeviceKeyHash); err != nil {
			reply.Error(w, http.StatusNotFound, "device_not_found", err.Error(), nil)
			return
		}
		reply.JSON(w, http.StatusOK, map[string]bool{"ok": true})
	}))
	handle(RouteGrant, decoded(func(w http.ResponseWriter, req GrantRequest) {
		actor, err := omni.ParsePrefixed(req.ActorOmni)
		if err != nil {
			reply.Error(w, http.StatusBadRequest, reply.ReasonInvalidInput, err.Error(), nil)
			return
		}
		m.Grant(actor, req.Services...)
		reply.JSON(w, http.StatusOK, map[string]bool{"ok": true})
	}))
	handle(RouteBackdate, decoded(func(w http.ResponseWriter, req BackdateRequest) {
		o, err := omni.ParsePrefixed(req.Omni)
		if err != nil || req.Seconds <= 0 || req.Caps < 0 || req.JWTs < 0 {
			reply.Error(w, http.StatusBadRequest, reply.ReasonInvalidInput,
				"want omni 0x + 64 hex, seconds > 0, caps and jwts >= 0", nil)
			return
		}
		m.Backdate(o, req.Seconds, req.Caps, req.JWTs)
		reply.JSON(w, http.StatusOK, map[string]bool{"ok": true})
	}))
	handle(RouteMisissue, decoded(func(w http.ResponseWriter, req MisissueRequest) {
		o, err := omni.ParsePrefixed(req.Omni)
		if err != nil || req.WrongAudience < 0 || req.Untagged < 0 {
			reply.Error(w, http.StatusBadRequest, reply.ReasonInvalidInput,
				"want omni 0x + 64 hex, wrong_audience and untagged >= 0", nil)
			return
		}
		m.Misissue(o, req.WrongAudience, req.Untagged)
		reply.JSON(w, http.StatusOK, map[string]bool{"ok": true})
	}))
	handle(RouteEpoch, func(w http.ResponseWriter, r *http.Request) {
		reply.JSON(w, http.StatusOK, EpochAnswer{K3Epoch: m.BumpEpoch()})
	})
	// Without this, ServeMux would answer an unknown route or method in plain text, the
	// one error of the mock stack without a reason.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if known[r.URL.Path] {
			reply.Error(w, http.StatusMethodNotAllowed, wire.ReasonMethodNotAllowed,
				"method "+r.Method+" not allowed", nil)
			return
		}
		reply.Error(w, http.StatusNotFound, wire.ReasonNotFound, "no such admin route", nil)
	})

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		want := []byte("Bearer " + token)
		if token == "" || subtle.ConstantTimeCompare(got, want) != 1 {
			reply.Error(w, http.StatusUnauthorized, "unauthorized", "admin token required", nil)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Admin calls the admin routes of a running mock stack.
type Admin struct {
	// URL is the base URL of the server that mounts AdminHandler (the broker).
	URL   string
	Token string
	HTTP  *http.Client
}

// Register registers a device bound to (parent, agent) with the cap-mint role.
func (a *Admin) Register(ctx context.Context, deviceKeyHash string, parent, agent omni.Omni) error {
	return a.post(ctx, RouteRegister, RegisterRequest{
		DeviceKeyHash: deviceKeyHash, ParentOmni: parent.Prefixed(), AgentOmni: agent.Prefixed(),
		Roles: []string{RoleCapMint},
	}, nil)
}

// Revoke revokes a device.
func (a *Admin) Revoke(ctx context.Context, deviceKeyHash string) error {
	return a.post(ctx, RouteRevoke, RevokeRequest{DeviceKeyHash: deviceKeyHash}, nil)
}

// Grant adds services to actor's scope.
func (a *Admin) Grant(ctx context.Context, actor omni.Omni, services ...string) error {
	return a.post(ctx, RouteGrant, GrantRequest{ActorOmni: actor.Prefixed(), Services: services},
		nil)
}

// Backdate dates the next caps and jwts OIDC JWTs of o's sessions seconds back.
func (a *Admin) Backdate(ctx context.Context, o omni.Omni, seconds int64, caps, jwts int) error {
	return a.post(ctx, RouteBackdate, BackdateRequest{Omni: o.Prefixed(), Seconds: seconds,
		Caps: caps, JWTs: jwts}, nil)
}

// Misissue has the broker mint o's next OIDC JWTs, after any backdated ones, with the
// wrong audience (wrongAudience of them) and then without the actor tag (untagged).
func (a *Admin) Misissue(ctx context.Context, o omni.Omni, wrongAudience, untagged int) error {
	return a.post(ctx, RouteMisissue, MisissueRequest{Omni: o.Prefixed(),
		WrongAudience: wrongAudience, Untagged: untagged}, nil)
}

// BumpEpoch advances the K3 epoch.
func (a *Admin) BumpEpoch(ctx context.Context) (uint64, error) {
	var ans EpochAnswer
	err := a.post(ctx, RouteEpoch, struct{}{}, &ans)
	return ans.K3Epoch, err
}

func (a *Admin) post(ctx context.Context, route string, body, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("chain admin %s: %w", route, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL+route, bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("chain admin %s: %w", route, err)
	}
	req.Header.Set("Authorization", "Bearer "+a.Token)
	req.Header.Set("Content-Type", "application/json")

	hc := a.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("chain admin %s: %w", route, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("chain admin %s: %w", route, refusal.FromResponse(resp))
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("chain admin %s: decode answer: %w", route, err)
		}
	}
	return nil
}
