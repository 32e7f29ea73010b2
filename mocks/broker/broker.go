package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/agentkeys/harness/internal/fault"
	"github.com/agentkeys/harness/mocks/chain"
	"github.com/agentkeys/harness/mocks/reply"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/wire"
)

// DefaultSessionTTL is how long a session JWT lives when Config.SessionTTL is zero: long
// enough for a whole e2e run, short enough that a leaked test token soon dies.
const DefaultSessionTTL = time.Hour

// Config configures a Broker. Chain is required; every other field has a default.
type Config struct {
	// Chain is the registry the cap-mint and OIDC checks read, and that the admin routes
	// under /v1/chain/ write.
	Chain *chain.Memory
	// AdminToken guards the /v1/chain/ admin routes. Empty refuses every admin call.
	AdminToken string
	// Issuer is the broker's public base URL, the iss of its JWTs and the base of its
	// discovery document. It is often known only after listening; see SetIssuer. While
	// it is empty the broker names itself after the Host of each request.
	Issuer string
	// Now is the broker's clock. Default time.Now.
	Now func() time.Time
	// CapKey signs caps, SessionKey session JWTs and OIDCKey OIDC JWTs, all P-256. Each
	// is generated when nil.
	CapKey     *ecdsa.PrivateKey
	SessionKey *ecdsa.PrivateKey
	OIDCKey    *ecdsa.PrivateKey
	// SessionTTL is the lifetime of a session JWT. Default DefaultSessionTTL.
	SessionTTL time.Duration
	// Logger receives one line per sign-in, pairing, mint and refusal. Default: discard.
	Logger *slog.Logger
	// Email turns on email sign-in and the agents' mailbox; its zero value leaves them
	// off (503 email_unavailable).
	Email EmailConfig
	// Faults selects known-bad behaviour for the mutation self-check. Zero is correct.
	Faults fault.Set
}

// Broker is the mock broker. Build it with New and serve Handler.
type Broker struct {
	chain      *chain.Memory
	now        func() time.Time
	capKey     *ecdsa.PrivateKey
	sessionKey *ecdsa.PrivateKey
	oidcKey    *ecdsa.PrivateKey
	oidcKid    string
	sessionTTL time.Duration
	log        *slog.Logger
	faults     fault.Set
	handler    http.Handler

	mu          sync.Mutex
	issuer      string
	signIns     map[string]signIn
	pairings    map[string]*pairing // by request_id
	codes       map[string]string   // pairing code → request_id, until claimed
	generations map[labelKey]int    // next generation per (master, label)
	claimCount  uint64              // orders the pending-bindings list
	email       *emailState         // sign-in links and agent addresses; maps under mu
}

// New checks cfg, fills its defaults and returns a Broker.
func New(cfg Config) (*Broker, error) {
	if cfg.Chain == nil {
		return nil, errors.New("new broker: Config.Chain is required")
	}

	b := &Broker{
		chain:       cfg.Chain,
		now:         cfg.Now,
		capKey:      cfg.CapKey,
		sessionKey:  cfg.SessionKey,
		oidcKey:     cfg.OIDCKey,
		sessionTTL:  cfg.SessionTTL,
		log:         cfg.Logger,
		faults:      cfg.Faults,
		issuer:      strings.TrimSuffix(cfg.Issuer, "/"),
		signIns:     make(map[string]signIn),
		pairings:    make(map[string]*pairing),
		codes:       make(map[string]string),
		generations: make(map[labelKey]int),
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.sessionTTL <= 0 {
		b.sessionTTL = DefaultSessionTTL
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	for _, k := range []struct {
		name string
		key  **ecdsa.PrivateKey
	}{{"cap", &b.capKey}, {"session", &b.sessionKey}, {"oidc", &b.oidcKey}} {
		if err := ensureP256(k.key); err != nil {
			return nil, fmt.Errorf("new broker: %s key: %w", k.name, err)
		}
	}
	kid, err := keyID(&b.oidcKey.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("new broker: oidc key: %w", err)
	}
	b.oidcKid = kid
	if b.email, err = newEmailState(cfg.Email); err != nil {
		return nil, fmt.Errorf("new broker: %w", err)
	}

	b.handler = b.routes(cfg.AdminToken)
	return b, nil
}

// ensureP256 generates a key into *key when it is nil and refuses one on another curve,
// since every signature this broker makes is ES256.
func ensureP256(key **ecdsa.PrivateKey) error {
	if *key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return fmt.Errorf("generate: %w", err)
		}
		*key = k
		return nil
	}
	if (*key).Curve != elliptic.P256() {
		return errors.New("want a P-256 key")
	}
	return nil
}

// Handler serves every broker route and the chain admin routes.
func (b *Broker) Handler() http.Handler { return b.handler }

// SetIssuer sets the broker's public base URL once the listener's address is known.
// Session JWTs issued under an earlier issuer stop verifying.
func (b *Broker) SetIssuer(url string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.issuer = strings.TrimSuffix(url, "/")
}

// Issuer returns the configured issuer, or "" while none is set.
func (b *Broker) Issuer() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.issuer
}

// CapPublicKey is the key workers verify broker_sig with.
func (b *Broker) CapPublicKey() *ecdsa.PublicKey { return &b.capKey.PublicKey }

// OIDCPublicKey is the key of the OIDC JWTs, the one the JWKS publishes.
func (b *Broker) OIDCPublicKey() *ecdsa.PublicKey { return &b.oidcKey.PublicKey }

// OIDCKeyID is the kid of the OIDC JWTs and of their JWKS entry.
func (b *Broker) OIDCKeyID() string { return b.oidcKid }

// SessionPublicKey is the key of the session JWTs.
func (b *Broker) SessionPublicKey() *ecdsa.PublicKey { return &b.sessionKey.PublicKey }

// issuerFor returns the issuer, or one derived from the request while none is set.
func (b *Broker) issuerFor(r *http.Request) string {
	if iss := b.Issuer(); iss != "" {
		return iss
	}
	return "http://" + r.Host
}

func (b *Broker) routes(adminToken string) http.Handler {
	mux := http.NewServeMux()
	known := make(map[string]bool)
	handle := func(method, path string, h http.HandlerFunc) {
		mux.HandleFunc(method+" "+path, h)
		known[path] = true
	}

	handle(http.MethodPost, wire.RouteWalletStart, b.walletStart)
	handle(http.MethodPost, wire.RouteWalletVerify, b.walletVerify)
	handle(http.MethodPost, wire.RoutePairingRequest, b.pairingRequest)
	handle(http.MethodPost, wire.RoutePairingClaim, b.pairingClaim)
	handle(http.MethodPost, wire.RoutePairingPoll, b.pairingPoll)
	handle(http.MethodGet, wire.RoutePendingBindings, b.pendingBindings)
	handle(http.MethodPost, wire.RoutePendingAck, b.pendingAck)
	for _, route := range wire.CapRoutes() {
		handle(http.MethodPost, route.Path, b.capMint(route))
	}
	handle(http.MethodPost, wire.RouteMintOIDC, b.mintOIDC)
	handle(http.MethodGet, wire.RouteDiscovery, b.discovery)
	handle(http.MethodGet, wire.RouteJWKS, b.jwks)
	handle(http.MethodGet, wire.RouteHealthz, b.healthz)
	b.emailRoutes(handle)

	mux.Handle("/v1/chain/", chain.AdminHandler(b.chain, adminToken))

	// The catch-all keeps "4xx with a reason" true for routes the broker does not serve,
	// where ServeMux would answer in plain text.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if known[r.URL.Path] {
			b.refuse(w, r, http.StatusMethodNotAllowed, wire.ReasonMethodNotAllowed,
				"method "+r.Method+" not allowed")
			return
		}
		b.refuse(w, r, http.StatusNotFound, wire.ReasonNotFound, "no such route")
	})
	return mux
}

func (b *Broker) healthz(w http.ResponseWriter, _ *http.Request) {
	reply.JSON(w, http.StatusOK, wire.Healthz{OK: true, Service: "broker"})
}

// refuse logs a refusal and answers it with the JSON error shape.
func (b *Broker) refuse(w http.ResponseWriter, r *http.Request, status int, reason,
	message string) {
	b.log.Info("broker refused", "route", r.URL.Path, "status", status, "reason", reason,
		"message", message)
	reply.Error(w, status, reason, message, nil)
}

// decode reads a JSON body into v, and answers a body it cannot read as invalid input
// (or 413 above the size limit). It reports whether the handler may go on.
func (b *Broker) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := reply.Decode(w, r, v); err != nil {
		b.log.Info("broker refused", "route", r.URL.Path, "reason", wire.ReasonInvalidInput,
			"message", err.Error())
		reply.DecodeError(w, err, wire.ReasonInvalidInput)
		return false
	}
	return true
}

// internal answers a failure of the broker itself, never one of the request's.
func (b *Broker) internal(w http.ResponseWriter, r *http.Request, err error) {
	b.log.Error("broker failed", "route", r.URL.Path, "err", err)
	reply.Error(w, http.StatusInternalServerError, "internal_error", err.Error(), nil)
}

func (b *Broker) invalid(w http.ResponseWriter, r *http.Request, message string) {
	b.refuse(w, r, http.StatusBadRequest, wire.ReasonInvalidInput, message)
}

// randomHex returns n random bytes as lowercase hex.
func randomHex(n int) string {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		panic("broker: read random: " + err.Error()) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(buf)
}

// labelKey counts agent generations: a master that claims a label again gets the next one.
type labelKey struct {
	master omni.Omni
	label  string
}

// Server is a Broker listening on a loopback port, in the manner of httptest.Server.
// Its issuer is its own URL.
type Server struct {
	*Broker
	// URL is the base URL, http://127.0.0.1:port, with no trailing slash.
	URL string

	srv *httptest.Server
}

// NewServer builds a Broker from cfg, starts it on a loopback port and sets its issuer
// to the server's URL unless cfg names one. Close stops it.
func NewServer(cfg Config) (*Server, error) {
	b, err := New(cfg)
	if err != nil {
		return nil, err
	}
	srv := httptest.NewServer(b.Handler())
	if cfg.Issuer == "" {
		b.SetIssuer(srv.URL)
	}
	b.log.Info("broker started", "url", srv.URL)
	return &Server{Broker: b, URL: srv.URL, srv: srv}, nil
}

// Close stops the server and waits for the requests in flight.
func (s *Server) Close() { s.srv.Close() }
