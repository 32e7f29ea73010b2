package worker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/agentkeys/harness/mocks/chain"
	"github.com/agentkeys/harness/mocks/reply"
	"github.com/agentkeys/harness/protocol/envelope"
	"github.com/agentkeys/harness/protocol/omni"
	"github.com/agentkeys/harness/protocol/wire"
)

// Core is a worker: the pipeline both workers share, serving one worker's routes. It is
// safe for concurrent use.
type Core struct {
	name   string
	cfg    Config
	routes []Route
	audit  auditLog
}

// New checks cfg and returns a Core for the worker called name (used in logs and in the
// health answer) that serves routes.
func New(name string, cfg Config, routes ...Route) (*Core, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("new %s: %w", name, err)
	}
	return &Core{name: name, cfg: cfg, routes: routes}, nil
}

// Route describes one POST route of a worker.
type Route struct {
	// Path is the route, e.g. wire.RouteCredStore.
	Path string
	// Op and DataClass are what the cap must carry; the route fixes both.
	Op        string
	DataClass string
	// Store routes take {cap, plaintext_b64}; the others take {cap} alone.
	Store bool
	// ChainReason names a chain failure in this worker's words.
	ChainReason func(chain.Failure) string
	// Serve does the route's work once every shared check has passed. It returns the
	// answer for a 200, or the refusal.
	Serve func(ctx context.Context, call *Call) (any, *Refusal)
}

// Refusal is a worker's non-200 answer: the JSON error shape, or plain text for the 401
// of the credentials headers.
type Refusal struct {
	Status  int
	Reason  string
	Message string
	// Detail, when not nil, is sent as "detail".
	Detail any

	plain bool
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("%d %s: %s", r.Status, r.Reason, r.Message)
}

// Refuse makes a Refusal without detail.
func Refuse(status int, reason, message string) *Refusal {
	return &Refusal{Status: status, Reason: reason, Message: message}
}

// RefuseS3 makes the refusal for a failed S3 call: the status and reason the route
// chose, with the attempt in detail.attempts so the caller sees the S3 code.
func RefuseS3(status int, reason string, err error, bucket string, owner omni.Omni) *Refusal {
	var s3e *S3Error
	if !errors.As(err, &s3e) {
		s3e = &S3Error{Code: wire.S3CodeRequestError, Err: err}
	}
	return &Refusal{
		Status:  status,
		Reason:  reason,
		Message: s3e.Error(),
		Detail:  wire.S3Detail{Attempts: []wire.S3Attempt{s3e.Attempt(bucket, owner.String())}},
	}
}

// S3Code is the S3 error code in err, or "" when err holds none.
func S3Code(err error) string {
	var s3e *S3Error
	if errors.As(err, &s3e) {
		return s3e.Code
	}
	return ""
}

// Call is one request that passed every shared check, handed to Route.Serve.
type Call struct {
	// Cap is the verified cap; S3 keys are built from it alone.
	Cap Checked
	// Bucket is the worker's bucket through the caller's credentials.
	Bucket Bucket

	core         *Core
	plaintextB64 *string
	entry        *wire.AuditEntry
}

// Plaintext decodes the body's plaintext_b64 (standard base64 with padding).
func (c *Call) Plaintext() ([]byte, *Refusal) {
	if c.plaintextB64 == nil {
		return nil, Refuse(http.StatusBadRequest, wire.ReasonInvalidInput,
			"plaintext_b64 missing")
	}
	pt, err := base64.StdEncoding.Strict().DecodeString(*c.plaintextB64)
	if err != nil {
		return nil, Refuse(http.StatusBadRequest, wire.ReasonPlaintextB64Decode,
			"plaintext_b64: "+err.Error())
	}
	return pt, nil
}

// Seal wraps plaintext in a v2 envelope whose AAD names actor (bare) and the cap's
// service.
func (c *Call) Seal(actor omni.Omni, plaintext []byte) ([]byte, *Refusal) {
	env, err := envelope.Seal(c.core.cfg.KEK, actor.String(), c.Cap.Service, plaintext)
	if err != nil {
		return nil, Refuse(http.StatusInternalServerError, wire.ReasonEnvelopeEncrypt,
			err.Error())
	}
	return env, nil
}

// Open unwraps an envelope sealed for actor and the cap's service.
func (c *Call) Open(actor omni.Omni, env []byte) ([]byte, *Refusal) {
	pt, err := envelope.Open(c.core.cfg.KEK, actor.String(), c.Cap.Service, env)
	if err != nil {
		return nil, Refuse(http.StatusInternalServerError, wire.ReasonEnvelopeDecrypt,
			err.Error())
	}
	return pt, nil
}

// Store seals the call's plaintext for actor and writes it at key, as a store route
// does, and answers with where it went.
func (c *Call) Store(ctx context.Context, actor omni.Omni, key string) (any, *Refusal) {
	plaintext, ref := c.Plaintext()
	if ref != nil {
		return nil, ref
	}
	env, ref := c.Seal(actor, plaintext)
	if ref != nil {
		return nil, ref
	}
	c.Record(key, env)
	if err := c.Bucket.Put(ctx, key, env); err != nil {
		return nil, RefuseS3(http.StatusBadGateway, wire.ReasonS3Put, err, c.Bucket.Name(),
			actor)
	}
	return &wire.StoreAnswer{OK: true, S3Key: key, EnvelopeSize: len(env)}, nil
}

// Get reads the envelope at key. The key is recorded before the read, so that a refused
// read is audited with it, and the envelope's hash after.
func (c *Call) Get(ctx context.Context, key string) ([]byte, error) {
	c.Record(key, nil)
	env, err := c.Bucket.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	c.Record(key, env)
	return env, nil
}

// FetchAnswer opens env, read by Get, for owner and answers with the plaintext, as a fetch
// route does.
func (c *Call) FetchAnswer(owner omni.Omni, env []byte) (any, *Refusal) {
	plaintext, ref := c.Open(owner, env)
	if ref != nil {
		return nil, ref
	}
	return &wire.FetchAnswer{OK: true,
		PlaintextB64: base64.StdEncoding.EncodeToString(plaintext)}, nil
}

// Record notes in the audit entry the key this call touched and, when env is not nil,
// the hash of the envelope written or read there.
func (c *Call) Record(key string, env []byte) {
	c.entry.S3Key = key
	if env != nil {
		c.entry.EnvelopeSHA256 = envelopeHash(env)
	}
}

// Handler serves the worker's routes, GET wire.RouteAudit and GET wire.RouteHealthz.
func (c *Core) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range c.routes {
		mux.Handle("POST "+rt.Path, c.handle(rt))
	}
	mux.HandleFunc("GET "+wire.RouteAudit, func(w http.ResponseWriter, r *http.Request) {
		reply.JSON(w, http.StatusOK, wire.AuditAnswer{Entries: c.Audit()})
	})
	mux.HandleFunc("GET "+wire.RouteHealthz, func(w http.ResponseWriter, r *http.Request) {
		reply.JSON(w, http.StatusOK, wire.Healthz{OK: true, Service: c.name})
	})
	return mux
}

// Audit returns the audit log, oldest entry first.
func (c *Core) Audit() []wire.AuditEntry { return c.audit.snapshot() }

// storeBody and fetchBody are the request bodies as the worker reads them: the pointer
// tells a missing plaintext_b64 from an empty one, and a fetch body with a plaintext is
// refused as an unknown field.
type storeBody struct {
	Cap          json.RawMessage `json:"cap"`
	PlaintextB64 *string         `json:"plaintext_b64"`
}

type fetchBody struct {
	Cap json.RawMessage `json:"cap"`
}

// faultyStoreBody is what a worker with the worker-key-from-body fault reads: a store
// body that may name the actor of the object key, which a correct worker refuses.
type faultyStoreBody struct {
	storeBody
	ActorOmni *string `json:"actor_omni"`
}

// handle runs the shared pipeline around rt (credentials headers, body, cap checks, then
// rt.Serve) and writes the answer and one audit entry.
func (c *Core) handle(rt Route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		entry := wire.AuditEntry{Route: rt.Path}
		ans, ref := c.serve(w, r, rt, &entry)

		entry.Status, entry.Outcome = http.StatusOK, "ok"
		if ref != nil {
			entry.Status, entry.Outcome, entry.Reason = ref.Status, "refused", ref.Reason
		}
		kept := c.audit.append(entry, c.cfg.Now())

		switch {
		case ref == nil:
			if sa, ok := ans.(*wire.StoreAnswer); ok {
				sa.AuditEnvelopeHash = kept.Hash
			}
			reply.JSON(w, http.StatusOK, ans)
		case ref.plain:
			http.Error(w, ref.Message, ref.Status)
		default:
			reply.Error(w, ref.Status, ref.Reason, ref.Message, ref.Detail)
		}
		c.cfg.Logger.Info("worker request", "worker", c.name, "route", rt.Path,
			"status", entry.Status, "reason", entry.Reason, "actor", entry.Actor,
			"duration", time.Since(began))
	}
}

// serve is the pipeline proper; it writes nothing, so that the answer and the audit
// entry are made in one place.
func (c *Core) serve(w http.ResponseWriter, r *http.Request, rt Route,
	entry *wire.AuditEntry) (any, *Refusal) {
	// Credentials come first, before the body is read: a caller without them learns
	// nothing about how its body would have fared.
	creds, err := c.credentialsFrom(r.Header)
	if err != nil {
		return nil, &Refusal{Status: http.StatusUnauthorized, Message: err.Error(),
			plain: true}
	}

	if c.cfg.Faults.WorkerUsesRootCredentials {
		creds = c.cfg.Credentials
	}

	var (
		rawCap    json.RawMessage
		plaintext *string
		bodyActor *string
	)
	if rt.Store && c.cfg.Faults.WorkerKeyFromBody {
		var b faultyStoreBody
		if err := reply.Decode(w, r, &b); err != nil {
			return nil, decodeRefusal(err)
		}
		rawCap, plaintext, bodyActor = b.Cap, b.PlaintextB64, b.ActorOmni
	} else if rt.Store {
		var b storeBody
		if err := reply.Decode(w, r, &b); err != nil {
			return nil, decodeRefusal(err)
		}
		rawCap, plaintext = b.Cap, b.PlaintextB64
	} else {
		var b fetchBody
		if err := reply.Decode(w, r, &b); err != nil {
			return nil, decodeRefusal(err)
		}
		rawCap = b.Cap
	}
	if len(rawCap) == 0 {
		return nil, Refuse(http.StatusBadRequest, wire.ReasonInvalidInput, "cap missing")
	}
	if rt.Store && plaintext == nil {
		return nil, Refuse(http.StatusBadRequest, wire.ReasonInvalidInput,
			"plaintext_b64 missing")
	}

	checked, ref := c.checkCap(rawCap, rt, entry)
	if ref != nil {
		return nil, ref
	}
	if bodyActor != nil {
		if o, err := omni.ParseBare(omni.Normalize(*bodyActor)); err == nil {
			checked.Actor = o
		}
	}
	call := &Call{
		Cap:          checked,
		Bucket:       c.bucketFor(creds),
		core:         c,
		plaintextB64: plaintext,
		entry:        entry,
	}
	return rt.Serve(r.Context(), call)
}

// decodeRefusal turns an error of reply.Decode into the refusal it earns: 413 for a body
// above 1 MiB, 400 for anything that does not parse.
func decodeRefusal(err error) *Refusal {
	var be *reply.BodyError
	if errors.As(err, &be) && be.Status == http.StatusRequestEntityTooLarge {
		return Refuse(be.Status, wire.ReasonPayloadTooLarge, err.Error())
	}
	return Refuse(http.StatusBadRequest, wire.ReasonInvalidInput, err.Error())
}
