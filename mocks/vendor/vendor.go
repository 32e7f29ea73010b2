package vendor

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/agentkeys/harness/mocks/mailer"
	"github.com/agentkeys/harness/mocks/reply"
	"github.com/agentkeys/harness/protocol/wire"
)

// Defaults of Config.
const (
	DefaultFrom    = "signup@vendor.test"
	DefaultLinkTTL = 15 * time.Minute
)

// KeyPrefix starts every API key the vendor issues, as real vendors mark theirs so that
// a leaked key can be recognised by a scanner.
const KeyPrefix = "sk-vendor-"

// Config configures a Vendor. Every field has a default.
type Config struct {
	// SMTPAddr is the mail catcher's host:port. Empty turns sign-up off: it answers 503
	// email_unavailable.
	SMTPAddr string
	// From is the sender of verification mail. Default DefaultFrom.
	From string
	// PublicURL is the vendor's base URL as the mail's reader reaches it, the base of the
	// verification links. It is often known only after listening; see SetPublicURL.
	// While it is empty the links name the Host of the sign-up request.
	PublicURL string
	// LinkTTL is how long a verification link works. Default DefaultLinkTTL.
	LinkTTL time.Duration
	// Now is the vendor's clock. Default time.Now.
	Now func() time.Time
	// Logger receives one line per sign-up, verification and refusal; never a key.
	// Default: discard.
	Logger *slog.Logger
}

// Vendor is the mock vendor. Build it with New and serve Handler.
type Vendor struct {
	mailer  *mailer.Sender // nil when sign-up is off
	linkTTL time.Duration
	now     func() time.Time
	log     *slog.Logger
	handler http.Handler

	mu        sync.Mutex
	publicURL string
	pending   map[string]pendingSignup // by verification token
	keys      map[string]string        // key hash → email
	current   map[string]string        // email → hash of its live key
}

// pendingSignup is a sign-up whose link has not been visited.
type pendingSignup struct {
	email   string
	expires time.Time
}

// New fills cfg's defaults and returns a Vendor.
func New(cfg Config) (*Vendor, error) {
	v := &Vendor{
		linkTTL:   cfg.LinkTTL,
		now:       cfg.Now,
		log:       cfg.Logger,
		publicURL: strings.TrimSuffix(cfg.PublicURL, "/"),
		pending:   make(map[string]pendingSignup),
		keys:      make(map[string]string),
		current:   make(map[string]string),
	}
	if cfg.SMTPAddr != "" {
		from := cfg.From
		if from == "" {
			from = DefaultFrom
		}
		from, err := mailer.NormalizeAddress(from)
		if err != nil {
			return nil, fmt.Errorf("new vendor: from: %w", err)
		}
		v.mailer = &mailer.Sender{Addr: cfg.SMTPAddr, From: from}
	}
	if v.linkTTL <= 0 {
		v.linkTTL = DefaultLinkTTL
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	v.handler = v.routes()
	return v, nil
}

// Handler serves the vendor's routes.
func (v *Vendor) Handler() http.Handler { return v.handler }

// SetPublicURL sets the base of the verification links once the listener is known.
func (v *Vendor) SetPublicURL(url string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.publicURL = strings.TrimSuffix(url, "/")
}

func (v *Vendor) linkBase(r *http.Request) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.publicURL != "" {
		return v.publicURL
	}
	return "http://" + r.Host
}

func (v *Vendor) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+wire.RouteVendorSignup, v.signup)
	mux.HandleFunc("GET "+wire.RouteVendorVerifyPrefix+"{token}", v.verify)
	mux.HandleFunc("GET "+wire.RouteVendorWhoami, v.whoami)
	mux.HandleFunc("GET "+wire.RouteHealthz, func(w http.ResponseWriter, _ *http.Request) {
		reply.JSON(w, http.StatusOK, wire.Healthz{OK: true, Service: "vendor"})
	})
	// Unknown routes answer with a reason too, where ServeMux would answer in plain text.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		v.refuse(w, r, http.StatusNotFound, wire.ReasonNotFound, "no such route")
	})
	return mux
}

func (v *Vendor) signup(w http.ResponseWriter, r *http.Request) {
	if v.mailer == nil {
		v.refuse(w, r, http.StatusServiceUnavailable, wire.ReasonEmailUnavailable,
			"the vendor runs without a mail server")
		return
	}
	var req wire.VendorSignupRequest
	if err := reply.Decode(w, r, &req); err != nil {
		v.log.Info("vendor refused", "route", r.URL.Path, "reason", wire.ReasonInvalidInput,
			"message", err.Error())
		reply.DecodeError(w, err, wire.ReasonInvalidInput)
		return
	}
	email, err := mailer.NormalizeAddress(req.Email)
	if err != nil {
		v.refuse(w, r, http.StatusBadRequest, wire.ReasonInvalidInput, err.Error())
		return
	}

	token := randomHex(32)
	v.mu.Lock()
	v.pending[token] = pendingSignup{email: email, expires: v.now().Add(v.linkTTL)}
	v.mu.Unlock()

	link := v.linkBase(r) + wire.RouteVendorVerifyPrefix + token
	text := "Someone signed up for a Mock Model API account with this address.\n\n" +
		"Visit this link to confirm it and receive your API key:\n\n" + link + "\n\n" +
		"Confirming replaces any key issued to this address before. " +
		"If this was not you, ignore this message: nothing changes.\n"
	if err := v.mailer.Send(r.Context(), email, "Confirm your Mock Model API sign-up",
		text); err != nil {
		v.mu.Lock()
		delete(v.pending, token)
		v.mu.Unlock()
		v.refuse(w, r, http.StatusBadGateway, wire.ReasonEmailSendFailed, err.Error())
		return
	}

	v.log.Info("vendor sign-up mailed", "email", email)
	reply.JSON(w, http.StatusAccepted, wire.VendorSignupAnswer{Status: wire.VendorSignupStatus})
}

func (v *Vendor) verify(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if !isHex(token, 64) {
		v.refuse(w, r, http.StatusBadRequest, wire.ReasonInvalidInput,
			"the verification token is 64 lowercase hex characters")
		return
	}

	key := KeyPrefix + strings.ToLower(rand.Text())
	hash := hashKey(key)
	// The token is deleted by the visit that finds it, so a link works once.
	v.mu.Lock()
	p, ok := v.pending[token]
	delete(v.pending, token)
	live := ok && v.now().Before(p.expires)
	rotated := false
	if live {
		old, had := v.current[p.email]
		rotated = had
		delete(v.keys, old)
		v.keys[hash] = p.email
		v.current[p.email] = hash
	}
	v.mu.Unlock()
	if !live {
		v.refuse(w, r, http.StatusUnauthorized, wire.ReasonVerificationInvalid,
			"verification link unknown, already used or expired")
		return
	}

	v.log.Info("vendor key issued", "email", p.email, "rotated", rotated)
	reply.JSON(w, http.StatusOK, wire.VendorVerifyAnswer{Email: p.email, APIKey: key})
}

func (v *Vendor) whoami(w http.ResponseWriter, r *http.Request) {
	scheme, key, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || key == "" {
		v.refuse(w, r, http.StatusUnauthorized, wire.ReasonInvalidAPIKey,
			"Authorization: Bearer <api key> is required")
		return
	}

	v.mu.Lock()
	email, ok := v.keys[hashKey(key)]
	v.mu.Unlock()
	if !ok {
		v.refuse(w, r, http.StatusUnauthorized, wire.ReasonInvalidAPIKey,
			"api key unknown or revoked")
		return
	}
	reply.JSON(w, http.StatusOK, wire.VendorWhoamiAnswer{Email: email})
}

// refuse logs a refusal and answers it with the mocks' JSON error shape.
func (v *Vendor) refuse(w http.ResponseWriter, r *http.Request, status int, reason,
	message string) {
	v.log.Info("vendor refused", "route", routeOf(r), "status", status, "reason", reason,
		"message", message)
	reply.Error(w, status, reason, message, nil)
}

// routeOf names the route without a verification token, which must not reach a log: it
// is as good as the key it is about to be exchanged for.
func routeOf(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, wire.RouteVendorVerifyPrefix) {
		return wire.RouteVendorVerifyPrefix + "{token}"
	}
	return r.URL.Path
}

func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func randomHex(n int) string {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		panic("vendor: read random: " + err.Error()) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(buf)
}

// isHex reports whether s is exactly n lowercase hex characters.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Server is a Vendor listening on a loopback port, in the manner of httptest.Server. Its
// links name its own URL unless the Config names another.
type Server struct {
	*Vendor
	// URL is the base URL, http://127.0.0.1:port, with no trailing slash.
	URL string

	srv *httptest.Server
}

// NewServer builds a Vendor from cfg and starts it on a loopback port. Close stops it.
func NewServer(cfg Config) (*Server, error) {
	v, err := New(cfg)
	if err != nil {
		return nil, err
	}
	srv := httptest.NewServer(v.Handler())
	if cfg.PublicURL == "" {
		v.SetPublicURL(srv.URL)
	}
	v.log.Info("vendor started", "url", srv.URL)
	return &Server{Vendor: v, URL: srv.URL, srv: srv}, nil
}

// Close stops the server and waits for the requests in flight.
func (s *Server) Close() { s.srv.Close() }
